"""The chain of reductions of a fit (``regmtl.reductions``).

* Every step keeps the objective: at a point of the problem given and the point ``start`` maps
  it to, the objective of the problem given (its offset, its factors as glmnet defines them,
  its intercepts on the columns as given) equals the solver problem's plus the offset's folded
  constant, to 1e-9 relative, for five losses.
* ``invert`` undoes ``start``: a point of the problem given (zero on the excluded and the dead
  features) comes back to 1e-10 through the whole chain, live features included.
* The solution of a chain is the estimator's: ``fit_chain`` at alpha_max * 0.3 is
  certified, and at its own ``alpha_max`` every coefficient is 0.
* No route orchestrates a fit of its own: above the solvers only the chain solves a fit,
  shifts columns or reduces the per-feature terms.
"""

from __future__ import annotations

import ast

import numpy as np
import pytest
from conftest import REPO

import regmtl as rm
from regmtl.datafits import make_loss
from regmtl.feature_terms import column_deviations, feature_terms
from regmtl.penalties import make_penalty
from regmtl.problem import make_data
from regmtl.reductions import FoldOffset, Point, chain_of, fit_chain, task_offsets

SIZES = (30, 45, 25)
P = 6
FACTORS = [0.0, 2.0, np.inf, 1.0, 1.0, 0.5]  # a free column, an excluded one; column 4 is dead


def _problem(loss: str, seed: int = 0, dead: int = 0):
    """Three tasks of the ``loss``, their rows weighted, an offset, and ``dead`` more columns
    that no row uses."""
    rng = np.random.default_rng(seed)
    n = sum(SIZES)
    X = np.hstack([rng.standard_normal((n, P)), np.zeros((n, dead))])
    X[:, 1] += 100.0  # far from zero: the columns are centred
    X[:, 4] = 0.0  # used by no row
    task = np.repeat(np.arange(len(SIZES)), SIZES)
    f = X[:, [0, 3, 5]] @ np.array([0.5, -0.4, 0.3]) + 0.2 * task
    y = {"squared": f + rng.standard_normal(n), "huber": f + rng.standard_normal(n),
         "quantile": f + rng.standard_normal(n),
         "poisson": rng.poisson(np.exp(0.3 * f)).astype(float),
         "logistic": np.where(f + rng.standard_normal(n) > 0, 1.0, 0.0)}[loss]
    weight = rng.uniform(0.5, 2.0, n)
    offset = rng.uniform(-0.5, 0.5, n) if loss != "logistic" else None
    datafit = make_loss(loss)
    data = make_data(X, y, task, loss=datafit, sample_weight=weight)
    if datafit.kind == "binary":
        data.encode_binary()
    return data, datafit.bind(data), offset


def _source_objective(data, datafit, offset, W, b, alpha, factors, standardize):
    """The objective the user asked for, formed here: the loss at X W + b + o on the rows as
    given, plus alpha * sum_j d_j ||w_j||_1 with glmnet's factors (an excluded feature
    counted as a factor of 1, the factors rescaled to sum to the number of features) times
    each column's deviation where standardized."""
    d = np.asarray(factors, dtype=float)
    finite = np.isfinite(d)
    d = np.where(finite, d * d.size / (d[finite].sum() + (~finite).sum()), np.inf)
    if standardize:
        sd = column_deviations(data, True)
        flat = sd <= 1e-12 * sd.max()
        d = np.where(flat, np.inf, d * np.where(flat, 1.0, sd))
    o = 0.0 if offset is None else task_offsets(data, datafit, offset)
    f = data.linear(W, b) + o
    kept = np.isfinite(d)
    assert np.all(W[~kept] == 0.0)
    return datafit.value(data.y, f, data.c) + alpha * float(
        (d[kept][:, None] * np.abs(W[kept])).sum())


def _bottom_objective(chain, point, alpha):
    bottom = chain.problem
    loss = bottom.datafit.bind(bottom.data)
    f = bottom.data.linear(point.W, point.b if bottom.fit_intercept else None)
    fold = chain.step(FoldOffset)
    return (loss.value(bottom.data.y, f, bottom.data.c) + bottom.penalty.value(point.W, alpha)
            + (0.0 if fold is None else fold.constant))


def _point(seed: int = 1, dead: int = 0) -> Point:
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((P + dead, len(SIZES))) * 0.2
    W[[2, 4]] = 0.0  # excluded, dead
    W[P:] = 0.0
    return Point(W, rng.standard_normal(len(SIZES)) * 0.3)


