r"""A fit as a chain of reductions: the problem a user gave, passed through each reduction's
``apply`` to the problem the solver sees, and its solution read back through their ``invert``
(cvxpy's reductions, for the multi-task problem).

A problem is (data, loss per task, penalty, whether intercepts are fitted). Each reduction
maps it to an equivalent one and a point of that one back:

=========================  ======================================  ========================
reduction                  ``apply``                               ``invert``
=========================  ======================================  ========================
:class:`ClassColumns`      a column of W per class of each task    the identity (W on the
                           (the multinomial loss), the penalty on  layout is the model's)
                           that layout
:class:`FoldOffset`        the offset :math:`o` folded into the    :math:`b - m`
                           targets and row weights
                           (``Datafit.with_offset``), each task's
                           centre :math:`m_t` into its intercept
:class:`FeatureUnits`      columns excluded, rescaled by their     :math:`W = D^{-1} V`, the
                           factors and deviations, the free ones   free columns fitted back
                           projected out or left free, the box in  (``regmtl.feature_terms``)
                           the penalty
:class:`CenterColumns`     each task's columns shifted where they  :math:`b - s_t^\top w_t`
                           sit far from zero (intercepts fitted)
:class:`LiveFeatures`      the features no row uses dropped        zero rows written back
=========================  ======================================  ========================

A start (a warm start in the input's units) goes down the chain through each ``start``; the
penalty's variable goes up through each ``variable`` (its rows in the input's features, for the
penalty's fitted structure). One more reduction lives with the solvers: the balance scaling of
data far from 1 in magnitude (``regmtl.solvers.parts.balance``, inside the solve).

:func:`chain_of` composes them for every route: the estimators on every placement, the path
and the CV's folds (:func:`regmtl.regularization_path`), :func:`regmtl.alpha_max` and the
path's grid (:meth:`Chain.reference`); :func:`fit_chain` is the one solve of a fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .classes import class_penalty, expand_classes
from .datafits import Datafit
from .datafits.multinomial import Multinomial
from .feature_terms import FeatureTerms, box_holds_zero, grid_reference, reduce_problem
from .inputs import flat_rows
from .penalties import Penalty
from .penalties.factored import PartlyPenalized
from .taskdata import TaskData, intercept_shift, observed_weights, shift_columns

__all__ = ["CenterColumns", "Chain", "ChainFit", "ClassColumns", "FeatureUnits", "FoldOffset",
           "LiveFeatures", "Point", "Problem", "Reduction", "chain_of", "fit_chain",
           "offset_centres", "residual_variance", "task_offsets"]


@dataclass
class Problem:
    """A problem of the solvers: the rows, the loss, the penalty, and whether intercepts are
    fitted."""

    data: Any
    datafit: Datafit
    penalty: Penalty
    fit_intercept: bool


@dataclass
class Point:
    """A point of a problem: ``W`` (p x T, or on the live features at the chain's end),
    ``b`` (T,) and ``V`` the penalty's variable (None where not carried)."""

    W: np.ndarray | None
    b: np.ndarray | None
    V: Any = None


class Reduction:
    """One step of the chain: :meth:`apply` the problem, :meth:`start` a point of the problem
    it was given as one of the problem it made, :meth:`invert` the other way, and
    :meth:`variable` the penalty's variable back (None: the penalty's structure is not
    read back through this step)."""

    def apply(self, problem: Problem) -> Problem:
        return problem

    def start(self, point: Point) -> Point:
        return point

    def invert(self, point: Point) -> Point:
        return point

    def variable(self, V: Any, rows: np.ndarray | None) -> tuple[Any, np.ndarray | None] | None:
        return V, rows


# --------------------------------------------------------------------------- the classes
class ClassColumns(Reduction):
    """The multinomial loss on tasks of more than two classes: a column of W per class of
    each task (:func:`~regmtl.classes.expand_classes`; on task blocks, built on each block),
    the penalty on that layout as it declares (``penalty.on_classes``). W on the layout is
    the model's: ``invert`` is the identity; the fit's tasks are the problem given's."""

    def __init__(self, classes: list[np.ndarray]):
        self.classes = classes

    def apply(self, problem: Problem) -> Problem:
        data = problem.data
        laid = expand_classes(data, self.classes) if data.rows_local else \
            data.expand_classes(self.classes)
        self.problem = Problem(laid, Multinomial().bind(laid),
                               class_penalty(problem.penalty, laid), problem.fit_intercept)
        return self.problem


# --------------------------------------------------------------------------- the offset
def task_offsets(data: TaskData, datafit: Datafit, offset: Any) -> np.ndarray:
    """The offset of every flat row (:func:`~regmtl.inputs.flat_rows`), refused by name for
    a task whose loss takes none (one loss per task: a click task beside counts) where it
    is not zero."""
    o = flat_rows(data, offset, "offset")
    if datafit.kind == "mixed":
        for k, (a, b) in enumerate(zip(data.indptr[:-1], data.indptr[1:], strict=True)):
            loss = datafit.losses[data.task_index[k]]
            if not loss.takes_offset() and np.any(o[a:b] != 0):
                raise ValueError(
                    f"offset: task {data.tasks[data.task_index[k]]!r} has the {loss.name} "
                    "loss, which takes no offset; give that task none (None in a list or "
                    "dict, or leave it out of a dict keyed by task).")
    return o


def offset_centres(data: TaskData, o: np.ndarray) -> np.ndarray:
    """The midpoint of each task's offsets (0 for a task without rows)."""
    starts, n_t = data.indptr[:-1], np.diff(data.indptr)
    full = n_t > 0
    centre = np.zeros(data.n_tasks)
    at = starts[full]
    centre[full] = 0.5 * (np.maximum.reduceat(o, at) + np.minimum.reduceat(o, at))
    return centre


class FoldOffset(Reduction):
    r"""An ``offset`` of the linear predictor folded into the targets and row weights
    (``datafit.with_offset``: the same problem up to :attr:`constant`), on a copy of the rows.

    With intercepts (and one loss for all tasks) each task's offsets are centred first
    (:math:`o - m_t`, :math:`m_t` the midpoint of their range): :math:`\ell(y, x w + b + o)
    = \ell(y, x w + (b + m_t) + (o - m_t))`, so the fit of the centred problem is exact with
    intercepts :math:`b_t + m_t`, and a constant added to a task's offsets moves only its
    intercept (``e^o`` stays within float64 whatever the offsets' level). After
    :meth:`apply`: ``shift`` (T,) the centres, ``rows`` the folded offset of every flat row,
    ``constant`` the objective with the offset minus the folded one."""

    def __init__(self, offset: Any):
        self.offset = offset

    def apply(self, problem: Problem) -> Problem:
        data, datafit = problem.data, problem.datafit.bind(problem.data)
        if not data.rows_local:
            raise ValueError("offset= is taken by fits in memory; on Dask input add the offset "
                             "to the targets' model yourself (e.g. a rate with sample "
                             "weights).")
        if not datafit.takes_offset():  # (said before the offset's form is read: the
            datafit.with_offset(data.y, data.c, data.y)  # classes' layout) raises
        o = task_offsets(data, datafit, self.offset)
        self.shift = np.zeros(data.n_tasks)
        if problem.fit_intercept and datafit.kind != "mixed" and o.size:
            self.shift = offset_centres(data, o)
            o = o - self.shift[data.task_of]
        self.rows = o
        self.constant = datafit.offset_constant(data.y, data.c, o)
        folded = dataclasses.replace(data, _cache={})  # (the rows given are left as they are)
        folded.y, folded.c = datafit.with_offset(data.y, data.c, o)
        return dataclasses.replace(problem, data=folded)

    def start(self, point: Point) -> Point:
        return point if point.b is None else dataclasses.replace(point, b=point.b + self.shift)

    def invert(self, point: Point) -> Point:
        return dataclasses.replace(point, b=point.b - self.shift)


# --------------------------------------------------------------------------- feature terms
class FeatureUnits(Reduction):
    """The per-feature terms (``regmtl.feature_terms``: penalty factors, exclusions, free
    columns, bounds, standardization) as the problem of :func:`~regmtl.feature_terms.
    reduce_problem`; ``alpha`` (the largest of a fit's) for the box's check. ``terms`` may be
    a function of the problem this step is given (its features, tasks and penalty: an
    estimator's terms on the classes' layout), None where they change nothing (then the step
    is the identity)."""

    def __init__(self, terms: FeatureTerms | Callable[[Problem], FeatureTerms | None],
                 alpha: float = 1.0):
        self.terms, self.alpha = terms, alpha

    def apply(self, problem: Problem) -> Problem:
        terms = self.terms(problem) if callable(self.terms) else self.terms
        self.red = None
        if terms is None:
            return problem
        self.penalty, self.n_features = problem.penalty, problem.data.n_features
        self.red = reduce_problem(terms, problem.data, problem.datafit.bind(problem.data),
                                  problem.penalty, self.alpha, problem.fit_intercept)
        return Problem(self.red.data, problem.datafit, self.red.penalty,
                       self.red.fit_intercept)

    def start(self, point: Point) -> Point:
        if self.red is None:
            return point
        return Point(self.red.start(point.W), self.red.start_intercept(point.W, point.b)
                     if self.red.fit_intercept else None)

    def invert(self, point: Point) -> Point:
        if self.red is None:
            return point
        W, b = self.red.coefficients(point.W, point.b, self.n_features)
        return Point(W, b)

    def variable(self, V: Any, rows: np.ndarray | None) -> tuple | None:
        red = self.red
        if red is None:
            return V, rows
        if red.penalty is not self.penalty:  # (wrapped: its structure is not the penalty's)
            return None
        kept = red.kept.copy()
        scale = red.scale
        if red.projection is not None:
            kept[kept] = ~red.free
            scale = scale[~red.free]
        scale = scale[:, None] if scale.ndim == 1 else scale
        if rows is not None:  # (V on the rows ``rows`` of the solver's features)
            scale = scale[rows]
            kept[kept] = rows
        return V / scale, kept

    def holds_zero(self) -> bool:
        """Whether W = 0 meets the bounds (else no alpha makes it the solution)."""
        return self.red is None or box_holds_zero(self.red)

    def reference(self, ref: Any, bottom: Problem) -> Any:
        """The reference of ``alpha_max``: the free rows fitted first
        (:func:`~regmtl.feature_terms.grid_reference`) on the rows the solver sees."""
        if self.red is None:
            return ref
        return grid_reference(dataclasses.replace(self.red, data=bottom.data), bottom.datafit,
                              ref)


# --------------------------------------------------------------------------- intercepts
class CenterColumns(Reduction):
    r"""Each task's columns shifted where they sit far from zero
    (:func:`~regmtl.taskdata.shift_columns`): with intercepts the fit is the same on them,
    :math:`b_t = b'_t - s_t^\top w_t`."""

    def apply(self, problem: Problem) -> Problem:
        self.data = shift_columns(problem.data) if problem.fit_intercept else problem.data
        return dataclasses.replace(problem, data=self.data)

    def start(self, point: Point) -> Point:
        if point.W is None or point.b is None or getattr(self.data, "x_shift", None) is None:
            return point
        return dataclasses.replace(point, b=point.b + intercept_shift(self.data, point.W))

    def invert(self, point: Point) -> Point:
        if getattr(self.data, "x_shift", None) is None:
            return point
        return dataclasses.replace(point, b=point.b - intercept_shift(self.data, point.W))


# --------------------------------------------------------------------------- live features
class LiveFeatures(Reduction):
    """The features no row uses dropped (``regmtl.solvers.parts.dead_features``): the solver
    (``solve_live``) takes its start and returns its result on the live ones, and no p x T
    matrix of zeros is formed where nothing needs it."""

    def apply(self, problem: Problem) -> Problem:
        from .solvers.parts.dead_features import live_features

        self.live = live_features(problem.data)
        self.n_features = problem.data.n_features
        return problem

    def start(self, point: Point) -> Point:
        if self.live is None:
            return point
        from .solvers.solve import on_features

        W, V = on_features(point.W, point.V, self.live)
        return Point(W, point.b, V)

    def invert(self, point: Point) -> Point:
        if self.live is None:
            return Point(point.W, point.b)
        W = np.asarray(point.W)
        out = np.zeros((W.shape[1], self.n_features)).T  # (its transpose is C-ordered: the
        out[self.live] = W                               # coefficients, with no copy)
        return Point(out, point.b)

    def variable(self, V: Any, rows: np.ndarray | None) -> tuple:
        return V, self.live

    def reference(self, ref: Any) -> Any:
        """``ref`` (on all features) on the live ones."""
        from .solvers.parts.dead_features import restricted_reference

        return ref if self.live is None else restricted_reference(ref, self.live)


# --------------------------------------------------------------------------- the chain
@dataclass
class Chain:
    """A problem through its reductions: ``source`` the problem given, ``steps`` in the
    order applied, ``problem`` the one the solver sees."""

    source: Problem
    steps: list[Reduction]
    problem: Problem = field(init=False)

    def __post_init__(self) -> None:
        problem = self.source
        for step in self.steps:
            problem = step.apply(problem)
        self.problem = problem

    def step(self, kind: type) -> Any:
        """The step of type ``kind``, or None."""
        return next((s for s in self.steps if isinstance(s, kind)), None)

    @property
    def model(self) -> Problem:
        """The problem whose W is the model's coefficients: the source's, or its classes'
        layout."""
        layout = self.step(ClassColumns)
        return self.source if layout is None else layout.problem

    def start(self, point: Point) -> Point:
        """A point of the source problem (a warm start) as one of the solver's problem."""
        for step in self.steps:
            point = step.start(point)
        return point

    def invert(self, point: Point) -> Point:
        """A point of the solver's problem (``b`` zeros where no intercepts are fitted) in
        the source problem's units, on all its features."""
        for step in reversed(self.steps):
            point = step.invert(point)
        return point

    def structure(self, V: Any, alpha: float) -> dict:
        """The model's penalty's fitted structure from the solver's variable ``V`` (empty
        where a step wrapped the penalty)."""
        rows = None
        for step in reversed(self.steps):
            back = step.variable(V, rows)
            if back is None:
                return {}
            V, rows = back
        pen = self.model.penalty
        return pen.structure(V, alpha) if rows is None else pen.structure_on(V, alpha, rows)

    def reference(self) -> Any:
        """The reference of ``alpha_max`` and of a path's grid (on all the solver problem's
        features): the solver problem at W = 0, its free rows fitted first."""
        from .solvers.certificates.certify import reference

        bottom = self.problem
        ref = reference(bottom.data, bottom.datafit, bottom.fit_intercept)
        units = self.step(FeatureUnits)
        return ref if units is None else units.reference(ref, bottom)

    def on_live(self, ref: Any) -> Any:
        """A reference of the solver's problem restricted to its live features."""
        live = self.step(LiveFeatures)
        return ref if live is None else live.reference(ref)

    @property
    def live(self) -> np.ndarray | None:
        step = self.step(LiveFeatures)
        return None if step is None else step.live

    def alpha_max(self) -> float:
        """The smallest alpha whose solution is W = 0 (refused where the bounds exclude it)."""
        units = self.step(FeatureUnits)
        if units is not None and not units.holds_zero():
            raise ValueError("alpha_max: lower_bounds / upper_bounds exclude 0, so no alpha "
                             "makes W = 0 the solution.")
        return float(self.problem.penalty.alpha_max(self.reference().G0))


def chain_of(data: Any, datafit: Datafit, penalty: Penalty, fit_intercept: bool, *,
             layout: ClassColumns | None = None, offset: Any = None,
             terms: FeatureTerms | Callable | None = None, alpha: float = 1.0,
             live: bool = True) -> Chain:
    """The chain of a fit: the classes' ``layout`` of the multinomial loss, the offset
    folded, the per-feature ``terms`` reduced (``alpha``: the largest alpha, for the box's
    check), the columns centred where intercepts are fitted, the dead features dropped
    (``live``; not where each task has its own alpha)."""
    steps = ([layout] if layout is not None else []) + \
        ([FoldOffset(offset)] if offset is not None else []) + \
        ([FeatureUnits(terms, alpha)] if terms is not None else []) + \
        [CenterColumns()] + ([LiveFeatures()] if live else [])
    return Chain(Problem(data, datafit, penalty, fit_intercept), steps)


@dataclass
class ChainFit:
    """A fit through its chain: ``W`` (p x T, its transpose C-ordered) and ``b`` (T,) in the
    input's units, the solver's ``result`` (its certificate is the fit's; ``W`` and ``V``
    let go), the penalty's ``structure``, ``constant`` (an offset's folded constant, to add
    to the objective) and, for the squared loss, each task's weighted mean squared residual
    ``variance`` (the same on every problem of the chain: read on the solver's)."""

    W: np.ndarray
    b: np.ndarray
    result: Any
    structure: dict
    constant: float = 0.0
    variance: np.ndarray | None = None


def fit_chain(chain: Chain, alpha: float, alphas: np.ndarray | None, start: Point | None,
              kwargs: dict) -> ChainFit:
    """The one solve of a fit: ``start`` (in the input's units, or None) down the chain,
    the solver's problem solved (on its live features; with one alpha per task, ``alphas``,
    on all), the solution read back. ``kwargs`` are the solver's (``solver``, ``tol``,
    ``max_iter``, ``verbose``, ``options``, ``tighten_warm``)."""
    from .solvers.certificates.zero_stationary import warn_zero_stationary
    from .solvers.solve import solve_live
    from .task_alpha import solve_task_alphas

    bottom = chain.problem
    if alphas is not None and isinstance(bottom.penalty, PartlyPenalized) and not (
            bottom.penalty.penalized.all() and bottom.penalty.lower is None
            and bottom.penalty.upper is None):
        raise ValueError(
            "alpha: one value per task is certified on the plain penalty's dual; with bounds, "
            "or features unpenalized (in every task or in some) under a loss other than the "
            "squared one, give one alpha for all tasks (or fit the tasks apart).")
    point = chain.start(start if start is not None else Point(None, None))
    kwargs = dict(kwargs, W0=point.W, V0=point.V, fit_intercept=bottom.fit_intercept,
                  b0=point.b if point.W is not None else None)
    if alphas is None:
        res = solve_live(bottom.data, bottom.datafit, bottom.penalty, alpha, **kwargs)
        if bottom.penalty.nonconvex and not np.any(res.W):  # stationary, perhaps not the best
            warn_zero_stationary(bottom.data, bottom.datafit, bottom.penalty, alpha,
                                 bottom.fit_intercept, 6)
    else:
        res = solve_task_alphas(bottom.data, bottom.datafit, bottom.penalty, alphas, **kwargs)
    point = Point(res.W, res.b if bottom.fit_intercept else np.zeros(bottom.data.n_tasks))
    V, res.W, res.V = res.V, None, None  # (the result's arrays let go as they are read)
    steps = chain.steps
    if steps and isinstance(steps[-1], LiveFeatures):
        point, steps = steps[-1].invert(point), steps[:-1]
    variance = None
    if bottom.datafit.quadratic:
        variance = residual_variance(bottom.data, point.W, point.b)
    for step in reversed(steps):
        point = step.invert(point)
    offset = chain.step(FoldOffset)
    return ChainFit(point.W, point.b, res, chain.structure(V, alpha),
                    0.0 if offset is None else offset.constant, variance)


def residual_variance(data: Any, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each task's weighted mean squared residual of the scores ``X W + b``."""
    r2 = (data.y - data.linear(W, b)) ** 2
    w = observed_weights(data) if data.rows_local else 1.0
    total = np.asarray(data.task_sums(w * np.ones_like(r2)))
    return np.asarray(data.task_sums(w * r2)) / np.where(total > 0, total, 1.0)
