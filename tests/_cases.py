"""The bank of cases every contract test draws from: penalties, problems and deep weightings.

``PENALTY_CASES`` holds an instance of every registered penalty (the classes of
``regmtl.penalties.PENALTY_CLASSES``), with the
non-default variants that change the mathematics (a ridge part, a weight between the two
parts of a composite, several cluster counts), each under a readable id. A case also carries
its value written straight from the table of design.rst section 4 (``omega``), independent of the
implementation.

``PROBLEMS`` are the data every penalty meets: a small dense problem, the same as sparse CSR, a
shared design, a task of 5 rows next to tasks of 60, and logistic labels; all seeded, all with
T = 4 tasks (the graph ``A4`` is 4 x 4).

``WEIGHTING_SPECS`` names one configuration per deep weighting of the weighting bank
(``tests/_weighting_cases.py``, the one list of them); ``WEIGHTING_CASES`` builds them through
the public registry on first access (torch needed).

Only public API is used (``regmtl``, ``regmtl.penalties``, ``regmtl.deep``), so the bank does not
depend on where solver internals live.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from conftest import A4, CLARABEL_OPTIONS, make_lists, make_shared

import regmtl as rm
from regmtl.penalties import PENALTY_CLASSES


# --------------------------------------------------------------------------- the table
def nuclear(W: np.ndarray) -> float:
    """||W||_*, the sum of singular values."""
    return float(np.linalg.svd(W, compute_uv=False).sum())


def elastic(kind: str, rho: float, W: np.ndarray, alpha: float) -> float:
    """alpha (rho sum_g ||W_g|| + (1 - rho) / 2 ||W||_F^2), groups = entries or rows."""
    l1 = np.abs(W).sum() if kind == "entry" else np.linalg.norm(W, axis=1).sum()
    return float(alpha * (rho * l1 + 0.5 * (1.0 - rho) * np.sum(W * W)))


def mean_regularized(W: np.ndarray, alpha: float, r: float) -> float:
    """alpha / 2 (sum_t ||w_t - w_bar||^2 + r ||W||_F^2)."""
    T = W.shape[1]
    wbar = sum(W[:, t] for t in range(T)) / T
    dev = sum(np.sum((W[:, t] - wbar) ** 2) for t in range(T))
    return float(0.5 * alpha * (dev + r * np.sum(W * W)))


def graph_laplacian(W: np.ndarray, alpha: float, A: np.ndarray) -> float:
    """alpha / 2 sum_{s,t} A_st ||w_s - w_t||^2."""
    T = W.shape[1]
    return float(0.5 * alpha * sum(A[s, t] * np.sum((W[:, s] - W[:, t]) ** 2)
                                   for s in range(T) for t in range(T)))


_DIRTY_PROBLEMS: dict[tuple[tuple[int, ...], float], Any] = {}


def dirty(W: np.ndarray, alpha: float, g: float) -> float:
    """min over P of alpha (sum_j ||P_j|| + g ||W - P||_1), by cvxpy (the infimal convolution).

    The problem is built once per shape and weight with W as a parameter, so a re-solve skips
    cvxpy's canonicalization (the perturbation tests evaluate it hundreds of times).
    """
    import cvxpy as cp  # test-only, and only the structured tests need it

    key = (W.shape, float(g))
    if key not in _DIRTY_PROBLEMS:
        Wp, P = cp.Parameter(W.shape), cp.Variable(W.shape)
        obj = cp.sum(cp.norm(P, 2, axis=1)) + g * cp.sum(cp.abs(Wp - P))
        _DIRTY_PROBLEMS[key] = (cp.Problem(cp.Minimize(obj)), Wp)
    prob, Wp = _DIRTY_PROBLEMS[key]
    Wp.value = np.asarray(W, dtype=float)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), prob.status
    return float(alpha * prob.value)


def sparse_lowrank(V: np.ndarray, alpha: float, g: float) -> float:
    """V = (P, Q): alpha (||Q||_* + g ||P||_1)."""
    return float(alpha * (nuclear(V[1]) + g * np.abs(V[0]).sum()))


def column_norms(Q: np.ndarray) -> float:
    """sum_t ||Q_:t||_2, the group norm over the tasks (columns)."""
    return float(sum(np.linalg.norm(Q[:, t]) for t in range(Q.shape[1])))


def robust_lowrank(V: np.ndarray, alpha: float, g: float) -> float:
    """V = (P, Q): alpha (||P||_* + g sum_t ||Q_:t||_2)."""
    return float(alpha * (nuclear(V[0]) + g * column_norms(V[1])))


def robust_features(V: np.ndarray, alpha: float, g: float) -> float:
    """V = (P, Q): alpha (sum_j ||P_j||_2 + g sum_t ||Q_:t||_2)."""
    rows = float(sum(np.linalg.norm(V[0][j]) for j in range(V.shape[1])))
    return float(alpha * (rows + g * column_norms(V[1])))


def temporal_group_lasso(W: np.ndarray, alpha: float, s: float, r: float) -> float:
    """alpha (sum_j ||W_j||_2 + s / 2 sum_t ||w_t - w_{t+1}||^2 + r / 2 ||W||_F^2)."""
    T = W.shape[1]
    rows = float(sum(np.linalg.norm(W[j]) for j in range(W.shape[0])))
    smooth = sum(float(np.sum((W[:, t] - W[:, t + 1]) ** 2)) for t in range(T - 1))
    return float(alpha * (rows + 0.5 * s * smooth + 0.5 * r * np.sum(W * W)))


def fused_group_lasso(W: np.ndarray, alpha: float, f: float, l1: float) -> float:
    """alpha (sum_j ||W_j||_2 + f sum_j sum_t |W_jt - W_j,t+1| + l1 ||W||_1)."""
    p, T = W.shape
    rows = float(sum(np.linalg.norm(W[j]) for j in range(p)))
    fused = sum(abs(W[j, t] - W[j, t + 1]) for j in range(p) for t in range(T - 1))
    return float(alpha * (rows + f * fused + l1 * np.abs(W).sum()))


def nonconvex(kind: str, groups: str, shape: float, W: np.ndarray, alpha: float) -> float:
    """sum_g rho(s_g) over the magnitudes s_g (|W_jt|, or the row norms ||W_j||_2): MCP
    (Zhang 2010), SCAD (Fan & Li 2001) or capped-L1, each from its defining formula."""
    s = np.abs(W).ravel() if groups == "entry" else np.linalg.norm(W, axis=1)
    total = 0.0
    for x in s:
        if kind == "mcp":  # alpha x - x^2 / (2 gamma) up to gamma alpha, then gamma alpha^2 / 2
            total += alpha * x - x * x / (2 * shape) if x <= shape * alpha else (
                shape * alpha**2 / 2)
        elif kind == "scad":
            if x <= alpha:
                total += alpha * x
            elif x <= shape * alpha:
                total += (2 * shape * alpha * x - x * x - alpha**2) / (2 * (shape - 1))
            else:
                total += alpha**2 * (shape + 1) / 2
        else:
            total += alpha * min(x, shape)
    return float(total)


def _nonconvex_case(id_: str, penalty: rm.Penalty, kind: str, groups: str,
                    shape: float) -> PenaltyCase:
    return PenaltyCase(id_, penalty, lambda V, a: nonconvex(kind, groups, shape, V, a),
                       tags=frozenset({"alpha_max", "nonconvex"}))


# --------------------------------------------------------------------------- penalties
@dataclass(frozen=True)
class PenaltyCase:
    """One penalty instance of the bank.

    ``kind`` and ``rho`` describe the elastic-net family (entry or row groups, ``l1_ratio``);
    ``omega(V, alpha)`` is the table's value, written independently of ``penalty.value``
    (for ``Clustered``, which has no closed form, it is ``penalty.value``, checked against cvxpy
    in ``test_structured_penalties.py``). Tags: ``alpha_max`` (a finite alpha gives W = 0),
    ``elastic``, ``structured``, ``smooth``, ``clustered``, ``slow_omega`` (``omega`` is a cvxpy
    solve), ``subdiff_bound`` (``subdiff_distance`` measures the distance to one subgradient,
    an upper bound of the distance to the set: ``Dirty`` on a row whose shared part is 0),
    ``robust`` (a shared part plus column-sparse outlier tasks, tested in
    ``test_robust_penalties.py``), ``temporal`` (tasks ordered in time, tested in
    ``test_temporal_penalties.py``), ``nonconvex`` (MCP, SCAD, capped-L1: a fit reaches a
    stationary point, certified by the KKT residual; tested in
    ``test_nonconvex_penalties.py``). ``cvx(W, alpha)``, where given, is the penalty as a
    cvxpy expression of the variable W (p x T): the whole fit is then checked against cvxpy's
    minimum (``test_optimality.py``).
    """

    id: str
    penalty: rm.Penalty
    omega: Callable[[np.ndarray, float], float]
    kind: str | None = None
    rho: float | None = None
    lifted: bool = False
    tags: frozenset[str] = field(default_factory=frozenset)
    cvx: Callable[[Any, float], Any] | None = None

    @property
    def has_alpha_max(self) -> bool:
        """A finite alpha gives W = 0 exactly (a norm part is present)."""
        return "alpha_max" in self.tags

    @property
    def has_dual(self) -> bool:
        """The conjugate is tractable (fits certify with a duality gap)."""
        return bool(self.penalty.has_dual)

    def variable_shape(self, p: int, T: int) -> tuple[int, ...]:
        """The shape of the penalty's variable for W of shape (p, T)."""
        return (2, p, T) if self.lifted else (p, T)


