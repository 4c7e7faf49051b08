r"""The out-of-core fit of the logistic loss: proximal Newton, each model streamed to disk.

The steps of :func:`~regmtl.solvers.methods.structured_newton.structured_newton`, with the rows read
chunk by chunk (whole tasks; a task source, :mod:`~regmtl.solvers.streamed.fit`) and no
array of the rows kept but one number per row (the dual point of the certificate):

1. the *state pass* at ``(W, b)``: per task, the scores ``f = X w_t + b_t``, the intercept
   ``b_t`` minimized with ``w_t`` fixed (Newton, as :func:`~regmtl.solvers.certificates.certify.
   scores_intercepts`), the loss ``sum c log(1 + exp(-y f))``, the dual point of
   :func:`~regmtl.solvers.certificates.certify.dual_point` (``theta = y sigmoid(-y f)``, centered
   per task with intercepts, projected: ``a = clip(y theta, 0, 1)`` kept per row) and
   ``G = X^T (c y a)``; and the IRLS model of :func:`~regmtl.solvers.parts.newton_model.
   newton_model` at ``f`` (weights ``h = max(c s (1 - s), 1e-12 c)``, working response
   ``z = f + c theta / h``) summed into the per-task Grams of a
   :class:`~regmtl.solvers.streamed.quadratic.StreamedQuadratic` (its spill files written
   over at every step). The model is summed in the step ``D = V - W`` (response ``c theta /
   h``: its ``g`` minus the gradient of the loss in float64) and written as one of ``V``
   (``g + H W``, with ``H W`` of the stored Grams): the Grams' rounding (float32) then
   scales with the step, not with W, and a model at the optimum is solved by W itself;
2. the duality gap of the in-memory fit from those sums: ``s`` the penalty's scaling of G,
   the dual ``-sum c H(s a) - Omega^*(s G)`` (``H`` the binary entropy), primal the loss
   plus the penalty; for a penalty without a dual (or ``alpha = 0``) the KKT residual of
   :func:`~regmtl.solvers.certificates.certify.kkt_residual` from ``G = X^T (c theta)`` and the
   per-task sums of ``c theta`` (no row array kept);
3. the model minimized by :func:`~regmtl.solvers.streamed.fista.streamed_fista` to the
   inner tolerance of ``structured_newton``; its intercepts from the model's centers;
4. the *search pass*: the loss at ``f + t df`` for twelve halvings of the step ``t`` at once
   and ``sum c theta df`` (the model's predicted decrease), the Armijo test of
   :func:`~regmtl.solvers.parts.newton_model.armijo` on them (a further pass per twelve halvings,
   at most 40 in all).

Two passes over the rows per Newton step; labels: any two per task, the larger +1.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..._jit import njit
from ...penalties import Penalty
from ...penalties.kernels import FAST
from ..certificates.certify import Certificate, kkt_of_gradient
from ..parts.newton_loop import NewtonProgress, model_target, newton_loop
from ..result import SolverResult
from .checkpoint import StreamedCheckpoint, fit_identity
from .fista import streamed_fista
from .fit import streamed_options
from .phases import QUIET, Phases, chunks_from
from .quadratic import (
    StreamedQuadratic,
    packed_bounds,
    prefetched,
    streamed_quadratic,
    task_moments_packed,
)

__all__ = ["solve_streamed_logistic", "source_logistic_reference"]

#: Step lengths tried per search pass (halvings of the last).
SEARCH_STEPS = 12


@njit(cache=True, nogil=True)
def _log1pexp(u):
    """``log(1 + exp(u))``, without overflow."""
    if u > 0.0:
        return u + np.log1p(np.exp(-u))
    return np.log1p(np.exp(u))


@njit(cache=True, nogil=True)
def _sigmoid(u):
    if u >= 0.0:
        return 1.0 / (1.0 + np.exp(-u))
    e = np.exp(u)
    return e / (1.0 + e)


@njit(cache=True, nogil=True)
def encode_labels(y, indptr, a0, lo_lab, hi_lab):
    """Each task's two labels to -1/+1 in place (the larger +1), recording them in
    ``lo_lab``/``hi_lab`` (from ``a0``); returns the local index of the first task of
    fewer or more than two labels, or -1."""
    for t in range(len(indptr) - 1):
        a, e = indptr[t], indptr[t + 1]
        lo, hi = np.inf, -np.inf
        for r in range(a, e):
            lo = min(lo, y[r])
            hi = max(hi, y[r])
        if not lo < hi:
            return t
        for r in range(a, e):
            if y[r] != lo and y[r] != hi:
                return t
            y[r] = 1.0 if y[r] == hi else -1.0
        lo_lab[a0 + t] = lo
        hi_lab[a0 + t] = hi
    return -1


@njit(cache=True, fastmath=FAST, nogil=True)
def state_kernel(X, y, c, indptr, W, b, a0, r0, fit_intercept, dual, loss, G, A, U, XX, z,
                 h):
    """The state pass on a chunk (module docstring, step 1): ``b`` refitted in place (with
    ``fit_intercept``), ``loss[a0 + t]``, ``XX[a0 + t] = sum c |x|^2``, the model's ``z`` and
    ``h`` per row of the chunk; with ``dual``, ``A[r0 + r]`` (the projected dual point) and
    ``G[:, a0 + t]`` of it, else ``G`` of ``theta`` itself and ``U[a0 + t] = sum c theta``
    (a KKT residual's gradients)."""
    p = X.shape[1]
    nt = len(indptr) - 1
    most = 0
    for t in range(nt):
        most = max(most, indptr[t + 1] - indptr[t])
    f = np.empty(most)
    gt = np.empty(p)
    for t in range(nt):
        a, e = indptr[t], indptr[t + 1]
        col = a0 + t
        for r in range(a, e):
            acc = 0.0
            for j in range(p):
                acc += X[r, j] * W[j, col]
            f[r - a] = acc
        bt = b[col]
        if fit_intercept:  # Newton on the intercept, w_t fixed
            for _ in range(50):
                d1, d2 = 0.0, 0.0
                for r in range(a, e):
                    s = _sigmoid(-y[r] * (f[r - a] + bt))
                    d1 += c[r] * y[r] * s
                    d2 += c[r] * s * (1.0 - s)
                if d2 <= 0.0:
                    break
                step = d1 / d2
                bt += step
                if abs(step) <= 1e-13 * (1.0 + abs(bt)):
                    break
            b[col] = bt
        ls, cs, ct, xx = 0.0, 0.0, 0.0, 0.0
        for r in range(a, e):
            for j in range(p):
                xx += c[r] * X[r, j] * X[r, j]
            fr = f[r - a] + bt
            f[r - a] = fr
            ls += c[r] * _log1pexp(-y[r] * fr)
            s = _sigmoid(-y[r] * fr)
            cs += c[r]
            ct += c[r] * y[r] * s
            hr = max(c[r] * s * (1.0 - s), 1e-12 * c[r])
            h[r] = hr
            z[r] = c[r] * y[r] * s / hr
        loss[col] = ls
        XX[col] = xx
        U[col] = ct
        mean = ct / cs if dual and fit_intercept and cs > 0.0 else 0.0
        for j in range(p):
            gt[j] = 0.0
        for r in range(a, e):
            th = y[r] * _sigmoid(-y[r] * f[r - a]) - mean
            if dual:
                ar = min(max(y[r] * th, 0.0), 1.0)
                A[r0 + r] = ar
                u = c[r] * y[r] * ar
            else:
                u = c[r] * th
            for j in range(p):
                gt[j] += u * X[r, j]
        for j in range(p):
            G[j, col] = gt[j]


@njit(cache=True, fastmath=FAST, nogil=True)
def search_kernel(X, y, c, indptr, W, b, dV, db, a0, steps, out):
    """The search pass on a chunk: ``out[0] += sum c theta df`` and ``out[1 + k] += sum c
    log(1 + exp(-y (f + steps[k] df)))``, ``f = X w_t + b_t``, ``df = X dv_t + db_t``."""
    p = X.shape[1]
    K = len(steps)
    for t in range(len(indptr) - 1):
        col = a0 + t
        for r in range(indptr[t], indptr[t + 1]):
            f, df = b[col], db[col]
            for j in range(p):
                x = X[r, j]
                f += x * W[j, col]
                df += x * dV[j, col]
            out[0] += c[r] * y[r] * _sigmoid(-y[r] * f) * df
            for k in range(K):
                out[1 + k] += c[r] * _log1pexp(-y[r] * (f + steps[k] * df))


@njit(cache=True, fastmath=FAST, nogil=True)
def entropy_sum(A, c_task, s_task, indptr):
    """``sum_t c_t sum_r H(s_t a_r)``, ``H(u) = -u log u - (1 - u) log(1 - u)``, over the
    global rows (``indptr``)."""
    acc = 0.0
    for t in range(len(indptr) - 1):
        ct, st = c_task[t], s_task[t]
        part = 0.0
        for r in range(indptr[t], indptr[t + 1]):
            u = min(max(st * A[r], 0.0), 1.0)
            if u > 0.0:
                part -= u * np.log(u)
            if u < 1.0:
                part -= (1.0 - u) * np.log(1.0 - u)
        acc += ct * part
    return acc


class _LogisticSource:
    """The passes over a task source for the logistic loss (module docstring), with the
    arrays they keep: ``A`` (one number per row), ``G`` and ``loss`` (p x T, T) and the
    streamed model ``q``."""

    def __init__(self, source: Any, task_weight: Any, fit_intercept: bool, target: Any,
                 spill_dir: str | None, gram_dtype: Any, dual: bool = True):
        self.source, self.task_weight, self.fit_intercept = source, task_weight, fit_intercept
        self.target = target
        p, T = int(source.n_features), int(source.n_tasks)
        rows = np.asarray(source.task_rows, dtype=np.int64)
        self.indptr = np.concatenate(([0], np.cumsum(rows))).astype(np.int64)
        self.dual = dual
        self.A = np.empty(int(self.indptr[-1]) if dual else 0)
        self.G, self.loss = np.empty((p, T)), np.empty(T)
        self.U, self.XX = np.empty(T), np.empty(T)
        self.lo_lab, self.hi_lab = np.empty(T), np.empty(T)
        self.spill_dir, self.gram_dtype = spill_dir, np.dtype(gram_dtype)
        self.c_task: np.ndarray | None = None
        self.q: StreamedQuadratic | None = None
        self.passes = 0

    def _chunks(self):
        self.passes += 1
        kw = {} if self.target is None else {"target": self.target}
        done, T = 0, len(self.indptr) - 1
        for lo, hi, block in prefetched(self.source.chunks(task_weight=self.task_weight,
                                                           **kw)):
            if lo != done or hi <= lo or hi > T:
                raise ValueError(f"source.chunks: tasks {lo}..{hi - 1} after {done} tasks; "
                                 "the chunks must be consecutive runs of whole tasks "
                                 f"covering all {T}.")
            done = hi
            y = np.array(block.y, dtype=np.float64)
            indptr = np.asarray(block.indptr, dtype=np.int64)
            bad = encode_labels(y, indptr, lo, self.lo_lab, self.hi_lab)
            if bad >= 0:
                a, e = indptr[bad], indptr[bad + 1]
                labels = np.unique(np.asarray(block.y)[a:e]).tolist()
                label = np.asarray(self.source.tasks)[lo + bad].tolist()
                if len(labels) < 2:
                    raise ValueError(
                        f"y: task {label!r} has one class ({labels[0]:g}); each task needs "
                        "two classes to train a classifier. Remove the task or add samples "
                        "of the other class.")
                raise ValueError(
                    f"y: task {label!r} has {len(labels)} classes; the out-of-core "
                    "classifier needs two classes per task (a multinomial fit runs in "
                    "memory).")
            c = np.asarray(block.c, dtype=np.float64)
            yield lo, hi, np.asarray(block.X, dtype=np.float64), y, c, indptr
        if done != T:
            raise ValueError(f"source.chunks covered {done} of {T} tasks.")

    def state(self, W: np.ndarray, b: np.ndarray, model: bool = True) -> None:
        """The state pass at ``(W, b)``: ``b`` refitted in place, ``loss``, ``G``, ``A``
        and, with ``model``, the Newton model into ``q`` (spill files written over)."""
        p, T = W.shape
        P = p * (p + 1) // 2
        W = np.ascontiguousarray(W, dtype=np.float64)
        c_task = np.empty(T)
        if model:
            g, e, zm, bounds = np.zeros((p, T)), np.zeros(T), np.zeros(T), np.zeros(T)
            xmv = np.zeros(T)
            grams, centers = self._spills(p, T)
            fh, fx = grams.writer(), centers.writer()
        try:
            for lo, hi, X, y, c, indptr in self._chunks():
                r0 = int(self.indptr[lo])
                c_task[lo:hi] = c[indptr[:-1]] if len(c) else 0.0
                z, h = np.empty(len(y)), np.empty(len(y))
                state_kernel(X, y, c, indptr, W, b, lo, r0, self.fit_intercept, self.dual,
                             self.loss, self.G, self.A, self.U, self.XX, z, h)
                if model:
                    Hp = np.empty((hi - lo, P), dtype=self.gram_dtype)
                    xm = np.empty((hi - lo, p))
                    task_moments_packed(X, z, h, np.arange(len(z), dtype=np.int64), indptr,
                                        self.fit_intercept, Hp, g[:, lo:hi], e[lo:hi], xm,
                                        zm[lo:hi])
                    packed_bounds(Hp, p, bounds[lo:hi])
                    xmv[lo:hi] = np.einsum("tj,jt->t", xm, W[:, lo:hi])
                    fh.write(memoryview(Hp.reshape(-1).view(np.uint8)))
                    fx.write(memoryview(xm.reshape(-1).view(np.uint8)))
        finally:
            if model:
                fh.close()
                fx.close()
        self.c_task = c_task
        if model:
            q = self.q  # the model of the step D, written as one of V = W + D
            q._L = q._eig = None
            q.bounds = bounds
            HW = q.matvec(W)
            e += 2.0 * np.einsum("jt,jt->t", g, W) + np.einsum("jt,jt->t", W, HW)
            q.g, q.e, q.zm = np.add(g, HW, out=HW), e, zm + b + xmv

    def _spills(self, p: int, T: int) -> tuple[Any, Any]:
        if self.q is None:  # the spill directory and its files, made once (empty Grams)
            self.q = streamed_quadratic(iter(()), 0, p, self.fit_intercept, self.spill_dir,
                                        self.gram_dtype)
            self.q.grams.n_tasks = self.q.centers.n_tasks = T
        return self.q.grams, self.q.centers

    def search(self, W, b, dV, db, steps) -> np.ndarray:
        """``[sum c theta df, loss(steps[0]), ...]`` in one pass."""
        out = np.zeros(1 + len(steps))
        args = [np.ascontiguousarray(v, dtype=np.float64) for v in (W, b, dV, db)]
        for lo, _, X, y, c, indptr in self._chunks():
            search_kernel(X, y, c, indptr, *args, lo, steps, out)
        return out

    def certificate(self, penalty: Penalty, alpha: float, V: np.ndarray, P0: float,
                    G0_norm: float) -> Certificate:
        """The certificate of the last state pass: the duality gap (module docstring, step
        2), or without ``dual`` the KKT residual of
        :func:`~regmtl.solvers.certificates.certify.kkt_of_gradient` relative to ``G0_norm`` (the
        step constant ``max_t sum c |x|^2 / 4`` where it takes one)."""
        primal = float(self.loss.sum()) + float(penalty.value(V, alpha))
        if not self.dual:
            value = kkt_of_gradient(penalty, alpha, V, self.G,
                                    self.U if self.fit_intercept else None, G0_norm,
                                    lambda: max(0.25 * float(self.XX.max()), 1e-300))
            return Certificate("kkt_residual", value, primal, None, P0)
        s = penalty.dual_scaling(self.G, alpha)
        s_task = np.broadcast_to(np.asarray(s, dtype=np.float64), self.loss.shape)
        dual = entropy_sum(self.A, self.c_task, np.ascontiguousarray(s_task), self.indptr)
        dual -= float(penalty.scaled_conjugate(self.G, s, alpha))
        return Certificate("duality_gap", max(primal - dual, 0.0), primal, dual, P0)


def source_logistic_reference(source: Any, task_weight: Any, fit_intercept: bool,
                              target: Any = None) -> tuple[np.ndarray, float]:
    """``(G0, P0)`` of the logistic loss on a task source at W = 0 (intercepts fitted): minus
    the gradient, whose dual norm is ``alpha_max``, and the objective there; one pass."""
    passes = _LogisticSource(source, task_weight, fit_intercept, target, None, np.float32)
    p, T = int(source.n_features), int(source.n_tasks)
    passes.state(np.zeros((p, T)), np.zeros(T), model=False)
    return passes.G, float(passes.loss.sum())


def solve_streamed_logistic(source: Any, penalty: Penalty, alpha: float, *,
                            fit_intercept: bool = True, task_weight: Any = "equal",
                            tol: float = 1e-4, max_iter: int = 100, max_inner: int = 2000,
                            target: Any = None, W0: np.ndarray | None = None,
                            verbose: int = 0, options: dict | None = None,
                            checkpoint: Any = None, phases: Phases = QUIET
                            ) -> tuple[SolverResult, np.ndarray, np.ndarray, dict]:
    """The logistic loss plus ``penalty`` (convex, with a prox on W and a dual, ``alpha >
    0``) fitted out of core (module docstring); ``max_iter`` bounds the Newton steps,
    ``max_inner`` each model's iterations. Warns (``ConvergenceWarning``) where the
    certificate misses ``tol``. Returns the result, each task's two labels (low, high) and
    the counts (``passes``, ``fista_iterations``). ``checkpoint``: a folder where the state
    after each Newton step is kept, from which a fit killed midway resumes, bit for bit
    (:class:`~regmtl.solvers.streamed.checkpoint.StreamedCheckpoint`). ``phases``: where the
    first pass (in chunks) and the Newton steps (up to ``max_iter``) report their progress."""
    spill_dir, gram_dtype, _ = streamed_options(options)
    p, T = int(source.n_features), int(source.n_tasks)
    penalty.check(p, T)
    kept = None if checkpoint is None else StreamedCheckpoint(checkpoint, source, fit_identity(
        "logistic", penalty, alpha, fit_intercept, task_weight, tol, max_iter, gram_dtype, W0,
        target=None if target is None else str(target), max_inner=int(max_inner)))
    run = _LogisticSource(source, task_weight, fit_intercept, target, spill_dir, gram_dtype,
                          dual=penalty.has_dual and alpha > 0)
    saved = None if kept is None else kept.load("newton")
    if saved is not None:  # (resumed after a step: its state pass again, then onwards)
        V, b = saved[0]["V"].copy(), saved[0]["b"].copy()
        with phases.phase("first pass", chunks_from(source), "chunk"):
            run.state(V, b)
        return _newton(run, penalty, alpha, V, b, saved[1]["P0"], saved[1]["G0_norm"], tol,
                       max_iter, max_inner, verbose, kept, saved[1], phases)
    b = np.zeros(T)
    with phases.phase("first pass", (1 + (W0 is not None)) * (chunks_from(source) or 0)
                      or None, "chunk"):
        if W0 is not None:  # the scale of tol: the objective at W = 0 (intercepts fitted)
            run.state(np.zeros((p, T)), b, model=False)
            P0, G0_norm = float(run.loss.sum()), float(np.linalg.norm(run.G))
            b = np.zeros(T)
        V = np.zeros((p, T)) if W0 is None else np.array(W0, dtype=np.float64)
        run.state(V, b)
    if W0 is None:
        P0, G0_norm = float(run.loss.sum()), float(np.linalg.norm(run.G))
    return _newton(run, penalty, alpha, V, b, max(P0, np.finfo(float).tiny), G0_norm, tol,
                   max_iter, max_inner, verbose, kept, None, phases)


class _StreamedNewton:
    """Proximal Newton on the source's Grams, as a :class:`~regmtl.solvers.parts.
    newton_loop.NewtonMethod`: each model solved by FISTA on the Grams of its state pass,
    the search on the losses of one pass more."""

    spent = False

    def __init__(self, run, penalty, alpha, V, b, P0, G0_norm, tol, max_inner, inner):
        self.run, self.penalty, self.alpha, self.V, self.b = run, penalty, alpha, V, b
        self.P0, self.G0_norm, self.tol, self.max_inner = P0, G0_norm, tol, max_inner
        self.inner, self.b_step = inner, None

    def certify(self):
        return self.run.certificate(self.penalty, self.alpha, self.V, self.P0, self.G0_norm)

    def status(self) -> str:
        return ""

    def step(self, cert, progress, budget) -> int | None:
        run, penalty, alpha, V, b = self.run, self.penalty, self.alpha, self.V, self.b
        q = run.q
        V_new, done, _, _ = streamed_fista(q, penalty, alpha, V.copy(),
                                           tol=model_target(cert, self.tol, progress.ratio),
                                           max_iter=self.max_inner, G0_norm=self.G0_norm)
        self.inner += done
        b_new = q.intercepts(V_new) if run.fit_intercept else np.zeros_like(b)
        dV, db = V_new - V, b_new - b
        t = _armijo(run, penalty, alpha, V, b, dV, db, cert.primal)
        if t is None:
            return None
        self.V, self.b = V + t * dV, b + t * db
        self.b_step = self.b.copy()  # (the state pass refits b in place)
        run.state(self.V, self.b)
        return 1


def _newton(run, penalty, alpha, V, b, P0, G0_norm, tol, max_iter, max_inner, verbose,
            kept=None, resumed=None, phases=QUIET):
    progress = NewtonProgress()
    inner = 0
    if resumed is not None:
        progress = NewtonProgress(resumed["step"], resumed["best"], resumed["stalls"],
                                  resumed["ratio"])
        inner = resumed["inner"]
    method = _StreamedNewton(run, penalty, alpha, V, b, P0, G0_norm, tol, max_inner, inner)

    def stepped(p):  # (after the step: the state a fit killed later resumes from)
        bar.update(1)
        bar.set_postfix_str(f"certificate {p.best:.2e} (tol {tol:.2e})", refresh=False)
        if kept is not None:
            kept.save("newton", {"V": method.V, "b": method.b_step},
                      {"best": p.best, "stalls": p.stalls, "step": p.steps, "ratio": p.ratio,
                       "inner": method.inner, "P0": P0, "G0_norm": G0_norm})

    with phases.phase("Newton steps", max_iter - progress.steps, "step") as bar:
        cert, progress, converged, stalled = newton_loop(
            method, tol=tol, max_iter=max_iter, label="newton/streamed", verbose=verbose,
            patience=10, progress=progress, stepped=stepped)
    step_n = progress.steps
    if not converged:
        why = ("progress stalled (loosen tol or raise alpha)" if stalled else
               f"it ran out of Newton steps (max_iter={max_iter}: increase it)")
        what = "duality gap" if cert.kind == "duality_gap" else "KKT residual"
        warnings.warn(f"the out-of-core logistic fit reached a relative {what} of "
                      f"{cert.relative:.3e} > tol={tol:g} after {step_n} Newton steps: {why}.",
                      ConvergenceWarning, stacklevel=3)
    res = SolverResult(method.V, method.b, max(step_n, 1), cert, converged, method.V,
                       stalled=stalled and not converged)
    return res, run.lo_lab, run.hi_lab, {"passes": run.passes, "fista_iterations": method.inner}


def _armijo(run, penalty, alpha, V, b, dV, db, value):
    """:func:`~regmtl.solvers.parts.newton_model.armijo` with the losses of
    :data:`SEARCH_STEPS` halvings per search pass (at most 40 halvings)."""
    old = float(penalty.value(V, alpha))
    start, decrease = 1.0, None
    for _ in range(-(-40 // SEARCH_STEPS)):
        steps = start * 0.5 ** np.arange(SEARCH_STEPS)
        out = run.search(V, b, dV, db, steps)
        if decrease is None:
            decrease = -out[0] + float(penalty.value(V + dV, alpha)) - old
        for k, t in enumerate(steps):
            new = out[1 + k] + float(penalty.value(V + t * dV, alpha))
            if new <= value + 1e-4 * t * decrease + 1e-15 * abs(value):
                return float(t)
        start = steps[-1] * 0.5
    return None
