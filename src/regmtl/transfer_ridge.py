r"""The new task's generalized ridge of :func:`regmtl.transfer`, for a loss other than squared.

On the transformed design ``G = X B diag(lam)^-1/2`` with the offset ``o = X w0 + bbar`` (plus
the new task's own offset), every fit minimizes

.. math::

    \frac{1}{\sum_i s_i} \sum_i s_i\, \ell(y_i, o_i + g_i u + b)
    + \frac{\alpha}{2} \|u\|^2 + \frac{\beta}{2} b^2

(``beta = 0``: a free intercept). The squared loss has its closed form in
:mod:`regmtl.transfer`; here:

- a smooth loss of one score per row (logistic, Poisson, Gamma, Huber): damped Newton on the
  loss's declared derivatives (``theta = -l'``, ``newton_weights``), stopped on the gradient;
- the multinomial loss (one score per class, ``U`` of shape ``(r, K)``, intercepts ``(K,)``):
  damped Newton with each row's ``K x K`` curvature ``diag(p) - p p^T``; the intercepts' common
  shift changes nothing and is set to zero;
- a loss that is not smooth (the pinball loss): the library's certified solver, a one-task
  :class:`~regmtl.MultiTaskRegressor` with the ridge ``"l2"`` on ``G`` (a shrunk intercept is a
  column ``sqrt(alpha/beta)`` of ones, which the ridge then penalizes by ``beta/2 b^2``). The
  many fits of a cross-validation take the loss's own smoothed version instead
  (``smoothed(delta)``, within ``O(delta)`` of it) by Newton: choosing alpha needs held-out
  losses, not certified optima, and the exact solver costs 0.1-0.4 s a fit.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["ridge_fit", "ridge_objective", "class_codes", "loss_value"]


def class_codes(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """One-hot table (n, K) of labels ``y`` over ``classes``."""
    return (np.asarray(y)[:, None] == np.asarray(classes)[None, :]).astype(np.float64)


def _scores(Z: np.ndarray, theta: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``offset + Z theta``: (n,) for one score per row, (n, K) for a table of classes."""
    return offset + Z @ theta if theta.ndim == 1 else offset[:, None] + Z @ theta


def loss_value(datafit: Any, y: np.ndarray, f: np.ndarray, c: np.ndarray) -> float:
    """``sum_i c_i l(y_i, f_i)``; for a table of class scores (n, K) and one-hot ``y`` the
    multinomial loss ``logsumexp(f_i) - f_i . y_i``."""
    if f.ndim == 1:
        return datafit.value(y, f, c)
    m = f.max(axis=1)
    lse = m + np.log(np.exp(f - m[:, None]).sum(axis=1))
    return float(c @ (lse - np.sum(y * f, axis=1)))