def cvx_module() -> Any:
    """cvxpy, imported where a case's ``cvx`` is used (test-only)."""
    import cvxpy as cp

    return cp


def cvx_elastic(kind: str, rho: float) -> Callable[[Any, float], Any]:
    """The elastic-net family as a cvxpy expression of W."""
    def expr(W: Any, alpha: float) -> Any:
        cp = cvx_module()
        norms = cp.abs(W) if kind == "entry" else cp.norm(W, 2, axis=1)
        return alpha * (rho * cp.sum(norms) + 0.5 * (1.0 - rho) * cp.sum_squares(W))
    return expr


def _elastic_case(id_: str, penalty: rm.Penalty, kind: str, rho: float) -> PenaltyCase:
    tags = {"elastic"} | ({"alpha_max"} if rho > 0 else set())
    return PenaltyCase(id_, penalty, lambda V, a: elastic(kind, rho, V, a), kind, rho,
                       tags=frozenset(tags), cvx=cvx_elastic(kind, rho))


def _clustered_case(k: int, eta: float) -> PenaltyCase:
    pen = rm.Clustered(k, eta)
    return PenaltyCase(f"Clustered({k}, {eta})", pen, pen.value, tags=frozenset({"clustered"}))


PENALTY_CASES: list[PenaltyCase] = [
    _elastic_case("L1", rm.L1(), "entry", 1.0),
    _elastic_case("L2", rm.L2(), "entry", 0.0),
    _elastic_case("ElasticNet(0.5)", rm.ElasticNet(0.5), "entry", 0.5),
    _elastic_case("ElasticNet(0.2)", rm.ElasticNet(0.2), "entry", 0.2),
    _elastic_case("L21(1.0)", rm.L21(1.0), "row", 1.0),
    _elastic_case("L21(0.6)", rm.L21(0.6), "row", 0.6),
    _elastic_case("L21(0.0)", rm.L21(0.0), "row", 0.0),
    # three sources over the 8 features; on complete data (no missing source) it is L2,1;
    # missing sources against cvxpy in test_multisource.py
    PenaltyCase("MultiSource(3,2,3)", rm.MultiSource((3, 2, 3)),
                lambda V, a: elastic("row", 1.0, V, a), "row", 1.0,
                tags=frozenset({"alpha_max"})),
    # L1,inf (Turlach et al. 2005): sum_j max_t |W_jt|
    PenaltyCase("LInf1", rm.LInf1(),
                lambda V, a: float(a * sum(max(abs(float(x)) for x in row) for row in V)),
                tags=frozenset({"alpha_max"}),
                cvx=lambda W, a: a * cvx_module().sum(cvx_module().max(cvx_module().abs(W),
                                                                       axis=1))),
    PenaltyCase("Trace", rm.Trace(), lambda V, a: a * nuclear(V),
                tags=frozenset({"alpha_max", "structured"}),
                cvx=lambda W, a: a * cvx_module().normNuc(W)),
    PenaltyCase("MeanRegularized(0)", rm.MeanRegularized(),
                lambda V, a: mean_regularized(V, a, 0.0),
                tags=frozenset({"smooth", "structured"})),
    PenaltyCase("MeanRegularized(0.4)", rm.MeanRegularized(0.4),
                lambda V, a: mean_regularized(V, a, 0.4),
                tags=frozenset({"smooth", "structured"})),
    PenaltyCase("GraphLaplacian", rm.GraphLaplacian(A4), lambda V, a: graph_laplacian(V, a, A4),
                tags=frozenset({"smooth", "structured"})),
    _clustered_case(2, 0.5),
    _clustered_case(1, 2.0),
    _clustered_case(3, 0.1),
    # Clustered with M on the features (MALSAR's cASO); against cvxpy in test_caso.py
    PenaltyCase("SharedStructure(2, 0.5)", rm.SharedStructure(2, 0.5),
                rm.SharedStructure(2, 0.5).value, tags=frozenset({"shared_structure"})),
    PenaltyCase("Dirty(0.6)", rm.Dirty(0.6), lambda V, a: dirty(V, a, 0.6),
                tags=frozenset({"alpha_max", "structured", "slow_omega", "subdiff_bound"})),
    PenaltyCase("Dirty(1.5)", rm.Dirty(1.5), lambda V, a: dirty(V, a, 1.5),
                tags=frozenset({"alpha_max", "structured", "slow_omega", "subdiff_bound"})),
    PenaltyCase("SparseLowRank(0.2)", rm.SparseLowRank(0.2),
                lambda V, a: sparse_lowrank(V, a, 0.2), lifted=True,
                tags=frozenset({"alpha_max", "structured"})),
    PenaltyCase("SparseLowRank(0.7)", rm.SparseLowRank(0.7),
                lambda V, a: sparse_lowrank(V, a, 0.7), lifted=True,
                tags=frozenset({"alpha_max", "structured"})),
    # both parts active for 1/sqrt(T) < g < 1 (RobustLowRank), < sqrt(p) (RobustFeatures);
    # prox and value against cvxpy in test_robust_penalties.py
    PenaltyCase("RobustLowRank(0.6)", rm.RobustLowRank(0.6),
                lambda V, a: robust_lowrank(V, a, 0.6), lifted=True,
                tags=frozenset({"alpha_max", "robust"})),
    PenaltyCase("RobustFeatures(0.8)", rm.RobustFeatures(0.8),
                lambda V, a: robust_features(V, a, 0.8), lifted=True,
                tags=frozenset({"alpha_max", "robust"})),
    # tasks ordered in time (MALSAR's TGL and cFSGL); prox, conjugate and dual norm against
    # cvxpy in test_temporal_penalties.py
    PenaltyCase("TemporalGroupLasso(1.0,0.0)", rm.TemporalGroupLasso(1.0, 0.0),
                lambda V, a: temporal_group_lasso(V, a, 1.0, 0.0),
                tags=frozenset({"alpha_max", "temporal"})),
    PenaltyCase("TemporalGroupLasso(2.0,0.5)", rm.TemporalGroupLasso(2.0, 0.5),
                lambda V, a: temporal_group_lasso(V, a, 2.0, 0.5),
                tags=frozenset({"alpha_max", "temporal"})),
    PenaltyCase("FusedGroupLasso(1.0,0.0)", rm.FusedGroupLasso(1.0, 0.0),
                lambda V, a: fused_group_lasso(V, a, 1.0, 0.0),
                tags=frozenset({"alpha_max", "temporal"})),
    PenaltyCase("FusedGroupLasso(0.5,0.3)", rm.FusedGroupLasso(0.5, 0.3),
                lambda V, a: fused_group_lasso(V, a, 0.5, 0.3),
                tags=frozenset({"alpha_max", "temporal"})),
    # nonconvex, of entries and of row norms; the cap above the prox contract's |V| ~ 1 keeps
    # its generic minimizer (Powell from V) in the global minimizer's basin
    _nonconvex_case("MCP(3.0)", rm.MCP(3.0), "mcp", "entry", 3.0),
    _nonconvex_case("MCP(1.5,group)", rm.MCP(1.5, group=True), "mcp", "row", 1.5),
    _nonconvex_case("SCAD(3.7)", rm.SCAD(3.7), "scad", "entry", 3.7),
    _nonconvex_case("SCAD(2.5,group)", rm.SCAD(2.5, group=True), "scad", "row", 2.5),
    _nonconvex_case("CappedL1(2.0)", rm.CappedL1(2.0), "capped", "entry", 2.0),
    _nonconvex_case("CappedL1(2.0,group)", rm.CappedL1(2.0, group=True), "capped", "row", 2.0),
    # nonconvex, tasks ordered in time: majorize-minimize stages (test_nonconvex_fused.py);
    # its alpha_max is the convex relaxation's: W = 0 from it on, but just below it the stages
    # may still prune every row (so no "alpha_max" tag: its contract is tested there)
    PenaltyCase("NonconvexFusedGroupLasso(0.5)", rm.NonconvexFusedGroupLasso(0.5),
                lambda V, a: float(a * (np.sqrt(np.abs(V).sum(axis=1)).sum()
                                        + 0.5 * np.abs(np.diff(V, axis=1)).sum())),
                tags=frozenset({"nonconvex", "temporal"})),
]
CASES_BY_ID: dict[str, PenaltyCase] = {c.id: c for c in PENALTY_CASES}
assert len(CASES_BY_ID) == len(PENALTY_CASES), "penalty case ids must be unique"

