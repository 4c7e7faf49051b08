"""The fast paths of block coordinate descent: gap-safe screening, working sets, Anderson
extrapolation, the Gram form on shared designs, and proximal Newton for the logistic loss.

They must change how the optimum is reached, never where it is. Every test compares numbers:
a screened feature against the tightly solved optimum, each combination of options against the
plain solver (all options off), scikit-learn's MultiTaskLasso, warm against cold starts, the
extrapolation against the fixed point of a linear map, the moments against NumPy.

Tolerances. ``tol`` is relative to P0, the objective at W = 0 (design.rst section 4), and the
duality gap bounds the objective error only: the coefficient error is of the order of
sqrt(gap / strong convexity) (at tol=1e-10, logistic fits with l1_ratio=0.7 differed by 6e-6
relative, too close to 1e-5), so coefficients are compared after fits at tol=1e-12, to rtol 1e-5
with an atol of 1e-5 times max |W| (the largest deviation seen is then 1e-6).
"""

from __future__ import annotations

import importlib
import itertools
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import make_lists, make_shared, subdiff_violation
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskLasso

import regmtl as rm
from regmtl.inputs import as_task_data
from regmtl.problem import make_data, make_datafit
from regmtl.solvers import reference, solve
from regmtl.solvers.certificates import certify as gaps
from regmtl.solvers.certificates.screening import safe_radius, screen
from regmtl.solvers.parts.anderson import Anderson
from regmtl.solvers.parts.moments import feature_moments

# the module (regmtl.solvers.bcd is the name of the function the package exports)
bcd_module = importlib.import_module("regmtl.solvers.methods.bcd")

LOSSES = ["squared", "logistic"]
# name -> (penalty, kind of group for subdiff_violation, l1_ratio)
PENALTIES = {
    "L21": (rm.L21(), "row", 1.0),
    "L1": (rm.L1(), "entry", 1.0),
    "L21(0.7)": (rm.L21(0.7), "row", 0.7),
    "ElasticNet(0.7)": (rm.ElasticNet(0.7), "entry", 0.7),
}
TIGHT_TOL = 1e-12  # fits whose coefficients are compared (see the module docstring)
ALL_OFF = dict(working_set=False, screening=False, anderson=0, gram=False)


def model(loss, penalty, alpha, **kw):
    cls = rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier
    return cls(penalty=penalty, alpha=alpha, **kw)


def with_zeros(X, seed, frac=0.5):
    """X with a fraction of its entries set to exactly zero (the sparse inputs hold them)."""
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < frac] = 0.0
    return X


