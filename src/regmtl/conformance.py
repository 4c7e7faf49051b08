r"""The support matrix: every registered penalty with every loss on every shape of the input.

A **cell** is one registered penalty (``regmtl.penalties.PENALTY_CLASSES``, each with its
defaults: :func:`example_penalty`), one registered loss (``regmtl.datafits.LOSSES``) or a loss
per task (``MIXED``), and one **shape** of ``SHAPES``: long tasks, wide tasks
(:math:`n_t < p`), a shared design, sparse designs, sample weights, offsets, one alpha per
task, alpha = 0. :func:`cell_problem` builds the cell's tiny seeded problem and the estimator
that fits it (``MultiTaskClassifier`` for the logistic and multinomial losses,
``MultiTaskRegressor`` otherwise). A cell is either **refused by name** (:func:`refusal`: the
``ValueError`` that ``fit`` raises before solving, read from the estimator's own checks and
the solver table) or fitted.

The test suite fits every cell that is not refused and checks it against an independent
optimum (``tests/test_conformance.py``: the objective written out in NumPy, cvxpy's optimum
for the convex cells, a bounded local search for the rest); the docs' table of shapes
(:func:`matrix_table_rst`) is written from the same cells, so a refusal shown there is the one
a user meets. A penalty or a loss joins the matrix by registering.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .datafits import LOSSES, Huber
from .estimators import MultiTaskClassifier, MultiTaskRegressor
from .penalties import PENALTY_CLASSES, Penalty, chain_graph

__all__ = ["ALPHA", "MIXED", "SHAPES", "Cell", "CellProblem", "cell_problem", "cells",
           "example_penalty", "matrix_table_rst", "refusal"]

#: The loss per task of the ``"mixed"`` column: a click, a count and a rating.
MIXED = ("logistic", "poisson", "squared")
#: The shapes of the input, each with what it holds.
SHAPES: dict[str, str] = {
    "long": "three tasks of 30, 45 and 60 rows, 5 features",
    "wide": "three tasks of 6, 7 and 8 rows, 10 features (fewer rows than features)",
    "shared": "one design of 40 rows for the three tasks (X with a target matrix Y)",
    "sparse": "the long tasks as SciPy CSR designs, about half of their entries zero",
    "weights": "the long tasks with integer sample weights from 1 to 3",
    "offset": "the long tasks with an offset in every row's linear predictor",
    "task_alpha": "the long tasks with one alpha per task",
    "alpha0": "the long tasks at alpha = 0 (no penalty)",
}
#: The alpha of every cell (``task_alpha``: this times 1, 1/2 and 2).
ALPHA = 0.05
TOL = 1e-8
#: The Huber cells' delta: fixed, so that the independent optimum is of a known loss
#: (``Huber()`` reads its delta from the data; tests/datafits/test_huber_scale.py checks that).
HUBER_DELTA = 1.35
_T = 3
_LONG, _WIDE, _SHARED = (30, 45, 60), (6, 7, 8), 40
_P_LONG, _P_WIDE = 5, 10


@dataclass(frozen=True)
class Cell:
    """One penalty (its registered name), one loss (a registered name or ``"mixed"``) and
    one shape (a key of ``SHAPES``)."""

    penalty: str
    loss: str
    shape: str

    @property
    def id(self) -> str:
        """``penalty-loss-shape``, the cell's test id."""
        return f"{self.penalty}-{self.loss}-{self.shape}"


@dataclass
class CellProblem:
    """A cell's estimator (unfitted) and the arguments of its ``fit``; ``losses`` names the
    loss of each task."""

    estimator: Any
    fit_args: tuple[Any, ...]
    fit_kwargs: dict[str, Any] = field(default_factory=dict)
    losses: tuple[str, ...] = ()


def cells() -> list[Cell]:
    """Every cell: penalties in registry order, then losses (``"mixed"`` last), then shapes."""
    names = [*LOSSES, "mixed"]
    return [Cell(cls.name, loss, shape) for cls in PENALTY_CLASSES.values()
            for loss in names for shape in SHAPES]


def example_penalty(name: str, n_features: int = _P_LONG) -> Penalty:
    """The registered penalty ``name`` with its defaults, and a small example of what has to
    fit the data: a chain graph over the tasks (``A``), two feature sources (``blocks``)."""
    cls = next(c for c in PENALTY_CLASSES.values() if c.name == name)
    examples = {"A": chain_graph(_T), "blocks": (2, n_features - 2)}
    given = {key: examples[key] for key in inspect.signature(cls.__init__).parameters
             if key in examples}
    return cls(**given)


