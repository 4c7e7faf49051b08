r"""Penalties for tasks ordered in time: disease-progression models (MALSAR's TGL and cFSGL).

=========================================  ====================================================
penalty                                    Omega(W)
=========================================  ====================================================
``TemporalGroupLasso(smooth_weight=s,      alpha (sum_j ||W_j||_2 + s / 2 ||W R||_F^2
ridge_weight=r)``                          + r / 2 ||W||_F^2)
``FusedGroupLasso(fused_weight=f,          alpha (sum_j ||W_j||_2 + f sum_j sum_t |W_jt - W_j,t+1|
l1_weight=l)``                             + l ||W||_1)
=========================================  ====================================================

Task t is the t-th task of ``tasks_`` (list order, the columns of a shared ``Y``, or the sorted
task labels of a long table): the tasks are time points in that order, equally spaced. ``R``
(T x (T - 1)) takes the differences of consecutive tasks, ``(W R)_{:t} = w_t - w_{t+1}``, so
``||W R||_F^2 = tr(W L W^T)`` with ``L = R R^T`` the Laplacian of the chain of tasks (Zhou,
Yuan, Liu & Ye 2011; Zhou, Liu, Narayan & Ye 2012).

Both penalties act on each row W_j (a feature across time) separately:

- the temporal group lasso's prox is exact in the eigenbasis of ``L``, the orthonormal DCT-II
  (eigenvalues ``4 sin^2(pi i / (2T))``, never a T x T matrix): a row is zero when
  ``||v|| <= step alpha``, otherwise its DCT coefficients are divided by
  ``1 + step alpha (s lambda_i + r) + sigma``, with ``sigma`` the root of a scalar equation
  solved by Newton's method to rounding (monotone after the first step);
- the fused group lasso's prox is the group soft-thresholding of the soft-thresholding of the
  1-D total-variation prox (Friedman, Hastie, Hoefling & Tibshirani 2007; Zhou et al. 2012),
  the latter by Condat's direct algorithm (exact, O(T)).

Both are norms plus (for the temporal group lasso) a quadratic, so fits certify with a duality
gap: the temporal group lasso's conjugate is a trust-region problem per row in the DCT basis
(Newton on the secular equation); the fused group lasso's dual ball is the Minkowski sum of
the three parts' balls, whose gauge ``N*(g)`` is the root of
``||soft(TV-prox(g, t f), t l)||_2 = t`` (the distance of g to ``t`` times the ball of the
total variation and L1 parts), found by Newton's method on that convex decreasing function.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.fft import dct, idct

from .._jit import njit
from .base import NormPenalty, Penalty, check_positive, inner, is_blocked
from .dof import DegreesOfFreedom, TaskCoupling
from .gathered import by_rows, computed, of_rows, of_whole

__all__ = ["TemporalGroupLasso", "FusedGroupLasso", "tv_prox", "chain_eigenvalues",
           "refuse_ordered_classes"]

_EPS = np.finfo(np.float64).eps


def refuse_ordered_classes(penalty: Penalty) -> Penalty:
    """The refusal of a penalty over tasks ordered in time on the multinomial loss's classes'
    layout, where its chain would run through a task's class columns."""
    raise ValueError(
        f"{type(penalty).__name__} does not fit the multinomial loss (a task with more than "
        "two classes): it orders the columns of W in time, and there a task's classes sit "
        "side by side. Use 'l21', 'trace', MeanRegularized or a GraphLaplacian with "
        "chain_graph(n_tasks) (each class joined to the same class of the next task).")


