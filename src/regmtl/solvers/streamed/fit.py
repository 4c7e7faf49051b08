r"""The out-of-core fit of the squared loss: a source read chunk by chunk, certified on its rows.

A *task source* (``regmtl.parquet.ParquetTasks``, or any object with its ``n_tasks``,
``n_features``, ``task_rows`` and ``chunks(task_weight=..., start=...)``) yields consecutive
runs of whole tasks as in-memory :class:`~regmtl.TaskData` blocks, one at a time, from the
chunk that holds task ``start`` (the fit resumed from a checkpoint begins where its kept
statistics pass stopped; the pass skips any chunk it already holds). The fit makes three kinds of
passes:

1. the statistics, once per source, task weighting and ``fit_intercept`` (kept with the
   source, beside their spill files: :func:`source_quadratic`), a
   :class:`~regmtl.solvers.streamed.quadratic.StreamedQuadratic`;
2. the iterations of :func:`~regmtl.solvers.streamed.fista.streamed_fista`, each a pass over
   the Grams on disk, certified by their sums;
3. one pass over the rows at the end (:func:`residual_sums`): the residual ``R = y - X w_t -
   b_t`` of the true data in float64 gives the certificate reported, with the formulas of the
   in-memory fit (the duality gap of :func:`~regmtl.solvers.certificates.certify.duality_gap`
   through :func:`~regmtl.solvers.parts.quadratic_fista.gap_of_sums`, or the KKT residual of
   :func:`~regmtl.solvers.certificates.certify.kkt_residual`), so that the rounding of the stored
   Grams (float32: about 1e-7 of the quadratic) is never certified in place of the data.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..._jit import njit
from ...penalties import Penalty
from ...penalties.kernels import FAST
from ..certificates.certify import Certificate, kkt_of_gradient
from ..parts.quadratic_fista import gap_of_sums
from ..result import SolverResult
from .checkpoint import DamagedCheckpoint, StreamedCheckpoint, fit_identity
from .fista import streamed_fista
from .phases import QUIET, Phases, chunks_from
from .quadratic import (
    StreamedQuadratic,
    kept_tasks,
    prefetched,
    streamed_quadratic,
    task_rows_copy,
)

__all__ = ["is_task_source", "check_streamed_penalty", "keep_statistics", "residual_sums",
           "solve_streamed", "source_quadratic", "streamed_options", "STREAMED_OPTIONS"]

#: The ``solver_options`` the out-of-core route takes: where the spill files go, the dtype of
#: the stored Grams and the iterations between certificates.
STREAMED_OPTIONS = ("spill_dir", "gram_dtype", "check_every")

_STATISTICS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def streamed_options(options: dict | None, check_every: int = 10
                     ) -> tuple[str | None, np.dtype, int]:
    """``(spill_dir, gram_dtype, check_every)`` of ``solver_options`` checked
    (:data:`STREAMED_OPTIONS`; ``check_every`` the default where none is given): an unknown
    option, a dtype other than float32 / float64 or a ``check_every`` below 1 is refused by
    name."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(STREAMED_OPTIONS))
    if unknown:
        raise ValueError(f"solver_options {unknown} are not options of the out-of-core fit; "
                         f"it takes {list(STREAMED_OPTIONS)}.")
    try:
        dtype = np.dtype(options.get("gram_dtype", np.float32))
    except TypeError:
        dtype = None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"solver_options['gram_dtype']={options['gram_dtype']!r:.40}: the "
                         "Grams are stored as 'float32' or 'float64'.")
    every = options.get("check_every", check_every)
    if isinstance(every, (bool, np.bool_)) or not isinstance(every, (int, np.integer)) \
            or every < 1:
        raise ValueError(f"solver_options['check_every']={every!r:.40} must be an integer >= "
                         "1 (the iterations between certificates).")
    return options.get("spill_dir"), dtype, int(every)


def is_task_source(obj: Any) -> bool:
    """Whether ``obj`` is a task source read chunk by chunk (see the module docstring)."""
    return all(hasattr(obj, name) for name in ("chunks", "task_rows", "n_tasks", "n_features"))


