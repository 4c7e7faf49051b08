r"""The data term of tasks with fewer rows than features, as a quadratic in row-space form.

With ``B_t = D_t^{1/2} X_{c,t}`` (the task's centered rows, weighted by ``c``) the quadratic of
:mod:`~regmtl.solvers.parts.quadratic` has ``H_t = B_t' B_t``, of rank at most ``n_t < p``. Its
kernel ``K_t = B_t B_t'`` is ``n_t x n_t``; a shifted solve follows from the Woodbury identity,

.. math::

    (H_t + \rho I)^{-1} r = \bigl(r - B_t' (K_t + \rho I)^{-1} B_t r\bigr) / \rho,

one pass over the rows each way (the products :meth:`~regmtl.TaskData.linear` and
:meth:`~regmtl.TaskData.adjoint`) and two triangular solves per task with the Cholesky factor
of ``K_t + rho I``, kept until ``rho`` changes (``sum_t n_t^3 / 3`` operations, compiled). The
kernels cost ``sum_t n_t^2`` numbers, less than the rows of wide tasks; the curvature bound
``max_t lambda_max(K_t)`` comes from a few power steps per kernel.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..._jit import njit
from ...taskdata import TaskData
from .moments import feature_moments
from .quadratic import TaskQuadratic, quadratic_applies, quadratic_of, task_quadratic

__all__ = ["KernelQuadratic", "exact_solves_apply", "kernel_applies", "kernel_quadratic",
           "model_quadratic", "newton_budget", "solve_form"]

#: The kernels may hold at most this many times the numbers the design stores.
MAX_KERNEL_RATIO = 4.0
#: ADMM's over-relaxation factor on the squared loss in row-space form
#: (:func:`kernel_quadratic`): on the wide benchmark shapes (T = 30, p = 1000, trace and
#: sparse + low rank at alpha_max / 10 and / 100) 35-45% fewer iterations than none (1.8:
#: more than 1.6). The proximal Newton models (:func:`model_quadratic`) keep none.
RELAX = 1.6


def _stored(data: TaskData) -> int:
    X = data.X
    return int(X.nnz) if sp.issparse(X) else int(X.size)


def kernel_applies(data: TaskData) -> bool:
    """Row-space form pays: the rows are in this process, Gram form does not apply, and the
    kernels (``sum_t n_t^2`` numbers) are no larger than :data:`MAX_KERNEL_RATIO` times the
    design."""
    if not data.rows_local or data.n_obs == 0 or quadratic_applies(data):
        return False
    sizes = np.diff(data.indptr).astype(np.float64)
    return float(sizes @ sizes) <= MAX_KERNEL_RATIO * max(_stored(data), 1)


@njit(cache=True, nogil=True)
def _dense_kernels(X, indptr, offset, xm, root, koff, K, trace):  # pragma: no cover - compiled
    """``K_t = B_t B_t'`` of a dense design for every task (one centered, weighted copy of
    the task's rows and one BLAS product each), flat at ``koff``, and their traces."""
    for t in range(len(indptr) - 1):
        a, b, o = indptr[t], indptr[t + 1], offset[t]
        n = b - a
        if n == 0:
            continue
        B = np.ascontiguousarray(X[a - o:b - o]) - xm[:, t]
        for i in range(n):
            B[i] *= root[a + i]
        Kt = np.dot(B, B.T)
        K[koff[t]:koff[t] + n * n] = Kt.ravel()
        trace[t] = np.trace(Kt)


@njit(cache=True, nogil=True)
def _factor(K, koff, indptr, rho, out):  # pragma: no cover - compiled
    """``out_t = cholesky(K_t + rho I)`` (lower, row-major blocks at ``koff``) for every task."""
    for t in range(len(indptr) - 1):
        n = indptr[t + 1] - indptr[t]
        if n == 0:
            continue
        M = K[koff[t]:koff[t] + n * n].reshape((n, n)).copy()
        for i in range(n):
            M[i, i] += rho
        out[koff[t]:koff[t] + n * n] = np.linalg.cholesky(M).ravel()


