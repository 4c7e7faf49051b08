"""Cases, the public training path and exact references of the weighting bank.

``tests/test_weighting_bank.py`` holds the entries (the promises of each registered method);
this module holds what they share: the seeded Jacobians of the bank (rows are task gradients),
the driver of a weighting through its public training path (``setup`` then ``backward`` on
losses :math:`L_t = g_t \\cdot \\theta + \\ell_t`, so that the per-task gradients are exactly
the rows of J and the loss values the positive offsets :math:`\\ell_t`), and the exact
references: the package's functional forms restricted to the tasks taking part, and cvxpy
programs for the methods defined by an optimization problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from regmtl.deep import TaskSpec

F64 = torch.float64
#: The seed of every setup (random-by-design methods draw from it).
SEED = 1234
#: Squared norm below this fraction of the largest counts as a zero gradient (GramWeighting's).
ZERO_GRAD = 1e-24


# ----------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One Jacobian of the bank: ``J`` (T, p) and positive loss values ``ell`` (T,).

    ``stationary`` is "strong" where 0 is in the relative interior of the hull of the rows
    (some strictly positive combination of every row is 0), "weak" where 0 is in the hull only
    on its boundary, "" otherwise.
    """

    name: str
    J: np.ndarray
    ell: np.ndarray
    stationary: str = ""

    @property
    def T(self) -> int:
        return self.J.shape[0]

    def __repr__(self) -> str:  # the pytest id
        return self.name


def _rotate(rng: np.random.Generator, J: np.ndarray, p: int) -> np.ndarray:
    """J (T, k) embedded in R^p by a random orthonormal map (rounding enters every entry)."""
    Q, _ = np.linalg.qr(rng.standard_normal((p, J.shape[1])))
    return J @ Q.T