def check_streamed_penalty(penalty: Penalty) -> Penalty:
    """The penalty itself when the out-of-core route fits it (convex, with a prox on W
    itself), else a ``ValueError`` naming what is supported."""
    lifted = penalty.spread(np.ones((1, 1))).size != 1
    if penalty.nonconvex or penalty.majorized or lifted or not _has_prox(penalty):
        raise ValueError(
            f"penalty={penalty!r} is not fitted out of core: the out-of-core route fits the "
            "convex penalties with a proximal operator on W itself (all but sparse_lowrank, "
            "robust_lowrank, robust_features and the nonconvex ones); fit the others in "
            "memory.")
    return penalty


def _has_prox(penalty: Penalty) -> bool:
    return type(penalty).prox is not Penalty.prox


def _weight_key(task_weight: Any) -> Any:
    if isinstance(task_weight, str):
        return task_weight
    return np.asarray(task_weight, dtype=np.float64).tobytes()


def _statistics_key(task_weight: Any, fit_intercept: bool, gram_dtype: Any) -> tuple:
    return (_weight_key(task_weight), bool(fit_intercept), np.dtype(gram_dtype).str)


def source_quadratic(source: Any, task_weight: Any, fit_intercept: bool,
                     spill_dir: str | None = None, gram_dtype: Any = np.float32,
                     keep: StreamedCheckpoint | None = None,
                     phases: Phases = QUIET) -> StreamedQuadratic:
    """The statistics pass over ``source`` (its Grams spilled under ``spill_dir``), done once
    and kept with the source (and its spill files, removed with it) per task weighting,
    ``fit_intercept`` and ``gram_dtype``. ``keep``: a checkpoint, in whose folder the pass is
    written and kept, resumed where it stopped after its records are checked against their
    digests (a damaged file refused, or the checkpoint emptied, as it was asked).
    ``phases``: where the pass reports its chunks (a phase "statistics")."""
    if keep is not None:
        folder = keep.spill_directory
        try:
            done = kept_tasks(folder, int(source.n_features), gram_dtype)
        except DamagedCheckpoint as exc:
            keep.damaged(exc)
            done = 0
        total = chunks_from(source, done) if done < int(source.n_tasks) else 0
        with phases.phase("statistics", total, "chunk"):
            return streamed_quadratic(source.chunks(task_weight=task_weight, start=done),
                                      int(source.n_tasks), int(source.n_features),
                                      bool(fit_intercept), None, gram_dtype, keep=folder,
                                      whole=done)
    key = _statistics_key(task_weight, fit_intercept, gram_dtype)
    memo = _STATISTICS.setdefault(source, {})
    if key not in memo:
        with phases.phase("statistics", chunks_from(source), "chunk"):
            memo[key] = streamed_quadratic(source.chunks(task_weight=task_weight),
                                           int(source.n_tasks), int(source.n_features),
                                           bool(fit_intercept), spill_dir, gram_dtype)
    return memo[key]


def keep_statistics(source: Any, task_weight: Any, fit_intercept: bool, gram_dtype: Any,
                    q: StreamedQuadratic) -> None:
    """Keep ``q``, the statistics of ``source``'s rows made by another pass (one that read
    them for more than this), as :func:`source_quadratic` keeps its own: a fit that follows
    makes no pass for them."""
    _STATISTICS.setdefault(source, {})[_statistics_key(task_weight, fit_intercept,
                                                        gram_dtype)] = q