@njit(cache=True, nogil=True, fastmath=True)
def _solve(F, koff, indptr, a, out):  # pragma: no cover - compiled
    """``out_t = (F_t F_t')^{-1} a_t`` for every task: forward then back substitution with the
    lower factors ``F`` (row-major blocks at ``koff``)."""
    for t in range(len(indptr) - 1):
        s, e = indptr[t], indptr[t + 1]
        n = e - s
        k0 = koff[t]
        for i in range(n):  # F y = a
            acc = a[s + i]
            row = k0 + i * n
            for j in range(i):
                acc -= F[row + j] * out[s + j]
            out[s + i] = acc / F[row + i]
        for j in range(n - 1, -1, -1):  # F' x = y, by columns of F' (rows of F: contiguous)
            row = k0 + j * n
            xj = out[s + j] / F[row + j]
            out[s + j] = xj
            for i in range(j):
                out[s + i] -= F[row + i] * xj


@njit(cache=True, nogil=True)
def _top_eigenvalues(K, koff, indptr, steps):  # pragma: no cover - compiled
    """The largest eigenvalue of every ``K_t`` by ``steps`` power steps from a fixed start
    (a Rayleigh quotient: a lower estimate)."""
    T = len(indptr) - 1
    top = np.zeros(T)
    for t in range(T):
        n = indptr[t + 1] - indptr[t]
        if n == 0:
            continue
        M = K[koff[t]:koff[t] + n * n].reshape((n, n))
        v = np.ones(n) + np.arange(n) / n
        for _ in range(steps):
            big = np.abs(v).max()  # (scaled: entries past 1e154 square to inf)
            if big == 0.0:
                break
            v = v / big
            v = v / np.sqrt(np.dot(v, v))
            w = np.dot(M, v)
            top[t] = np.dot(v, w)
            v = w
    return top


