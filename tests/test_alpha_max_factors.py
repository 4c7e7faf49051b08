"""``alpha_max`` with penalty factors, checked by the fits on both sides of it, for every loss.

With an unpenalized feature (factor 0) ``alpha_max`` is the dual norm, over the penalized
features in their units, of minus the gradient at the fit of the free features and the
intercepts alone. For a loss with kinks (the pinball loss) that gradient depends on the
subgradient taken on the rows the free fit interpolates; only the one that makes the free fit
optimal gives the threshold. Here, for each loss and factor pattern: at ``1.001 alpha_max``
every penalized coefficient is exactly 0, at ``0.99 alpha_max`` one is not (both fits
certified at ``tol=1e-10``). An earlier ``alpha_max`` under the quantile loss with a factor 0
was 1 to 4 % too small on these data, and 2x too small on others (a penalized coefficient of
1.4 at ``1.001 alpha_max``).
"""

from __future__ import annotations

import numpy as np
import pytest
from _feature_cases import FACTORS, make_tasks

import regmtl as rm

LOSSES = {
    "squared": "squared",
    "logistic": "logistic",
    "poisson": "poisson",
    "gamma": "gamma",
    "huber": rm.Huber(1.0),
    "quantile-0.3": rm.Quantile(0.3),
    "quantile-0.8": rm.Quantile(0.8),
    "multinomial": "multinomial",
    "list": [rm.Quantile(0.3), "squared", rm.Huber(0.5)],
}
PATTERNS = {"no-factors": None, "factors": FACTORS, "factors-0-first-two": np.array(
    [0.0, 0.0, 1.0, 1.0, 2.0, 0.5])}


def _problem(name):
    kind = {"logistic": "logistic", "poisson": "poisson", "gamma": "gamma",
            "multinomial": "multinomial"}.get(name, "squared")
    return make_tasks(kind, seed=4)


def _fit(name, penalty, alpha, factors, Xs, ys):
    kw = dict(alpha=alpha, tol=1e-10, max_iter=20_000, penalty_factor=factors)
    if name in ("logistic", "multinomial"):
        est = rm.MultiTaskClassifier(penalty, **kw)  # (classes per task: its loss)
    else:
        est = rm.MultiTaskRegressor(penalty, loss=LOSSES[name], **kw)
    return est.fit(Xs, ys)


def _penalized(est, factors):
    C = np.asarray(est.coef_)
    C = C.reshape(-1, C.shape[-1])  # (tasks or classes, features)
    return C if factors is None else C[:, np.asarray(factors) > 0]


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")  # (both certified)
@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize("penalty", ["l1", "l21"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_alpha_max_is_the_threshold_of_the_penalized_features(name, penalty, pattern):
    factors = PATTERNS[pattern]
    Xs, ys = _problem(name)
    a_max = rm.alpha_max(Xs, ys, penalty=penalty, loss=LOSSES[name], penalty_factor=factors)
    above = _fit(name, penalty, 1.001 * a_max, factors, Xs, ys)
    assert np.all(_penalized(above, factors) == 0.0), (
        f"a penalized coefficient {np.abs(_penalized(above, factors)).max():.3g} at "
        "1.001 alpha_max")
    below = _fit(name, penalty, 0.99 * a_max, factors, Xs, ys)
    assert np.abs(_penalized(below, factors)).max() > 0.0, "W = 0 at 0.99 alpha_max"


def _tied_tasks():
    """The issue's shape, 3 tasks of 25-40 rows, with integer targets: many rows tie at the
    kink of the free fit (one free feature and the intercepts)."""
    rng = np.random.default_rng(2)
    n = [25, 32, 40]
    X = np.vstack([rng.standard_normal((k, 5)) for k in n])
    y = np.round(X @ np.array([1.0, 0.5, 0.0, 0.0, -0.3]) + rng.standard_normal(len(X)))
    return X, y, np.repeat([0, 1, 2], n)


@pytest.mark.parametrize("penalty", ["l1", "elasticnet", "l21"])
@pytest.mark.parametrize("data", ["tied", "school"])
def test_alpha_max_is_exact_where_rows_tie_at_the_kink(penalty, data):
    """Integer targets: the free fit is a degenerate vertex, and the subgradient of its tied
    rows is the one of the smallest penalty dual norm: for the lasso and the elastic net the
    smallest largest penalized gradient (a linear program per task), for L2,1 the smallest
    largest norm over tasks of a penalized column's gradient (one cone program over the
    tasks, by cuts). At 1.001 alpha_max every penalized coefficient is 0; at 0.99 one is not
    (the least-norm subgradient clipped to the intervals gave an alpha_max 1.19 times too
    large on the tied tasks: zero fits at 0.99 of it)."""
    loss = rm.Quantile(0.3)
    if data == "tied":
        X, y, task = _tied_tasks()
        factor, args, drop = [0, 1, 1, 1, 1], (X, y, task), [0]
        kw = {"task": task}
        Xfit, yfit = X, y
    else:
        from regmtl.datasets import load_school

        school = load_school()
        Xfit, yfit, kw = school.X[:8], school.y[:8], {}
        factor = np.ones(Xfit[0].shape[1])
        factor[[0, 5]] = 0.0
        args, drop = (Xfit, yfit), [0, 5]
    top = rm.alpha_max(*args, penalty=penalty, loss=loss, penalty_factor=factor)
    if penalty == "l21":  # (the optimum of an independent conic solver on both sides)
        tasks = ([(X[task == t], y[task == t]) for t in range(3)] if data == "tied" else
                 list(zip(Xfit, yfit, strict=True)))
        d = np.asarray(factor, dtype=float)
        d = d * d.size / d.sum()  # (the factors rescaled: glmnet's rule)
        for ratio, zero in ((1.001, True), (0.99, False)):
            largest = _l21_pinball_optimum(tasks, d, ratio * top, 0.3)[drop_mask(d)].max()
            assert (largest <= 1e-6) == zero and (zero or largest >= 1e-3), (ratio, largest)
        return
    for ratio, zero in ((1.001, True), (0.99, False)):
        model = rm.MultiTaskRegressor(penalty, alpha=ratio * top, loss=loss,
                                      penalty_factor=factor, tol=1e-8).fit(Xfit, yfit, **kw)
        pen = np.delete(np.atleast_2d(model.coef_), drop, axis=1)
        assert (np.abs(pen).max() == 0.0) == zero, (ratio, np.abs(pen).max())


def drop_mask(d: np.ndarray) -> np.ndarray:
    """The penalized features (factor above 0)."""
    return d > 0


def _l21_pinball_optimum(tasks, d, alpha, tau) -> np.ndarray:
    """Each feature's norm over tasks at the optimum of the pinball loss (each task's mean)
    plus ``alpha sum_j d_j ||W_j||`` (cvxpy, Clarabel at 1e-10)."""
    cp = pytest.importorskip("cvxpy")
    p, T = len(d), len(tasks)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    loss = sum(cp.sum(cp.maximum(tau * r, (tau - 1) * r)) / len(y) for r, y in (
        (y - X @ W[:, t] - b[t], y) for t, (X, y) in enumerate(tasks)))
    cp.Problem(cp.Minimize(loss + alpha * cp.sum(cp.multiply(d, cp.norm(W, 2, axis=1))))
               ).solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10,
                       tol_feas=1e-10)
    return np.linalg.norm(W.value, axis=1)