#: every registered penalty class (the names ``penalty=`` accepts, GraphLaplacian and
#: MultiSource among them)
REGISTERED_PENALTIES: tuple[type, ...] = tuple(PENALTY_CLASSES.values())


def cases(*ids: str, tag: str | None = None) -> list[PenaltyCase]:
    """The cases with these ids (in that order), or all those carrying ``tag``."""
    if ids:
        return [CASES_BY_ID[i] for i in ids]
    return [c for c in PENALTY_CASES if tag is None or tag in c.tags]


def penalties(*ids: str) -> dict[str, rm.Penalty]:
    """id -> penalty for these ids (the form the solver tests parametrize over)."""
    return {i: CASES_BY_ID[i].penalty for i in ids}


def case_ids(selected: list[PenaltyCase]) -> list[str]:
    """pytest ids of a list of cases."""
    return [c.id for c in selected]


# --------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """A seeded problem: ``fit_args`` go to ``fit``, ``predict_args`` to ``predict``."""

    id: str
    loss: str
    fit_args: tuple[Any, ...]
    predict_args: tuple[Any, ...]

    @property
    def estimator(self) -> type:
        """The estimator class of the problem's loss."""
        return rm.MultiTaskRegressor if self.loss == "squared" else rm.MultiTaskClassifier

    def data(self) -> rm.TaskData:
        """The problem as TaskData (logistic labels mapped to -1/+1, the larger one to +1)."""
        args = self.fit_args
        if self.loss == "logistic":
            args = (args[0], [np.where(y == np.max(y), 1.0, -1.0) for y in args[1]])
        return rm.as_task_data(*args)