def _terms(data, standardize):
    return feature_terms(FACTORS, None, None, None, True, standardize, P, data.n_tasks, None,
                         make_penalty("l1"))


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("loss", ["squared", "huber", "quantile", "poisson", "logistic"])
def test_every_step_keeps_the_objective(loss, standardize):
    data, datafit, offset = _problem(loss)
    # (the squared loss projects a free column out: its objective is the free part's minimum,
    # so here every kept factor is positive)
    factors = FACTORS if loss != "squared" else [1.0 if v == 0 else v for v in FACTORS]
    terms = feature_terms(factors, None, None, None, True, standardize, P, data.n_tasks, None,
                          make_penalty("l1"))
    chain = chain_of(data, datafit, rm.L1(), True, offset=offset, terms=terms, live=False)
    point, alpha = _point(), 0.05
    got = _bottom_objective(chain, chain.start(point), alpha)
    want = _source_objective(data, datafit, offset, point.W, point.b, alpha, factors,
                             standardize)
    assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("loss", ["poisson", "logistic", "quantile"])
def test_invert_undoes_start_through_the_whole_chain(loss):
    data, datafit, offset = _problem(loss, dead=14)
    terms = feature_terms(FACTORS + [1.0] * 14, None, None, None, True, False, P + 14,
                          data.n_tasks, None, make_penalty("l1"))
    chain = chain_of(data, datafit, rm.L1(), True, offset=offset, terms=terms)
    assert chain.live is not None and chain.live.sum() == 4  # (the dead columns dropped)
    point = _point(dead=14)
    down = chain.start(point)
    assert down.W.shape[0] == int(chain.live.sum())
    back = chain.invert(Point(down.W, down.b))
    np.testing.assert_allclose(back.W, point.W, rtol=0, atol=1e-10)
    np.testing.assert_allclose(back.b, point.b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("loss", ["squared", "poisson"])
def test_a_chain_fit_is_certified_and_zero_at_its_alpha_max(loss):
    data, datafit, offset = _problem(loss)
    chain = chain_of(data, datafit, rm.L21(), True, offset=offset,
                     terms=_terms(data, standardize=True))
    a_max = chain.alpha_max()
    kw = dict(solver="auto", tol=1e-10, max_iter=20_000, verbose=0, options=None)
    top = fit_chain(chain, 1.001 * a_max, None, None, kw)
    penalized = np.array([False, True, False, True, False, True])
    assert np.all(top.W[penalized] == 0.0) and np.all(top.W[[2, 4]] == 0.0)
    below = fit_chain(chain, 0.3 * a_max, None, None, kw)
    assert below.result.certificate.converged(1e-10)
    assert np.any(below.W[penalized] != 0.0)
    model = rm.MultiTaskRegressor("l21", loss=loss, alpha=0.3 * a_max, tol=1e-10,
                                  max_iter=20_000, penalty_factor=FACTORS, standardize=True)
    # (the rows given in task order: the flat rows of ``data`` are the input's)
    model.fit(np.asarray(data.X), data.y, data.task_of, sample_weight=data.sample_weight,
              offset=offset)
    np.testing.assert_allclose(model.coef_, below.W.T, rtol=0, atol=1e-7)
    np.testing.assert_allclose(model.intercept_, below.b, rtol=0, atol=1e-7)


#: the functions that orchestrate a fit, and the modules above the solvers that may call them
ORCHESTRATION = {"solve", "solve_live", "solve_task_alphas", "reduce_problem",
                 "shift_columns", "intercept_shift"}
ALLOWED = {
    "reductions.py",  # the chain
    "selection/path.py",  # walk_path: the chain's solver problem along a grid
    "task_alpha.py",  # one alpha per task, called by the chain
    "feature_terms.py",  # the free rows' fit of alpha_max's reference
    "baselines.py",  # the pooled baseline's own ridge and logistic paths
    "inference/debiased.py",  # the nodewise lassos: one stacked L1 problem of its own
}


def test_no_route_orchestrates_a_fit_of_its_own():
    src = REPO / "src" / "regmtl"
    found = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel.startswith(("solvers/", "taskdata.py", "dask.py", "deep/")) or rel in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (
                    node.level > 0 or (node.module or "").startswith("regmtl")):
                names = {a.name for a in node.names} & ORCHESTRATION
                found += [f"{rel} imports {n}" for n in sorted(names)]
    assert found == []
