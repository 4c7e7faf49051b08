"""Certificates from summaries: a fit whose iterates are held in groups of tasks (FISTA's
groups on Dask workers) forms its duality gap from each block's pieces
(:mod:`regmtl.solvers.blocks.group_certificate`): O(p) or O(p^2) numbers where the penalty declares
its :meth:`~regmtl.penalties.Penalty.gap_summary`, each block's own terms where it separates
over tasks. The gap so formed equals the in-memory formula on the whole columns, whatever the
blocks and whichever group holds which; every built-in penalty a fit splits over groups
declares its summary (none falls back to bringing its p x T columns home)."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

import regmtl as rm
from regmtl.penalties import Penalty
from regmtl.penalties.base import REGISTRY, r_factor, stacked_singular_values
from regmtl.solvers.blocks.group_certificate import gap_of_pieces, gap_pieces

P, ALPHA = 6, 0.7
#: tasks per block: a one-task block beside larger ones
SIZES = (1, 7, 3, 9, 4)
T = sum(SIZES)

PENALTIES = {
    "l21": rm.L21(), "l21_ridge": rm.L21(0.5), "l21_positive": rm.L21(positive=True),
    "multi_source": rm.MultiSource(blocks=(4, 2)), "trace": rm.Trace(),
    "sparse_lowrank": rm.SparseLowRank(0.4), "robust_lowrank": rm.RobustLowRank(0.8),
    "robust_features": rm.RobustFeatures(0.8), "mean": rm.MeanRegularized(ridge=0.5),
    # separable over tasks: each block's own terms
    "l1": rm.L1(), "l1_positive": rm.L1(positive=True), "elasticnet": rm.ElasticNet(0.5),
    "l2": rm.L2(), "l21_zero": rm.L21(0.0),
}


def _case(pen: Penalty, scale: float, seed: int = 0):
    """A variable (low rank plus a few entries, a zero row, nonnegative under a sign
    constraint), G of dual norm about ``scale`` times alpha, and per-task sums."""
    rng = np.random.default_rng(seed)
    W = np.outer(rng.standard_normal(P), rng.standard_normal(T))
    W += np.outer(rng.standard_normal(P), rng.standard_normal(T)) * 1e-3
    W[2] = 0.0
    W[4, 5] += 2.0
    if getattr(pen, "sign_constrained", False):
        W = np.abs(W)
    V = pen.lift(W) if pen.spread(np.ones((1, 1))).size == 1 else np.stack([0.3 * W, 0.7 * W])
    G = rng.standard_normal((P, T))
    G *= scale * ALPHA / max(float(np.abs(G).max()), 1e-300)
    TT, YT = rng.random(T) * 5.0, rng.standard_normal(T)
    B = TT + 3.0
    return V, G, TT, YT, B


def _reference(pen, V, G, TT, YT, B):
    s = pen.dual_scaling(G, ALPHA)
    dual = float(np.sum(s * YT - 0.5 * s * s * TT)) - pen.scaled_conjugate(G, s, ALPHA)
    return 0.5 * TT.sum() + pen.value(V, ALPHA) - dual + 1e-13 * B.sum()


def _spans():
    cuts = np.concatenate([[0], np.cumsum(SIZES)])
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True))


def _grouped(pen, V, G, TT, YT, B, groups):
    """The gap from the blocks' pieces, the blocks held by ``groups`` (lists of block
    indices, each group's pieces in its own order)."""
    spans = _spans()
    pieces = gap_pieces(pen, ALPHA, V, G, TT, YT, B, spans, alone=False)
    parts = [[pieces[k] for k in ks] for ks in groups]
    return gap_of_pieces(pen, ALPHA, parts, groups)


@pytest.mark.parametrize("scale", [0.5, 4.0], ids=["inside", "outside"])
@pytest.mark.parametrize("name", list(PENALTIES))
def test_gap_from_pieces_equals_the_in_memory_gap(name, scale):
    pen = PENALTIES[name]
    V, G, TT, YT, B = _case(pen, scale)
    want = _reference(pen, V, G, TT, YT, B)
    got, big = _grouped(pen, V, G, TT, YT, B, [[0, 1, 2, 3, 4]])
    other, _ = _grouped(pen, V, G, TT, YT, B, [[3, 0], [4, 1, 2]])
    assert big == pytest.approx(B.sum(), rel=1e-14)
    assert got == other  # (block by block in the blocks' order: the same numbers)
    assert got == pytest.approx(want, rel=1e-10, abs=1e-10 * B.sum())
    # one group holding every task forms the in-memory terms itself
    alone = gap_pieces(pen, ALPHA, V, G, TT, YT, B, [(0, T)], alone=True)
    assert alone[0][0] == "terms"
    assert gap_of_pieces(pen, ALPHA, [alone], [[0]])[0] == pytest.approx(want, rel=1e-12)


