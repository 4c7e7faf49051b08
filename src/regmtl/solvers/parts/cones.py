r"""Second-order cones, many at once: their Jordan algebra, Nesterov-Todd scaling and the
longest step inside, for the interior-point method (:mod:`~regmtl.solvers.parts.interior_point`).

A point of cone j is ``u = (u0_j, u1_j)`` with ``u0_j >= ||u1_j||_2``; the p cones are held
as ``u0`` (p,) and ``u1`` (p, T). The Jordan product is ``u o v = (u.v, u0 v1 + v0 u1)``,
the identity ``e = (1, 0)``. For x and z inside, the scaling point ``w = (w0, w1)``
(``w0^2 - ||w1||^2 = 1``) and ``eta > 0`` make

.. math::

    W = \eta P(w),\qquad P(w) = \begin{pmatrix} w_0 & w_1^\top \\ w_1 &
    I + \frac{w_1 w_1^\top}{1 + w_0} \end{pmatrix},\qquad W z = W^{-1} x,

and ``W^{-2} = (2 a a^T - J) / eta^2`` with ``a = (w0, -w1)``, ``J = diag(1, -I)``
(Vandenberghe, "The CVXOPT linear and quadratic cone program solvers", 2010).
"""

from __future__ import annotations

import numpy as np

__all__ = ["divide", "longest_ray_step", "longest_step", "p_inverse", "p_times", "product",
           "scaling"]


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("jt,jt->j", a, b)


def scaling(x0, x1, z0, z1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(eta, w0, w1)``: the Nesterov-Todd scaling of each pair ``x``, ``z`` inside the
    cones, ``w = (x_bar + J z_bar) / (2 gamma)`` of the points normalized to the hyperboloid
    and ``eta = (x^T J x / z^T J z)^{1/4}``."""
    xn = np.sqrt(np.maximum((x0 - np.sqrt(_dot(x1, x1))) * (x0 + np.sqrt(_dot(x1, x1))),
                            1e-300))
    zn = np.sqrt(np.maximum((z0 - np.sqrt(_dot(z1, z1))) * (z0 + np.sqrt(_dot(z1, z1))),
                            1e-300))
    a0, a1, b0, b1 = x0 / xn, x1 / xn[:, None], z0 / zn, z1 / zn[:, None]
    gamma = np.sqrt(np.maximum(0.5 * (1.0 + a0 * b0 + _dot(a1, b1)), 1e-300))
    w1 = (a1 - b1) / (2.0 * gamma)[:, None]
    w0 = np.sqrt(1.0 + _dot(w1, w1))  # (on the hyperboloid exactly)
    return np.sqrt(xn / zn), w0, w1


def p_inverse(w0, w1, u0, u1) -> tuple[np.ndarray, np.ndarray]:
    """``P(w)^{-1} u = (w0 u0 - w1.u1, u1 - u0 w1 + (w1.u1) w1 / (1 + w0))``."""
    d = _dot(w1, u1)
    return w0 * u0 - d, u1 + w1 * (d / (1.0 + w0) - u0)[:, None]


def p_times(w0, w1, u0, u1) -> tuple[np.ndarray, np.ndarray]:
    """``P(w) u = (w0 u0 + w1.u1, u1 + u0 w1 + (w1.u1) w1 / (1 + w0))``."""
    d = _dot(w1, u1)
    return w0 * u0 + d, u1 + w1 * (d / (1.0 + w0) + u0)[:, None]


def product(u0, u1, v0, v1) -> tuple[np.ndarray, np.ndarray]:
    """The Jordan product ``u o v`` of each cone."""
    return u0 * v0 + _dot(u1, v1), u0[:, None] * v1 + v0[:, None] * u1


def divide(l0, l1, r0, r1) -> tuple[np.ndarray, np.ndarray]:
    """``x`` with ``l o x = r`` in each cone (``l`` inside)."""
    x0 = (l0 * r0 - _dot(l1, r1)) / (l0 * l0 - _dot(l1, l1))
    return x0, (r1 - x0[:, None] * l1) / l0[:, None]


def longest_step(u0, u1, d0, d1) -> float:
    """The largest ``t`` with ``u + t d`` in every cone (``u`` inside): the first positive
    root of ``(u0 + t d0)^2 - ||u1 + t d1||^2``, and no further than ``u0 + t d0 = 0``."""
    a = d0 * d0 - _dot(d1, d1)
    b = 2.0 * (u0 * d0 - _dot(u1, d1))
    c = u0 * u0 - _dot(u1, u1)
    disc = b * b - 4.0 * a * c
    real = disc >= 0
    q = -0.5 * (b + np.copysign(np.sqrt(np.where(real, disc, 0.0)), b))
    t = np.full(len(u0), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):  # (the stable pair of roots)
        for root in (np.where(real & (a != 0), q / a, np.inf),
                     np.where(real & (q != 0), c / q, np.inf)):
            t = np.where((root > 0) & np.isfinite(root), np.minimum(t, root), t)
        t = np.where(d0 < 0, np.minimum(t, -u0 / np.where(d0 < 0, d0, -1.0)), t)
    return float(np.min(t, initial=np.inf))


def longest_ray_step(x: np.ndarray, dx: np.ndarray) -> float:
    """The largest ``t`` with ``x + t dx >= 0`` (``x > 0``)."""
    ratio = np.divide(x, -dx, out=np.full(x.shape, np.inf), where=dx < 0)
    return float(ratio.min(initial=np.inf))