@njit(cache=True, fastmath=FAST, nogil=True)
def _residual_kernel(X, y, c, indptr, W, b, a0, center, center_x, G, TT, YT, RR, usum, cs_out):
    """Per task of a chunk (the tasks ``a0 + t`` of the p x T and T arrays): ``R = y - X w_t -
    b_t``, ``theta = R`` minus its weighted mean (with ``center``), ``G[:, t] = sum c theta (x -
    xm_t)`` (``xm_t`` the task's weighted feature means with ``center_x``, else 0: with intercepts
    the same sum as over ``x`` up to ``xm_t sum c theta``, at rounding level, and summed around the
    means as the in-memory fit's shifted columns are), ``TT = sum c theta^2``, ``YT = sum c y
    theta``, ``RR = sum c R^2``, ``usum = sum c R`` and ``cs_out = sum c``."""
    p = X.shape[1]
    nt = len(indptr) - 1
    m = np.empty(p)
    gt = np.empty(p)
    most = 0
    for t in range(nt):
        most = max(most, indptr[t + 1] - indptr[t])
    rows = np.empty((most, p))
    res = np.empty(most)
    for t in range(nt):
        a, e = indptr[t], indptr[t + 1]
        col = a0 + t
        task_rows_copy(X, a, e, rows)
        cs, su, sr = 0.0, 0.0, 0.0
        for j in range(p):
            m[j] = 0.0
            gt[j] = 0.0
        for r in range(a, e):
            cr = c[r]
            x = rows[r - a]
            f = b[col]
            for j in range(p):
                f += x[j] * W[j, col]
            R = y[r] - f
            res[r - a] = R
            cs += cr
            su += cr * R
            sr += cr * R * R
            if center_x:
                for j in range(p):
                    m[j] += cr * x[j]
        mean = su / cs if center and cs > 0.0 else 0.0
        if center_x and cs > 0.0:
            for j in range(p):
                m[j] /= cs
        tt, yt = 0.0, 0.0
        for r in range(a, e):
            cr = c[r]
            x = rows[r - a]
            th = res[r - a] - mean
            tt += cr * th * th
            yt += cr * y[r] * th
            w = cr * th
            for j in range(p):
                gt[j] += w * (x[j] - m[j])
        for j in range(p):
            G[j, col] = gt[j]
        TT[col], YT[col], RR[col], usum[col], cs_out[col] = tt, yt, sr, su, cs


