"""Invariances of a fit, as properties over the losses and penalties of the support matrix.

Each one holds exactly in the mathematics of design.rst section 4, so two fits at a tight
``tol`` must agree to the accuracy the certificate allows:

- every sample weight times c (the weighted mean per task is unchanged): the same fit, score;
- a row repeated = the row with weight 2;
- a constant added to a task's offset: the same ``coef_``, that task's intercept minus it;
- tasks permuted (a penalty symmetric in the tasks): ``coef_``'s rows permuted;
- features permuted (a penalty symmetric in the features): ``coef_``'s columns permuted;
- the squared loss with y times c: W and b times c (alpha times c for a penalty of degree 1,
  the same alpha for one of degree 2; the elastic net is neither).

The problems are the support matrix's long cells (``regmtl.conformance.cell_problem``).
"""

from __future__ import annotations

import numpy as np
import pytest
from _strategies import examples
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone

from regmtl.conformance import Cell, cell_problem
from regmtl.datafits import LOSSES

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

OFFSET_LOSSES = tuple(n for n, cls in LOSSES.items() if cls.takes_offset())
LOSS_NAMES = (*LOSSES, "mixed")
#: penalties symmetric in the tasks and in the features, of degree 1 and 2
SYMMETRIC = ("l1", "l21", "trace", "elasticnet", "l2", "mean")
DEGREE_ONE = ("l1", "l21", "trace", "l1inf")
TOL = 1e-10


def _fit(est, args, **kw):
    return clone(est).set_params(tol=TOL, max_iter=5000).fit(*args, **kw)


def _close(a, b, scale=1.0):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * scale)


def _problem(penalty: str, loss: str, shape: str = "long"):
    return cell_problem(Cell(penalty, loss, shape))


def _same_objective(m1, m2) -> None:
    assert abs(m1.objective_ - m2.objective_) <= 1e-7 * max(1.0, abs(m1.objective_))


def _same_fit(m1, m2, loss):
    """The two fits agree: coefficients (the objective for the quantile loss, whose minimizer
    need not be unique)."""
    if loss in ("quantile", "mixed", "huber"):
        _same_objective(m1, m2)
    if loss != "quantile":
        _close(m1.coef_, m2.coef_)
        _close(m1.intercept_, m2.intercept_)


@examples(8)
@given(loss=st.sampled_from(LOSS_NAMES), penalty=st.sampled_from(SYMMETRIC),
       c=st.sampled_from([0.5, 2.0, 123.0, 1e-3]))
def test_weights_times_a_constant(loss, penalty, c):
    prob = _problem(penalty, loss, "weights")
    w = prob.fit_kwargs["sample_weight"]
    m1 = _fit(prob.estimator, prob.fit_args, sample_weight=w)
    m2 = _fit(prob.estimator, prob.fit_args, sample_weight=[c * x for x in w])
    _same_fit(m1, m2, loss)
    s1 = m1.score(*prob.fit_args, sample_weight=w)
    s2 = m1.score(*prob.fit_args, sample_weight=[c * x for x in w])
    assert abs(s1 - s2) <= 1e-9 * max(1.0, abs(s1))


@examples(8)
@given(loss=st.sampled_from(LOSS_NAMES), penalty=st.sampled_from(SYMMETRIC),
       seed=st.integers(0, 2**16))
def test_a_repeated_row_is_weight_two(loss, penalty, seed):
    prob = _problem(penalty, loss)
    Xs, ys = prob.fit_args
    rng = np.random.default_rng(seed)
    twice = [rng.random(len(y)) < 0.3 for y in ys]
    Xr = [np.vstack([X, X[m]]) for X, m in zip(Xs, twice, strict=True)]
    yr = [np.concatenate([y, y[m]]) for y, m in zip(ys, twice, strict=True)]
    w = [1.0 + m for m in twice]
    m1 = _fit(prob.estimator, (Xr, yr))
    m2 = _fit(prob.estimator, (Xs, ys), sample_weight=w)
    _same_fit(m1, m2, loss)


@examples(8)
@given(loss=st.sampled_from(OFFSET_LOSSES), penalty=st.sampled_from(SYMMETRIC),
       shift=st.floats(-5.0, 5.0), task=st.integers(0, 2))
def test_a_constant_in_the_offset_goes_to_the_intercept(loss, penalty, shift, task):
    prob = _problem(penalty, loss, "offset")
    o = prob.fit_kwargs["offset"]
    moved = [x + (shift if t == task else 0.0) for t, x in enumerate(o)]
    m1 = _fit(prob.estimator, prob.fit_args, offset=o)
    m2 = _fit(prob.estimator, prob.fit_args, offset=moved)
    if loss == "quantile":
        return _same_objective(m1, m2)
    _close(m1.coef_, m2.coef_)
    expected = m1.intercept_.copy()
    expected[task] -= shift
    _close(m2.intercept_, expected)


@examples(8)
@given(loss=st.sampled_from(LOSS_NAMES), penalty=st.sampled_from(SYMMETRIC),
       seed=st.integers(0, 2**16))
def test_tasks_permuted(loss, penalty, seed):
    prob = _problem(penalty, loss)
    Xs, ys = prob.fit_args
    perm = np.random.default_rng(seed).permutation(len(Xs))
    est = prob.estimator
    if loss == "mixed":  # the loss list follows the tasks
        est = clone(est).set_params(loss=[est.loss[t] for t in perm])
    m1 = _fit(prob.estimator, (Xs, ys))
    m2 = _fit(est, ([Xs[t] for t in perm], [ys[t] for t in perm]))
    if loss == "quantile":
        return _same_objective(m1, m2)
    T = len(Xs)  # (the multinomial's coef_ holds each task's classes as consecutive rows)
    _close(m1.coef_.reshape(T, -1, m1.coef_.shape[-1])[perm].reshape(m2.coef_.shape), m2.coef_)
    _close(m1.intercept_.reshape(T, -1)[perm].ravel(), m2.intercept_)


@examples(8)
@given(loss=st.sampled_from(LOSS_NAMES), penalty=st.sampled_from(SYMMETRIC),
       seed=st.integers(0, 2**16))
def test_features_permuted(loss, penalty, seed):
    prob = _problem(penalty, loss)
    Xs, ys = prob.fit_args
    perm = np.random.default_rng(seed).permutation(Xs[0].shape[1])
    m1 = _fit(prob.estimator, (Xs, ys))
    m2 = _fit(prob.estimator, ([X[:, perm] for X in Xs], ys))
    if loss == "quantile":
        return _same_objective(m1, m2)
    coef1 = m1.coef_.reshape(-1, Xs[0].shape[1])
    _close(coef1[:, perm], m2.coef_.reshape(-1, Xs[0].shape[1]))
    _close(m1.intercept_, m2.intercept_)


@examples(8)
@given(penalty=st.sampled_from((*DEGREE_ONE, "l2", "mean", "graph")), c=st.sampled_from(
    [1e-3, 0.5, 3.0, 1e3]))
def test_squared_loss_targets_times_c(penalty, c):
    prob = _problem(penalty, "squared")
    Xs, ys = prob.fit_args
    est = prob.estimator
    scaled = clone(est).set_params(alpha=est.alpha * c if penalty in DEGREE_ONE else est.alpha)
    m1 = _fit(est, (Xs, ys))
    m2 = _fit(scaled, (Xs, [c * y for y in ys]))
    _close(c * m1.coef_, m2.coef_, scale=c)
    _close(c * m1.intercept_, m2.intercept_, scale=c)