# ----------------------------------------------------------------------------- kernels
@njit(cache=True)
def _tv1d(y, lam, x):
    """Condat's direct algorithm: ``x = argmin 1/2 ||x - y||^2 + lam sum_k |x_{k+1} - x_k|``.

    It scans y once, keeping the current segment's range of feasible values ``[vmin, vmax]``
    and the running dual sums ``umin``, ``umax``; a segment is closed when its value can no
    longer stay constant (Condat 2013, "A direct algorithm for 1-D total variation denoising",
    IEEE Signal Processing Letters 20(11))."""
    n = y.shape[0]
    if n == 0:
        return
    if lam <= 0.0 or n == 1:
        for i in range(n):
            x[i] = y[i]
        return
    # constant at the mean exactly when every partial sum of y - mean is within lam (the
    # dual's condition): decided here, where the scan below would lose digits to a huge lam
    mean = 0.0
    for i in range(n):
        mean += y[i]
    mean /= n
    acc = 0.0
    widest = 0.0
    for i in range(n - 1):
        acc += y[i] - mean
        widest = max(widest, abs(acc))
    if lam >= widest:
        for i in range(n):
            x[i] = mean
        return
    k = 0
    k0 = 0
    kminus = 0
    kplus = 0
    vmin = y[0] - lam
    vmax = y[0] + lam
    umin = lam
    umax = -lam
    while True:
        while k == n - 1:  # the end: close the segments that the last value decides
            if umin < 0.0:
                for i in range(k0, kminus + 1):
                    x[i] = vmin
                k0 = kminus + 1
                k = k0
                kminus = k0
                vmin = y[k0]
                umin = lam
                umax = vmin + umin - vmax
            elif umax > 0.0:
                for i in range(k0, kplus + 1):
                    x[i] = vmax
                k0 = kplus + 1
                k = k0
                kplus = k0
                vmax = y[k0]
                umax = -lam
                umin = vmax + umax - vmin
            else:
                vmin += umin / (k - k0 + 1)
                for i in range(k0, k + 1):
                    x[i] = vmin
                return
        umin += y[k + 1] - vmin
        if umin < -lam:  # a jump down: the segment k0..kminus ends at vmin
            for i in range(k0, kminus + 1):
                x[i] = vmin
            k0 = kminus + 1
            k = k0
            kminus = k0
            kplus = k0
            vmin = y[k0]
            vmax = vmin + 2.0 * lam
            umin = lam
            umax = -lam
            continue
        umax += y[k + 1] - vmax
        if umax > lam:  # a jump up: the segment k0..kplus ends at vmax
            for i in range(k0, kplus + 1):
                x[i] = vmax
            k0 = kplus + 1
            k = k0
            kminus = k0
            kplus = k0
            vmax = y[k0]
            vmin = vmax - 2.0 * lam
            umin = lam
            umax = -lam
            continue
        k += 1
        if umin >= lam:
            kminus = k
            vmin += (umin - lam) / (kminus - k0 + 1)
            umin = lam
        if umax <= -lam:
            kplus = k
            vmax += (umax + lam) / (kplus - k0 + 1)
            umax = -lam


@njit(cache=True)
def tv_row(y, lam, x):
    """Condat's algorithm on one row ``y`` into ``x``: the kernel of :func:`tv_prox`, for other
    jitted code (the nonconvex fused group lasso's stages)."""
    _tv1d(y, lam, x)


@njit(cache=True)
def _fused_row(v, c_tv, c_l1, c_group, out):
    """The prox of ``c_group ||u||_2 + c_tv TV(u) + c_l1 ||u||_1`` at the row v, into out."""
    _tv1d(v, c_tv, out)
    nrm = 0.0
    for i in range(out.shape[0]):
        a = abs(out[i]) - c_l1
        out[i] = 0.0 if a <= 0.0 else (a if out[i] > 0.0 else -a)
        nrm += out[i] * out[i]
    nrm = np.sqrt(nrm)
    scale = 0.0 if nrm <= c_group else 1.0 - c_group / nrm
    for i in range(out.shape[0]):
        out[i] *= scale


@njit(cache=True)
def _fused_prox(V, c_tv, c_l1, c_group):
    out = np.empty_like(V)
    for j in range(V.shape[0]):
        _fused_row(V[j], c_tv, c_l1, c_group, out[j])
    return out


@njit(cache=True)
def _fused_dual_norm_row(g, f, l1, x):
    """``N*(g) = min {t >= 0: ||soft(TV-prox(g, t f), t l1)||_2 <= t}``, the dual norm of
    ``||u||_2 + f TV(u) + l1 ||u||_1``. ``d(t) = ||soft(...)||`` is the distance of g to
    ``t (f B_TV* + l1 B_inf)``, convex and nonincreasing, so Newton's method on ``d(t) - t``
    from below increases monotonically to the root; ``d'(t) = -<x, g - x> / (d t)`` with x
    the residual (the set's support point is ``g - x``). Returns an upper bound of the root
    within rounding (the last point with ``d(t) <= t`` when the iteration ends above it)."""
    n = g.shape[0]
    nrm = 0.0
    tv = 0.0
    l1n = 0.0
    for i in range(n):
        nrm += g[i] * g[i]
        l1n += abs(g[i])
        if i + 1 < n:
            tv += abs(g[i + 1] - g[i])
    nrm = np.sqrt(nrm)
    if nrm == 0.0 or (f == 0.0 and l1 == 0.0):
        return nrm
    lo = 0.0
    hi = nrm  # N* <= ||.||_2 since the norm is >= ||.||_2: d(hi) <= hi
    t = nrm * nrm / (nrm + f * tv + l1 * l1n)  # Newton's first step from t = 0
    for _ in range(200):
        _tv1d(g, t * f, x)
        d = 0.0
        inner = 0.0
        for i in range(n):
            a = abs(x[i]) - t * l1
            xi = 0.0 if a <= 0.0 else (a if x[i] > 0.0 else -a)
            d += xi * xi
            inner += xi * (g[i] - xi)
        d = np.sqrt(d)
        phi = d - t
        if phi <= 0.0:
            hi = t
        else:
            lo = t
            if phi <= 4.0 * 2.220446049250313e-16 * t:
                return t + phi  # d is nonincreasing: d(t + phi) <= d(t) = t + phi
        if phi == 0.0 or hi - lo <= 2.220446049250313e-16 * hi:
            return hi
        if d > 0.0:
            t_new = t - phi / (-inner / (d * t) - 1.0)
        else:
            t_new = 0.5 * (lo + hi)
        if not (lo < t_new < hi):
            t_new = 0.5 * (lo + hi)
        t = t_new
    return hi


