"""Every cell of the support matrix (``regmtl.conformance``) is honest: refused by name, or
fitted to a point an independent check agrees with.

A cell is a registered penalty x a registered loss (or a loss per task) x a shape of the input.
A refused cell raises, on ``fit``, exactly the ``ValueError`` the docs' table shows, and the
message names the argument or the term at fault. A fitted cell:

- returns finite numbers, lets no NumPy ``RuntimeWarning`` escape, warns of no shortfall
  (its tiny problem must be solved to ``tol``), and ``n_iter_ <= max_iter``;
- reports as ``objective_`` the documented objective of its ``coef_`` and ``intercept_``
  (written out in ``tests/_matrix.py``, not read from the library);
- is within its certificate of cvxpy's optimum (Clarabel) where the cell is convex and has a
  cvxpy form: a duality gap bounds the distance itself; a KKT residual at ``tol`` 1e-8 must
  leave at most 1e-6 of the reference scale;
- elsewhere (the nonconvex penalties, the class forms of the multinomial loss not written
  out) no bounded local search from the result finds a lower objective.

The known cells (``tests/_known_cells.py``: a budget that rounding may put either side of, a
nonconvex saddle) are checked either way, never by which side this machine's floating-point
kernels put them: certified and checked in full, or stopped short with a warning that states
the certificate the model reports and a point within it of cvxpy's optimum (or, for a known
saddle, certified stationary where the local search descends). ``make test-portability`` runs
the slice under a second family of BLAS kernels.

``make test`` runs a slice: each penalty with each loss once, the shape turning with the pair
(168 cells). ``make test-matrix`` (``REGMTL_MATRIX=full``) runs every cell.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from _known_cells import KNOWN, check_shortfall, saddle_allowed
from _matrix import (
    LIFTED,
    cvx_minimum,
    fitted_point,
    local_search,
    names_its_cause,
    objective,
    reference_scale,
    tasks_of,
    written,
)
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from regmtl.classes import class_penalty
from regmtl.conformance import SHAPES, Cell, cell_problem, cells, refusal
from regmtl.datafits import LOSSES
from regmtl.penalties import PENALTY_CLASSES, make_penalty

FULL = os.environ.get("REGMTL_MATRIX") == "full"
SHAPE_NAMES = list(SHAPES)
LOSS_NAMES = [*LOSSES, "mixed"]
PENALTY_NAMES = [cls.name for cls in PENALTY_CLASSES.values()]

def _slice() -> list[Cell]:
    """Each (penalty, loss) once, its shape turning with the pair's position."""
    return [Cell(pen, loss, SHAPE_NAMES[(i + j) % len(SHAPE_NAMES)])
            for i, pen in enumerate(PENALTY_NAMES) for j, loss in enumerate(LOSS_NAMES)]


def _params() -> list:
    return [pytest.param(c, id=c.id) for c in (cells() if FULL else _slice())]


def test_the_matrix_covers_every_registered_term():
    all_cells = cells()
    assert set(KNOWN) <= {c.id for c in all_cells}
    assert len(all_cells) == len(PENALTY_NAMES) * len(LOSS_NAMES) * len(SHAPES)
    assert {(c.penalty, c.loss) for c in _slice()} == {
        (p, loss) for p in PENALTY_NAMES for loss in LOSS_NAMES}
    assert {c.shape for c in _slice()} == set(SHAPES)


