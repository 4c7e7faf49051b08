r"""The data term as one quadratic per task, in Gram form.

For the squared loss (and for the weighted least-squares model of a proximal Newton step) the
data term of task t, with its intercept minimized out, is an exact quadratic in ``w_t``::

    sum_{r in t} c_r (z_r - b_t - x_r . w_t)^2 / 2
        = w_t' H_t w_t / 2 - g_t' w_t + e_t / 2,

    H_t = X_{c,t}' diag(c_t) X_{c,t},  g_t = X_{c,t}' (c_t z_{c,t}),  e_t = sum c_t z_{c,t}^2,

with ``X_c``, ``z_c`` centered by the task's weighted means (not centered without intercepts).
When a task has more rows than features, iterating on ``H_t`` (p x p) costs less than a pass
over its rows, and the curvature is known exactly (no line search). The per-task Grams are
built once, by one pass over the stacked rows; a shared design whose rows weigh the same within
each task needs only one Gram, ``H_t = c_t H``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..._jit import njit
from ...blocks import Kept, TaskBlocks
from ...penalties.base import inner
from ...taskdata import TaskData, nbytes
from . import small
from ._kernels import active_gram
from .moments import feature_moments
from .task_columns import centered_sparse_gram

__all__ = ["TaskQuadratic", "BlockQuadratic", "lanczos_top", "quadratic_applies", "quadratic_of",
           "task_quadratic", "weighted_rows", "MAX_FEATURES", "TASK_GRAM_ROWS"]

#: Largest number of features for which per-task Grams are formed.
MAX_FEATURES = 2000
#: Rows per task and feature (counted by their weights over the smallest one) above which
#: coordinate descent on the squared loss runs on its per-task Grams
#: (``m > TASK_GRAM_ROWS T p``), and at or below which the squared loss's small route takes
#: a small fit
#: (:mod:`~regmtl.solvers.methods.small_squares`): one boundary between the two.
TASK_GRAM_ROWS = 1.5


def quadratic_applies(data: TaskData) -> bool:
    """Gram form pays: p at most :data:`MAX_FEATURES`, and the Grams no larger than the data
    (one Gram for a shared design; else ``T p^2 <= N p``)."""
    if data.n_features > MAX_FEATURES:
        return False
    p = data.n_features
    if data.shared:
        return p <= data.X.shape[0]
    return data.n_tasks * p <= data.n_obs


def weighted_rows(data: TaskData) -> float:
    """The size a route is chosen by: the weights' sum over the smallest positive weight
    (missing labels and zero weights count 0). Rows of weight 1 count once each and a row of
    integer weight k as the k rows it repeats; weights times any constant give the same size,
    so that a choice made on it sends them to one solver (the weights' sum alone sent
    ``2 * ones`` and ``ones`` apart, and with them a cross-validated alpha)."""
    s = np.ones(data.n_obs) if data.sample_weight is None else data.sample_weight
    s = s if data.observed is None else s[data.observed]
    live = s[s > 0]
    return float(live.sum() / live.min()) if live.size else 0.0


def task_grams(X: np.ndarray, c: np.ndarray, indptr: np.ndarray, offset: np.ndarray,
               xm: np.ndarray) -> np.ndarray:
    """``H[t] = X_{c,t}' diag(c_t) X_{c,t}`` (T, p, p), centered by ``xm`` (p x T).

    Sparse designs: the sparse product per task, then the centering's rank-one terms; many
    small tasks: one compiled pass over the stacked rows (dense designs whose tasks average 64
    rows or more go through :func:`dense_task_moments` instead). Built once per problem."""
    T, p = len(indptr) - 1, X.shape[1]
    H = np.zeros((T, p, p))
    if sp.issparse(X):  # per task: the sparse product, then the centering's rank-one term
        Xr = sp.csr_matrix(X)
        for t in range(T):
            a, b, o = indptr[t], indptr[t + 1], offset[t]
            H[t] = centered_sparse_gram(Xr[a - o:b - o], c[a:b], xm[:, t])
        return H
    active_gram(np.asfortranarray(X), c, indptr, offset, np.ascontiguousarray(xm), H)
    return H


def dense_task_moments(X: np.ndarray, c: np.ndarray, zc: np.ndarray, indptr: np.ndarray,
                       offset: np.ndarray, csum: np.ndarray, center: bool):
    """``(H, xm, g, L)`` of a dense design in one pass over each task's block (one symmetric
    BLAS product per task, the block read from memory once).

    ``H[t] = X_{c,t}' diag(c_t) X_{c,t}`` (T, p, p), ``xm`` the weighted means (p x T, zero
    unless ``center``), ``g[:, t] = X_{c,t}' (c_t zc_t)`` for targets ``zc`` already centered
    per task, and ``L`` the centered diagonal (p x T), exactly 0 for a column constant within
    a task. A task whose rows weigh the same takes the plain Gram ``X_t' X_t`` (a rank-k
    update: half a general product), scaled; other weights one copy ``diag(sqrt c_t) X_t``
    and its rank-k update. The diagonal comes from the Gram except where the column's mean
    dwarfs its spread (``L < 1e-4 m^2 sum c``, where one pass loses digits): those columns
    are summed again around their mean."""
    T, p = len(indptr) - 1, X.shape[1]
    H, xm, g, L = np.empty((T, p, p)), np.zeros((p, T)), np.empty((p, T)), np.empty((p, T))
    idx = np.arange(p)
    for t in range(T):
        a, b, o = indptr[t], indptr[t + 1], offset[t]
        Xt, ct, cs, zt = X[a - o:b - o], c[a:b], csum[t], zc[a:b]
        Ht = H[t]
        if b > a and ct[0] == ct.min() == ct.max():  # one weight: the plain Gram, scaled
            w = ct[0]
            np.matmul(Xt.T, Xt, out=Ht)
            Ht *= w
            s = w * Xt.sum(axis=0)
            gt = w * (Xt.T @ zt)
        else:
            r = np.sqrt(ct)
            Z = Xt * r[:, None]  # the one weighted copy
            np.matmul(Z.T, Z, out=Ht)
            s = Z.T @ r
            gt = Z.T @ (r * zt)
        m = s / cs if center and cs > 0 else np.zeros(p)
        if center:  # sum_r c_r (x_r - m)(x_r - m)' = X' C X - cs m m' (s = cs m)
            Ht -= cs * np.outer(m, m)
        d = Ht[idx, idx]
        big = m * m * cs
        redo = np.flatnonzero(d < 1e-4 * big)
        if redo.size:
            d[redo] = ct @ (Xt[:, redo] - m[redo]) ** 2
        keep = d > 1e-10 * big
        keep &= d > 0.0
        if not keep.all():
            Ht *= keep[:, None] & keep[None, :]
        d = np.where(keep, d, 0.0)
        Ht[idx, idx] = d
        xm[:, t], L[:, t] = m, d
        g[:, t] = np.where(keep, gt, 0.0)
    return H, xm, g, L


@njit(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"},
      twin=small.block_matvec_columns)
def block_matvec_columns(H, W, out):
    """``out[:, t] = H[t] @ W[:, t]`` for T small blocks (``H`` (T, p, p), ``W`` and ``out``
    p x T, any strides, written in place): one compiled loop, where a batched NumPy product
    pays a call per block."""
    p, T = W.shape
    w = np.empty(p)  # task t's column, gathered once: the inner loop runs on contiguous rows
    for t in range(T):
        for j in range(p):
            w[j] = W[j, t]
        for i in range(p):
            acc = 0.0
            for j in range(p):
                acc += H[t, i, j] * w[j]
            out[i, t] = acc


def _matvec_rows(H: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``H[t] @ V[t]`` for every block (T, p)."""
    if H.shape[1] > 48:  # blocks large enough for BLAS to pay
        return np.matmul(H, V[:, :, None])[:, :, 0]
    out = np.empty_like(V)
    block_matvec_columns(H, np.ascontiguousarray(V).T, out.T)
    return out