def _kind(kind: str, rng: np.random.Generator, T: int, p: int) -> np.ndarray:
    if kind == "gauss":
        return rng.standard_normal((T, p))
    if kind == "conflict":  # a common part and strong opposing parts
        base = rng.standard_normal(p)
        return 0.3 * base + rng.standard_normal((T, p)) * np.where(np.arange(T) % 2, -1, 1)[:, None]
    if kind == "dup":  # the first rows repeated
        base = rng.standard_normal(((T + 1) // 2, p))
        return base[np.arange(T) % base.shape[0]]
    if kind == "zero":
        J = rng.standard_normal((T, p))
        J[T - 1] = 0.0
        return J
    if kind == "collinear":  # every row nearly along one direction, both signs
        u = rng.standard_normal(p)
        signs = np.where(np.arange(T) % 3 == 2, -1.0, 1.0)
        scales = signs * (1.0 + rng.random(T))
        return scales[:, None] * u + 1e-7 * rng.standard_normal((T, p))
    if kind == "scaled":  # some rows 1e6 larger
        J = rng.standard_normal((T, p))
        J[::2] *= 1e6
        return J
    if kind == "lowrank":
        r = max(1, min(T - 1, p) // 2)
        return rng.standard_normal((T, r)) @ rng.standard_normal((r, p))
    raise ValueError(kind)


KINDS = ("gauss", "conflict", "dup", "zero", "collinear", "scaled", "lowrank")


def make_cases() -> list[Case]:
    """The bank's Jacobians, seeded: every kind at T in {2, 3, 5, 10} (p alternating 5 and
    50), three at p = 500, and the stationary ones."""
    cases = []
    for k, kind in enumerate(KINDS):
        for j, T in enumerate((2, 3, 5, 10)):
            p = 5 if (k + j) % 2 == 0 else 50
            rng = np.random.default_rng(1000 * k + T)
            cases.append(Case(f"{kind}-T{T}-p{p}", _kind(kind, rng, T, p),
                              0.5 + rng.random(T)))
    for kind, T in (("gauss", 5), ("conflict", 3), ("lowrank", 10)):
        rng = np.random.default_rng(77 + T)
        cases.append(Case(f"{kind}-T{T}-p500", _kind(kind, rng, T, 500), 0.5 + rng.random(T)))
    strong = {
        "opp2": [[1.0, 0.0], [-1.0, 0.0]],
        "opp2diag": [[1.0, 1.0], [-1.0, -1.0]],
        "line3": [[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0]],
        "tri3": [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]],
        "opp2unequal": [[1.0, 0.0], [-2.0, 0.0]],
        "star5": [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 1.0 - 2.0]],
    }
    weak = {"weak3": [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]}
    for group, label in ((strong, "strong"), (weak, "weak")):
        for name, rows in group.items():
            J = np.asarray(rows)
            ell = 0.5 + np.arange(J.shape[0]) / J.shape[0]
            cases.append(Case(f"{name}-exact", J, ell, label))
            rng = np.random.default_rng(len(name))
            cases.append(Case(f"{name}-rot-p5", _rotate(rng, J, 5), ell, label))
    return cases


CASES = make_cases()
STATIONARY_CASES = [c for c in CASES if c.stationary == "strong"]


# ----------------------------------------------------------------------------- training path
def tasks(T: int, order: np.ndarray | None = None) -> list[TaskSpec]:
    """Task specs t0..t{T-1} (in ``order`` if given): names follow the rows."""
    idx = range(T) if order is None else order
    return [TaskSpec(f"t{i}") for i in idx]


def run(weighting, J: np.ndarray, ell: np.ndarray, order: np.ndarray | None = None,
        seed: int = SEED, steps: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The public training path: setup(tasks, seed), then ``steps`` calls of backward on
    L_t = g_t . theta + ell_t at theta = 0; (theta.grad of the last step, its weights)."""
    T = J.shape[0]
    order = np.arange(T) if order is None else np.asarray(order)
    Jt = torch.as_tensor(np.ascontiguousarray(J[order]), dtype=F64)
    lt = torch.as_tensor(np.ascontiguousarray(ell[order]), dtype=F64)
    weighting.setup(tasks(T, order), seed=seed)
    d = w = None
    for _ in range(steps):
        theta = torch.nn.Parameter(torch.zeros(J.shape[1], dtype=F64))
        w = weighting.backward(Jt @ theta + lt, [theta], [])
        d = theta.grad
        d = np.zeros(J.shape[1]) if d is None else d.detach().numpy().copy()
    return d, w.detach().numpy().copy()


# ----------------------------------------------------------------------------- helpers
def active_rows(J: np.ndarray) -> np.ndarray:
    """The rows taking part in a Gram method's step (nonzero gradients)."""
    sq = np.einsum("ij,ij->i", J, J)
    return np.flatnonzero(sq > ZERO_GRAD * max(float(sq.max()), 0.0))


def on_active(solve: Callable[[np.ndarray], np.ndarray]) -> Callable:
    """A functional form ``(J, ell) -> d`` from ``solve(J_active) -> coefficients``, with the
    Gram methods' conventions: zero rows take no part; a single row left gives itself."""

    def functional(J: np.ndarray, ell: np.ndarray) -> np.ndarray:
        idx = active_rows(J)
        if len(idx) == 0:
            return np.zeros(J.shape[1])
        Ja = J[idx]
        if len(idx) == 1:
            return Ja[0].copy()
        return np.asarray(solve(Ja), dtype=np.float64) @ Ja

    return functional


def gram(J: np.ndarray) -> torch.Tensor:
    Jt = torch.as_tensor(J, dtype=F64)
    return Jt @ Jt.T


# ----------------------------------------------------------------------------- cvxpy references
def _cp():
    import cvxpy as cp

    return cp


def _solve(problem) -> None:
    cp = _cp()
    try:
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12,
                      tol_ktratio=1e-10, max_iter=500)
    except cp.error.SolverError:  # pragma: no cover - fallback
        problem.solve(solver=cp.SCS, eps=1e-10)


def _normalized(J: np.ndarray) -> tuple[np.ndarray, float]:
    s = float(np.linalg.norm(J, axis=1).max())
    return (J / s if s > 0 else J), s


def cvx_min_norm(J: np.ndarray) -> np.ndarray:
    """MGDA's update: T_active times the min-norm point of the hull of the active rows."""
    cp = _cp()
    idx = active_rows(J)
    Jn, s = _normalized(J[idx])
    a = cp.Variable(len(idx))
    _solve(cp.Problem(cp.Minimize(cp.sum_squares(Jn.T @ a)), [a >= 0, cp.sum(a) == 1]))
    return len(idx) * s * (Jn.T @ a.value)


def cvx_projection(J: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The projection of g on the dual cone {x : J x >= 0} (primal, in R^p)."""
    cp = _cp()
    Jn, s = _normalized(J)
    x = cp.Variable(J.shape[1])
    _solve(cp.Problem(cp.Minimize(cp.sum_squares(x - g / s)), [Jn @ x >= 0]))
    return s * x.value


def cvx_upgrad(J: np.ndarray) -> np.ndarray:
    """UPGrad's update with unit base weights: the sum of the projections of the rows."""
    idx = active_rows(J)
    return sum(cvx_projection(J[idx], J[i]) for i in idx)


def cvx_cagrad(c: float, rescale: bool = True) -> Callable[[np.ndarray], np.ndarray]:
    """CAGrad's max-min problem over the ball ||d - g0|| <= c ||g0||, times T / (1 + c^2)."""

    def solve(J: np.ndarray) -> np.ndarray:
        cp = _cp()
        T = J.shape[0]
        Jn, s = _normalized(J)
        g0 = Jn.mean(0)
        d, t = cp.Variable(J.shape[1]), cp.Variable()
        cons = [Jn @ d >= t, cp.norm(d - g0) <= c * np.linalg.norm(g0)]
        _solve(cp.Problem(cp.Maximize(t), cons))
        factor = T / (1.0 + c * c) if rescale else T
        return factor * s * d.value

    return solve


def cvx_nash(J: np.ndarray) -> np.ndarray:
    """Nash-MTL's update: argmax_d sum_t log(g_t . d) - ||d||^2 / 2, whose stationarity
    condition d = sum_t g_t / (g_t . d) is the fixed point alpha_t (A alpha)_t = 1 (unit base
    weights); 0 when the active rows are Pareto-stationary (no d with J d > 0)."""
    cp = _cp()
    idx = active_rows(J)
    Ja = J[idx]
    if len(idx) == 1:
        return Ja[0].copy()
    if np.linalg.norm(cvx_min_norm(Ja / np.linalg.norm(Ja, axis=1)[:, None])) <= 1e-6:
        return np.zeros(J.shape[1])  # 0 in the hull of the unit rows: no bargaining solution
    Jn, s = _normalized(Ja)
    d = cp.Variable(J.shape[1])
    problem = cp.Problem(cp.Maximize(cp.sum(cp.log(Jn @ d)) - 0.5 * cp.sum_squares(d)))
    _solve(problem)
    if problem.status not in ("optimal", "optimal_inaccurate") or d.value is None:
        return np.zeros(J.shape[1])  # unbounded: no d with J d > 0 (Pareto-stationary)
    # the rows scaled by 1/s: alpha scales by s, the update sum alpha_t g_t is unchanged
    return d.value