def test_a_sign_constraint_broken_gives_an_infinite_gap():
    pen = rm.L21(positive=True)
    V, G, TT, YT, B = _case(pen, 2.0)
    V[1, 3] = -1e-3
    assert _grouped(pen, V, G, TT, YT, B, [[0, 1, 2, 3, 4]])[0] == np.inf


@pytest.mark.parametrize("name", [n for n in PENALTIES if n not in
                                  ("l1", "l1_positive", "elasticnet", "l2", "l21_zero")])
def test_a_block_sends_numbers_of_the_features_not_of_its_tasks(name):
    """A block's summary is O(p) or O(p^2) whatever its number of tasks: a block of 900
    tasks sends what a block of 9 does (pickled bytes), far less than its columns."""
    pen = PENALTIES[name]
    sizes = []
    for n in (9, 900):
        rng = np.random.default_rng(1)
        W = rng.standard_normal((P, n))
        V = np.abs(W) if getattr(pen, "sign_constrained", False) else W
        V = V if pen.spread(np.ones((1, 1))).size == 1 else np.stack([V, V])
        summary = pen.gap_summary(V, rng.standard_normal((P, n)))
        assert summary is not None
        sizes.append(len(pickle.dumps(summary)))
    assert sizes[0] == sizes[1]
    assert sizes[1] < 16 * P * P * 8 < 900 * P * 8


def test_the_singular_values_from_stacked_r_factors_are_accurate():
    """The trace norm from the blocks' R factors keeps the small singular values (from a
    p x p Gram they would lose half their digits: about 1e-8 of the largest each)."""
    rng = np.random.default_rng(3)
    U, _ = np.linalg.qr(rng.standard_normal((P, P)))
    Q, _ = np.linalg.qr(rng.standard_normal((400, P)))
    sv = np.array([1e3, 10.0, 1.0, 1e-3, 1e-6, 0.0])
    A = (U * sv) @ Q.T
    cuts = [0, 1, 50, 51, 300, 400]
    R = [r_factor(A[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    got = stacked_singular_values(R)
    assert np.abs(got - sv).max() <= 1e-12 * sv.max()
    assert got.sum() == pytest.approx(np.linalg.svd(A, compute_uv=False).sum(), rel=1e-14)


def _defined_in(cls: type, name: str) -> type:
    return next(c for c in cls.__mro__ if name in c.__dict__)


def _penalty_classes():
    return sorted({c for c in REGISTRY.values()} | {
        c for c in (rm.RobustLowRank, rm.RobustFeatures, rm.MultiSource)},
        key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _penalty_classes(), ids=lambda c: c.__name__)
def test_every_penalty_split_over_groups_declares_its_summary(cls):
    """A penalty whose prox splits over groups of tasks (so several groups hold a fit's
    iterates) and that certifies with a gap either separates over tasks or declares its
    summary; the summary is defined where the penalty's value and dual are (no subclass
    changes them under an inherited summary)."""
    if not (cls.splits_prox and cls.distributable):
        return
    pen = cls() if cls.by_name else PENALTIES["multi_source"]
    if not pen.has_dual or pen.separates_over_tasks:
        return
    assert _defined_in(cls, "gap_summary") is not Penalty, f"{cls.__name__} has no summary"
    for name in ("value", "dual_norm", "dual_scaling", "conjugate", "scaled_conjugate",
                 "compose", "spread", "_dual_part", "_shared_value", "_shared_dual_norm"):
        if any(name in c.__dict__ for c in cls.__mro__):
            home = _defined_in(cls, "_shared_gap_summary" if name.startswith("_shared")
                               else "gap_summary")
            owner = _defined_in(cls, name)
            assert owner in home.__mro__, (
                f"{cls.__name__}.{name} is defined in {owner.__name__}, below its summary's "
                f"class {home.__name__}")
    assert inspect.signature(pen.gap_summary).parameters.keys() == {"V", "G"}