def lanczos_top(H: np.ndarray, steps: int = 12, seed: int = 0) -> np.ndarray:
    """The largest Ritz value of each ``H[t]`` (T, p, p symmetric) after ``min(steps, p)``
    Lanczos steps with full reorthogonalization, all tasks at once (batched products).

    A Ritz value never exceeds the eigenvalue it approximates; its error falls like
    ``exp(-4 k sqrt(gap))``, far faster than a power iteration's ``(lambda_2/lambda_1)^(2k)``.
    A task whose Krylov space closes early (an invariant subspace) keeps exact values."""
    T, p = H.shape[:2]
    k = min(steps, p)
    v = np.random.default_rng(seed).standard_normal((T, p))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    Q = np.zeros((T, k, p))
    diag, off = np.zeros((T, k)), np.zeros((T, k))
    for j in range(k):
        Q[:, j] = v
        w = _matvec_rows(H, v)
        diag[:, j] = np.einsum("ti,ti->t", w, v)
        # reorthogonalize against every Lanczos vector
        w -= np.matmul(np.matmul(Q[:, :j + 1], w[:, :, None]).transpose(0, 2, 1),
                       Q[:, :j + 1])[:, 0]
        off[:, j] = np.linalg.norm(w, axis=1)
        live = off[:, j] > 1e-12 * np.maximum(np.abs(diag[:, j]), 1e-300)
        off[~live, j] = 0.0
        v = np.where(live[:, None], w / np.where(live, off[:, j], 1.0)[:, None], 0.0)
    idx = np.arange(k)
    tri = np.zeros((T, k, k))
    tri[:, idx, idx] = diag
    tri[:, idx[:-1], idx[1:]] = tri[:, idx[1:], idx[:-1]] = off[:, :-1]
    return np.linalg.eigvalsh(tri)[:, -1]