@njit(cache=True)
def _fused_dual_norms(G, f, l1):
    out = np.empty(G.shape[0])
    x = np.empty(G.shape[1])
    for j in range(G.shape[0]):
        out[j] = _fused_dual_norm_row(G[j], f, l1, x)
    return out


@njit(cache=True)
def _temporal_prox_dct(Vh, a, c):
    """Rows of DCT coefficients ``v``: ``u_i = v_i / (a_i + sigma)`` with ``sigma`` the root of
    ``sigma ||v / (a + sigma)|| = c``, or 0 when ``||v|| <= c`` (a_i >= 1: ``1 + c k_i``).

    Newton's method on ``psi(sigma) = 1 / ||v / (a + sigma)|| - sigma / c`` (concave,
    decreasing at the root) from the right end of the bracket
    ``[c a_min, c a_max] / (||v|| - c)`` decreases monotonically to the root."""
    p, T = Vh.shape
    out = np.zeros_like(Vh)
    a_min = a[0]
    a_max = a[0]
    for i in range(T):
        a_min = min(a_min, a[i])
        a_max = max(a_max, a[i])
    for j in range(p):
        v = Vh[j]
        nrm2 = 0.0
        for i in range(T):
            nrm2 += v[i] * v[i]
        nrm = np.sqrt(nrm2)
        if nrm <= c:
            continue
        lo = c * a_min / (nrm - c)
        hi = c * a_max / (nrm - c)
        s = hi
        for _ in range(100):
            # ||z|| and sum z_i^2 / (a_i + s) relative to m = max |z_i| (z_i = v_i / (a_i + s)):
            # with weights near 1e200 every z_i^2 underflows to 0, their ratios do not
            m = 0.0
            for i in range(T):
                m = max(m, abs(v[i]) / (a[i] + s))
            F = 0.0
            S3 = 0.0
            for i in range(T):
                z = v[i] / (a[i] + s) / m
                F += z * z
                S3 += z * z / (a[i] + s)
            q = np.sqrt(F)
            inv = 1.0 / (m * q)
            psi = inv - s / c
            if psi < 0.0:
                hi = s
            else:
                lo = s
            s_new = s - psi / (S3 / (m * q * q * q) - 1.0 / c)
            if not (lo <= s_new <= hi):
                s_new = 0.5 * (lo + hi)
            done = abs(s_new - s) <= 4.0 * 2.220446049250313e-16 * s
            s = s_new
            if done:
                break
        for i in range(T):
            out[j, i] = v[i] / (a[i] + s)
    return out


# ----------------------------------------------------------------------------- helpers
def tv_prox(y: np.ndarray, lam: float) -> np.ndarray:
    r"""The 1-D total-variation prox: ``argmin_x 1/2 ||x - y||^2 + lam sum_k |x_{k+1} - x_k|``.

    Exact, in O(n), by Condat's direct algorithm, applied to each row of a 2-D ``y``.

    Parameters
    ----------
    y : array-like of shape (n,) or (m, n)
        The signal (or one signal per row).
    lam : float
        Weight of the total variation, >= 0.

    Returns
    -------
    ndarray of the shape of ``y``
        The denoised signal(s): piecewise constant.

    References
    ----------
    Condat (2013), "A direct algorithm for 1-D total variation denoising", IEEE Signal
    Processing Letters 20(11).

    Examples
    --------
    >>> from regmtl.penalties.temporal import tv_prox
    >>> tv_prox([0.0, 0.0, 3.0, 3.0], 0.5).tolist()
    [0.25, 0.25, 2.75, 2.75]
    """
    lam = check_positive(lam, "lam", strict=False)
    Y = np.asarray(y, dtype=np.float64)
    one = Y.ndim == 1
    Y2 = np.ascontiguousarray(np.atleast_2d(Y))
    out = np.empty_like(Y2)
    for j in range(Y2.shape[0]):
        _tv1d(Y2[j], lam, out[j])
    return out[0] if one else out


