"""FISTA's iterates in groups of task columns (``regmtl.solvers.blocks.fista_groups``): the
penalties' prox split over groups (a summary summed over them, then each group's columns), and the
iteration on several groups equal to the one on the whole problem."""

from __future__ import annotations

import numpy as np
import pytest

import regmtl as rm
from regmtl.blocks import Kept
from regmtl.penalties.base import REGISTRY
from regmtl.penalties.coupling import ClassMean
from regmtl.solvers.parts.quadratic import TaskQuadratic, task_quadratic
from regmtl.solvers.parts.quadratic_fista import fista_certified, gram_certificate

CUTS = (0, 5, 13, 23)  # three groups of 5, 8 and 10 tasks

SPLITTING = {
    "l1": rm.L1(), "l2": rm.L2(), "elasticnet": rm.ElasticNet(l1_ratio=0.3),
    "l21": rm.L21(), "l21_positive": rm.L21(positive=True),
    "l1_positive": rm.L1(positive=True), "multisource": rm.MultiSource(blocks=(2, 4)),
    "mean": rm.MeanRegularized(), "mean_ridge": rm.MeanRegularized(ridge=0.5),
    "trace": rm.Trace(),
    # lifted (P, Q): the shared part from a summary, the other by entries or by task
    "sparse_lowrank": rm.SparseLowRank(0.3), "robust_features": rm.RobustFeatures(0.6),
    "robust_lowrank": rm.RobustLowRank(0.4),
    # the p x p Gram with the number of tasks in a corner
    "clustered": rm.Clustered(k=3), "shared_structure": rm.SharedStructure(k=2),
}
#: the penalties whose prox goes through the p x p Gram's eigendecomposition
GRAM = ("trace", "sparse_lowrank", "robust_lowrank", "clustered", "shared_structure")


def _groups(A):
    return [A[..., a:b] for a, b in zip(CUTS[:-1], CUTS[1:], strict=True)]


@pytest.mark.parametrize("name", sorted(SPLITTING))
@pytest.mark.parametrize("step", [0.05, 1.0])
def test_the_prox_splits_over_groups_of_tasks(name, step):
    """Each group's columns of the prox from the sum of the groups' summaries equal the
    whole variable's prox (1e-12 relative; the trace norm's from the p x p Gram, 1e-10)."""
    pen = SPLITTING[name]
    rng = np.random.default_rng(0)
    V = rng.standard_normal((6, CUTS[-1])) * np.array([3.0, 1.0, 0.2, 0.05, 2.0, 0.5])[:, None]
    if pen.spread(np.ones((1, 1))).size > 1:  # a lifted variable: two parts
        V = np.stack([V, rng.standard_normal(V.shape) * np.linspace(0.1, 3.0, CUTS[-1])])
    alpha = 0.8
    whole = pen.prox(V, step, alpha)
    parts = [P.copy() for P in _groups(V)]  # (prox_given writes over its columns)
    summaries = [pen.prox_summary(P) for P in parts]
    summary = None if summaries[0] is None else sum(summaries[1:], summaries[0])
    split = np.concatenate([pen.prox_given(P, summary, step, alpha) for P in parts], axis=-1)
    tol = 1e-10 if name in GRAM else 1e-12
    assert np.abs(split - whole).max() <= tol * np.abs(whole).max()
    assert np.abs(whole).max() > 0
    np.testing.assert_array_equal(split == 0, whole == 0)  # the same entries set to zero


def test_only_penalties_that_declare_it_split_and_they_implement_it():
    """A penalty that declares ``splits_prox`` has both methods; the class forms of the mean
    (one mean per class label) do not declare it, nor do the penalties whose prox reads
    more than a sum over tasks."""
    assert not ClassMean.splits_prox
    declared = {name for name, cls in REGISTRY.items() if cls.splits_prox}
    assert {"l1", "l21", "trace", "mean"} <= declared
    assert {"sparse_lowrank", "robust_features", "robust_lowrank", "clustered",
            "shared_structure"} <= declared
    for name in ("dirty", "graph"):
        assert name not in declared
    for name in declared:
        cls = REGISTRY[name]
        assert cls.prox_summary is not rm.Penalty.prox_summary, name
        assert cls.prox_given is not rm.Penalty.prox_given, name


class _Grouped(TaskQuadratic):
    """A quadratic whose iterates are held in three groups of its tasks in this process (as
    the workers hold theirs), or in one group of three blocks where they may not be several:
    the groups' own quadratics, sliced from the whole one."""

    def hold(self, cls, penalty, alpha, V, several=True):
        parts = [TaskQuadratic(self.H[a:b], self.g[:, a:b], self.e[a:b], self.xm[:, a:b],
                               self.zm[a:b]) for a, b in zip(CUTS[:-1], CUTS[1:], strict=True)]
        if not several:  # (one holder of the three blocks)
            kept = Kept([cls(parts, penalty, alpha, _groups(V))])
            kept.blocks = [[0, 1, 2]]
            return kept
        return Kept([cls([q], penalty, alpha, [P]) for q, P in zip(parts, _groups(V),
                                                                  strict=True)])


