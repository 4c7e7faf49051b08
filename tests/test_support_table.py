"""The loss x penalty support table of the docs, generated from the code (issue 46)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import regmtl as rm
from regmtl.datafits import LOSSES
from regmtl.penalties import PENALTY_CLASSES
from regmtl.solvers.policy import SOLVER_TABLE
from regmtl.support_table import (
    MIXED_EXAMPLE,
    SupportEntry,
    support_entries,
    support_table_rst,
)


@pytest.fixture(scope="module")
def entries() -> list[SupportEntry]:
    return support_entries()


def _entry(entries, loss, penalty):
    (found,) = [e for e in entries if e.loss == loss and e.penalty == penalty]
    return found


def test_every_combination_has_one_entry(entries):
    losses = [*LOSSES, "mixed"]
    penalties = [cls.name for cls in PENALTY_CLASSES.values()]
    assert len(entries) == len(losses) * len(penalties)
    assert {(e.loss, e.penalty) for e in entries} == {(a, b) for a in losses for b in penalties}
    for e in entries:
        # a row and a certificate, or the refusal's message
        assert (e.tall and e.wide and e.certificate) or e.refusal, e
        words = set(re.findall(r"\w+", f"{e.tall} {e.wide}"))
        assert words <= set(SOLVER_TABLE), e


def test_poisson_with_l21_is_certified_by_a_duality_gap(entries):
    e = _entry(entries, "poisson", "l21")
    assert (e.tall, e.certificate, e.refusal) == ("prox_newton", "duality gap", "")
    e = _entry(entries, "squared", "l21")
    assert (e.tall, e.wide, e.certificate) == ("bcd", "bcd", "duality gap")
    e = _entry(entries, "squared", "l2")
    assert (e.tall, e.wide) == ("direct", "direct")  # wide: exact in row-space form


def test_certificates_follow_the_penalty_and_the_loss(entries):
    assert _entry(entries, "gamma", "mcp").certificate == "KKT residual"
    assert _entry(entries, "huber", "clustered").certificate == "KKT residual"
    assert _entry(entries, "mixed", "trace").certificate == "duality gap"
    q = _entry(entries, "quantile", "l1")
    assert q.tall == q.wide == "linear_program"  # the pinball loss with L1: a linear program
    assert _entry(entries, "quantile", "l1inf").tall == "interior_point"
    # the pinball loss with a cone-program penalty: an interior point, exact too
    assert _entry(entries, "quantile", "l21").tall == "interior_point"
    assert _entry(entries, "quantile", "mean").tall == "interior_point"
    assert _entry(entries, "quantile", "trace").tall == "spectral_barrier"
    assert _entry(entries, "quantile", "mean").certificate == (
        "fixed-point residual of the primal-dual iteration")
    assert q.certificate == "duality gap of the pinball loss"
    # (on the pinball loss itself, never on a smoothed stage's loss)
    assert _entry(entries, "quantile", "scad").certificate == "KKT residual of the pinball loss"


def test_the_table_agrees_with_a_fit():
    """The certificate the table names is the one a fit reports."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    Y = rng.poisson(np.exp(0.3 * X[:, :3])).astype(float)
    gap = rm.MultiTaskRegressor("l21", alpha=0.05, loss="poisson").fit(X, Y)
    assert hasattr(gap, "dual_gap_") and not hasattr(gap, "kkt_residual_")
    kkt = rm.MultiTaskRegressor("mcp", alpha=0.05, loss="poisson").fit(X, Y)
    assert hasattr(kkt, "kkt_residual_") and not hasattr(kkt, "dual_gap_")


def test_rst_has_a_row_per_penalty_and_a_column_per_loss(entries):
    text = support_table_rst()
    assert text.startswith(".. list-table::")
    for cls in PENALTY_CLASSES.values():
        assert f"   * - ``{cls.name}``\n" in text
    header = text.split("   * - ``")[0]
    for loss in LOSSES:
        assert f"     - {loss}\n" in header
    assert f"mixed ({', '.join(MIXED_EXAMPLE)})" in header
    assert "     - prox_newton; duality gap\n" in text
    assert "* ``prox_newton``: " in text


def test_the_docs_build_writes_and_includes_it():
    docs = Path(__file__).resolve().parent.parent / "docs"
    assert "support_table_rst()" in (docs / "conf.py").read_text()
    assert ".. include:: ../_generated/loss_support.txt" in (
        docs / "user_guide" / "losses.rst").read_text()