def chain_eigenvalues(n_tasks: int) -> np.ndarray:
    r"""Eigenvalues of the chain Laplacian ``L = R R^T`` of T ordered tasks, in the order of
    the orthonormal DCT-II basis that diagonalizes it: ``4 sin^2(pi i / (2T))``,
    ``i = 0, ..., T - 1``.

    Parameters
    ----------
    n_tasks : int
        Number of tasks T.

    Returns
    -------
    ndarray of shape (T,)
        The eigenvalues (the first is 0: constant rows cost nothing).

    Examples
    --------
    >>> from regmtl.penalties.temporal import chain_eigenvalues
    >>> chain_eigenvalues(2).round(12).tolist()
    [0.0, 2.0]
    """
    i = np.arange(int(n_tasks), dtype=np.float64)
    lam = 4.0 * np.sin(np.pi * i / (2.0 * max(int(n_tasks), 1))) ** 2
    lam[0] = 0.0
    return lam


def _row_norms(V: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", V, V)) if not is_blocked(V) else np.sqrt(
        (V * V).sum(axis=1))


def _diffs(V: Any) -> Any:
    """``W R``: the differences of consecutive tasks (lazy on task blocks)."""
    return V[:, :-1] - V[:, 1:]


def _temporal_prox_rows(V: np.ndarray, a: np.ndarray, c: float) -> np.ndarray:
    """The temporal group lasso's prox of the rows of V, in the DCT-II basis."""
    return np.ascontiguousarray(_idct(_temporal_prox_dct(np.ascontiguousarray(_dct(V)), a, c)))


# (the row maps a Dask task runs are plain functions of this module: a worker imports them,
# and the compiled kernels they call, by name)
def _fused_prox_rows(V: np.ndarray, c_tv: float, c_l1: float, c_group: float) -> np.ndarray:
    return _fused_prox(V, c_tv, c_l1, c_group)


def _fused_dual_norm_rows(G: np.ndarray, f: float, l1: float) -> np.ndarray:
    return _fused_dual_norms(G, f, l1)