def _gradient_hessian(datafit: Any, Z: np.ndarray, y: np.ndarray, f: np.ndarray,
                      c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of the data term in ``theta`` (flattened row-major for a table)."""
    if f.ndim == 1:
        g = -(Z.T @ (c * datafit.theta(y, f)))
        H = (Z.T * (c * datafit.newton_weights(y, f))) @ Z
        return g, H
    E = np.exp(f - f.max(axis=1, keepdims=True))
    P = E / E.sum(axis=1, keepdims=True)
    g = (Z.T @ (c[:, None] * (P - y))).ravel()
    k, K = Z.shape[1], P.shape[1]
    # sum_i c_i (z_i z_i^T) (x) (diag(p_i) - p_i p_i^T), in the order of theta.ravel()
    ZP = Z[:, :, None] * P[:, None, :]                     # (n, k, K)
    H = -np.einsum("i,iak,ibl->akbl", c, ZP, ZP)
    diag = np.einsum("i,ia,ib,ik->abk", c, Z, Z, P)
    H[:, np.arange(K), :, np.arange(K)] += diag.transpose(2, 0, 1)
    return g, H.reshape(k * K, k * K)


def ridge_objective(datafit: Any, Z: np.ndarray, y: np.ndarray, offset: np.ndarray,
                    c: np.ndarray, theta: np.ndarray, reg: np.ndarray) -> float:
    """``sum_i c_i l(y_i, o_i + z_i theta) + 1/2 sum_k reg_k theta_k^2`` (``reg`` per row of
    ``theta``, ``c`` summing to 1)."""
    pen = reg @ theta**2 if theta.ndim == 1 else reg @ np.sum(theta**2, axis=1)
    return loss_value(datafit, y, _scores(Z, theta, offset), c) + 0.5 * float(pen)


def _newton(datafit: Any, Z: np.ndarray, y: np.ndarray, offset: np.ndarray, c: np.ndarray,
            reg: np.ndarray, theta: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """Damped Newton (Armijo backtracking) from ``theta``; stops when the gradient's largest
    entry is below ``tol``."""
    shape = theta.shape
    R = np.repeat(reg, shape[1]) if theta.ndim == 2 else reg
    f0 = ridge_objective(datafit, Z, y, offset, c, theta, reg)
    for _ in range(max_iter):
        g, H = _gradient_hessian(datafit, Z, y, _scores(Z, theta, offset), c)
        g = g + R * theta.ravel()
        if np.max(np.abs(g), initial=0.0) < tol:
            break
        H[np.diag_indices_from(H)] += R + 1e-12
        try:
            step = np.linalg.solve(H, g).reshape(shape)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, g, rcond=None)[0].reshape(shape)
        lr, slope = 1.0, float(g @ step.ravel())
        while lr > 1e-10:
            new = theta - lr * step
            fn = ridge_objective(datafit, Z, y, offset, c, new, reg)
            if fn <= f0 - 1e-4 * lr * slope:
                break
            lr *= 0.5
        else:
            break
        done = f0 - fn <= 1e-15 * max(1.0, abs(f0))  # no progress left in floating point
        theta, f0 = new, fn
        if done:
            break
    return theta


def _library_fit(datafit: Any, Z: np.ndarray, y: np.ndarray, offset: np.ndarray,
                 w: np.ndarray, alpha: float, intercept: bool) -> tuple[np.ndarray, float]:
    """The ridge on ``Z`` by :class:`~regmtl.MultiTaskRegressor` (``"l2"``, one task)."""
    from .estimators import MultiTaskRegressor

    k = Z.shape[1]
    design = Z if k else np.zeros((len(y), 1))
    est = MultiTaskRegressor("l2", alpha=max(alpha, 1e-300), loss=datafit,
                             fit_intercept=intercept, tol=1e-9, max_iter=100000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a stalled certificate is still the best point found
        est.fit(design, y, sample_weight=w, offset=offset)
    return np.asarray(est.coef_, dtype=np.float64)[:k], float(est.intercept_)


def ridge_fit(datafit: Any, G: np.ndarray, y: np.ndarray, offset: np.ndarray, w: np.ndarray,
              alpha: float, intercept: bool, start: tuple | None = None, beta: float = 0.0,
              tol: float = 1e-10, max_iter: int = 100,
              smoothing: float | None = None) -> tuple[np.ndarray, Any]:
    """``(u, b)`` minimizing the module's objective; ``y`` the targets as the loss reads them
    (-1/+1 for the logistic loss, a one-hot table for the multinomial), ``start`` a previous
    ``(u, b)`` (Newton only). For the multinomial ``u`` is (r, K) and ``b`` (K,).
    ``smoothing``: a loss that is not smooth is replaced by its smoothed version of that
    width (Newton) instead of the exact solver."""
    n, r = G.shape
    shrink = intercept and beta > 0
    if not datafit.smooth and smoothing:
        datafit, tol = datafit.smoothed(smoothing), max(tol, 1e-8)
    if not datafit.smooth:
        if shrink and alpha > 0:
            col = np.sqrt(alpha / beta)
            u, _ = _library_fit(datafit, np.hstack([G, np.full((n, 1), col)]), y, offset, w,
                                alpha, False)
            return u[:r], float(u[r] * col)
        return _library_fit(datafit, G, y, offset, w, alpha, intercept)
    c = w / w.sum()
    Z = np.hstack([G, np.ones((n, 1))]) if intercept else G
    reg = np.full(Z.shape[1], float(alpha))
    if intercept:
        reg[-1] = beta
    K = y.shape[1] if y.ndim == 2 else 0
    theta = np.zeros((Z.shape[1], K) if K else Z.shape[1])
    if start is not None:
        theta[:r] = start[0]
        if intercept:
            theta[r] = start[1]
    theta = _newton(datafit, Z, y, offset, c, reg, theta, tol, max_iter)
    if not intercept:
        return theta, (np.zeros(K) if K else 0.0)
    b = theta[r]
    if K:
        b = b - b.mean()  # the common shift of the classes' intercepts changes nothing
    return theta[:r], (b if K else float(b))