class _Interleaved(TaskQuadratic):
    """As :class:`_Grouped`, with a holder's blocks not consecutive (as the workers' are
    when the blocks alternate between them): one group holds blocks 0 and 2, the other 1."""

    def hold(self, cls, penalty, alpha, V, several=True):
        if not several:
            return None
        cuts = list(zip(CUTS[:-1], CUTS[1:], strict=True))
        parts = [TaskQuadratic(self.H[a:b], self.g[:, a:b], self.e[a:b], self.xm[:, a:b],
                               self.zm[a:b]) for a, b in cuts]
        pieces = _groups(V)
        kept = Kept([cls([parts[0], parts[2]], penalty, alpha, [pieces[0], pieces[2]]),
                     cls([parts[1]], penalty, alpha, [pieces[1]])])
        kept.blocks = [[0, 2], [1]]
        return kept


def _problem():
    rng = np.random.default_rng(1)
    T, p = CUTS[-1], 6
    Xs = [rng.standard_normal((int(rng.integers(8, 40)), p)) for _ in range(T)]
    W = rng.standard_normal((p, 1)) + 0.3 * rng.standard_normal((p, T))
    W[4:] = 0.0
    ys = [X @ W[:, t] + 0.5 * rng.standard_normal(len(X)) for t, X in enumerate(Xs)]
    return rm.as_task_data(Xs, ys)


@pytest.mark.parametrize("name", ["l21", "l1", "elasticnet", "trace", "mean", "mean_ridge",
                                  "l21_positive", "sparse_lowrank", "robust_features",
                                  "robust_lowrank", "clustered", "shared_structure"])
def test_fista_on_groups_reaches_the_whole_problems_optimum(name):
    """FISTA with its iterates in groups of tasks (three groups; or two, one holding blocks 0
    and 2: not consecutive tasks), each prox from the summed summaries and the step's sums
    added over the groups, reaches the optimum of FISTA on the whole problem:
    coefficients within 1e-9, both certified at tol (the gap, or the KKT residual of the
    mean without ridge), the groups' certificate equal to the whole problem's."""
    pen = SPLITTING[name]
    alpha = {"trace": 3.0, "mean": 2.0, "mean_ridge": 2.0, "sparse_lowrank": 1.0,
             "robust_lowrank": 3.0}.get(name, 0.5)
    data = _problem()
    q = task_quadratic(data, True)
    tol = 1e-10
    V0 = pen.lift(np.zeros_like(q.g))
    V1, it1, _, c1 = fista_certified(q, pen, alpha, V0, tol=tol, max_iter=20000)
    assert c1 <= tol
    found = []
    for held in (_Grouped, _Interleaved):
        grouped = held(q.H, q.g, q.e, q.xm, q.zm)
        V3, it3, stalled, c3 = fista_certified(grouped, pen, alpha, V0, tol=tol,
                                               max_iter=20000)
        assert c3 <= tol and not stalled
        assert np.abs(V3 - V1).max() <= 1e-8 * np.abs(V1).max()
        L = None if pen.has_dual else q.lipschitz()
        assert gram_certificate(q, pen, alpha, V3, L, 1.0) == pytest.approx(c3, rel=1e-6,
                                                                            abs=1e-12)
        assert abs(it3 - it1) <= max(0.1 * it1, 10)
        found.append(V3.copy())
    # the sums are taken block by block in the blocks' order: which group holds which block
    # does not change a bit
    np.testing.assert_array_equal(found[0], found[1])


def test_a_penalty_that_does_not_split_keeps_one_group():
    """Where the prox does not split (Dirty: a lifted variable), several groups are not
    asked for (``hold`` with ``several=False``): one group holds the three blocks' quadratics
    and reaches the whole problem's optimum (1e-9), certified."""
    data = _problem()
    q = task_quadratic(data, True)
    grouped = _Grouped(q.H, q.g, q.e, q.xm, q.zm)
    pen = rm.Dirty()
    V0 = pen.lift(np.zeros_like(q.g))
    V1, _, _, c1 = fista_certified(q, pen, 0.5, V0, tol=1e-10, max_iter=20000)
    V2, _, _, c2 = fista_certified(grouped, pen, 0.5, V0, tol=1e-10, max_iter=20000)
    assert V2.shape == V0.shape and c1 <= 1e-10 and c2 <= 1e-10
    assert np.abs(V2 - V1).max() <= 1e-9 * np.abs(V1).max()