def fit_cell(prob, **params):
    """The cell's estimator fitted (``params`` set first), and the shortfall warnings' texts;
    a NumPy ``RuntimeWarning`` is an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", RuntimeWarning)
        model = clone(prob.estimator).set_params(**params).fit(*prob.fit_args, **prob.fit_kwargs)
    return model, [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


def check_fitted(cell: Cell, prob, model, short: list[str]) -> str:
    """The checks of a fitted cell (the module's text); returns the outcome: ``"certified"``,
    ``"stopped short"`` or ``"saddle"`` (the last two only for the known cells)."""
    assert model.n_iter_ <= model.max_iter, (model.n_iter_, model.max_iter)
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_))
    assert np.isfinite(model.objective_)
    d = tasks_of(prob)
    V, W, b = fitted_point(model, d)
    pen = make_penalty(prob.estimator.penalty)
    if pen.name in LIFTED and hasattr(model, "P_"):
        np.testing.assert_allclose(V[0] + V[1], W, rtol=0, atol=1e-10)
    library = None
    if not written(pen, d):
        rows = model.fit_rows(*prob.fit_args)
        library = class_penalty(pen, rows.data if rows.layout is None else rows.layout)
    value = objective(pen, d, V, W, b, library)
    # objective_ is the documented objective of coef_ and intercept_
    assert abs(model.objective_ - value) <= 1e-9 * max(1.0, abs(value)), (
        model.objective_, value)
    scale = reference_scale(d)
    cert = getattr(model, "dual_gap_", None)
    optimum = None
    if not pen.nonconvex and written(pen, d):
        try:
            optimum = cvx_minimum(pen, d)
        except KeyError:
            optimum = None
    if short:  # a known cell may stop short: the warning states what the model reports
        assert cell.id in KNOWN, short
        bound = check_shortfall(model, short, scale)
        if optimum is not None:  # (a stated duality gap bounds the distance itself)
            assert (value - optimum) / scale <= bound / scale + 1e-7, (value, optimum, bound)
        return "stopped short"
    if optimum is not None:
        excess = (value - optimum) / scale
        bound = (cert / scale if cert is not None else 1e-6) + 1e-7
        assert excess <= bound, (excess, bound, cert, getattr(model, "kkt_residual_", None))
        return "certified"
    lifted = isinstance(V, tuple)
    shape = np.shape(np.stack(V)) if lifted else V.shape

    def f(x: np.ndarray) -> float:
        Vx = x[:-b.size].reshape(shape)
        Wx = Vx[0] + Vx[1] if lifted else Vx
        return objective(pen, d, tuple(Vx) if lifted else Vx, Wx, x[-b.size:], library)

    x0 = np.concatenate([np.ravel(np.stack(V) if lifted else V), b])
    found = local_search(f, x0, scale)
    if found < value - 1e-7 * scale:  # a known saddle: certified stationary, no more
        assert saddle_allowed(cell.id, model), ((value - found) / scale)
        return "saddle"
    return "certified"


@pytest.mark.parametrize("cell", _params())
def test_cell(cell: Cell, record_property):
    prob = cell_problem(cell)
    message = refusal(cell)
    if message:
        with pytest.raises(ValueError) as exc:
            prob.estimator.fit(*prob.fit_args, **prob.fit_kwargs)
        assert str(exc.value) == message
        assert names_its_cause(message, cell.penalty, cell.loss), message
        return
    outcome = check_fitted(cell, prob, *fit_cell(prob))
    if cell.id in KNOWN:  # (the summary lists the known cells certified here)
        record_property("known_cell", outcome)


def test_a_known_cell_passes_its_check_either_way():
    """The check of a known cell does not follow which side of its budget a machine's rounding
    puts it: the same cell passes stopped short (with its warning) and certified."""
    cell = Cell("robust_lowrank", "huber", "long")
    prob = cell_problem(cell)
    model, short = fit_cell(prob, max_iter=5)
    assert short and check_fitted(cell, prob, model, short) == "stopped short"
    model, short = fit_cell(prob, tol=1e-4)
    assert not short and check_fitted(cell, prob, model, short) == "certified"


def test_a_shortfall_that_misstates_its_certificate_fails():
    """The honesty check reads the warning: a stated residual other than the model's, or none,
    or a cell not known to stop short, fails."""
    cell = Cell("nonconvex_fused_group_lasso", "huber", "wide")
    prob = cell_problem(cell)
    model, short = fit_cell(prob, max_iter=3)
    assert short and check_fitted(cell, prob, model, short) == "stopped short"
    wrong = [short[-1].replace(f"{model.kkt_residual_:.3e}", f"{model.kkt_residual_ / 2:.3e}")]
    with pytest.raises(AssertionError):
        check_fitted(cell, prob, model, wrong)
    with pytest.raises(AssertionError, match="states no certificate"):
        check_fitted(cell, prob, model, ["the fit stopped"])
    other = Cell("l21", "huber", "wide")
    model, short = fit_cell(cell_problem(other), max_iter=1)
    assert short
    with pytest.raises(AssertionError):
        check_fitted(other, cell_problem(other), model, short)


def test_the_docs_table_is_written_from_the_matrix():
    from pathlib import Path

    from regmtl.conformance import matrix_table_rst

    text = matrix_table_rst()
    for pen in PENALTY_NAMES:
        assert f"   * - ``{pen}``\n" in text
    refused = [c for c in cells() if refusal(c)]
    assert refused and "every shape" in text
    for c in refused:  # each refusal's shape is named in its penalty's row
        row = text.split(f"   * - ``{c.penalty}``\n")[1].split("   * - ")[0]
        assert c.shape in row or "refused [" in row, c.id
    docs = Path(__file__).resolve().parent.parent / "docs"
    assert "matrix_table_rst()" in (docs / "conf.py").read_text()
    assert ".. include:: ../_generated/support_matrix.txt" in (
        docs / "user_guide" / "losses.rst").read_text()
