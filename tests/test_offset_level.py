"""An offset of a log-link loss: ``objective_`` is the documented objective with the offset
in the linear predictor, and a constant added to a task's offsets moves only its intercept."""

import warnings

import numpy as np
import pytest

import regmtl as rm


def _problem(loss, w=(0.3, 0, 0, -0.2)):
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((30, 4)) for _ in range(2)]
    off = [rng.standard_normal(30) for _ in Xs]
    mu = [np.exp(X @ np.asarray(w) + o) for X, o in zip(Xs, off, strict=True)]
    ys = [rng.poisson(m).astype(float) if loss == "poisson" else rng.gamma(2.0, m / 2.0)
          for m in mu]
    sw = [rng.uniform(0.5, 2.0, 30) for _ in Xs]
    return Xs, ys, off, sw


def _objective(model, Xs, ys, offs, sw, loss):
    """Design section 4, in NumPy: per task the weighted mean of the loss at
    f = x.w + b + offset, plus alpha sum_j ||W_j||."""
    total = 0.0
    for t, (X, y, o, s) in enumerate(zip(Xs, ys, offs, sw, strict=True)):
        f = X @ model.coef_[t] + model.intercept_[t] + o
        loss_rows = np.exp(f) - y * f if loss == "poisson" else y * np.exp(-f) + f
        total += np.sum(s * loss_rows) / np.sum(s)
    return total + model.alpha * np.sum(np.linalg.norm(model.coef_, axis=0))


def _fit(Xs, ys, off, sw, loss, **kw):
    model = rm.MultiTaskRegressor("l21", alpha=0.01, loss=loss, tol=1e-10, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (overflow), no ConvergenceWarning
        return model.fit(Xs, ys, sample_weight=sw, offset=off)


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_objective_with_offset_is_the_documented_one(loss):
    # was off by sum_t mean(y * offset) for Poisson (sum_t mean(offset) for Gamma)
    Xs, ys, off, sw = _problem(loss)
    model = _fit(Xs, ys, off, sw, loss)
    expected = _objective(model, Xs, ys, off, sw, loss)
    assert model.objective_ == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert 0 <= model.dual_gap_ < 1e-9


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
@pytest.mark.parametrize("level", [800.0, -800.0, 1e5])
def test_a_constant_offset_moves_only_the_intercept(loss, level):
    # +800: coef_ off by 0.24, intercepts -699.4, dual_gap_ 3.8, overflow warnings;
    # -800 refused as an overflow; +1e5 coef_ off by 0.66
    Xs, ys, off, sw = _problem(loss)
    ref = _fit(Xs, ys, off, sw, loss)
    moved = [o + level for o in off]
    model = _fit(Xs, ys, moved, sw, loss)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.intercept_, ref.intercept_ - level, rtol=0,
                               atol=1e-8)
    assert 0 <= model.dual_gap_ < 1e-9
    assert model.objective_ == pytest.approx(ref.objective_, rel=1e-9, abs=1e-9)
    assert model.objective_ == pytest.approx(_objective(model, Xs, ys, moved, sw, loss),
                                             rel=1e-9, abs=1e-9)
    pred = model.predict([X[:5] for X in Xs], offset=[o[:5] for o in moved])
    for a, b in zip(pred, ref.predict([X[:5] for X in Xs], offset=[o[:5] for o in off]),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_a_path_and_alpha_max_with_a_far_offset_match_the_near_one():
    Xs, ys, off, sw = _problem("poisson")
    kw = dict(penalty="l21", loss="poisson", sample_weight=sw)
    a_near = rm.alpha_max(Xs, ys, offset=off, **kw)
    a_far = rm.alpha_max(Xs, ys, offset=[o + 800 for o in off], **kw)
    assert a_far == pytest.approx(a_near, rel=1e-9)
    near = rm.regularization_path(Xs, ys, offset=off, alphas=4, tol=1e-10, **kw)
    far = rm.regularization_path(Xs, ys, offset=[o + 800 for o in off], alphas=4,
                                 tol=1e-10, **kw)
    np.testing.assert_allclose(far.coefs, near.coefs, atol=1e-8)
    np.testing.assert_allclose(far.intercepts, near.intercepts - 800, atol=1e-8)


def test_cv_with_a_far_offset_picks_the_same_alpha():
    Xs, ys, off, _ = _problem("poisson", w=(0.5, 0.1, 0, -0.4))
    kw = dict(loss="poisson", alphas=8, eps=1e-2, cv=3, tol=1e-8)
    near = rm.MultiTaskRegressorCV("l21", **kw).fit(Xs, ys, offset=off)
    far = rm.MultiTaskRegressorCV("l21", **kw).fit(Xs, ys, offset=[o + 800 for o in off])
    assert near.alpha_ < near.alphas_[0]  # (a point inside the grid)
    assert far.alpha_ == pytest.approx(near.alpha_, rel=1e-9)  # the same grid point
    np.testing.assert_allclose(far.coef_, near.coef_, atol=1e-7)


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_offsets_exp_cannot_carry_are_refused_by_name(loss):
    Xs, ys, off, sw = _problem(loss)
    spread = [o.copy() for o in off]
    spread[1][0] += 1000.0  # one task's offsets span more than 600
    with pytest.raises(ValueError, match=r"offset reaches \|.*exp\(offset\) of the "
                                         rf"{loss} loss.*span less than 600"):
        rm.MultiTaskRegressor("l21", alpha=0.01, loss=loss).fit(Xs, ys, offset=spread)
    with pytest.raises(ValueError, match=r"offset reaches \|80\d\.\d*\|.*fit_intercept=True"):
        rm.MultiTaskRegressor("l21", alpha=0.01, loss=loss, fit_intercept=False).fit(
            Xs, ys, offset=[o + 800 for o in off])


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_the_gap_brackets_the_optimum_with_the_offset(loss):
    """The gap of the folded problem is the gap of the documented one (a constant shifts
    both bounds): objective_ - dual_gap_ <= the optimum (CLARABEL) <= objective_."""
    cp = pytest.importorskip("cvxpy")
    Xs, ys, off, sw = _problem(loss)
    moved = [o + 800 for o in off]
    model = _fit(Xs, ys, moved, sw, loss)
    W = cp.Variable((4, 2))
    b = cp.Variable(2)
    terms = []
    for t, (X, y, o, s) in enumerate(zip(Xs, ys, off, sw, strict=True)):
        f = X @ W[:, t] + b[t] + o  # (b here is the intercept of the offsets without +800)
        rows = cp.exp(f) - cp.multiply(y, f) if loss == "poisson" else \
            cp.multiply(y, cp.exp(-f)) + f
        terms.append(cp.sum(cp.multiply(s, rows)) / np.sum(s))
    prob = cp.Problem(cp.Minimize(sum(terms) + 0.01 * cp.sum(cp.norm(W, 2, axis=1))))
    prob.solve(solver="CLARABEL")
    optimum = prob.value  # (f is the same with o and b as with o + 800 and b - 800)
    assert model.objective_ - model.dual_gap_ <= optimum + 1e-7
    assert optimum <= model.objective_ + 1e-7
    assert model.objective_ - optimum < 1e-7
    # (CLARABEL's point is accurate to ~1e-8 in the objective, so ~1e-4 in W)
    np.testing.assert_allclose(model.coef_, W.value.T, atol=1e-4)
    np.testing.assert_allclose(model.intercept_, b.value - 800, atol=1e-4)
