"""Cases, the public training path and exact references of the weighting bank.

``tests/deep/test_weighting_bank.py`` holds the entries (the promises of each registered method);
this module holds what they share: the seeded Jacobians of the bank (rows are task gradients),
the driver of a weighting through its public training path (``setup`` then ``backward`` on
losses :math:`L_t = g_t \\cdot \\theta + \\ell_t`, so that the per-task gradients are exactly
the rows of J and the loss values the positive offsets :math:`\\ell_t`), and the exact
references: the package's functional forms restricted to the tasks taking part, and cvxpy
programs for the methods defined by an optimization problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from regmtl.deep import TaskSpec, make_weighting

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


# ----------------------------------------------------------------------------- the bank
@dataclass(frozen=True)
class Entry:
    """The promises of one registered weighting (see the module docstring)."""

    options: dict[str, Any] | Callable[[int], dict[str, Any]] = field(default_factory=dict)
    order_invariant: bool | Literal["seeded"] = True
    scale: Literal["linear", "invariant"] | None = "linear"
    non_conflicting: bool = False
    stationary: Literal["zero", "base"] | None = None
    functional: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    qp: Callable[[np.ndarray], np.ndarray] | None = None
    qp_compare: Literal["direction", "maxmin"] = "direction"
    returns_fresh: bool = True
    notes: str = ""
    #: what the weights of a training sum to: a law of tests/deep/test_deep_weight_sums.py
    sums: str | None = None

    def build(self, key: str, T: int):
        opts = self.options(T) if callable(self.options) else dict(self.options)
        return make_weighting(key.split(":")[0], **opts)


def _fn_equal(J, ell):
    return J.sum(0)


def _fixed_weights(T: int) -> np.ndarray:
    return 0.5 + np.arange(T) / T


def _fn_fixed(J, ell):
    return _fixed_weights(J.shape[0]) @ J


def _fn_random(J, ell):
    T = J.shape[0]
    z = torch.randn(T, generator=torch.Generator().manual_seed(SEED), dtype=F64).numpy()
    e = np.exp(z - z.max())
    return (T * e / e.sum()) @ J


_UNC_INIT = 0.25


def _fn_uncertainty(J, ell):
    return np.exp(-_UNC_INIT) * J.sum(0)


def _fn_pcgrad(J, ell):
    from regmtl.deep.weighting import project_conflicting

    G = torch.as_tensor(J, dtype=F64)
    G_proj, _ = project_conflicting(G, order=torch.Generator().manual_seed(SEED))
    return G_proj.sum(0).numpy()


def _fn_cagrad(c: float):
    def fn(J, ell):
        from regmtl.deep.weighting import cagrad_direction

        return cagrad_direction(torch.as_tensor(J, dtype=F64), c=c)[0].numpy()

    return fn


_FAMO_EPS = 1e-12


def _fn_famo(J, ell):
    inv = 1.0 / (ell + _FAMO_EPS)  # z uniform at the first step: w ~ 1 / D_t, summing to T
    return (J.shape[0] * inv / inv.sum()) @ J


def _solve_nash(Ja):
    from regmtl.deep.weighting import nash_weights

    return nash_weights(gram(Ja)).numpy()


def _solve_imtl(Ja):
    from regmtl.deep.weighting import imtl_weights

    return Ja.shape[0] * imtl_weights(gram(Ja)).numpy()


def _solve_mgda(Ja):
    """T times the min-norm point, 0 where the weighting's documented test calls the point
    stationary (``gram.is_stationary``: within 1e-6 of the combined gradients' size)."""
    from regmtl.deep.weighting import mgda_weights
    from regmtl.deep.weighting.gram import is_stationary

    A = gram(Ja).numpy()
    alpha = mgda_weights(A).numpy()
    return np.zeros_like(alpha) if is_stationary(A, alpha) else Ja.shape[0] * alpha


def _solve_aligned(Ja):
    from regmtl.deep.weighting import alignment_matrix

    return alignment_matrix(gram(Ja)).numpy() @ np.ones(Ja.shape[0])


def _solve_upgrad(Ja):
    from regmtl.deep.weighting import upgrad_weights

    return Ja.shape[0] * upgrad_weights(gram(Ja)).numpy()


def _fn_gradvac(J, ell):
    from regmtl.deep.weighting import vaccinate

    G = torch.as_tensor(J, dtype=F64)
    T = J.shape[0]
    G_vac, _, _ = vaccinate(G, torch.zeros(T, T, dtype=F64), beta=0.5,
                            order=torch.Generator().manual_seed(SEED))
    return G_vac.sum(0).numpy()


def _fn_graddrop(J, ell):
    from regmtl.deep.weighting import graddrop_direction

    G = torch.as_tensor(J, dtype=F64)
    return graddrop_direction(G, generator=torch.Generator().manual_seed(SEED)).numpy()


def _solve_dualproj(Ja):
    from regmtl.deep.weighting import dualproj_weights

    return Ja.shape[0] * dualproj_weights(gram(Ja)).numpy()


def _solve_config(Ja):
    from regmtl.deep.weighting import config_weights

    return config_weights(gram(Ja)).numpy()


def _solve_fairgrad(Ja):
    from regmtl.deep.weighting import fairgrad_weights

    return fairgrad_weights(gram(Ja), alpha=1.0).numpy()


def _solve_sdmgrad(Ja):
    from regmtl.deep.weighting import sdmgrad_weights

    return Ja.shape[0] * sdmgrad_weights(gram(Ja), lam=0.3).numpy()


def _solve_modo(Ja):
    from regmtl.deep.weighting import modo_step

    T = Ja.shape[0]
    return T * modo_step(gram(Ja), np.full(T, 1.0 / T), gamma=1e-3, rho=0.1).numpy()


def _cvx_dualproj(J):
    idx = active_rows(J)
    return cvx_projection(J[idx], J[idx].sum(0))


_DB_EPS = 1e-300  # log(L + eps): keeps the scale invariance exact to rounding


def _fn_db_mtl(J, ell):
    from regmtl.deep.weighting import db_mtl_direction

    idx = active_rows(J)
    H = torch.as_tensor((1 - 0.9) * J[idx] / (ell[idx] + _DB_EPS)[:, None], dtype=F64)
    d = np.zeros(J.shape[1])
    return db_mtl_direction(H)[0].numpy() if len(idx) else d


def _fn_stch(J, ell):
    from regmtl.deep.weighting import stch_weights

    return stch_weights(ell).numpy() @ J  # the warm-up: w_t = 1 / L_t


def _fn_gls(J, ell):
    from regmtl.deep.weighting import gls_weights

    return gls_weights(ell).numpy() @ J


def _fn_moco(J, ell):
    from regmtl.deep.weighting import moco_step

    T, idx = J.shape[0], active_rows(J)
    if len(idx) == 0:
        return np.zeros(J.shape[1])
    Ja = torch.as_tensor(J[idx], dtype=F64)
    _, _, d = moco_step(torch.zeros_like(Ja), np.full(len(idx), 1.0 / T), Ja, beta=0.5,
                        gamma=0.1)
    return T * d.numpy()


_STATEFUL = "checked at the first step"
ENTRIES: dict[str, Entry] = {
    "equal": Entry(sums="base", stationary="base", functional=_fn_equal),
    "fixed": Entry(
        sums="given",
        options=lambda T: {"weights": {f"t{i}": float(w) for i, w in enumerate(_fixed_weights(T))}},
        functional=_fn_fixed,
        notes="gradient-blind: d = J^T w at every point (the functional check covers it)"),
    "random": Entry(sums="sum_b", order_invariant="seeded", functional=_fn_random,
                    notes="random by design: d = J^T w with w = T softmax(z), z ~ N(0, I) "
                          "drawn from the seed; at a stationary point the same"),
    "uncertainty": Entry(sums="uncertainty",
                         options={"init": _UNC_INIT}, functional=_fn_uncertainty,
                         notes=f"{_STATEFUL}: w = e^-init b; later steps follow the losses"),
    "dwa": Entry(sums="sum_b", stationary="base", functional=_fn_equal,
                 notes=f"{_STATEFUL}: the base weights (the first two epochs)"),
    "gradnorm": Entry(sums="sum_b", stationary="base", functional=_fn_equal,
                      notes=f"{_STATEFUL}: Algorithm 1's order steps with w(0) = b"),
    "pcgrad": Entry(sums="at_least_b", functional=_fn_pcgrad,
                    notes="projection order random by design, drawn from the seed task by task "
                          "in the order of the names, so a permuted task list gives the same "
                          "update; at a stationary point of three or more tasks it need not "
                          "be 0"),
    "cagrad": Entry(sums="cagrad", options={"c": 0.5}, functional=_fn_cagrad(0.5),
                    qp=cvx_cagrad(0.5), qp_compare="maxmin",
                    notes="c < 1: the ball around g0 need not hold 0, so no stationary "
                          "answer and no non-conflict promise"),
    "cagrad:c=1": Entry(options={"c": 1.0}, non_conflicting=True, stationary="zero",
                        functional=_fn_cagrad(1.0), qp=cvx_cagrad(1.0),
                        qp_compare="maxmin"),
    "cagrad:c=2": Entry(options={"c": 2.0}, non_conflicting=True, stationary="zero",
                        functional=_fn_cagrad(2.0), qp=cvx_cagrad(2.0),
                        qp_compare="maxmin"),
    "famo": Entry(sums="sum_b", options={"eps": _FAMO_EPS}, functional=_fn_famo,
                  notes=f"{_STATEFUL}: w_t ~ 1/L_t normalized to sum T (logits 0), unchanged "
                        "when the losses are scaled by k, so d scales by k (eps 1e-12 keeps "
                        "this exact to rounding)"),
    "nash_mtl": Entry(sums="positive",
                      scale="invariant", stationary="zero", functional=on_active(_solve_nash),
                      qp=cvx_nash),
    "imtl": Entry(sums="sum_b_signed", stationary="zero", functional=on_active(_solve_imtl),
                  notes="IMTL-G is not an optimization problem: no cvxpy reference"),
    "mgda": Entry(sums="mgda",
                  non_conflicting=True, stationary="zero", functional=on_active(_solve_mgda),
                  qp=cvx_min_norm),
    "aligned_mtl": Entry(sums="no_sum", functional=on_active(_solve_aligned),
                         notes="at a stationary point the aligned gradients need not cancel "
                               "(docstring); not an optimization problem"),
    "upgrad": Entry(sums="at_least_b", non_conflicting=True, stationary="zero",
                    functional=on_active(_solve_upgrad), qp=cvx_upgrad),
    "gradvac": Entry(sums="at_least_b", order_invariant="seeded", functional=_fn_gradvac,
                     notes=f"{_STATEFUL} (targets 0); order of the other tasks drawn from the "
                           "seed by position; no stationary answer (docstring)"),
    "graddrop": Entry(sums="graddrop", functional=_fn_graddrop,
                      notes="random by design, one draw per coordinate shared by the tasks: "
                            "order invariant for a seed; the purity is scale-free, so linear; "
                            "does not stop at a stationary point (docstring)"),
    "dualproj": Entry(sums="dualproj", non_conflicting=True, stationary="zero",
                      functional=on_active(_solve_dualproj), qp=_cvx_dualproj,
                      notes="strongly stationary: the dual cone is the orthogonal complement "
                            "of the span, so the projection of sum_t g_t is 0"),
    "config": Entry(sums="no_sum", non_conflicting=True, stationary="zero",
                    functional=on_active(_solve_config),
                    notes="a pseudo-inverse, no optimization problem: no cvxpy reference"),
    "fairgrad": Entry(sums="positive", scale="invariant", stationary="zero",
                      functional=on_active(_solve_fairgrad),
                      notes="alpha = 1: (A w)_t = 1 / w_t, so w scales like 1/k and d is "
                            "invariant (k^((1 - alpha)/(1 + alpha)) in general)"),
    "sdmgrad": Entry(sums="sdmgrad", functional=on_active(_solve_sdmgrad),
                     notes="a min-norm point of the g_t + lam g0: 0 only for two opposite "
                           "gradients, nonzero at other stationary points (docstring)"),
    "modo": Entry(sums="simplex", scale=None, functional=on_active(_solve_modo),
                  notes=f"{_STATEFUL} (lambda uniform): the weights' step gamma (A lambda + "
                        "rho lambda) has the units of A, so d is neither linear nor "
                        "invariant in k; no stationary answer (docstring)"),
    "db_mtl": Entry(sums="db_mtl",
                    options={"eps": _DB_EPS}, scale="invariant", functional=_fn_db_mtl,
                    notes=f"{_STATEFUL} (averages 0): (1 - beta) times the log-loss gradients "
                          "g_t / L_t rescaled to the largest norm; k J and k L leave them "
                          "unchanged; no stationary answer (a sum of rescaled gradients)"),
    "stch": Entry(sums="stch", scale="invariant", functional=_fn_stch,
                  notes=f"{_STATEFUL} (the warm-up, w_t = 1 / L_t); loss-based: no "
                        "stationary answer"),
    "gls": Entry(sums="gls", functional=_fn_gls,
                 notes="w_t = GM / L_t: loss-based, no stationary answer; k L scales GM / L "
                       "by 1, so d is linear in k"),
    "moco": Entry(sums="simplex", scale=None, functional=_fn_moco,
                  notes=f"{_STATEFUL} (y = 0, lambda uniform): one projected step of the "
                        "weights with the units of Y Y^T, so d is neither linear nor "
                        "invariant in k; no stationary answer (docstring)"),
    "excess_mtl": Entry(sums="sum_b_positive_from_b", stationary="base", functional=_fn_equal,
                        notes=f"{_STATEFUL}: the base weights (the step records E(0))"),
    "rgw": Entry(sums="sum_b_positive", order_invariant="seeded", functional=_fn_random,
                 notes="random by design: d = J^T w, w = T softmax(z) drawn from the seed "
                       "(the draws of 'random'); at a stationary point the same"),
}