N_TASKS = 4
N_FEATURES = 8


def _problems() -> dict[str, Problem]:
    p = N_FEATURES
    Xs, ys = make_lists((15, 30, 45, 60), p, seed=3)
    rng = np.random.default_rng(4)
    Xsp = []
    for X in Xs:  # about half the entries zero, as CSR
        Z = X * (rng.random(X.shape) < 0.5)
        Xsp.append(sp.csr_matrix(Z))
    ysp = [Z @ np.linspace(1.0, -1.0, p) + 0.1 * rng.standard_normal(Z.shape[0]) + 1.0
           for Z in Xsp]
    X, Y = make_shared(40, p, N_TASKS, seed=5)
    Xt, yt = make_lists((5, 60, 60, 20), p, seed=6)
    Xl, yl = make_lists((20, 30, 40, 50), p, loss="logistic", seed=7)
    return {
        "dense": Problem("dense", "squared", (Xs, ys), (Xs,)),
        "sparse_csr": Problem("sparse_csr", "squared", (Xsp, ysp), (Xsp,)),
        "shared": Problem("shared", "squared", (X, Y), (X,)),
        "tiny_task": Problem("tiny_task", "squared", (Xt, yt), (Xt,)),
        "logistic": Problem("logistic", "logistic", (Xl, yl), (Xl,)),
    }