class KernelQuadratic(TaskQuadratic):
    """:class:`~regmtl.solvers.parts.quadratic.TaskQuadratic` of ``sum_r c_r (z_r - f_r)^2 / 2``
    (intercepts minimized out when ``center``) for tasks with fewer rows than features:
    ``H_t`` kept implicit (its products from the rows), the shifted solves from the Cholesky
    factors of the kernels plus ``rho I`` (see the module docstring). Holds the kernels and one
    factor: ``2 sum_t n_t^2`` numbers; with ``row_copy`` (a dense design of tasks with rows
    of their own) also a row-major copy of the centered rows, which its products read."""

    def __init__(self, data: TaskData, c: np.ndarray, z: np.ndarray, center: bool,
                 row_copy: bool = False):
        T, p = data.n_tasks, data.n_features
        csum = data.task_sums(c)
        safe = np.where(csum > 0, csum, 1.0)
        zm = data.task_sums(c * z) / safe if center else np.zeros(T)
        zc = z - zm[data.task_of]
        e = data.task_sums(c * zc * zc)
        xm = data.adjoint(c) / safe if center else np.zeros((p, T))
        self.data, self.c, self.root = data, c, np.sqrt(c)
        self._Xc = self._row_copy(data, xm) if row_copy else None
        self.xm = xm
        g = self._back(c * zc, xm)
        super().__init__(None, g, e, xm, zm, None, center)
        self.K, self.koff, self.trace = self._kernels(data, xm, self.root, self._Xc)
        top = _top_eigenvalues(self.K, self.koff, data.indptr, 50)
        self._L = max(1.01 * float(top.max(initial=0.0)), 1e-300)
        self._rho, self._F, self._g_norm = None, None, None

    @staticmethod
    def _row_copy(data: TaskData, xm: np.ndarray) -> np.ndarray | None:
        """The centered rows ``X_t - xm_t'`` of a dense design of tasks with rows of their
        own, row-major (None otherwise): the products of an iteration read each task's
        block contiguously, about 1.7 times faster than the column-major design's slices
        (T = 30, p = 1000, one BLAS thread), for one more copy of the design."""
        if sp.issparse(data.X) or data.shared:
            return None
        Xc = np.empty((data.n_obs, data.n_features))
        for t, (a, b, o) in enumerate(zip(data.indptr[:-1], data.indptr[1:], data.offset,
                                          strict=True)):
            np.subtract(data.X[a - o:b - o], xm[:, t], out=Xc[a:b])
        return Xc

    @staticmethod
    def _kernels(data: TaskData, xm: np.ndarray, root: np.ndarray,
                 Xc: np.ndarray | None = None):
        """Every task's ``K_t``, flat (row-major blocks at ``koff``), and its trace (from the
        centered rows ``Xc`` when given: one symmetric rank-k product per task)."""
        X = sp.csr_matrix(data.X) if sp.issparse(data.X) else data.X
        indptr, offset = data.indptr, data.offset
        sizes = np.diff(indptr)
        koff = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes.astype(np.int64) ** 2, out=koff[1:])
        K, trace = np.empty(int(koff[-1])), np.zeros(len(sizes))
        if Xc is not None:
            for t in range(len(sizes)):
                a, b = indptr[t], indptr[t + 1]
                B = Xc[a:b]
                Kt = B @ B.T  # (a symmetric rank-k update: B and B' share their buffer)
                Kt *= root[a:b, None] * root[None, a:b]
                K[koff[t]:koff[t + 1]] = Kt.ravel()
                trace[t] = np.trace(Kt)
            return K, koff[:-1], trace
        if not sp.issparse(X):  # one compiled pass, whatever the number of tasks
            _dense_kernels(np.asarray(X, dtype=np.float64), indptr, offset,
                           np.ascontiguousarray(xm), root, koff, K, trace)
            return K, koff[:-1], trace
        for t in range(len(sizes)):  # sparse rows: the sparse product per task, once
            a, b, o = indptr[t], indptr[t + 1], offset[t]
            if b == a:
                continue
            Xt, m = X[a - o:b - o], xm[:, t]
            A = Xt @ Xt.T
            A = A.toarray() if sp.issparse(A) else np.asarray(A)
            s = np.asarray(Xt @ m).ravel()
            Kt = A - s[:, None] - s[None, :] + float(m @ m)
            r = root[a:b]
            Kt *= r[:, None] * r[None, :]
            K[koff[t]:koff[t + 1]] = Kt.ravel()
            trace[t] = np.trace(Kt)
        return K, koff[:-1], trace

    def _rows(self, W: np.ndarray) -> np.ndarray:
        """``X_c W`` per task (flat): the centered scores."""
        if self._Xc is not None:
            f = np.empty(self.data.n_obs)
            for t, (a, b) in enumerate(zip(self.data.indptr[:-1], self.data.indptr[1:],
                                           strict=True)):
                np.matmul(self._Xc[a:b], W[:, t], out=f[a:b])
            return f
        return self.data.linear(W, -np.einsum("jt,jt->t", self.xm, W))

    def _back(self, u: np.ndarray, xm: np.ndarray | None = None) -> np.ndarray:
        """``X_c' u`` per task (p x T)."""
        if self._Xc is not None:
            G = np.empty((self.data.n_features, self.data.n_tasks))
            for t, (a, b) in enumerate(zip(self.data.indptr[:-1], self.data.indptr[1:],
                                           strict=True)):
                G[:, t] = u[a:b] @ self._Xc[a:b]
            return G
        xm = self.xm if xm is None else xm
        return self.data.adjoint(u) - xm * self.data.task_sums(u)

    def matvec(self, W: np.ndarray) -> np.ndarray:
        return self._back(self.c * self._rows(W))

    def diagonal(self) -> np.ndarray:
        """``diag(H_t)_j = sum_{r in t} c_r (x_rj - xm_jt)^2`` for every task (p x T), by one
        compiled pass over the design (:func:`~regmtl.solvers.parts.moments.feature_moments`);
        ``H_t`` itself is never formed."""
        return feature_moments(self.data, self.c, self.center)[1]

    def curvature_estimate(self) -> float:
        return self.lipschitz()

    def eigen_ready(self) -> bool:
        return True  # (the kernels are built with the quadratic; a factor costs n_t^3 / 3)

    def shifted_solve(self, R: np.ndarray, rho: float) -> np.ndarray:
        rho = float(rho)
        if rho != self._rho:  # factor K_t + rho I once per rho
            self._F = np.empty_like(self.K)
            _factor(self.K, self.koff, self.data.indptr, rho, self._F)
            self._rho = rho
        a = self.root * self._rows(R)
        out = np.empty_like(a)
        _solve(self._F, self.koff, self.data.indptr, a, out)
        return (R - self._back(self.root * out)) / rho

    def ridge(self, alpha: float) -> np.ndarray:
        return self.shifted_solve(self.g, max(float(alpha), 1e-12 * self._L))

    #: ADMM's start is ``RHO_ALPHA * alpha / ||g||_2`` times :meth:`typical_curvature`,
    #: within ``[RHO_CLIP[0], RHO_CLIP[1]]`` times it: invariant to the scales of X and y
    #: (``alpha / ||g||_2`` is ``alpha / alpha_max`` for the trace norm). Measured on the wide
    #: benchmark shapes (T = 30, n_t 60..260, p = 300 and 1000, trace and clustered): 25%
    #: fewer iterations than a start at a fixed fraction of the curvature, half as many at
    #: alpha_max / 10.
    RHO_ALPHA = 14.0
    RHO_CLIP = (1e-3, 10.0)

    def rho_start(self, alpha: float) -> float:
        if self._g_norm is None:
            self._g_norm = float(np.linalg.norm(self.g, 2))
        ratio = self.RHO_ALPHA * alpha / self._g_norm if self._g_norm > 0 else 1.0
        return float(np.clip(ratio, *self.RHO_CLIP)) * self.typical_curvature()

    def typical_curvature(self) -> float:
        """``sum_t tr H_t / (T p)`` (``tr H_t = tr K_t``): a statistic of the quadratic alone,
        the same whether rows are repeated or weighted."""
        total = float(self.trace.sum())
        return total / (len(self.trace) * self.g.shape[0]) if total > 0 else 1.0