def assert_coef_close(W, W_ref, rtol=1e-5):
    atol = rtol * max(np.abs(W_ref).max(), 1e-300)
    np.testing.assert_allclose(W, W_ref, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- problems
def problem(form, loss="squared", seed=0):
    """``(X, Y, sample_weight)`` in the input form of the estimators.

    tall:     shared dense design, n = 120 > 2 p (the full Gram path)
    wide:     shared dense design, n = 30 < p = 80 (the Gram form on working sets)
    lists:    per-task dense designs, n_t = 15, 40, 70
    csc:      shared CSC design with exact zeros, n = 2 p (the full Gram path)
    csr_lists: per-task CSR designs with exact zeros and sample weights
    weights:  shared dense design with sample weights (zeros among them), n = 2 p (full Gram)
    missing:  shared dense design with NaN labels
    """
    rng = np.random.default_rng(100 + seed)
    if form == "tall":
        X, Y = make_shared(n=120, p=20, T=3, loss=loss, seed=seed)
        return X, Y, None
    if form == "wide":
        X, Y = make_shared(n=30, p=80, T=3, loss=loss, seed=seed)
        return X, Y, None
    if form in ("lists", "csr_lists"):
        Xs, ys = make_lists(n_per_task=(15, 40, 70), p=25, loss=loss, seed=seed)
        if form == "lists":
            return Xs, ys, None
        out, sws = [], []
        for t, X in enumerate(Xs):
            X = with_zeros(X, seed + t)
            if loss == "logistic":
                X[-1] = X[0]  # keep the duplicated row with the other label (not separable)
            out.append(sp.csr_matrix(X))
            w = rng.uniform(0.2, 3.0, size=X.shape[0])
            w[rng.random(X.shape[0]) < 0.15] = 0.0
            w[:2] = w[-1] = 1.0  # both classes weighted
            sws.append(w)
        return out, ys, sws
    X, Y = make_shared(n=60, p=30, T=3, loss=loss, seed=seed)
    if form == "csc":
        return sp.csc_matrix(with_zeros(X, seed)), Y, None
    if form == "weights":
        w = rng.uniform(0.2, 3.0, size=60)
        w[rng.random(60) < 0.15] = 0.0
        w[:2] = 1.0
        return X, Y, w
    if form == "missing":
        Y = Y.astype(float)
        for t, k in enumerate((12, 0, 5)):
            Y[rng.choice(np.arange(2, 60), k, replace=False), t] = np.nan
        return X, Y, None
    raise ValueError(form)


def gram_applies(form):
    return form in ("tall", "wide", "csc", "weights")


#: the forms whose Gram sums are formed once over all rows (n >= 2p): shared designs, dense or
#: sparse, their sample weights the same in every task
FULL_GRAM_FORMS = ("tall", "csc", "weights")


def task_lists(X, Y, sw):
    """The problem as per-task dense lists ``(Xs, ys, sws)``, missing labels dropped."""
    if isinstance(X, list):
        Xs = [x.toarray() if sp.issparse(x) else np.asarray(x) for x in X]
        ys = [np.asarray(y, dtype=float) for y in Y]
        sws = [np.ones(len(y)) for y in ys] if sw is None else [np.asarray(w) for w in sw]
        return Xs, ys, sws
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    w = np.ones(X.shape[0]) if sw is None else np.asarray(sw)
    Xs, ys, sws = [], [], []
    for t in range(Y.shape[1]):
        keep = ~np.isnan(Y[:, t])
        Xs.append(X[keep])
        ys.append(Y[keep, t])
        sws.append(w[keep])
    return Xs, ys, sws


def data_gradient(loss, Xs, ys, sws, W, b):
    """Gradient of the data term ``sum_t sum_i s_ti l(y_ti, f_ti) / sum_i s_ti`` in W and b,
    written from design.rst section 4 (logistic labels: the larger one is +1)."""
    G, gb = np.zeros_like(W), np.zeros(len(Xs))
    for t, (X, y, s) in enumerate(zip(Xs, ys, sws, strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            u = y - f
        else:
            ypm = np.where(y == np.max(y), 1.0, -1.0)
            u = ypm * expit(-ypm * f)
        G[:, t] = -(X.T @ (s * u)) / s.sum()
        gb[t] = -(s * u).sum() / s.sum()
    return G, gb


def primal_value(loss, Xs, ys, sws, W, b, kind, rho, alpha):
    """The objective of design.rst section 4, from per-task lists."""
    val = 0.0
    for t, (X, y, s) in enumerate(zip(Xs, ys, sws, strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            losses = 0.5 * (y - f) ** 2
        else:
            losses = np.logaddexp(0.0, -np.where(y == np.max(y), 1.0, -1.0) * f)
        val += s @ losses / s.sum()
    norms = np.abs(W).ravel() if kind == "entry" else np.linalg.norm(W, axis=1)
    return val + alpha * (rho * norms.sum() + 0.5 * (1.0 - rho) * np.sum(W * W))


def check_certificate(m, loss, pen, alpha, X, Y, sw, tol, fit_intercept=True):
    """The fit's gap is within tol of P0 and its objective is right; the KKT conditions hold
    (independent math). Returns ``(objective, objective - gap)``: the gap claims that the
    optimum lies between the two, which the caller checks across fits."""
    _, kind, rho = PENALTIES[pen]
    data = make_data(X, Y, sample_weight=sw, loss=loss)
    P0 = reference(data, make_datafit(loss), fit_intercept).P0
    assert 0.0 <= m.dual_gap_ <= tol * P0
    W, b = m.coef_.T, np.asarray(m.intercept_, dtype=float)
    Xs, ys, sws = task_lists(X, Y, sw)
    P = primal_value(loss, Xs, ys, sws, W, b, kind, rho, alpha)
    assert m.objective_ == pytest.approx(P, rel=1e-12)
    G, gb = data_gradient(loss, Xs, ys, sws, W, b)
    # the gradient error of an L-smooth data term at a gap g is at most sqrt(2 L g): the KKT
    # violation of these fits stays below that with the largest block curvature as L (seen:
    # 0.1 of it at most with a ridge part, 1e-4 of it without)
    curv = max((s @ x**2 / s.sum()).max() for x, s in zip(Xs, sws, strict=True))
    curv *= 0.25 if loss == "logistic" else 1.0
    assert subdiff_violation(kind, rho, W, -G, alpha) <= np.sqrt(2.0 * curv * tol * P0)
    if fit_intercept:
        assert np.abs(gb).max() <= 1e-12
    return P, P - m.dual_gap_


def assert_bounds_consistent(bounds, P0):
    """Every fit's lower bound (objective - gap) is below every fit's objective."""
    objectives, lowers = zip(*bounds, strict=True)
    assert max(lowers) <= min(objectives) + 1e-14 * P0


@pytest.fixture
def paths(monkeypatch):
    """Counts which machinery block coordinate descent builds: the full Gram problem, inner
    solves in Gram form (on a working set, also inside the full Gram problem), or epochs over
    the data."""
    count = {"full_gram": 0, "ws_gram": 0, "data": 0}

    def counting(cls, key):
        class Counted(cls):
            def __init__(self, *args, **kwargs):
                count[key] += 1
                super().__init__(*args, **kwargs)
        return Counted

    monkeypatch.setattr(bcd_module, "_GramProblem", counting(bcd_module._GramProblem,
                                                            "full_gram"))
    monkeypatch.setattr(bcd_module, "GramInner", counting(bcd_module.GramInner, "ws_gram"))
    monkeypatch.setattr(bcd_module, "DataInner", counting(bcd_module.DataInner, "data"))
    return count


# --------------------------------------------------------------------------- 1. screening
def screening_problem(loss, form, seed):
    """A TaskData for the screening test: more features (30) than the problem can support."""
    rng = np.random.default_rng(seed)
    if form in ("shared", "sparse_missing"):
        X, Y = make_shared(n=40, p=30, T=3, loss=loss, seed=seed)
        sw = None
        if form == "sparse_missing":
            X = sp.csc_matrix(with_zeros(X, seed))
            Y = Y.astype(float)
            Y[rng.choice(np.arange(2, 40), 8, replace=False), 0] = np.nan
            Y[rng.choice(np.arange(2, 40), 4, replace=False), 2] = np.nan
    else:
        X, Y = make_lists(n_per_task=(15, 30, 45), p=30, loss=loss, seed=seed)
        sw = None
        if form == "weighted_csr":
            X = [with_zeros(x, seed + t) for t, x in enumerate(X)]
            if loss == "logistic":
                for x in X:
                    x[-1] = x[0]
            X = [sp.csr_matrix(x) for x in X]
            sw = [rng.uniform(0.2, 3.0, size=len(y)) for y in Y]
    return make_data(X, Y, sample_weight=sw, loss=loss)


def point_with_intercepts(data, datafit, W, b, fit_intercept):
    """Scores at W with the intercepts minimized (b updated in place)."""
    if not fit_intercept:
        b[:] = 0.0
        return data.linear(W, b)
    S = datafit.state(data.y, data.linear(W, b))
    gaps.fit_intercepts(data, datafit, S, b)
    return datafit.scores(data.y, S)


def tightness(G, L, radius, l1, group, rows):
    """``(l1 - |G_j|) / (radius sqrt(L_j))`` on ``rows``, worst task for entrywise penalties:
    the rule discards feature j exactly when this exceeds 1 (so a rule with the radius scaled
    by m < 1 would discard it when it exceeds m)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if group:
            ratio = (l1 - np.linalg.norm(G[rows], axis=1)) / (radius * np.sqrt(L[rows].max(1)))
        else:
            ratio = ((l1 - np.abs(G[rows])) / (radius * np.sqrt(L[rows]))).min(axis=1)
    return np.nan_to_num(ratio, nan=-np.inf, posinf=-np.inf)


@pytest.mark.parametrize("pen", list(PENALTIES))
@pytest.mark.parametrize("form", ["shared", "lists", "sparse_missing", "weighted_csr"])
@pytest.mark.parametrize("loss", LOSSES)
def test_gap_safe_screening_never_discards_a_feature_of_the_optimum(loss, form, pen):
    penalty, _, rho = PENALTIES[pen]
    datafit = make_datafit(loss)
    group = penalty.bcd_params(1.0)[2]
    tol = TIGHT_TOL
    zero_rows = screened_at_optimum = screened_early = 0
    max_gap = tightest = 0.0
    for seed in range(5):
        fit_intercept = seed % 2 == 0
        data = screening_problem(loss, form, seed)
        ref = reference(data, datafit, fit_intercept)
        L = feature_moments(data, data.c, fit_intercept)[1]
        amax = penalty.alpha_max(ref.G0)
        for frac in (1.1, 2, 5, 20):
            alpha = amax / frac
            l1 = alpha * rho
            opt = solve(data, datafit, penalty, alpha, solver="bcd", tol=tol, max_iter=100_000,
                        fit_intercept=fit_intercept, ref=ref, options=dict(screening=False))
            assert opt.converged
            norms = np.linalg.norm(opt.W, axis=1)
            support = np.flatnonzero(norms > 1e-8 * norms.max(initial=0.0))
            assert len(support) > 0
            # intermediate points: early iterates of the solver, and the optimum perturbed
            points = []
            for max_iter in (1, 2, 4, 8):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    it = solve(data, datafit, penalty, alpha, solver="bcd", tol=1e-14,
                               max_iter=max_iter, fit_intercept=fit_intercept, ref=ref)
                points.append(("iterate", it.W.copy(), it.b.copy()))
            rng = np.random.default_rng(seed)
            scale = np.abs(opt.W).max()
            for eps in (1e-1, 1e-3, 1e-6):
                Wp = opt.W + eps * scale * rng.standard_normal(opt.W.shape)
                points.append(("perturbed", Wp, opt.b.copy()))
            # a support row pushed away from zero: theta - theta* then lies along that
            # feature's column and its |G_j| drops by about kappa * l1, close to what the
            # radius allows (the rule is nearly tight there: a rule with half the radius
            # would wrongly discard it)
            for j in support[:4]:
                for kappa in (0.25, 0.5, 0.9):
                    Wp = opt.W.copy()
                    Wp[j] *= 1.0 + kappa * l1 / (L[j].max() * np.linalg.norm(Wp[j]))
                    points.append(("pushed", Wp, opt.b.copy()))
            points.append(("zero", np.zeros_like(opt.W), ref.b0.copy()))
            points.append(("optimum", opt.W.copy(), opt.b.copy()))
            for what, W, b in points:
                f = point_with_intercepts(data, datafit, W, b, fit_intercept)
                gap, _, _, s, G = gaps.duality_gap_terms(data, datafit, penalty, alpha,
                                                                 W, f, fit_intercept)
                radius = safe_radius(gap, datafit.dual_strong_concavity)
                out = screen(s * G, L, radius, l1, group)
                wrong = support[out[support]]
                assert len(wrong) == 0, (
                    f"seed {seed}, alpha_max/{frac}, {what} point (relative gap "
                    f"{gap / ref.P0:.2e}): features {wrong} screened but nonzero at the optimum")
                tightest = max(tightest, tightness(s * G, L, radius, l1, group, support).max())
                if what == "optimum":
                    max_gap = max(max_gap, gap / ref.P0)
                    screened_at_optimum += int(out.sum())
                    zero_rows += data.n_features - len(support)
                elif what == "iterate":
                    screened_early += int(out.sum())
    # not vacuous: at a small gap (that of the residual's dual point, which may exceed the
    # solver's extrapolated one) the rule finds (nearly) every zero row; it already discards
    # features at the early iterates; and some points test support features at more than
    # half the radius (so a radius too small by 2x would fail here)
    assert max_gap <= 1e-8
    assert zero_rows > 50
    assert screened_at_optimum >= 0.9 * zero_rows
    assert screened_early > 0
    assert 0.5 < tightest <= 1.0


def test_solver_screening_discards_features_and_keeps_the_solution():
    # the solver's own screening on a wide problem: same solution with and without, and the
    # screened features are exactly zero
    X, Y = make_shared(n=40, p=300, T=3, seed=3)
    alpha = rm.alpha_max(X, Y) / 4
    kw = dict(tol=1e-12, max_iter=100_000)
    on = rm.MultiTaskRegressor("l21", alpha, **kw).fit(X, Y)
    off = rm.MultiTaskRegressor("l21", alpha, solver_options=dict(screening=False),
                                **kw).fit(X, Y)
    assert_coef_close(on.coef_, off.coef_)
    assert np.count_nonzero(np.any(on.coef_ != 0, axis=0)) < 40
    # screening with the gap of the solution discards most of the 300 features
    data = make_data(X, Y)
    datafit = make_datafit("squared")
    W = on.coef_.T.copy()
    f = data.linear(W, on.intercept_)
    gap, _, _, s, G = gaps.duality_gap_terms(data, datafit, rm.L21(), alpha, W, f, True)
    L = feature_moments(data, data.c, True)[1]
    out = screen(s * G, L, safe_radius(gap, 1.0), alpha, True)
    assert out.sum() >= 250
    assert np.all(on.coef_[:, out] == 0.0)


# --------------------------------------------------------------------------- 2. options
def option_grid(form, loss):
    grams = [False, "auto", True] if gram_applies(form) and loss == "squared" else [False,
                                                                                     "auto"]
    for ws, scr, anderson, gram in itertools.product([True, False], [True, False], [0, 5],
                                                     grams):
        # a small first working set, so that the wide problem's stay below n (Gram form)
        yield dict(working_set=ws, screening=scr, anderson=anderson, gram=gram, p0=10)


OPTION_CASES = [("squared", form) for form in ("tall", "wide", "lists", "csc", "csr_lists",
                                                "weights", "missing")]
OPTION_CASES += [("logistic", form) for form in ("tall", "lists", "csr_lists", "missing")]


@pytest.mark.parametrize("pen", ["L21", "L1", "L21(0.7)"])
@pytest.mark.parametrize(("loss", "form"), OPTION_CASES, ids=[f"{a}-{b}" for a, b in
                                                              OPTION_CASES])
def test_options_change_the_path_not_the_solution(loss, form, pen, paths):
    X, Y, sw = problem(form, loss, seed=1)
    penalty = PENALTIES[pen][0]
    alpha = rm.alpha_max(X, Y, penalty=penalty, loss=loss, sample_weight=sw) / 10
    tol = TIGHT_TOL
    kw = dict(tol=tol, max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ref = model(loss, penalty, alpha, solver_options=ALL_OFF, **kw).fit(X, Y,
                                                                           sample_weight=sw)
        assert np.any(ref.coef_ != 0.0) and np.any(ref.coef_ == 0.0)
        bounds = [check_certificate(ref, loss, pen, alpha, X, Y, sw, tol)]
        for opts in option_grid(form, loss):
            before = dict(paths)
            m = model(loss, penalty, alpha, solver_options=opts, **kw).fit(X, Y,
                                                                           sample_weight=sw)
            used = {k: paths[k] - before[k] for k in paths}
            assert_coef_close(m.coef_, ref.coef_)
            np.testing.assert_allclose(m.intercept_, ref.intercept_, rtol=1e-5,
                                       atol=1e-5 * np.abs(ref.coef_).max())
            bounds.append(check_certificate(m, loss, pen, alpha, X, Y, sw, tol))
            # the options take the path they name
            if loss == "logistic" or opts["gram"] is False or not gram_applies(form):
                assert used["full_gram"] == used["ws_gram"] == 0, opts
            elif form in FULL_GRAM_FORMS or opts["gram"] is True:  # True forces the full Gram
                assert used["full_gram"] == 1, opts
            elif opts["working_set"]:  # wide, Gram form on the working sets (smaller than n)
                assert used["full_gram"] == 0 and used["ws_gram"] > 0, opts
    data = make_data(X, Y, sample_weight=sw, loss=loss)
    assert_bounds_consistent(bounds, reference(data, make_datafit(loss), True).P0)


# --------------------------------------------------------------------------- 3. scikit-learn
@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
@pytest.mark.parametrize("shape", ["n>>p", "p>>n"])
def test_matches_sklearn_multitask_lasso(shape, fit_intercept, paths):
    if shape == "n>>p":
        X, Y = make_shared(n=400, p=12, T=4, seed=5)
        frac = 20
    else:
        X, Y = make_shared(n=30, p=150, T=3, seed=5)
        frac = 4
    alpha = rm.alpha_max(X, Y, fit_intercept=fit_intercept) / frac
    # scikit-learn stops on its duality gap relative to ||Y||_F^2 (its objective times n):
    # 1e-13 on that scale is far below what rtol 1e-5 needs
    sk = MultiTaskLasso(alpha=alpha, fit_intercept=fit_intercept, tol=1e-13,
                        max_iter=500_000).fit(X, Y)
    # tol=1e-12 keeps the n >> p fit on the Gram path all along (below about 3e-13 the Gram
    # certificate, which adds a bound on its own rounding, cannot certify and the solve ends
    # over the data)
    m = rm.MultiTaskRegressor("l21", alpha, fit_intercept=fit_intercept, tol=1e-12,
                              max_iter=100_000).fit(X, Y)
    assert np.any(sk.coef_ == 0.0) and np.any(sk.coef_ != 0.0)
    assert_coef_close(m.coef_, sk.coef_)
    np.testing.assert_allclose(m.intercept_, np.broadcast_to(sk.intercept_, (Y.shape[1],)),
                               rtol=1e-5, atol=1e-5 * np.abs(sk.coef_).max())
    if shape == "n>>p":
        assert paths["full_gram"] == 1 and paths["data"] == 0
    else:
        assert paths["full_gram"] == 0 and paths["ws_gram"] > 0


# --------------------------------------------------------------------------- 4. bad options
GRAM_TRUE_REFUSED = {
    "lists": lambda: (*make_lists(seed=0)[:2], None),
    "missing": lambda: problem("missing")[:2] + (None,),
}


@pytest.mark.parametrize("case", list(GRAM_TRUE_REFUSED))
def test_gram_true_refused_where_it_does_not_apply(case):
    X, Y, sw = GRAM_TRUE_REFUSED[case]()
    alpha = rm.alpha_max(X, Y, sample_weight=sw) / 10
    m = rm.MultiTaskRegressor("l21", alpha, solver_options=dict(gram=True))
    with pytest.raises(ValueError, match=r"'gram'\]=True needs the squared loss on a shared"):
        m.fit(X, Y, sample_weight=sw)
    # gram="auto" on the same problem is fine and gives the plain solution
    auto = rm.MultiTaskRegressor("l21", alpha, tol=1e-12, max_iter=100_000,
                                 solver_options=dict(gram="auto")).fit(X, Y, sample_weight=sw)
    plain = rm.MultiTaskRegressor("l21", alpha, tol=1e-12, max_iter=100_000,
                                  solver_options=ALL_OFF).fit(X, Y, sample_weight=sw)
    assert_coef_close(auto.coef_, plain.coef_)


def test_unknown_and_invalid_solver_options_are_refused():
    X, Y = make_shared(seed=0)
    alpha = rm.alpha_max(X, Y) / 10
    with pytest.raises(ValueError, match=r"unknown keys \['screen'\]"):
        rm.MultiTaskRegressor("l21", alpha, solver_options=dict(screen=True)).fit(X, Y)
    with pytest.raises(ValueError, match=r"\['anderson_k', 'ws'\]"):
        rm.MultiTaskRegressor("l21", alpha,
                              solver_options=dict(ws=True, anderson_k=3)).fit(X, Y)
    with pytest.raises(ValueError, match=r"'gram'\]='bogus' must be True, False or 'auto'"):
        rm.MultiTaskRegressor("l21", alpha, solver_options=dict(gram="bogus")).fit(X, Y)
    # the same through solve()
    data, datafit = make_data(X, Y), make_datafit("squared")
    with pytest.raises(ValueError, match="unknown keys"):
        solve(data, datafit, rm.L21(), alpha, options=dict(gram=True, tol=1e-3))
    with pytest.raises(ValueError, match=r"'gram'\]="):
        solve(data, datafit, rm.L21(), alpha, options=dict(gram=1.5))
    with pytest.raises(ValueError, match=r"'p0'\]=0 must be an integer >= 1"):
        solve(data, datafit, rm.L21(), alpha, options=dict(p0=0))
    with pytest.raises(ValueError, match=r"'anderson'\]=-1 must be an integer >= 0"):
        solve(data, datafit, rm.L21(), alpha, options=dict(anderson=-1))
    with pytest.raises(ValueError, match=r"'screening'\]='yes' must be True or False"):
        solve(data, datafit, rm.L21(), alpha, options=dict(screening="yes"))
    # the documented keys are the ones accepted
    assert set(bcd_module.BCD_OPTIONS) == {"working_set", "screening", "anderson", "gram", "p0"}


def test_gram_option_validated_whatever_alpha_and_loss():
    Xs, ys = make_lists(seed=0)
    alpha = rm.alpha_max(Xs, ys)
    for a in (alpha, 0.0):
        with pytest.raises(ValueError, match="gram"):
            rm.MultiTaskRegressor("l21", a, solver_options=dict(gram="bogus")).fit(Xs, ys)
        with pytest.raises(ValueError, match="gram"):
            rm.MultiTaskRegressor("l21", a, solver_options=dict(gram=True)).fit(Xs, ys)
    X, Y = make_shared(seed=0)
    Yb = (Y > np.median(Y, axis=0)).astype(int)
    with pytest.raises(ValueError, match="squared loss"):
        rm.MultiTaskClassifier("l21", 0.01, solver_options=dict(gram=True)).fit(X, Yb)


# --------------------------------------------------------------------------- 5. warnings
@pytest.mark.parametrize(("path", "max_iter"), [("working_set", 2), ("gram", 1),
                                                ("working_set_logistic", 1)])
def test_non_converged_fit_warns_with_its_gap(path, max_iter, paths):
    loss = "logistic" if path.endswith("logistic") else "squared"
    if path == "gram":
        X, Y, _ = problem("tall")
        opts = dict(gram=True)
    else:
        X, Y, _ = problem("lists", loss, seed=2)
        opts = None
    alpha = rm.alpha_max(X, Y, loss=loss) / 20
    m = model(loss, "l21", alpha, tol=1e-14, max_iter=max_iter, solver_options=opts)
    with pytest.warns(ConvergenceWarning) as record:
        m.fit(X, Y)
    msgs = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    assert len(msgs) == 1
    found = re.search(r"relative duality gap of ([0-9.]+e[+-]\d+) > tol=1e-14", msgs[0])
    assert found, msgs[0]
    assert f"max_iter={max_iter}" in msgs[0]
    P0 = reference(make_data(X, Y, loss=loss), make_datafit(loss), True).P0
    reported = float(found.group(1))
    assert reported == pytest.approx(m.dual_gap_ / P0, rel=1e-3)
    assert reported > 1e-14
    assert 1 <= m.n_iter_ <= max_iter
    if path == "gram":
        assert paths["full_gram"] == 1 and paths["data"] == 0
    elif loss == "squared":
        assert paths["data"] > 0 and paths["full_gram"] == 0
    # the reported gap is a true bound on the suboptimality
    best = model(loss, "l21", alpha, tol=1e-13, max_iter=100_000).fit(X, Y)
    assert 0.0 <= m.objective_ - best.objective_ <= m.dual_gap_ * (1 + 1e-9)


# --------------------------------------------------------------------------- 6. warm starts
@pytest.mark.parametrize(("loss", "form"), [("squared", "tall"), ("squared", "wide"),
                                            ("squared", "missing"), ("logistic", "lists")])
def test_warm_start_along_a_path_matches_cold_starts(loss, form):
    X, Y, sw = problem(form, loss, seed=4)
    amax = rm.alpha_max(X, Y, penalty="l21", loss=loss, sample_weight=sw)
    alphas = amax * np.geomspace(0.5, 0.01, 7)
    tol = TIGHT_TOL
    warm = model(loss, "l21", alphas[0], warm_start=True, tol=tol, max_iter=100_000)
    warm_iters = cold_iters = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for alpha in alphas:
            warm.set_params(alpha=alpha).fit(X, Y, sample_weight=sw)
            cold = model(loss, "l21", alpha, tol=tol, max_iter=100_000).fit(X, Y,
                                                                           sample_weight=sw)
            assert_coef_close(warm.coef_, cold.coef_)
            check_certificate(warm, loss, "L21", alpha, X, Y, sw, tol)
            warm_iters += warm.n_iter_
            cold_iters += cold.n_iter_
    assert warm_iters < cold_iters


@pytest.mark.parametrize("form", ["tall", "wide"])
def test_solve_warm_started_on_one_taskdata_matches_cold_starts(form):
    # one TaskData along the path: the Gram statistics are computed once and reused
    X, Y, _ = problem(form, seed=6)
    data, datafit, penalty = make_data(X, Y), make_datafit("squared"), rm.L21(0.9)
    ref = reference(data, datafit, True)
    amax = penalty.alpha_max(ref.G0)
    W = b = None
    for alpha in amax * np.geomspace(0.5, 0.01, 7):
        res = solve(data, datafit, penalty, alpha, W0=W, b0=b, tol=1e-12, max_iter=100_000,
                    ref=ref)
        fresh = make_data(X, Y)  # no cached statistics
        cold = solve(fresh, datafit, penalty, alpha, tol=1e-13, max_iter=100_000,
                     options=ALL_OFF)
        assert res.converged and cold.converged
        assert_coef_close(res.W, cold.W)
        np.testing.assert_allclose(res.b, cold.b, rtol=1e-5, atol=1e-5 * np.abs(cold.W).max())
        W, b = res.W.copy(), res.b.copy()
    assert (("gram", True) in data._cache) == (form == "tall")


# --------------------------------------------------------------------------- 7. Anderson
def linear_map(d, seed, radius=0.95):
    """``M`` (spectral radius ``radius``, not symmetric) and ``v``; the fixed point of
    ``x <- M x + v`` is ``(I - M)^{-1} v``."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    lam = radius * np.cos(np.pi * np.arange(d) / max(d - 1, 1)) if d > 1 else np.array([radius])
    S = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
    M = S @ Q @ np.diag(lam) @ Q.T @ np.linalg.inv(S)
    assert max(abs(np.linalg.eigvals(M))) == pytest.approx(radius, rel=1e-10)
    v = rng.standard_normal(d)
    return M, v, np.linalg.solve(np.eye(d) - M, v)


@pytest.mark.parametrize("K", [3, 5, 8])
def test_anderson_waits_for_k_plus_one_iterates_then_extrapolates(K):
    for d in range(1, K):
        M, v, xstar = linear_map(d, seed=10 * K + d)
        x = xstar + np.random.default_rng(d).standard_normal(d)
        acc = Anderson(K)
        for k in range(K + 1):
            out = acc.push(x)
            if k < K:
                assert out is None  # fewer than K + 1 iterates
            last, x = x, M @ x + v
        assert out is not None and out.shape == (d,)
        # the K differences of K + 1 iterates of a linear map of dimension d < K are
        # dependent, so the minimal combination is the fixed point (exact, see below)
        err_last = np.abs(last - xstar).max()
        err = np.abs(out - xstar).max()
        assert err <= 1e-7 * err_last, (d, err, err_last)
        # the history starts over: K more pushes give nothing
        for _ in range(K):
            assert acc.push(x) is None
            x = M @ x + v
        assert acc.push(x) is not None
    # iterates of any shape come back flattened, as floats
    acc = Anderson(2)
    for x in (np.ones((2, 2), dtype=int), np.full((2, 2), 0.5)):
        assert acc.push(x) is None
    np.testing.assert_allclose(acc.push(np.full((2, 2), 0.25)), np.zeros(4), atol=1e-8)
    # no progress (zero differences): no proposal; reset() drops the history
    acc = Anderson(2)
    assert acc.push(np.ones(3)) is None and acc.push(np.ones(3)) is None
    assert acc.push(np.ones(3)) is None
    acc.push(np.zeros(3))
    acc.reset()
    assert acc.push(np.ones(3)) is None and acc.push(np.ones(3)) is None


def test_anderson_is_exact_on_linear_maps_of_low_dimension():
    for K in (3, 5, 8):
        for d in range(1, K):
            M, v, xstar = linear_map(d, seed=10 * K + d)
            x = xstar + np.random.default_rng(d).standard_normal(d)
            acc = Anderson(K)
            for _ in range(K + 1):
                out = acc.push(x)
                x = M @ x + v
            np.testing.assert_allclose(out, xstar, rtol=0, atol=1e-8)


# --------------------------------------------------------------------------- 8. moments
def direct_moments(data, c, center, features):
    """xm and L of feature_moments from per-task NumPy arrays."""
    X = data.X.toarray() if sp.issparse(data.X) else np.asarray(data.X)
    p, T = data.n_features, data.n_tasks
    xm, L = np.zeros((p, T)), np.zeros((p, T))
    for t in range(T):
        a, e = data.indptr[t], data.indptr[t + 1]
        Xt = X if data.shared else X[a:e]
        ct = c[a:e]
        m = (ct @ Xt) / ct.sum() if center else np.zeros(p)
        xm[:, t] = m
        L[:, t] = ct @ (Xt - m) ** 2
    keep = np.zeros(p, dtype=bool)
    keep[features] = True
    xm[~keep] = 0.0
    L[~keep] = 0.0
    return xm, L


MOMENT_CASES = {
    "dense_shared": lambda: make_data(*make_shared(n=50, p=12, seed=7)),
    "sparse_shared": lambda: make_data(sp.csc_matrix(with_zeros(make_shared(n=50, p=12,
                                                                           seed=7)[0], 7)),
                                       make_shared(n=50, p=12, seed=7)[1]),
    "dense_stacked": lambda: make_data(*make_lists(seed=7)),
    "sparse_stacked": lambda: make_data([sp.csr_matrix(with_zeros(x, 7))
                                         for x in make_lists(seed=7)[0]], make_lists(seed=7)[1]),
    "dense_shared_weights": lambda: make_data(*problem("weights", seed=7)[:2],
                                              sample_weight=problem("weights", seed=7)[2]),
    "sparse_stacked_weights": lambda: make_data(*problem("csr_lists", seed=7)[:2],
                                                sample_weight=problem("csr_lists", seed=7)[2]),
    "dense_shared_missing": lambda: make_data(*problem("missing", seed=7)[:2]),
    "long_form": lambda: as_task_data(np.vstack(make_lists(seed=7)[0]),
                                      np.concatenate(make_lists(seed=7)[1]),
                                      np.repeat([0, 1, 2], (15, 40, 70)),
                                      sample_weight=np.linspace(0.1, 2.0, 125)),
}


@pytest.mark.parametrize("center", [True, False], ids=["centered", "uncentered"])
@pytest.mark.parametrize("case", list(MOMENT_CASES))
def test_feature_moments_match_numpy(case, center):
    data = MOMENT_CASES[case]()
    p = data.n_features
    rng = np.random.default_rng(0)
    subset = np.sort(rng.choice(p, p // 2, replace=False))
    # data.c (the objective's weights) and arbitrary positive weights (Newton's h)
    h = data.c * rng.uniform(0.1, 2.0, size=data.n_obs)
    for c in (data.c, h):
        for features in (None, subset):
            xm, L = feature_moments(data, c, center, features)
            exp_xm, exp_L = direct_moments(data, c, center,
                                           np.arange(p) if features is None else features)
            np.testing.assert_allclose(xm, exp_xm, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(L, exp_L, rtol=1e-12, atol=1e-14 * exp_L.max())
    # the one-pass path for row weights constant within each task (shared dense design)
    if data.shared and not sp.issparse(data.X) and data.sample_weight is None \
            and data.observed is None:
        for features in (None, subset):
            xm, L = feature_moments(data, data.c, center, features, uniform=True)
            exp_xm, exp_L = direct_moments(data, data.c, center,
                                           np.arange(p) if features is None else features)
            np.testing.assert_allclose(xm, exp_xm, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(L, exp_L, rtol=1e-12, atol=1e-14 * exp_L.max())


# --------------------------------------------------------------------------- per-task Grams
@pytest.mark.parametrize("pen", ["L1", "L21", "ElasticNet(0.7)"])
@pytest.mark.parametrize("weighted", [False, True])
def test_per_task_gram_form_matches_the_data_and_sklearn(pen, weighted, monkeypatch):
    """Tasks with at least twice as many rows as features iterate on one Gram per task, no
    pass over the rows: the same solution as the epochs over the data, certified, and for L1
    scikit-learn's Lasso task by task."""
    from sklearn.linear_model import Lasso

    used = {"task_gram": 0}

    class Counted(bcd_module._TaskGramProblem):
        def __init__(self, *args, **kwargs):
            used["task_gram"] += 1
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(bcd_module, "_TaskGramProblem", Counted)
    Xs, ys = make_lists(n_per_task=(60, 90, 150), p=12, seed=3)
    rng = np.random.default_rng(0)
    sw = [rng.uniform(0.5, 2.0, len(y)) for y in ys] if weighted else None
    penalty = PENALTIES[pen][0]
    alpha = rm.alpha_max(Xs, ys, penalty=penalty, sample_weight=sw) / 20
    kw = dict(tol=1e-10, max_iter=100_000)
    gram = model("squared", penalty, alpha, **kw).fit(Xs, ys, sample_weight=sw)
    assert used["task_gram"] >= 1
    data = model("squared", penalty, alpha, solver_options=dict(gram=False),
                 **kw).fit(Xs, ys, sample_weight=sw)
    assert used["task_gram"] == 1  # gram=False: epochs over the data only
    assert_coef_close(gram.coef_, data.coef_)
    np.testing.assert_allclose(gram.intercept_, data.intercept_, rtol=1e-6, atol=1e-8)
    assert gram.objective_ == pytest.approx(data.objective_, rel=1e-9)
    check_certificate(gram, "squared", pen, alpha, Xs, ys, sw, 1e-10)
    if pen == "L1" and not weighted:
        for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
            ref = Lasso(alpha=alpha, tol=1e-14, max_iter=100_000).fit(X, y)
            np.testing.assert_allclose(gram.coef_[t], ref.coef_, rtol=1e-5, atol=1e-8)


# --------------------------------------------------------------------------- 5. one path
@pytest.mark.parametrize("pen", ["l21", "l1", "elasticnet"])
def test_weights_repeats_sparse_and_dense_take_one_path(pen):
    """Integer sample weights and repeated rows, and a sparse design and its dense copy, take
    the same full-Gram path (the Gram sums are equal), so that their fits and their CV scores
    agree to rounding at the default tol, not only to what tol certifies (scikit-learn's
    equivalence checks: seen 1e-4 relative apart before)."""
    rng = np.random.default_rng(7)
    X, Y = make_shared(n=40, p=6, T=3, seed=3)
    sw = rng.integers(0, 4, 40).astype(float)
    sw[:2] = 1.0
    groups = np.arange(40) % 5
    rep = sw.astype(int)
    Xr, Yr, gr = np.repeat(X, rep, axis=0), np.repeat(Y, rep, axis=0), np.repeat(groups, rep)
    a = rm.MultiTaskRegressorCV(pen, alphas=8).fit(X, Y, sample_weight=sw, groups=groups)
    b = rm.MultiTaskRegressorCV(pen, alphas=8).fit(Xr, Yr, groups=gr)
    np.testing.assert_allclose(a.cv_results_["mean_test_score"],
                               b.cv_results_["mean_test_score"], rtol=1e-12)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=1e-12)
    Xs = with_zeros(X, 1)
    c = rm.MultiTaskRegressorCV(pen, alphas=8).fit(Xs, Y)
    d = rm.MultiTaskRegressorCV(pen, alphas=8).fit(sp.csr_matrix(Xs), Y)
    np.testing.assert_allclose(c.cv_results_["mean_test_score"],
                               d.cv_results_["mean_test_score"], rtol=1e-12)
    np.testing.assert_allclose(c.coef_, d.coef_, rtol=0, atol=1e-12)
