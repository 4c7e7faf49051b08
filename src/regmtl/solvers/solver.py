r"""A solver as an object: one call signature, and what it runs, costs and certifies.

As skglm's solvers, each solver of the table (:mod:`~regmtl.solvers.rows`) is an object with
one method, ``run(call, start)``, and declares

- ``requires``: the :class:`~regmtl.solvers.requirements.Requirement` s it needs, in the
  order checked (``on_blocks``: what it needs of task blocks held elsewhere);
- ``regime``: the problems it is built for;
- ``cost``: the work of one of its iterations, in the problem's sizes;
- ``certificate``: the kinds of certificate its results carry (``"duality_gap"``,
  ``"kkt_residual"``);
- ``answers``: the solver name it answers to (``solver=``); ``warm``: whether it starts from
  the point given; ``auto_only``: a route only ``solver="auto"`` takes.

A :class:`Call` is everything a solve is asked (the problem, tol, the iteration budget, the
options, and the solve the inner stages of some solvers call); a :class:`Start` the point it
starts from. A solver that cannot finish hands its point on (:func:`go_on`): the next solver
runs from it with what is left of the budget, and the iterations of both are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from ..blocks import TaskBlocks
from ..datafits import Datafit
from ..penalties import Penalty
from .certificates.certify import Reference
from .requirements import Requirement
from .result import SolverResult

__all__ = ["Call", "Start", "Solver", "go_on"]

#: The kinds of certificate a solver may declare.
CERTIFICATES = ("duality_gap", "kkt_residual")


@dataclass(frozen=True)
class Call:
    """One solve as asked: the problem (``data``, ``datafit``, ``penalty``, ``alpha``, ``ref``
    the problem at W = 0), ``fit_intercept``, ``tol``, the iteration budget ``max_iter``,
    ``verbose``, the solver ``options`` and ``inner``, the solve that inner stages call
    (majorize-minimize, smoothing, restricted subproblems)."""

    data: TaskBlocks
    datafit: Datafit
    penalty: Penalty
    alpha: float
    ref: Reference
    fit_intercept: bool
    tol: float
    max_iter: int
    verbose: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    inner: Callable[..., SolverResult] | None = None

    def left(self, used: int) -> Call:
        """The call with ``used`` iterations spent."""
        return replace(self, max_iter=self.max_iter - used)

    def capped(self, cap: int) -> Call:
        """The call with at most ``cap`` iterations."""
        return replace(self, max_iter=min(self.max_iter, cap))

    def with_options(self, **options: Any) -> Call:
        """The call with these options replaced (or added)."""
        return replace(self, options={**self.options, **options})

    @property
    def args(self) -> tuple:
        """``(data, datafit, penalty, alpha)``, the leading arguments of the methods."""
        return self.data, self.datafit, self.penalty, self.alpha

    @property
    def common(self) -> dict[str, Any]:
        """The keyword arguments every method takes: ``ref``, ``fit_intercept``, ``tol``,
        ``max_iter``, ``verbose``."""
        return dict(ref=self.ref, fit_intercept=self.fit_intercept, tol=self.tol,
                    max_iter=self.max_iter, verbose=self.verbose)


@dataclass
class Start:
    """The point a solver starts from: W, b and, for a penalty that lifts W, its variable
    V (None: ``penalty.lift(W)``); ``dual``: a dual point a primal-dual solver starts from."""

    W: np.ndarray
    b: np.ndarray
    V: np.ndarray | None = None
    dual: np.ndarray | None = None

    @classmethod
    def of(cls, res: SolverResult, *, lifted: bool = False) -> Start:
        """Where ``res`` stopped (its variable with it where ``lifted``, its dual point where
        it kept one)."""
        return cls(res.W, res.b, res.V if lifted else None, getattr(res, "theta", None))

    def variable(self, penalty: Penalty) -> np.ndarray:
        """V: the one given, a copy, or ``penalty.lift(W)``."""
        return penalty.lift(self.W) if self.V is None else np.array(self.V, dtype=np.float64)


class Solver:
    """A solver of the table (the module's text): ``run(call, start)`` and its declarations.

    A subclass sets the class attributes and :meth:`run`; ``name`` is its key in
    :data:`~regmtl.solvers.policy.SOLVER_TABLE`."""

    name: ClassVar[str] = ""
    answers: ClassVar[str] = "auto"
    requires: ClassVar[tuple[Requirement, ...]] = ()
    regime: ClassVar[str] = ""
    cost: ClassVar[str] = ""
    certificate: ClassVar[tuple[str, ...]] = ("duality_gap",)
    warm: ClassVar[bool] = True
    auto_only: ClassVar[bool] = False
    on_blocks: ClassVar[tuple[Requirement, ...] | None] = None

    def run(self, call: Call, start: Start) -> SolverResult:
        """Minimize the problem of ``call`` from ``start`` (its arrays may be changed in
        place); the result carries its certificate."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<solver {self.name!r}>"


def go_on(res: SolverResult, then: Solver, call: Call, start: Start | None = None,
          *, budget: int | None = None) -> SolverResult:
    """``res`` where it certified or spent ``call.max_iter``; else ``then`` from ``start``
    (default: where ``res`` stopped, with its dual point) with what is left of the budget
    (``budget``: that many iterations instead), the iterations of both counted."""
    if res.converged or call.max_iter <= res.n_iter:
        return res
    start = Start.of(res) if start is None else start
    nxt = call.left(res.n_iter) if budget is None else replace(call, max_iter=budget)
    if start.dual is not None:
        nxt = nxt.with_options(dual=start.dual)
    more = then.run(nxt, start)
    more.n_iter += res.n_iter
    return more