PROBLEMS: dict[str, Problem] = _problems()


# --------------------------------------------------------------------------- deep weightings
def weighting_registry() -> dict[str, type]:
    """``regmtl.deep.WEIGHTINGS`` (or, before it is exported there, the one of the public
    module ``regmtl.deep.weighting``). Needs torch."""
    deep = importlib.import_module("regmtl.deep")
    reg = getattr(deep, "WEIGHTINGS", None)
    if reg is None:
        reg = importlib.import_module("regmtl.deep.weighting").WEIGHTINGS
    return reg


def _weighting_specs() -> list[tuple[str, str, dict[str, Any]]]:
    """One configuration per weighting of the weighting bank (``tests/_weighting_cases.py``,
    the one list of the weightings the tests read): (id, registry name, options); empty
    without torch."""
    try:
        from _weighting_cases import ENTRIES
    except ImportError:
        return []
    return [(key, key, entry.options(2) if callable(entry.options) else dict(entry.options))
            for key, entry in ENTRIES.items() if ":" not in key]


def _weighting_cases() -> list[tuple[str, str, Any]]:
    from regmtl.deep import make_weighting

    specs = __getattr__("WEIGHTING_SPECS")
    return [(id_, name, make_weighting(name, **opts)) for id_, name, opts in specs]


def __getattr__(name: str) -> Any:
    """``WEIGHTING_SPECS`` (read from the weighting bank) and ``WEIGHTING_CASES`` (id, registry
    name, instance, built through ``make_weighting``) on first access, so this module imports
    without torch."""
    if name in ("WEIGHTING_SPECS", "WEIGHTING_CASES"):
        value = _weighting_specs() if name == "WEIGHTING_SPECS" else _weighting_cases()
        globals()[name] = value
        return value
    raise AttributeError(name)