class TaskQuadratic:
    """``q(W) = sum_t (w_t' H_t w_t / 2 - g_t' w_t + e_t / 2)`` (see the module docstring).

    Parameters
    ----------
    H : ndarray of shape (T, p, p), or (p, p) with ``scale`` (T,) so that ``H_t = scale_t H``
    g : ndarray of shape (p, T)
    e : ndarray of shape (T,)
    xm, zm : the centers (p x T, and T): the intercepts are ``zm_t - xm_t . w_t``.
    """

    #: whether the arrays are lazy, on task blocks held elsewhere (:class:`BlockQuadratic`):
    #: a solver then builds several iterations as one graph between the numbers it needs
    lazy = False

    def __init__(self, H, g, e, xm, zm, scale=None, center=True):
        self.H, self.g, self.e, self.xm, self.zm, self.scale = H, g, e, xm, zm, scale
        self.center = center
        self._L = self._eig = None

    def __sizeof__(self) -> int:
        """Bytes held (the Grams above all): what Dask weighs before moving it."""
        return object.__sizeof__(self) + nbytes(vars(self))

    def settle(self, *arrays):
        """The iterates as they are (in memory there is nothing to materialize; see
        :meth:`BlockQuadratic.settle`)."""
        return arrays

    def numbers(self, *values) -> tuple[float, ...]:
        """Scalars of the iteration as floats (on blocks: computed in one round trip)."""
        return tuple(float(v) for v in values)

    def arrays(self, *values) -> tuple[np.ndarray, ...]:
        """Arrays of the iteration as NumPy arrays (on blocks: brought here, one round
        trip)."""
        return tuple(np.asarray(v) for v in values)

    def hold(self, cls: type, *args, several: bool = True) -> Kept | None:
        """``cls(parts, *args)`` kept where the Grams are (:meth:`~regmtl.blocks.TaskBlocks.keep`):
        in memory one object here, ``parts = [self]``."""
        return Kept([cls([self], *args)])

    def diagonal(self) -> np.ndarray:
        """``diag(H_t)`` for every task (p x T)."""
        if self.scale is not None:
            return np.outer(np.diag(self.H), self.scale)
        return np.einsum("tii->it", self.H).copy()

    @classmethod
    def from_data(cls, data: TaskData, c: np.ndarray, z: np.ndarray,
                  center: bool) -> TaskQuadratic:
        """The quadratic of ``sum_r c_r (z_r - f_r)^2 / 2`` with the intercepts minimized out
        (``center``) or fixed at 0."""
        X = data.X
        p, T = data.n_features, data.n_tasks
        csum = data.task_sums(c)
        zm = data.task_sums(c * z) / np.where(csum > 0, csum, 1.0) if center else np.zeros(T)
        zc = z - zm[data.task_of]
        e = data.task_sums(c * zc * zc)
        scale = None
        # a shared design whose rows weigh the same within each task: one Gram, scaled
        uniform = data.shared and np.array_equal(
            c, np.repeat(c[data.indptr[:-1]], np.diff(data.indptr)))
        if not uniform and not sp.issparse(X) and data.n_obs >= 64 * T:
            H, xm, g, _ = dense_task_moments(X, c, zc, data.indptr, data.offset, csum, center)
            return cls(H, g, e, xm, zm, None, center)
        xm = data.adjoint(c) / csum if center else np.zeros((p, T))
        if uniform:
            ct = c[data.indptr[:-1]]
            m = xm[:, 0]
            XtX = X.T @ X
            XtX = XtX.toarray() if sp.issparse(XtX) else XtX
            H = XtX - X.shape[0] * np.outer(m, m) if center else XtX
            scale = ct
        else:
            H = task_grams(X, c, data.indptr, data.offset, xm)
            # the diagonal from two passes (accurate), and a column constant within a task (its
            # centered curvature at rounding level) exactly out of that task's quadratic
            L = feature_moments(data, c, center)[1]
            idx = np.arange(p)
            keep = (L > 0.0).T
            H *= keep[:, :, None] & keep[:, None, :]
            H[:, idx, idx] = L.T
        g = data.adjoint(c * zc) - (xm * data.task_sums(c * zc) if center else 0.0)
        if scale is None:
            g = np.where(keep.T, g, 0.0)
        return cls(H, np.asarray(g, dtype=np.float64), e, xm, zm, scale, center)

    # ------------------------------------------------------------------ the quadratic
    def matvec(self, W: np.ndarray) -> np.ndarray:
        """``H_t w_t`` for every task (p x T)."""
        if self.scale is not None:
            return (self.H @ W) * self.scale
        return _matvec_rows(self.H, W.T).T

    def matvec_into(self, W: np.ndarray, out: np.ndarray) -> np.ndarray:
        """:meth:`matvec` written into ``out`` (p x T, as W): no array allocated, where a
        worker's allocator returns every large array to the system (Dask's
        ``MALLOC_TRIM_THRESHOLD_``) and faults its pages in again at the next."""
        if self.scale is not None:
            np.matmul(self.H, W, out=out)
            out *= self.scale
        elif self.H.shape[1] > 48:
            out[...] = self.matvec(W)
        else:
            block_matvec_columns(self.H, W, out)
        return out

    def value(self, W: np.ndarray, HW: np.ndarray | None = None) -> float:
        HW = self.matvec(W) if HW is None else HW
        return float(0.5 * inner(W, HW) - inner(self.g, W) + 0.5 * self.e.sum())

    def lipschitz(self) -> float:
        """``max_t lambda_max(H_t)``, the curvature bound of the data term: exact (one
        eigendecomposition per task, or of the one shared Gram) for p <= 32 or while that
        costs less than ~2e6 operations; else the top Ritz values of :func:`lanczos_top` (all
        tasks at once) times 1.01 (a Ritz value lies below its eigenvalue, and 12 steps bring
        it within ~1e-6 of it on a random start)."""
        if self._L is None:
            if self.H.size == 0:  # no feature left (an all-zero design): no curvature
                top = 0.0
            elif self.scale is not None:
                top = np.linalg.eigvalsh(self.H)[-1] * self.scale.max()
            elif self.H.shape[1] <= 32 or self.H.shape[0] * self.H.shape[1] ** 3 <= 2e6:
                top = np.linalg.eigvalsh(self.H)[:, -1].max()
            else:
                top = 1.01 * float(lanczos_top(self.H).max())
            self._L = max(float(top), 1e-300)
        return self._L

    def curvature_estimate(self) -> float:
        """A cheap lower estimate of ``max_t lambda_max(H_t)`` (a search on the step size makes
        up for the rest): exact when :meth:`lipschitz` is known or costs under ~2e6
        operations; else, with blocks of at most 32 features, the largest Rayleigh quotient
        after four batched power steps (many small blocks: one pass over the Grams each),
        or the top Ritz value after 5 Lanczos steps."""
        H = self.H
        T, p = H.shape[0], H.shape[1]
        if self._L is not None or self.scale is not None or T * p**3 <= 2e6:
            return self.lipschitz()
        if p <= 32:
            v = np.random.default_rng(0).standard_normal((T, p))
            for _ in range(4):
                v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
                w = _matvec_rows(H, v)
                top = float(np.einsum("ti,ti->t", v, w).max())
                v = w
            return max(top, 1e-300)
        return max(float(lanczos_top(H, steps=5).max()), 1e-300)

    def eigen(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lam, V)``: ``H_t = V_t diag(lam_t) V_t'`` for every task (T x p, T x p x p),
        computed once and kept (every ridge and every shifted solve reuses it)."""
        if self._eig is None:
            H = self.H[None] * self.scale[:, None, None] if self.scale is not None else self.H
            lam, V = np.linalg.eigh(H)
            self._eig = (np.maximum(lam, 0.0), V)
        return self._eig

    def eigen_ready(self) -> bool:
        """Whether :meth:`eigen` has been computed (later shifted solves cost no setup)."""
        return self._eig is not None

    def ridge(self, alpha: float) -> np.ndarray:
        """``argmin q(W) + alpha/2 ||W||_F^2``: ``w_t = (H_t + alpha I)^+ g_t`` (p x T), from one
        eigendecomposition per task kept for every later alpha (the minimum-norm solution at
        ``alpha = 0``, where ``H_t`` may be singular)."""
        lam, V = self.eigen()
        Vg = np.matmul(V.transpose(0, 2, 1), self.g.T[:, :, None])[:, :, 0]
        den = lam + alpha
        floor = 1e-12 * np.maximum(lam[:, -1:], 1e-300)
        coef = np.where(den > floor, Vg / np.where(den > floor, den, 1.0), 0.0)
        return np.matmul(V, coef[:, :, None])[:, :, 0].T

    def shifted_solve(self, R: np.ndarray, rho: float) -> np.ndarray:
        """``(H_t + rho I)^{-1} r_t`` for every task (p x T), ``rho > 0``: two batched
        products with the kept eigenvectors, whatever ``rho``."""
        lam, V = self.eigen()
        VR = np.matmul(V.transpose(0, 2, 1), R.T[:, :, None])[:, :, 0]
        return np.matmul(V, (VR / (lam + rho))[:, :, None])[:, :, 0].T

    #: ADMM starts its penalty parameter at this fraction of :meth:`typical_curvature`
    #: (measured on the long benchmark shape and School's trace-norm path: 17% fewer
    #: iterations than at 1, 25% fewer than at 3).
    rho_scale = 0.3
    #: ADMM's over-relaxation factor (none here; the squared loss in row-space form sets
    #: :data:`~regmtl.solvers.parts.kernel_quadratic.RELAX`).
    relax = 1.0

    def rho_start(self, alpha: float) -> float:  # noqa: ARG002 - the Gram form ignores alpha
        """Where ADMM starts its penalty parameter: :attr:`rho_scale` times
        :meth:`typical_curvature`."""
        return self.rho_scale * self.typical_curvature()

    def typical_curvature(self) -> float:
        """The median of the positive eigenvalues of the ``H_t``: where a splitting method
        starts its penalty parameter."""
        lam = self.eigen()[0]
        pos = lam[lam > 1e-12 * max(float(lam.max(initial=0.0)), 1e-300)]
        return float(np.median(pos)) if pos.size else 1.0

    def intercepts(self, W: np.ndarray) -> np.ndarray:
        return self.zm - np.einsum("jt,jt->t", self.xm, W)

    def gap_terms(self, W: np.ndarray, HW: np.ndarray):
        """``(RR, G, TT, YT)`` of the residual dual point at W: ``RR = sum_r c_r R_r^2``,
        ``G = X_c^T (c R)``, per task ``TT_t = sum c R^2`` and ``YT_t = sum c z R``."""
        RR, G, TT, YT, _ = self.gap_sums(W, HW)
        return float(RR), G, TT, YT

    def gap_sums(self, W: np.ndarray, HW: np.ndarray):
        """``(RR, G, TT, YT, B)``: :meth:`gap_terms` with ``RR`` left an array scalar (lazy on
        blocks, for :meth:`numbers` to bring home with others), and ``B`` the sum that
        :meth:`rounding` scales by ``1e-13``."""
        G, TT, YT, big = self.gap_per_task(W, HW)
        return TT.sum(), G, TT, YT, big.sum()

    def gap_per_task(self, W: np.ndarray, HW: np.ndarray):
        """``(G, TT, YT, B_t)``: the arrays of :meth:`gap_sums`, and per task the terms that
        sum to ``B``."""
        gw = np.einsum("jt,jt->t", self.g, W)
        whw = np.einsum("jt,jt->t", W, HW)
        TT = self.e - 2.0 * gw + whw
        big = self.e + 2.0 * np.abs(gw) + np.abs(whw)
        return self.g - HW, TT, self.e - gw, big

    def rounding(self, W: np.ndarray, HW: np.ndarray) -> float:
        """A bound on the rounding error of ``RR`` formed from the Gram sums."""
        big = self.e + 2.0 * np.abs(np.einsum("jt,jt->t", self.g, W))
        big += np.abs(np.einsum("jt,jt->t", W, HW))
        return 1e-13 * float(big.sum())


def quadratic_of(data: TaskBlocks, c, z, center: bool) -> TaskQuadratic:
    """:meth:`TaskQuadratic.from_data` where the rows are local, else (task blocks held
    elsewhere, ``data.rows_local`` False) a :class:`BlockQuadratic` built block by block where
    the rows are."""
    if not data.rows_local:
        return BlockQuadratic(data, data.settle(data.blockwise(_block_quadratic, c, z, center,
                                                               out="object"))[0])
    return TaskQuadratic.from_data(data, c, z, center)


def task_quadratic(data: TaskBlocks, fit_intercept: bool) -> TaskQuadratic:
    """The squared loss of ``data`` in Gram form, built once per problem (paths, warm
    starts and the folds' refits reuse it)."""
    return data.memo(("quadratic", bool(fit_intercept)),
                     lambda: quadratic_of(data, data.c, data.y, fit_intercept))


def _block_quadratic(block: TaskData, c, z, center: bool) -> TaskQuadratic:
    return TaskQuadratic.from_data(block, c, z, center)


class BlockQuadratic(TaskQuadratic):
    """The quadratic of a problem held as task blocks elsewhere (``data.blockwise``): one
    :class:`TaskQuadratic` per block, kept where the block's rows are; ``g``, ``e``, ``xm`` and
    ``zm`` are arrays chunked by block (Dask arrays on Dask), and every product ``H_t w_t``
    runs on the blocks. The value, the certificate's sums and the intercepts are the parent's
    array expressions; reductions over tasks are the only traffic between blocks."""

    lazy = True

    def __init__(self, data, parts):
        self.data, self.parts = data, parts
        p = data.n_features
        g, xm, e, zm = data.blockwise(_block_parts, parts,
                                      out=[("coef", p), ("coef", p), "tasks", "tasks"])
        g, xm, e, zm = data.settle(g, xm, e, zm)
        super().__init__(None, g, e, xm, zm, None, True)

    def settle(self, *arrays):
        """The iterates computed and kept on the blocks (Dask's ``persist``), so that every
        iteration starts from numbers, not from the history of operations."""
        return self.data.settle(*arrays)

    def numbers(self, *values) -> tuple[float, ...]:
        return self.data.numbers(*values)

    def arrays(self, *values) -> tuple[np.ndarray, ...]:
        return self.data.arrays(*values)

    def hold(self, cls: type, *args, several: bool = True):
        """``cls(parts, *args)`` on every worker that holds blocks, ``parts`` its blocks'
        quadratics and its pieces of the arguments (:meth:`~regmtl.blocks.TaskBlocks.keep`);
        None where they cannot be kept there."""
        return self.data.keep(cls, self.parts, *args, several=several)

    def matvec(self, W):
        return self.data.blockwise(_block_matvec, self.parts, W, out=("coef", W.shape[0]))

    def diagonal(self):
        return self.data.blockwise(_block_diagonal, self.parts,
                                   out=("coef", self.data.n_features))

    def lipschitz(self) -> float:
        if self._L is None:
            tops = self.data.blockwise(_block_lipschitz, self.parts, out="scalar")
            self._L = max(float(np.max(np.asarray(tops))), 1e-300)
        return self._L

    def curvature_estimate(self) -> float:
        if self._L is not None:
            return self._L
        tops = self.data.blockwise(_block_curvature, self.parts, out="scalar")
        return max(float(np.max(np.asarray(tops))), 1e-300)

    def ridge(self, alpha: float):
        return self.data.blockwise(_block_ridge, self.parts, alpha,
                                   out=("coef", self.data.n_features))

    def shifted_solve(self, R, rho: float):
        return self.data.blockwise(_block_shifted_solve, self.parts, R, rho,
                                   out=("coef", self.data.n_features))

    def typical_curvature(self) -> float:
        meds = self.data.blockwise(_block_typical_curvature, self.parts, out="scalar")
        self._blocks_eig = True  # each block keeps its own eigendecomposition
        return float(np.median(np.asarray(meds)))

    def eigen_ready(self) -> bool:
        return getattr(self, "_blocks_eig", False)


def _block_parts(block, q):
    return q.g, q.xm, q.e, np.asarray(q.zm, dtype=np.float64)


def _block_matvec(block, q, W):
    return q.matvec(np.asarray(W))


def _block_diagonal(block, q):
    return q.diagonal()


def _block_lipschitz(block, q):
    return np.float64(q.lipschitz())


def _block_curvature(block, q):
    return np.float64(q.curvature_estimate())


def _block_ridge(block, q, alpha):
    return q.ridge(alpha)


def _block_shifted_solve(block, q, R, rho):
    return q.shifted_solve(np.asarray(R), rho)


def _block_typical_curvature(block, q):
    return np.float64(q.typical_curvature())