def residual_sums(source: Any, task_weight: Any, W: np.ndarray, b: np.ndarray,
                  center: bool, center_x: bool
                  ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(RR, G, TT, YT, usum, variance)`` of the rows at ``(W, b)`` in one pass over the
    source (see :func:`_residual_kernel`; ``RR`` summed over tasks; ``variance`` each task's
    weighted mean squared residual, ``sum c R^2 / sum c``)."""
    p, T = W.shape
    G, TT, YT, RR, usum = np.empty((p, T)), np.empty(T), np.empty(T), np.empty(T), np.empty(T)
    cs = np.empty(T)
    W = np.ascontiguousarray(W, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    for lo, _, block in prefetched(source.chunks(task_weight=task_weight)):
        _residual_kernel(np.asarray(block.X, dtype=np.float64),
                         np.asarray(block.y, dtype=np.float64),
                         np.asarray(block.c, dtype=np.float64),
                         np.asarray(block.indptr, dtype=np.int64), W, b, lo, bool(center),
                         bool(center_x), G, TT, YT, RR, usum, cs)
    variance = RR / np.where(cs > 0, cs, 1.0)
    return float(RR.sum()), G, TT, YT, usum, variance


def exact_certificate(source: Any, task_weight: Any, q: StreamedQuadratic, penalty: Penalty,
                      alpha: float, W: np.ndarray, b: np.ndarray, fit_intercept: bool
                      ) -> tuple[Certificate, np.ndarray]:
    """The certificate of ``(W, b)`` on the source's rows (one pass): the duality gap where
    the penalty has a dual and ``alpha > 0``, else the KKT residual relative to ``|g|``, the
    gradient at W = 0; scaled by ``P0 = sum(e) / 2``, the objective at W = 0. With it, each
    task's weighted mean squared residual, read in the same pass."""
    P0 = max(0.5 * float(q.e.sum()), np.finfo(float).tiny)
    use_gap = penalty.has_dual and alpha > 0
    RR, G, TT, YT, usum, variance = residual_sums(
        source, task_weight, W, b, fit_intercept and use_gap, fit_intercept)
    if use_gap:
        primal, dual, _ = gap_of_sums(penalty, alpha, W, RR, G, TT, YT)
        return Certificate("duality_gap", max(primal - dual, 0.0), primal, dual, P0), variance
    value = kkt_of_gradient(penalty, alpha, W, G, usum if fit_intercept else None,
                            float(np.linalg.norm(q.g)), q.lipschitz)
    return Certificate("kkt_residual", value, 0.5 * RR + penalty.value(W, alpha), None,
                       P0), variance


def solve_streamed(source: Any, penalty: Penalty, alpha: float, *, fit_intercept: bool = True,
                   task_weight: Any = "equal", tol: float = 1e-4, max_iter: int = 1000,
                   W0: np.ndarray | None = None, verbose: int = 0,
                   options: dict | None = None, checkpoint: Any = None,
                   phases: Phases = QUIET,
                   on_statistics: Callable[[StreamedQuadratic], None] | None = None
                   ) -> SolverResult:
    """The squared loss plus ``penalty`` fitted out of core (the module docstring), warned
    about (``ConvergenceWarning``, with the certificate reached) when the certificate on the
    rows misses ``tol``. ``W0``: the start (p x T), taken over (written to). ``options``:
    :data:`STREAMED_OPTIONS`. ``checkpoint``: a folder where the fit's state is kept and
    from which a fit killed midway resumes
    (:class:`~regmtl.solvers.streamed.checkpoint.StreamedCheckpoint`). ``phases``: where
    each phase reports its progress, with its total (the statistics pass and each
    certifying pass in chunks, the iterations up to what is left of ``max_iter``).
    ``on_statistics(q)``: called with the statistics once they are made or read (the caller's
    look at ``alpha_max``, ``q.g``'s dual norm, with no pass more)."""
    spill_dir, gram_dtype, check_every = streamed_options(options)
    check_streamed_penalty(penalty)
    penalty.check(int(source.n_features), int(source.n_tasks))
    kept = None
    if checkpoint is not None:
        kept = StreamedCheckpoint(checkpoint, source, fit_identity(
            "squared", penalty, alpha, fit_intercept, task_weight, tol, max_iter, gram_dtype,
            W0, check_every=check_every))
    q = source_quadratic(source, task_weight, fit_intercept, spill_dir, gram_dtype, keep=kept,
                         phases=phases)
    if on_statistics is not None:
        on_statistics(q)
    p, T = q.g.shape
    use_gap = penalty.has_dual and alpha > 0
    P0 = max(0.5 * float(q.e.sum()), np.finfo(float).tiny)
    V = np.zeros((p, T)) if W0 is None else np.asarray(W0, dtype=np.float64)
    inner_tol, n_iter, first = tol * P0 if use_gap else tol, 0, 0
    outer = None if kept is None else kept.rounds()
    if outer is not None:  # (resumed: the round the last state belongs to)
        first, n_iter, inner_tol = outer["round"], outer["n_iter"], outer["inner_tol"]
    for rnd in range(first, 3):  # the Grams' sums met tol, the rows not: a tighter tol
        key = f"round {rnd}"
        state = None if kept is None else kept.fista_state(key)
        on_check = None if kept is None else (
            lambda V_, Vp_, sc, key=key, rnd=rnd, n_iter=n_iter, inner_tol=inner_tol:
            kept.save_fista(key, {"round": rnd, "n_iter": n_iter, "inner_tol": inner_tol},
                            V_, Vp_, sc))
        with phases.phase("iterations", max_iter - n_iter, "iteration") as bar:
            V, done, stalled, _ = streamed_fista(
                q, penalty, alpha, V, tol=inner_tol, max_iter=max_iter - n_iter,
                check_every=check_every, G0_norm=float(np.linalg.norm(q.g)), verbose=verbose,
                state=state, on_check=on_check, bar=bar, scale=P0 if use_gap else 1.0)
        n_iter += done
        b = q.intercepts(V) if fit_intercept else np.zeros(T)
        with phases.phase("certificate on the rows", chunks_from(source), "chunk"):
            cert, variance = exact_certificate(source, task_weight, q, penalty, alpha, V, b,
                                               fit_intercept)
        converged = cert.converged(tol)
        if converged or stalled or n_iter >= max_iter:
            break
        inner_tol /= 10.0
    if not converged:
        what = "duality gap" if cert.kind == "duality_gap" else "KKT residual"
        if stalled:
            why = "progress stalled (more iterations will not help: loosen tol or raise alpha)"
        elif n_iter >= max_iter:
            why = f"it ran out of iterations (max_iter={max_iter}: increase it)"
        else:
            why = (f"the Grams stored as {np.dtype(q.grams.dtype).name} round the quadratic "
                   "(about 1e-7 of it for float32): loosen tol, or store them in float64 "
                   "(solver_options={'gram_dtype': 'float64'})")
        warnings.warn(f"the out-of-core fit reached a relative {what} of "
                      f"{cert.relative:.3e} > tol={tol:g} on the rows after {n_iter} "
                      f"iterations: {why}.", ConvergenceWarning, stacklevel=3)
    return SolverResult(V, b, max(n_iter, 1), cert, converged, V,
                        stalled=stalled and not converged, residual_variance=variance)