def _targets(loss: str, f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Targets of a loss's model around the linear predictors ``f``
    (``Datafit.sample_targets``: both labels, or all three classes, present); a loss that
    declares no model is refused by name there."""
    return LOSSES[loss]().sample_targets(f, rng)


def _task_losses(loss: str) -> tuple[str, ...]:
    return MIXED if loss == "mixed" else (loss,) * _T


def cell_problem(cell: Cell, seed: int = 0) -> CellProblem:
    """The cell's seeded problem and its estimator (``alpha`` ``ALPHA``, ``tol`` 1e-8).

    Parameters
    ----------
    cell : Cell
        The cell.
    seed : int
        The seed of the data.

    Returns
    -------
    CellProblem
    """
    rng = np.random.default_rng(seed)
    losses = _task_losses(cell.loss)
    wide = cell.shape == "wide"
    p = _P_WIDE if wide else _P_LONG
    W = 0.5 * rng.standard_normal((p, _T))
    W[p // 2:] = 0.0  # rows no task uses
    W[:2] += 0.4
    penalty = example_penalty(cell.penalty, p)
    classifier = cell.loss in ("logistic", "multinomial")
    kwargs: dict[str, Any] = dict(alpha=ALPHA, tol=TOL)
    if not classifier:
        named = [Huber(HUBER_DELTA) if name == "huber" else name for name in losses]
        kwargs["loss"] = named if cell.loss == "mixed" else named[0]
    if cell.shape == "task_alpha":
        kwargs["alpha"] = ALPHA * np.array([1.0, 0.5, 2.0])
    elif cell.shape == "alpha0":
        kwargs["alpha"] = 0.0
    estimator = (MultiTaskClassifier if classifier else MultiTaskRegressor)(penalty, **kwargs)
    if cell.shape == "shared":
        X = rng.standard_normal((_SHARED, p)) + 0.2
        Y = np.column_stack([_targets(losses[t], X @ W[:, t] + 0.3, rng) for t in range(_T)])
        return CellProblem(estimator, (X, Y), {}, losses)
    sizes = _WIDE if wide else _LONG
    Xs = [rng.standard_normal((n, p)) + 0.2 for n in sizes]
    if cell.shape == "sparse":
        Xs = [sp.csr_matrix(X * (rng.random(X.shape) < 0.5)) for X in Xs]
    offsets = ([0.3 * rng.standard_normal(n) for n in sizes] if cell.shape == "offset"
               else [np.zeros(n) for n in sizes])
    ys = [_targets(losses[t], Xs[t] @ W[:, t] + 0.3 + offsets[t], rng) for t in range(_T)]
    fit_kwargs: dict[str, Any] = {}
    if cell.shape == "weights":
        fit_kwargs["sample_weight"] = [rng.integers(1, 4, n).astype(float) for n in sizes]
    if cell.shape == "offset":
        fit_kwargs["offset"] = offsets
    return CellProblem(estimator, (Xs, ys), fit_kwargs, losses)


def refusal(cell: Cell) -> str:
    """The message of the ``ValueError`` that fitting the cell raises before solving, or
    ``""`` where the cell is fitted (read from the estimator's checks and the solver table,
    without solving)."""
    prob = cell_problem(cell)
    return prob.estimator._refusal(*prob.fit_args, **prob.fit_kwargs)


def matrix_table_rst() -> str:
    """The support matrix as a reStructuredText list table: one row per penalty, one column
    per loss; a cell says "every shape" or names the shapes refused, each with a numbered
    reason listed below the table (the error's message, the penalty's repr in it written
    "this penalty").

    Returns
    -------
    str
        The table, ready to be included in a page.
    """
    all_cells = cells()
    losses = list(dict.fromkeys(c.loss for c in all_cells))
    penalties = list(dict.fromkeys(c.penalty for c in all_cells))
    reasons: dict[str, int] = {}
    refused: dict[tuple[str, str], list[str]] = {}
    for c in all_cells:
        # (one reason for all penalties whose message differs only by the penalty's repr)
        msg = " ".join(refusal(c).split()).replace(repr(example_penalty(c.penalty)),
                                                    "this penalty")
        if msg:
            k = reasons.setdefault(msg, len(reasons) + 1)
            refused.setdefault((c.penalty, c.loss), []).append(f"{c.shape} [{k}]")
    heads = [f"mixed ({', '.join(MIXED)})" if n == "mixed" else n for n in losses]
    lines = [".. list-table::", "   :header-rows: 1", "   :stub-columns: 1", "",
             "   * - penalty", *[f"     - {h}" for h in heads]]
    for pen in penalties:
        lines.append(f"   * - ``{pen}``")
        for loss in losses:
            out = refused.get((pen, loss))
            if not out:
                lines.append("     - every shape")
            elif len(out) == len(SHAPES):
                lines.append(f"     - refused {out[0][out[0].index('['):]}"
                             if len({o[o.index('['):] for o in out}) == 1
                             else "     - refused: " + ", ".join(out))
            else:
                lines.append("     - refused on " + ", ".join(out))
    lines += ["", "The shapes:", ""]
    lines += [f"* ``{name}``: {what}." for name, what in SHAPES.items()]
    lines += ["", "Why a cell is refused (the error ``fit`` raises):", ""]
    lines += [f"{k}. {msg}" for msg, k in reasons.items()]
    return "\n".join(lines) + "\n"