def _null_norms(G: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Per row, the norm of G's DCT coordinates on ``null``."""
    return _row_norms(_dct(G)[:, null])


def _dct(V: np.ndarray) -> np.ndarray:
    return dct(np.asarray(V, dtype=np.float64), type=2, norm="ortho", axis=1)


def _idct(V: np.ndarray) -> np.ndarray:
    return idct(V, type=2, norm="ortho", axis=1)


# ----------------------------------------------------------------------------- penalties
class TemporalGroupLasso(Penalty):
    r"""Temporal group lasso: features selected for all time points, weights smooth in time.

    .. math::

        \Omega(W) = \alpha \Big(\sum_{j=1}^p \|W_j\|_2
        + \frac{s}{2} \sum_{t=1}^{T-1} \|w_t - w_{t+1}\|_2^2
        + \frac{r}{2} \|W\|_F^2\Big),
        \qquad s = \texttt{smooth\_weight},\ r = \texttt{ridge\_weight},

    the disease-progression model of Zhou, Yuan, Liu & Ye (2011) (MALSAR's ``Least_TGL`` and
    ``Logistic_TGL``). The tasks are time points, in the order of ``tasks_`` (equally
    spaced): task t predicts the outcome at the t-th time point. The group norm keeps a
    feature for every time point or for none; the smoothness term ``||W R||_F^2`` pulls the
    weights of consecutive time points together; the ridge shrinks everything. Pick it when
    the same markers predict an outcome at several future times and their effects drift
    slowly.

    MALSAR's objective ``sum_t ||y_t - X_t w_t||^2 / 2 + rho1 ||W||_F^2 + rho2 ||W R||_F^2 +
    rho3 ||W||_{2,1}`` is this one with ``task_weight="samples"``, ``fit_intercept=False``,
    ``alpha = T rho3 / N`` (``rho3 / n`` when every task has n rows: then
    ``task_weight="equal"`` too), ``smooth_weight = 2 rho2 / rho3`` and
    ``ridge_weight = 2 rho1 / rho3``; for the logistic
    loss (whose data term MALSAR averages per task) ``alpha = rho3`` with equal task weights.
    ``rho3 > 0`` is needed: the group part sets the scale of ``alpha``.

    The prox is exact (the group norm and the quadratic share the DCT basis that diagonalizes
    the chain Laplacian: a scalar equation per row, solved to rounding); with the squared loss
    fits run ADMM with exact per-task solves after a few proximal-gradient steps, with the
    logistic loss proximal Newton. They certify with a duality gap: the conjugate is, per row,
    ``min_{||u|| <= alpha} (g - u)^T K^+ (g - u) / (2 alpha)`` with ``K = s R R^T + r I``,
    over ``g - u`` in the range of K (with ``ridge_weight = 0`` the row sums of a dual point
    must stay within ``alpha sqrt(T)``). ``alpha_max = max_j ||G0_j||_2``: the quadratic part
    has zero gradient at W = 0.

    Parameters
    ----------
    smooth_weight : float, default=1.0
        Weight ``s >= 0`` of the squared differences of consecutive tasks, relative to the
        group norm.
    ridge_weight : float, default=0.0
        Weight ``r >= 0`` of the ridge, relative to the group norm.

    See Also
    --------
    regmtl.FusedGroupLasso : Piecewise-constant weights in time (sudden changes).
    regmtl.GraphLaplacian : The smoothness term alone, over any graph (``chain_graph``).
    regmtl.L21 : The group norm alone.

    References
    ----------
    Zhou, Yuan, Liu & Ye (2011), "A multi-task learning formulation for predicting disease
    progression", KDD.

    Examples
    --------
    Six time points; features 0 and 1 matter at every one, with effects drifting in time:

    >>> import numpy as np
    >>> from regmtl import MultiTaskRegressor, TemporalGroupLasso
    >>> rng = np.random.default_rng(0)
    >>> W = np.zeros((10, 6))
    >>> W[0], W[1] = np.linspace(1.0, 2.0, 6), np.linspace(-1.0, 0.0, 6)
    >>> X = rng.standard_normal((50, 10))
    >>> Y = X @ W + 0.3 * rng.standard_normal((50, 6))
    >>> model = MultiTaskRegressor(TemporalGroupLasso(smooth_weight=5.0), alpha=0.3).fit(X, Y)
    >>> np.flatnonzero(np.any(model.coef_ != 0, axis=0)).tolist()
    [0, 1]
    >>> bool(model.dual_gap_ <= 1e-4 * model.objective_)
    True
    """

    name = "temporal_group_lasso"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha (sum_j d_j ||W_j||_2 + s / 2 ||D W R||_F^2 + r / 2 ||D W||_F^2) (rows)"
    # (on task blocks its prox runs on the rows gathered whole: ``penalties.gathered``)
    _param_names = ("smooth_weight", "ridge_weight")
    #: a new task takes the support, its strength chosen by CV (it has no place in the time
    #: order of the tasks)
    transfer_strategy = "support"
    transfer_alpha = False

    def __init__(self, smooth_weight: float = 1.0, ridge_weight: float = 0.0):
        self.smooth_weight = smooth_weight
        self.ridge_weight = ridge_weight

    def _weights(self) -> tuple[float, float]:
        return (check_positive(self.smooth_weight, "smooth_weight", strict=False),
                check_positive(self.ridge_weight, "ridge_weight", strict=False))

    def ridge_part(self, alpha: float) -> float | None:
        """0.0 with ``smooth_weight = ridge_weight = 0`` (the group lasso alone); None
        otherwise: the smoothing ``||D W R||^2`` is a quadratic in the feature metric."""
        return 0.0 if self._weights() == (0.0, 0.0) else None

    def rescaled(self, alpha, f, k=1.0):
        """``TemporalGroupLasso(s / k, r / k)`` at ``f alpha / k``: the rows' norms are of
        degree 1 in W, the quadratic parts of degree 2."""
        s, r = self._weights()
        return TemporalGroupLasso(s / k, r / k), f * alpha / k

    def on_classes(self, layout: Any) -> Penalty:
        """Refused (``refuse_ordered_classes``): on the
        classes' layout the chain of tasks would run through a task's class columns."""
        return refuse_ordered_classes(self)

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        self._weights()
        return self

    def kernel_eigenvalues(self, n_tasks: int) -> np.ndarray:
        """Eigenvalues of ``K = s R R^T + r I`` in the DCT-II basis (see
        ``chain_eigenvalues``).

        Parameters
        ----------
        n_tasks : int
            Number of tasks T.

        Returns
        -------
        ndarray of shape (T,)
            ``s 4 sin^2(pi i / (2T)) + r``, ``i = 0, ..., T - 1``.
        """
        s, r = self._weights()
        return s * chain_eigenvalues(n_tasks) + r

    def value(self, V, alpha):
        return computed(self.lazy_value(V if is_blocked(V) else np.asarray(
            V, dtype=np.float64), alpha))

    def lazy_value(self, V, alpha):
        """``alpha (sum_j ||V_j|| + s / 2 ||V R||^2 + r / 2 ||V||^2)``, a lazy scalar on
        task blocks (the differences cross a block's edge: a column of each neighbour)."""
        s, r = self._weights()
        if not is_blocked(V):
            V = np.asarray(V, dtype=np.float64)
        D = _diffs(V)
        quad = s * inner(D, D) + r * inner(V, V)
        return alpha * (_row_norms(V).sum() + 0.5 * quad)

    def prox(self, V, step, alpha):
        """Row by row in the DCT-II basis (see the module); on task blocks on the rows
        gathered whole (``penalties.gathered``)."""
        if not is_blocked(V):
            V = np.asarray(V, dtype=np.float64)
        c = float(step) * float(alpha)
        if c == 0.0 or V.size == 0:
            return V.copy()
        return by_rows(_temporal_prox_rows, V, 1.0 + c * self.kernel_eigenvalues(V.shape[1]),
                       c)

    def _null(self, n_tasks: int) -> np.ndarray:
        """The DCT coordinates on which K vanishes (none with a ridge)."""
        return self.kernel_eigenvalues(n_tasks) == 0.0

    def dual_scaling(self, G, alpha):
        """1 with a ridge (the conjugate is finite everywhere); otherwise the largest
        ``s <= 1`` with every row's component in the null space of K (the constant direction,
        or everything when ``smooth_weight = 0``) of norm at most ``alpha``."""
        null = self._null(G.shape[1])
        if not null.any() or G.size == 0:
            return 1.0
        m = computed(of_rows(_null_norms, G if is_blocked(G) else np.asarray(
            G, dtype=np.float64), null).max())
        return 1.0 if m <= alpha else alpha / m

    def lazy_dual_scaling(self, G, alpha):
        """On task blocks, :meth:`dual_scaling` lazy: ``alpha / max(m, alpha)``, m the
        largest norm of a row's null-space part (on the rows gathered whole)."""
        null = self._null(G.shape[1])
        if not is_blocked(G) or not null.any() or G.size == 0:
            return self.dual_scaling(G, alpha)
        return alpha / np.maximum(of_rows(_null_norms, G, null).max(), alpha)

    def scaled_conjugate(self, G, s, alpha):
        """:meth:`conjugate` at ``s G``; on task blocks formed on the rows gathered whole and
        brought home (one scalar, a round trip of its own)."""
        if not is_blocked(G):
            return self.conjugate(s * G, alpha)
        return computed(of_whole(self.conjugate, s * G, alpha))

    def conjugate(self, G, alpha):
        r"""``sum_j min_{||u|| <= alpha, g_j - u in range K} (g_j - u)^T K^+ (g_j - u) /
        (2 alpha)``, in the DCT basis: with ``rho^2 = alpha^2 - ||g_null||^2`` (less its
        rounding, which keeps the value an upper bound),
        ``u_i = g_i / (1 + nu k_i)`` on the rest, ``nu >= 0`` the root of
        ``sum_i g_i^2 / (1 + nu k_i)^2 = rho^2`` (Newton on its inverse square root, concave
        and increasing: monotone from ``nu = 0``), and the value
        ``sum_i g_i^2 nu^2 k_i / (1 + nu k_i)^2 / (2 alpha)``."""
        if G.size == 0:
            return 0.0
        if is_blocked(G):
            return computed(of_whole(self.conjugate, G, alpha))
        G = np.asarray(G, dtype=np.float64)
        k = self.kernel_eigenvalues(G.shape[1])
        null = k == 0.0
        if null.all():
            return 0.0
        Gh = _dct(G)
        rho2 = np.full(G.shape[0], alpha * alpha)
        if null.any():
            # the ball left to the rest, less the rounding of the subtraction: the value
            # decreases in rho, so a smaller rho keeps it an upper bound (the dual a lower
            # bound) on a row at the boundary of the domain, where rho is ill-conditioned
            g0 = np.einsum("ij,ij->i", Gh[:, null], Gh[:, null])
            rho2 = np.maximum(rho2 - g0 - 4.0 * _EPS * (rho2 + g0), 0.0)
        g2 = Gh[:, ~null] ** 2
        kk = k[~null]
        total = g2.sum(axis=1)
        active = total > rho2
        if not active.any():
            return 0.0
        g2, rho2 = g2[active], rho2[active]
        value = np.empty(g2.shape[0])
        tight = rho2 <= (4.0 * _EPS) ** 2 * total[active]  # rho = 0: the limit nu -> inf
        value[tight] = (g2[tight] / kk).sum(axis=1)
        rest = ~tight
        if rest.any():
            g, rho = g2[rest], np.sqrt(rho2[rest])
            nu = np.zeros(g.shape[0])
            for _ in range(200):
                den = 1.0 + nu[:, None] * kk
                H = (g / den**2).sum(axis=1)
                inv = 1.0 / np.sqrt(H)
                phi = inv - 1.0 / rho
                dphi = inv**3 * (g * kk / den**3).sum(axis=1)
                step = phi / dphi
                nu_new = np.maximum(nu - step, nu)
                done = np.abs(nu_new - nu) <= 4.0 * _EPS * np.maximum(nu_new, 1e-300)
                nu = nu_new
                if done.all():
                    break
            den = 1.0 + nu[:, None] * kk
            value[rest] = (g * nu[:, None] ** 2 * kk / den**2).sum(axis=1)
        return float(value.sum() / (2.0 * alpha))

    def alpha_max(self, G0):
        """``max_j ||G0_j||_2``: the quadratic part has no gradient at W = 0."""
        if G0.size == 0:
            return 0.0
        return computed(_row_norms(G0 if is_blocked(G0) else np.asarray(
            G0, dtype=np.float64)).max())


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        r"""``tr((D + alpha K (x) P)^{-1} D)`` over every time point of the features selected
        (the nonzero rows of W) and the intercepts, ``K = s R R^T + r I`` the Hessian of the
        quadratic part across tasks, applied in O(T) through the chain's neighbours (the group
        norm's curvature is not charged)."""
        W = np.asarray(W)
        rows = np.flatnonzero(np.any(W != 0.0, axis=1))
        if rows.size == 0:
            return DegreesOfFreedom()
        T = W.shape[1]
        s, r = float(self.smooth_weight), float(self.ridge_weight)
        deg = np.full(T, 2.0)
        deg[[0, -1]] = 1.0
        if T == 1:
            deg[0] = 0.0

        def apply(X: np.ndarray) -> np.ndarray:
            XL = X * deg
            XL[:, 1:] -= X[:, :-1]
            XL[:, :-1] -= X[:, 1:]
            return s * XL + r * X

        return DegreesOfFreedom(smoother=TaskCoupling(float(alpha), apply, s * deg + r, rows))


class FusedGroupLasso(NormPenalty):
    r"""Fused group lasso: features selected jointly over time, weights piecewise constant.

    .. math::

        \Omega(W) = \alpha \Big(\sum_{j=1}^p \|W_j\|_2
        + f \sum_{j=1}^p \sum_{t=1}^{T-1} |W_{jt} - W_{j,t+1}|
        + l \|W\|_1\Big),
        \qquad f = \texttt{fused\_weight},\ l = \texttt{l1\_weight},

    the convex fused sparse group lasso of Zhou, Liu, Narayan & Ye (2012) (MALSAR's
    ``Least_CFGLasso`` and ``Logistic_CFGLasso``). The tasks are time points, in the order of
    ``tasks_`` (equally spaced). The group norm selects features for all time points at once;
    the fused term (the total variation of each row in time) makes a feature's effect
    constant between a few change points; the L1 term lets a feature matter at some time
    points only. Pick it when effects are believed to change at a few moments (a stage of a
    disease, a policy change) rather than drift.

    MALSAR's objective ``sum_t ||y_t - X_t w_t||^2 / 2 + rho1 ||W||_1 + rho2 ||W R||_1 +
    rho3 ||W||_{2,1}`` is this one with ``task_weight="samples"``, ``fit_intercept=False``,
    ``alpha = T rho3 / N`` (``rho3 / n`` when every task has n rows: then
    ``task_weight="equal"`` too), ``fused_weight = rho2 / rho3`` and
    ``l1_weight = rho1 / rho3``; for the logistic loss
    (whose data term MALSAR averages per task) ``alpha = rho3`` with equal task weights.
    ``rho3 > 0`` is needed: the group part sets the scale of ``alpha``.

    The prox of a row is the group soft-thresholding of the soft-thresholding of the 1-D
    total-variation prox (exact: Condat's algorithm). The penalty is a norm whose dual ball
    is the sum of the three parts' balls; its dual norm ``N*(g)``, the smallest ``t`` with
    ``||soft(TV-prox(g, t f), t l)||_2 <= t``, is computed by Newton's method to rounding, so
    fits certify with a duality gap and ``alpha_max = max_j N*(G0_j)`` (W = 0 is optimal
    exactly when every row of ``G0`` lies in ``alpha`` times that ball).

    Parameters
    ----------
    fused_weight : float, default=1.0
        Weight ``f >= 0`` of the differences of consecutive tasks, relative to the group norm.
    l1_weight : float, default=0.0
        Weight ``l >= 0`` of the entrywise L1 norm, relative to the group norm.

    See Also
    --------
    regmtl.TemporalGroupLasso : Smoothly drifting weights instead of jumps.
    regmtl.L21 : The group norm alone.

    References
    ----------
    Zhou, Liu, Narayan & Ye (2012), "Modeling disease progression via fused sparse group
    lasso", KDD; Friedman, Hastie, Hoefling & Tibshirani (2007), "Pathwise coordinate
    optimization", The Annals of Applied Statistics 1(2); Condat (2013), "A direct algorithm
    for 1-D total variation denoising", IEEE Signal Processing Letters 20(11).

    Examples
    --------
    Eight time points; feature 0's effect jumps from 1 to 2 after the fourth:

    >>> import numpy as np
    >>> from regmtl import FusedGroupLasso, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> W = np.zeros((10, 8))
    >>> W[0] = [1.0] * 4 + [2.0] * 4
    >>> X = rng.standard_normal((80, 10))
    >>> Y = X @ W + 0.1 * rng.standard_normal((80, 8))
    >>> model = MultiTaskRegressor(FusedGroupLasso(fused_weight=1.0), alpha=0.05).fit(X, Y)
    >>> np.flatnonzero(np.any(model.coef_ != 0, axis=0)).tolist()
    [0]
    >>> np.flatnonzero(np.abs(np.diff(model.coef_[:, 0])) > 1e-6).tolist()  # one change point
    [3]
    """

    name = "fused_group_lasso"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha (sum_j d_j ||W_j||_2 + f ||D W R||_1 + l ||D W||_1) (rows)"
    # (on task blocks its prox runs on the rows gathered whole: ``penalties.gathered``)
    _param_names = ("fused_weight", "l1_weight")
    #: a new task takes the support, its strength chosen by CV (it has no place in the time
    #: order of the tasks)
    transfer_strategy = "support"
    transfer_alpha = False

    def __init__(self, fused_weight: float = 1.0, l1_weight: float = 0.0):
        self.fused_weight = fused_weight
        self.l1_weight = l1_weight

    def _weights(self) -> tuple[float, float]:
        return (check_positive(self.fused_weight, "fused_weight", strict=False),
                check_positive(self.l1_weight, "l1_weight", strict=False))

    def on_classes(self, layout: Any) -> Penalty:
        """Refused (``refuse_ordered_classes``): on the
        classes' layout the chain of tasks would run through a task's class columns."""
        return refuse_ordered_classes(self)

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        self._weights()
        return self

    def value(self, V, alpha):
        return computed(self.lazy_value(V if is_blocked(V) else np.asarray(
            V, dtype=np.float64), alpha))

    def lazy_value(self, V, alpha):
        """``alpha (sum_j ||V_j|| + f TV(V) + l ||V||_1)``, a lazy scalar on task blocks."""
        f, l1 = self._weights()
        if not is_blocked(V):
            V = np.asarray(V, dtype=np.float64)
        tv = abs(_diffs(V)).sum()
        return alpha * (_row_norms(V).sum() + f * tv + l1 * abs(V).sum())

    def prox(self, V, step, alpha):
        """Row by row (see the module); on task blocks on the rows gathered whole
        (``penalties.gathered``)."""
        f, l1 = self._weights()
        if not is_blocked(V):
            V = np.ascontiguousarray(V, dtype=np.float64)
        c = float(step) * float(alpha)
        if c == 0.0 or V.size == 0:
            return V.copy()
        return by_rows(_fused_prox_rows, V, c * f, c * l1, c)

    def dual_norms(self, G: np.ndarray) -> np.ndarray:
        """Per row, the dual norm ``N*(G_j)`` of ``||u||_2 + f TV(u) + l ||u||_1``.

        Parameters
        ----------
        G : ndarray of shape (p, T)
            Rows to measure.

        Returns
        -------
        ndarray of shape (p,)
            The smallest ``t >= 0`` with ``||soft(TV-prox(G_j, t f), t l)||_2 <= t`` (at most
            ``||G_j||_2``).
        """
        f, l1 = self._weights()
        if G.size == 0:
            return np.zeros(G.shape[0])
        if not is_blocked(G):
            G = np.ascontiguousarray(G, dtype=np.float64)
        return of_rows(_fused_dual_norm_rows, G, f, l1)  # (lazy on task blocks)

    def dual_norm(self, G: np.ndarray) -> float:
        """``max_j N*(G_j)``: the dual norm of the penalty at ``alpha = 1``."""
        return computed(self.dual_norms(G).max()) if G.shape[0] else 0.0

    def lazy_dual_scaling(self, G, alpha):
        """On task blocks, ``alpha / max(max_j N*(G_j), alpha)`` lazy (1 exactly inside the
        ball, as :meth:`dual_scaling`)."""
        if not is_blocked(G) or G.size == 0:
            return self.dual_scaling(G, alpha)
        return alpha / np.maximum(self.dual_norms(G).max(), alpha)

    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        """The nonzero constant pieces of the rows of W: per row, the runs of consecutive
        equal values (to ``1e-9`` of the row's largest entry) that are not zero, the degrees
        of freedom of the fused lasso (Tibshirani & Taylor 2011)."""
        W = np.asarray(W, dtype=np.float64)
        big = np.abs(W).max(axis=1, initial=0.0, keepdims=True)
        starts = np.ones(W.shape, dtype=bool)
        starts[:, 1:] = np.abs(np.diff(W, axis=1)) > 1e-9 * big
        return DegreesOfFreedom(count=int(np.count_nonzero(starts & (W != 0.0))))
