"""Benchmark: the losses beyond squared and logistic against the single-task peers, at the same
accuracy.

Problems (seeded; Toeplitz-free Gaussian designs with a shift, intercepts fitted):
  poisson+L2    one task, n x p = 5000 x 50: scikit-learn's PoissonRegressor, solvers lbfgs
                and newton-cholesky (the same alpha: half the deviance is exp(f) - y f)
  gamma+L2      one task, 5000 x 50: GammaRegressor (newton-cholesky)
  quantile+L1   one task, 1000 x 20, 400 x 20 and 5000 x 50, tau = 0.7:
                QuantileRegressor(solver="highs") (an exact linear program; 1/n sum pinball +
                alpha ||w||_1, the same alpha)
  quantile+L21  T = 3 tasks sharing one design, n = 200, p = 10: cvxpy/Clarabel (a second-order
                cone program; no package has a multi-task quantile model)
  poisson+L1    one task, 1000 x 50: skglm (Poisson datafit, L1), glum (family="poisson",
                l1_ratio=1, alpha the same)
  group poisson T = 10 tasks sharing one design, n = 1000, p = 50, no intercepts: regmtl's
                L21 against skglm's PoissonGroup + WeightedGroupL2 (GroupProxNewton); skglm
                has no multi-task Poisson, so it is given the block-diagonal single problem
                (rows of the 10 tasks stacked, a group of 10 coefficients per feature), the
                same objective up to the factor 1/T of regmtl's per-task means (its alpha
                is divided by T)
  glum shape    glum's published Poisson lasso (600,000 x 322) sliced to 60,000 x 322
                (one task, regmtl L1 against glum at the same alpha)
  multinomial+L2  one task, 5000 x 50, K = 5 classes: LogisticRegression(lbfgs), multinomial
                (C = 1 / (alpha n): the mean log loss + alpha / 2 ||W||^2)
  grouped multinomial paths  one task, L2,1 on the classes' layout (row j = feature j across
                the classes: glmnet's type.multinomial="grouped"), 20 alphas from alpha_max down
                to alpha_max / 100, warm starts: a random problem (n = 2000, p = 100, K = 5) and
                scikit-learn's load_digits (1797 x 64, K = 10; features scaled to unit
                variance). Peers: regmtl's proximal gradient row (solver="fista") and, with
                --peer-python, group-lasso's LogisticGroupLasso (FISTA; group_reg = alpha,
                scale_reg="none", l1_reg = 0, warm_start). glmnet's Python ports do not run here
                (python-glmnet does not build; glmnet_py needs libgfortran.so.3). The excess
                of a path is its largest excess over the path's points.

"Same accuracy": every fit's objective is evaluated by one NumPy function (``objective``) and
compared with the lowest objective any solver reached, relative to the objective at W = 0
above the loss's floor (regmtl's certificate scale, ``regmtl.solvers.reference``):
``excess = (P - P_best) / P0``. regmtl gets tol = eps (its duality gap bounds the excess);
each peer starts at tol = eps and is run again with a 10x tighter tol while its excess is above
eps (at most 4 times); the time is that of the tol that reached it (a '*' marks a peer that
never did). Times are medians of --repeats runs, one BLAS thread; peak memory is the extra
resident memory of one fit (tracemalloc's peak, NumPy and Python allocations).

skglm and glum need not be installed here: with ``--peer-python PATH`` (an interpreter of
another environment that has them) their fits run there, on the same arrays (an .npz), and the
times come back; otherwise their rows say "not installed".

Run:  .venv/bin/python bench/bench_losses.py [--quick] [--repeats 3] [--eps 1e-6]
          [--peer-python /tmp/benchenv/bin/python] [--only quantile|multinomial|glm]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

import regmtl as rm  # noqa: E402
from regmtl.datafits import make_loss  # noqa: E402
from regmtl.solvers import reference  # noqa: E402

TAU = 0.7


# ----------------------------------------------------------------------------- problems
def make(loss: str, n: int, p: int, T: int = 1, seed: int = 0):
    """X (n x p) and Y (n x T) from a row-sparse log-linear (or linear) model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) / np.sqrt(p) + 0.1
    W = np.zeros((p, T))
    k = max(p // 5, 1)
    W[:k] = rng.standard_normal((k, T))
    F = X @ W + 0.5
    if loss == "poisson":
        Y = rng.poisson(np.exp(F)).astype(float)
    elif loss == "gamma":
        Y = rng.gamma(2.0, np.exp(F) / 2.0)
    else:
        Y = F + rng.standard_t(3.0, F.shape)
    return X, Y


def unit_loss(loss: str, y, f):
    if loss == "poisson":
        return np.exp(f) - y * f
    if loss == "gamma":
        return y * np.exp(-f) + f
    r = y - f
    return np.maximum(TAU * r, (TAU - 1.0) * r)


def objective(loss, X, Y, W, b, alpha, penalty):
    """sum_t (1/n) sum_i l(y_ti, x_i . w_t + b_t) + alpha Omega(W), Omega of regmtl."""
    F = X @ W + b
    data = float(np.mean(unit_loss(loss, Y, F), axis=0).sum())
    if penalty == "l2":
        pen = 0.5 * np.sum(W * W)
    elif penalty == "l1":
        pen = np.abs(W).sum()
    else:
        pen = np.linalg.norm(W, axis=1).sum()
    return data + alpha * pen


def scale(loss, X, Y):
    """The objective at W = 0 above the loss's floor (regmtl's certificate scale)."""
    datafit = rm.Quantile(TAU) if loss == "quantile" else make_loss(loss)
    return reference(rm.as_task_data(X, Y), datafit, fit_intercept=True).P0


# ----------------------------------------------------------------------------- fits
def fit_regmtl(loss, penalty, alpha, X, Y, tol, fit_intercept=True):
    est = rm.MultiTaskRegressor(penalty, alpha=alpha, tol=tol, max_iter=100000,
                                fit_intercept=fit_intercept,
                                loss=rm.Quantile(TAU) if loss == "quantile" else loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, Y if Y.shape[1] > 1 else Y[:, 0])
    W = est.coef_matrix_
    return W, np.atleast_1d(est.intercept_)


def fit_cvxpy_quantile_l21(alpha, X, Y, tol):
    """sum_t mean pinball + alpha sum_j ||W_j||_2 by Clarabel at gap tolerances ``tol``."""
    import cvxpy as cp

    W, b = cp.Variable((X.shape[1], Y.shape[1])), cp.Variable(Y.shape[1])
    R = Y - X @ W - np.ones((X.shape[0], 1)) @ cp.reshape(b, (1, Y.shape[1]), order="F")
    loss = cp.sum(cp.maximum(TAU * R, (TAU - 1.0) * R)) / X.shape[0]
    prob = cp.Problem(cp.Minimize(loss + alpha * cp.sum(cp.norm(W, 2, axis=1))))
    prob.solve(solver="CLARABEL", tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol)
    return W.value, b.value


def fit_sklearn(name, solver, alpha, X, Y, tol):
    import sklearn.linear_model as lm

    cls = getattr(lm, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "QuantileRegressor":
            est = cls(quantile=TAU, alpha=alpha, solver="highs").fit(X, Y[:, 0])
        else:
            est = cls(alpha=alpha, solver=solver, tol=tol, max_iter=100000).fit(X, Y[:, 0])
    return est.coef_[:, None], np.atleast_1d(est.intercept_)


def timed(fit, repeats):
    """Median time of ``repeats`` runs, the last result, the peak traced bytes of one run."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fit()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    try:
        fit()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return float(np.median(times)), out, peak


def to_accuracy(fit, measure, eps, repeats, tol0, tighten=4):
    """Tighten tol by 10 until the excess is <= eps; the timing at that tol."""
    tol = tol0
    for _ in range(tighten + 1):
        t, out, peak = timed(lambda tol=tol: fit(tol), repeats)
        excess = measure(out)
        if excess <= eps:
            return dict(time=t, excess=excess, tol=tol, peak=peak, reached=True)
        tol /= 10.0
    return dict(time=t, excess=excess, tol=tol * 10, peak=peak, reached=False)


# ----------------------------------------------------------------------------- peers elsewhere
PEER_SCRIPT = r'''
import json, sys, time, warnings
import numpy as np
d = np.load(sys.argv[1]); job = json.loads(sys.argv[2])
X, y, alpha, kind, tol, repeats = d["X"], d["y"], job["alpha"], job["kind"], job["tol"], \
    job["repeats"]
def run():
    if kind == "group-lasso-path":
        from group_lasso import LogisticGroupLasso
        est = LogisticGroupLasso(groups=np.arange(X.shape[1]), group_reg=1.0, l1_reg=0.0,
                                 scale_reg="none", n_iter=job["n_iter"], tol=tol,
                                 warm_start=True, supress_warning=True)
        coefs, bs = [], []
        for a in job["alphas"]:
            est.group_reg = a
            est.fit(X, y)
            coefs.append(np.asarray(est.coef_).tolist())
            bs.append(np.asarray(est.intercept_).ravel().tolist())
        return coefs, bs
    if kind.startswith("skglm"):
        from skglm.datafits import Poisson
        from skglm.penalties import L1
        from skglm.solvers import ProxNewton
        from skglm import GeneralizedLinearEstimator
        if kind == "skglm-group":
            from skglm.datafits import PoissonGroup
            from skglm.penalties import WeightedGroupL2
            from skglm.solvers import GroupProxNewton
            from skglm.utils.data import grp_converter
            gs = job["group_size"]
            p = X.shape[1]
            indices, indptr = grp_converter(gs, p)
            n_groups = len(indptr) - 1
            est = GeneralizedLinearEstimator(PoissonGroup(indptr, indices),
                WeightedGroupL2(alpha, np.ones(n_groups), indptr, indices),
                GroupProxNewton(tol=tol, max_iter=1000, fit_intercept=False))
        else:
            est = GeneralizedLinearEstimator(Poisson(), L1(alpha),
                                             ProxNewton(tol=tol, max_iter=1000,
                                                        fit_intercept=True))
        est.fit(X, y)
        return est.coef_, getattr(est, "intercept_", 0.0)
    import glum
    est = glum.GeneralizedLinearRegressor(family="poisson", alpha=alpha, l1_ratio=1.0,
                                          gradient_tol=tol, max_iter=1000)
    est.fit(X, y)
    return est.coef_, est.intercept_
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        run()
    except ImportError as e:
        print(json.dumps({"error": "not installed"})); sys.exit(0)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); coef, b = run(); times.append(time.perf_counter() - t0)
if kind == "group-lasso-path":
    print(json.dumps({"time": float(np.median(times)), "coef": coef, "intercept": b}))
else:
    print(json.dumps({"time": float(np.median(times)), "coef": np.asarray(coef).tolist(),
                      "intercept": float(np.asarray(b).ravel()[0])}))
'''


def peer_elsewhere(python, kind, X, y, alpha, tol, repeats, **extra):
    """Run a peer under another interpreter on the same arrays; None if it is absent."""
    if python is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "problem.npz")
        np.savez(path, X=X, y=y)
        script = os.path.join(tmp, "peer.py")
        with open(script, "w") as fh:
            fh.write(PEER_SCRIPT)
        job = dict(alpha=alpha, kind=kind, tol=tol, repeats=repeats, **extra)
        env = dict(os.environ, PYTHONPATH="")
        out = subprocess.run([python, script, path, json.dumps(job)], capture_output=True,
                             text=True, env=env, timeout=1800)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1][:60] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def peer_to_accuracy(python, kind, X, y, alpha, measure, eps, repeats, tries=5, **extra):
    tol = eps
    for _ in range(tries):
        res = peer_elsewhere(python, kind, X, y, alpha, tol, repeats, **extra)
        if res is None or "error" in res:
            return res
        excess = measure(res)
        if excess <= eps:
            return dict(time=res["time"], excess=excess, tol=tol, peak=None, reached=True)
        tol /= 10.0
    return dict(time=res["time"], excess=excess, tol=tol * 10, peak=None, reached=False)


# ----------------------------------------------------------------------------- scenarios
def quantile_scenarios(q, args):
    """quantile + L1 against QuantileRegressor(highs) at three sizes; quantile + L21 (T = 3)
    against cvxpy/Clarabel."""
    qr = [("sklearn Quantile highs", lambda a, X, Y, t: fit_sklearn(
        "QuantileRegressor", None, a, X, Y, t))]
    # (alpha 0.01 is 0.65 and 0.33 of alpha_max on the first two, 0.001 is 0.1 on the third)
    for n, p, alpha in ((1000, 20, 0.01), (400, 20, 0.01), (5000, 50, 0.001)):
        out = one_task_scenario("quantile + L1", "quantile", "l1", n // q, p, alpha, qr, args)
        print_rows(out[0], out[1], out[2])
    n, p, T = 200 // q, 10, 3
    X, Y = make("quantile", n, p, T, seed=3)
    P0 = scale("quantile", X, Y)
    alpha = 0.1 * rm.alpha_max(X, Y, penalty="l21", loss=rm.Quantile(TAU))
    best_W, best_b = fit_regmtl("quantile", "l21", alpha, X, Y, 1e-11)
    P_best = objective("quantile", X, Y, best_W, best_b, alpha, "l21")

    def lmeasure(out):
        W, b = out
        return (objective("quantile", X, Y, W, b, alpha, "l21") - P_best) / P0

    rows = [("regmtl L21", to_accuracy(lambda tol: fit_regmtl("quantile", "l21", alpha, X, Y,
                                                              tol), lmeasure, args.eps,
                                       args.repeats, args.eps)),
            ("cvxpy Clarabel", to_accuracy(lambda tol: fit_cvxpy_quantile_l21(alpha, X, Y, tol),
                                           lmeasure, args.eps, args.repeats, args.eps))]
    print_rows("quantile + L21", f"n={n} p={p} T={T} alpha={alpha:.3g}", rows)


def one_task_scenario(title, loss, penalty, n, p, alpha_frac, peers, args):
    X, Y = make(loss, n, p)
    P0 = scale(loss, X, Y)
    alpha = alpha_frac * (rm.alpha_max(X, Y[:, 0], penalty="l1", loss="poisson")
                          if loss == "poisson" and penalty == "l1" else 1.0)
    best_W, best_b = fit_regmtl(loss, penalty, alpha, X, Y, 1e-13)
    P_best = objective(loss, X, Y, best_W, best_b, alpha, penalty)

    def measure(out):
        W, b = out
        return (objective(loss, X, Y, W, b, alpha, penalty) - P_best) / P0

    rows = [("regmtl", to_accuracy(lambda tol: fit_regmtl(loss, penalty, alpha, X, Y, tol),
                                    measure, args.eps, args.repeats, args.eps))]
    for name, fit in peers:
        rows.append((name, to_accuracy(lambda tol, fit=fit: fit(alpha, X, Y, tol), measure,
                                       args.eps, args.repeats, args.eps)))
    return title, f"n={n} p={p} alpha={alpha:.3g}", rows, X, Y, alpha, measure


def print_rows(title, shape, rows):
    print(f"\n{title}  ({shape})")
    print(f"  {'solver':<28}{'time s':>10}{'ratio':>8}{'excess':>10}{'tol':>9}{'peak MiB':>10}")
    ref = rows[0][1]
    for name, r in rows:
        if r is None or "error" in r:
            msg = "not installed" if r is None else r["error"]
            print(f"  {name:<28}{msg:>10}")
            continue
        ratio = r["time"] / ref["time"] if name != "regmtl" else 1.0
        peak = "" if r["peak"] is None else f"{r['peak'] / 2**20:.1f}"
        star = "" if r["reached"] else "*"
        print(f"  {name:<28}{r['time']:>10.4f}{ratio:>8.2f}{r['excess']:>10.1e}"
              f"{r['tol']:>8.0e}{star:1}{peak:>10}")


# ----------------------------------------------------------------------------- multinomial
def multinomial_problem(n, p, K, seed=0):
    """X (n x p) and labels from a row-sparse softmax model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) / np.sqrt(10) + 0.1
    W = np.zeros((p, K))
    W[: max(p // 10, 1)] = 3.0 * rng.standard_normal((max(p // 10, 1), K))
    return X, np.argmax(X @ W + rng.gumbel(size=(n, K)), axis=1)


def multinomial_objective(X, y, W, b, alpha, penalty):
    """The mean log loss + alpha Omega(W), W of shape (p, K)."""
    F = X @ W + b
    lse = np.logaddexp.reduce(F, axis=1)
    data = float(np.mean(lse - F[np.arange(len(y)), y]))
    pen = 0.5 * np.sum(W * W) if penalty == "l2" else np.linalg.norm(W, axis=1).sum()
    return data + alpha * pen


def class_entropy(y):
    """The objective at W = 0 with the intercepts minimized: the classes' entropy."""
    f = np.bincount(y) / len(y)
    f = f[f > 0]
    return float(-np.sum(f * np.log(f)))


def fit_multinomial(penalty, alpha, X, y, tol, solver="auto"):
    est = rm.MultiTaskClassifier(penalty, alpha=alpha, tol=tol, max_iter=100000, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return est.coef_.T, est.intercept_


def fit_sklearn_multinomial(alpha, X, y, tol):
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LogisticRegression(C=1.0 / (alpha * len(y)), tol=tol, max_iter=100000).fit(X, y)
    return est.coef_.T, est.intercept_


def multinomial_path(X, y, alphas, tol, solver="auto"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = rm.regularization_path(X, y, penalty="l21", loss="multinomial", alphas=alphas,
                                      tol=tol, max_iter=100000, solver=solver)
    return [c.T for c in path.coefs], list(path.intercepts)


def multinomial_rows(args):
    """multinomial + L2 against scikit-learn; grouped multinomial L2,1 paths."""
    q = 5 if args.quick else 1
    X, y = multinomial_problem(5000 // q, 50, 5)
    alpha, P0 = 1e-3, class_entropy(y)
    best = fit_multinomial("l2", alpha, X, y, 1e-13)
    P_best = multinomial_objective(X, y, *best, alpha, "l2")

    def measure(out):
        return (multinomial_objective(X, y, *out, alpha, "l2") - P_best) / P0

    rows = [("regmtl", to_accuracy(lambda tol: fit_multinomial("l2", alpha, X, y, tol),
                                   measure, args.eps, args.repeats, args.eps)),
            ("sklearn lbfgs multinomial", to_accuracy(
                lambda tol: fit_sklearn_multinomial(alpha, X, y, tol), measure, args.eps,
                args.repeats, args.eps))]
    print_rows("multinomial + L2", f"n={len(y)} p={X.shape[1]} K=5 alpha={alpha:g}", rows)

    from sklearn.datasets import load_digits

    Xd, yd = load_digits(return_X_y=True)
    Xd = (Xd - Xd.mean(axis=0)) / np.maximum(Xd.std(axis=0), 1e-12)
    problems = [("grouped multinomial path (random)", *multinomial_problem(2000 // q, 100, 5)),
                ("grouped multinomial path (digits)", Xd, yd)]
    for title, X, y in problems:
        P0 = class_entropy(y)
        amax = rm.alpha_max(X, y, penalty="l21", loss="multinomial")
        alphas = amax * np.geomspace(1.0, 0.01, 20)
        bW, bb = multinomial_path(X, y, alphas, 1e-10)
        P_best = [multinomial_objective(X, y, W, b, a, "l21")
                  for W, b, a in zip(bW, bb, alphas, strict=True)]

        def pmeasure(out, X=X, y=y, alphas=alphas, P_best=P_best, P0=P0):
            Ws, bs = out
            return max((multinomial_objective(X, y, np.asarray(W), np.asarray(b), a, "l21")
                        - Pb) / P0 for W, b, a, Pb in zip(Ws, bs, alphas, P_best, strict=True))

        rows = [("regmtl (softmax Newton)", to_accuracy(
                    lambda tol, X=X, y=y, alphas=alphas: multinomial_path(X, y, alphas, tol),
                    pmeasure, args.eps, args.repeats, args.eps)),
                ("regmtl fista", to_accuracy(
                    lambda tol, X=X, y=y, alphas=alphas: multinomial_path(X, y, alphas, tol,
                                                                           "fista"),
                    pmeasure, args.eps, args.repeats, args.eps))]
        # group-lasso: FISTA in NumPy, its coef_ (p, K); minutes per path, so one run, one tol
        rows.append(("group-lasso LogisticGroupLasso", peer_to_accuracy(
            args.peer_python, "group-lasso-path", X, y, None,
            lambda r: pmeasure((r["coef"], r["intercept"])), args.eps, 1, tries=1,
            alphas=alphas.tolist(), n_iter=args.group_lasso_iter)))
        print_rows(title, f"n={len(y)} p={X.shape[1]} K={len(np.unique(y))}, 20 alphas "
                   f"{alphas[0]:.3g}..{alphas[-1]:.3g}", rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller problems")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--peer-python", default=None,
                    help="an interpreter with skglm, glum and group-lasso installed")
    ap.add_argument("--only", choices=("all", "quantile", "multinomial", "glm"), default="all",
                    help="the rows to run: all, the quantile ones, the multinomial ones, or "
                         "the Poisson/Gamma ones")
    ap.add_argument("--group-lasso-iter", type=int, default=2000,
                    help="group-lasso's iteration cap per path point")
    args = ap.parse_args(argv)
    q = 5 if args.quick else 1
    print(f"bench_losses: eps={args.eps:g} repeats={args.repeats} one BLAS thread; ratio = "
          "peer time / regmtl time (> 1: regmtl faster)")
    if args.only in ("all", "quantile"):
        quantile_scenarios(q, args)
    if args.only == "multinomial":
        multinomial_rows(args)
    if args.only in ("quantile", "multinomial"):
        return 0
    sk = [("sklearn Poisson lbfgs", lambda a, X, Y, t: fit_sklearn("PoissonRegressor",
                                                                     "lbfgs", a, X, Y, t)),
          ("sklearn Poisson newton-chol", lambda a, X, Y, t: fit_sklearn(
              "PoissonRegressor", "newton-cholesky", a, X, Y, t))]
    out = one_task_scenario("Poisson + L2", "poisson", "l2", 5000 // q, 50, 1e-3, sk, args)
    print_rows(out[0], out[1], out[2])
    gm = [("sklearn Gamma newton-chol", lambda a, X, Y, t: fit_sklearn(
        "GammaRegressor", "newton-cholesky", a, X, Y, t))]
    out = one_task_scenario("Gamma + L2", "gamma", "l2", 5000 // q, 50, 1e-3, gm, args)
    print_rows(out[0], out[1], out[2])

    # Poisson + L1 against skglm and glum (elsewhere)
    title, shape, rows, X, Y, alpha, measure = one_task_scenario(
        "Poisson + L1", "poisson", "l1", 1000, 50, 0.1, [], args)
    conv = lambda r: measure((np.asarray(r["coef"])[:, None], np.array([r["intercept"]])))  # noqa: E731
    for kind in ("skglm", "glum"):
        rows.append((kind, peer_to_accuracy(args.peer_python, kind, X, Y[:, 0], alpha, conv,
                                            args.eps, args.repeats)))
    print_rows(title, shape, rows)

    # group Poisson: T = 10 tasks on one design
    n, p, T = 1000 // q, 50, 10
    X, Y = make("poisson", n, p, T, seed=1)
    P0 = scale("poisson", X, Y)
    a_max = rm.alpha_max(X, Y, penalty="l21", loss="poisson")
    alpha = 0.1 * a_max
    best_W, best_b = fit_regmtl("poisson", "l21", alpha, X, Y, 1e-13, False)
    P_best = objective("poisson", X, Y, best_W, best_b, alpha, "l21")

    def gmeasure(out):
        W, b = out
        return (objective("poisson", X, Y, W, b, alpha, "l21") - P_best) / P0

    rows = [("regmtl L21", to_accuracy(lambda tol: fit_regmtl("poisson", "l21", alpha, X, Y,
                                                              tol, False), gmeasure, args.eps,
                                       args.repeats, args.eps))]
    # skglm: the block-diagonal problem, coefficient j*T + t of feature j, task t (its group
    # solver fits no intercept: both fit none here)
    Xb = np.zeros((n * T, p * T))
    for t in range(T):
        Xb[t * n:(t + 1) * n, t::T] = X
    yb = Y.T.ravel()

    def bmeasure(r):
        W = np.asarray(r["coef"]).reshape(p, T)
        b = np.zeros(T)
        return (objective("poisson", X, Y, W, b, alpha, "l21") - P_best) / P0

    rows.append(("skglm group", peer_to_accuracy(
        args.peer_python, "skglm-group", Xb, yb, alpha / T, bmeasure, args.eps, args.repeats,
        group_size=T)))
    print_rows("group Poisson (L21)", f"n={n} p={p} T={T} alpha={alpha:.3g}, no intercepts",
               rows)

    # glum's Poisson lasso shape, sliced
    n, p = (60000 // q, 322)
    X, Y = make("poisson", n, p, seed=2)
    alpha = 0.1 * rm.alpha_max(X, Y[:, 0], penalty="l1", loss="poisson")
    P0 = scale("poisson", X, Y)
    best_W, best_b = fit_regmtl("poisson", "l1", alpha, X, Y, 1e-12)
    P_best = objective("poisson", X, Y, best_W, best_b, alpha, "l1")

    def smeasure(out):
        W, b = out
        return (objective("poisson", X, Y, W, b, alpha, "l1") - P_best) / P0

    rows = [("regmtl", to_accuracy(lambda tol: fit_regmtl("poisson", "l1", alpha, X, Y, tol),
                                   smeasure, args.eps, args.repeats, args.eps))]
    sconv = lambda r: smeasure((np.asarray(r["coef"])[:, None], np.array([r["intercept"]])))  # noqa: E731
    rows.append(("glum", peer_to_accuracy(args.peer_python, "glum", X, Y[:, 0], alpha, sconv,
                                          args.eps, args.repeats)))
    print_rows("glum's Poisson lasso shape (slice)", f"n={n} p={p} alpha={alpha:.3g}", rows)
    if args.only == "all":
        multinomial_rows(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