def kernel_quadratic(data: TaskData, fit_intercept: bool) -> KernelQuadratic:
    """The squared loss of ``data`` in row-space form, built once per problem, with a
    row-major copy of the centered design (its iterations make many passes)."""
    def make():
        q = KernelQuadratic(data, data.c, data.y, fit_intercept, row_copy=True)
        q.relax = RELAX
        return q

    return data.memo(("kernel", bool(fit_intercept)), make)


def exact_solves_apply(data: TaskData) -> bool:
    """Each task's quadratic can be solved exactly at every step: Gram form
    (:func:`~regmtl.solvers.parts.quadratic.quadratic_applies`) or row-space form
    (:func:`kernel_applies`)."""
    return quadratic_applies(data) or kernel_applies(data)


def solve_form(data: TaskData, fit_intercept: bool) -> TaskQuadratic:
    """The squared loss's quadratic in the form its exact solves take (kept with the
    problem): Gram form where it applies, else row-space form."""
    if quadratic_applies(data):
        return task_quadratic(data, fit_intercept)
    return kernel_quadratic(data, fit_intercept)


def model_quadratic(data: TaskData, c: np.ndarray, z: np.ndarray, center: bool) -> TaskQuadratic:
    """The quadratic of ``sum_r c_r (z_r - f_r)^2 / 2`` (a proximal Newton model): in Gram
    form where it applies, else in row-space form."""
    if quadratic_applies(data) or not kernel_applies(data):
        return quadratic_of(data, c, z, center)
    return KernelQuadratic(data, c, z, center)


def newton_budget(data: TaskData) -> int:
    """Proximal-gradient iterations on the rows worth about eight row-space Newton models:
    how long plain FISTA runs on wide tasks before proximal Newton takes over (at least 100).

    In operations: an iteration reads the design twice (``4 nnz``) and takes the prox of a
    ``p x T`` matrix (``2 p T min(p, T) + 20 p T``); a model forms the kernels (``sum_t n_t^2
    p / 4`` for a dense design, BLAS-3 products running about four times faster per
    operation, or ``sum_t nnz_t^2 / n_t`` for a sparse one) and factors them
    (``sum_t n_t^3 / 3``)."""
    p, T = data.n_features, data.n_tasks
    sizes = np.diff(data.indptr).astype(np.float64)
    step = 4.0 * _stored(data) + 2.0 * p * T * min(p, T) + 20.0 * p * T
    if sp.issparse(data.X):
        X = sp.csr_matrix(data.X)
        per_row = np.diff(X.indptr).astype(np.float64)
        nnz = np.add.reduceat(per_row, np.minimum(data.indptr[:-1], len(per_row) - 1)) \
            if len(per_row) else np.zeros(T)
        nnz = np.where(sizes > 0, nnz, 0.0)
        build = float(np.sum(nnz * nnz / np.maximum(sizes, 1.0)))
    else:
        build = float(sizes @ sizes) * p / 4.0
    model = build + float(np.sum(sizes ** 3)) / 3.0
    return max(100, int(8.0 * model / max(step, 1.0)))
