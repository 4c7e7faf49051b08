r"""Which loss fits with which penalty, by which solver, certified how: read from the code.

For every registered loss (``regmtl.datafits.LOSSES``, and a loss per task) and every
penalty (``regmtl.penalties.PENALTY_CLASSES``), :func:`support_entries` asks the solver
table (:func:`~regmtl.solvers.policy.choose_row`) which row ``solver="auto"`` runs on two
small problems held in memory: tall tasks (more rows than features) and wide ones (for the
multinomial loss, three classes per task on the classes' layout, with the penalty each
declares there: ``regmtl.classes.class_penalty``). The
certificate is read from the declarations :func:`~regmtl.solvers.certify` reads: a duality gap
where the penalty has a tractable dual (``penalty.has_dual``), else the KKT residual; the
quantile loss is solved as a linear program, by primal-dual iterations, or by smoothed stages
(the row each stage runs is named too), and certified on the pinball loss itself. A
combination the table refuses carries the refusal's message. :func:`support_table_rst` writes
the table the documentation shows (built with the docs).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .classes import class_penalty, expand_classes, task_classes
from .datafits import LOSSES, Datafit, make_loss
from .inputs import as_task_data
from .penalties import PENALTY_CLASSES, Penalty, chain_graph
from .penalties.factored import box_kind
from .solvers.policy import SOLVER_TABLE, choose_row

__all__ = ["MIXED_EXAMPLE", "SupportEntry", "factor_table_rst", "support_entries",
           "support_table_rst"]

#: The loss per task the table shows for a mixed fit (a click, a count and a rating).
MIXED_EXAMPLE = ("logistic", "poisson", "squared")
_T = 3  # tasks of the small problems


@dataclass(frozen=True)
class SupportEntry:
    """One loss with one penalty: the solver rows ``"auto"`` runs on tall and wide tasks
    (``stages``: the row of each smoothed stage, for a loss that is not smooth), the
    certificate, or the message that refuses the combination (then the rows are empty)."""

    loss: str
    penalty: str
    tall: str
    wide: str
    certificate: str
    refusal: str = ""


def _example_penalty(cls: type[Penalty], n_features: int) -> Penalty:
    """The penalty with its defaults; a parameter without one gets a small example: a chain
    graph over the tasks (``A``), two feature sources (``blocks``)."""
    examples = {"A": chain_graph(_T), "blocks": (2, n_features - 2)}
    required = {name: examples[name]
                for name, p in inspect.signature(cls.__init__).parameters.items()
                if name != "self" and p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return cls(**required)


def _problem(n_rows: int, n_features: int) -> Any:
    """A small problem in memory: ``n_rows`` rows per task, shared features."""
    rng = np.random.default_rng(0)
    return as_task_data(rng.standard_normal((n_rows, n_features)),
                        np.abs(rng.standard_normal((n_rows, _T))) + 1.0)


def _class_problem(n_rows: int, n_features: int) -> Any:
    """The same problem with three classes per task, on the classes' layout (the
    multinomial loss)."""
    rng = np.random.default_rng(0)
    data = as_task_data(rng.standard_normal((n_rows, n_features)),
                        np.repeat(np.arange(n_rows)[:, None] % 3, _T, axis=1), numeric_y=False)
    return expand_classes(data, task_classes(data))


def _row(data: Any, loss: Datafit, penalty: Penalty) -> str:
    """The row ``"auto"`` runs; for a loss that is not smooth, with the row of its stages."""
    row = choose_row(data, loss, penalty, 0.1)
    if row != "smoothing":
        return row
    return f"{row} ({choose_row(data, loss.smoothed(1.0), penalty, 0.1)})"


def _certificate(loss: Datafit, penalty: Penalty) -> str:
    """The certificate a fit reports (as :func:`~regmtl.solvers.certify` chooses it)."""
    gap = penalty.has_dual and not penalty.nonconvex
    what = "duality gap" if gap else "KKT residual"
    if not loss.smooth:
        if gap:
            return f"{what} of the pinball loss"
        saddle = loss.box_dual or (loss.has_dual_prox and not penalty.has_dual)
        if saddle and getattr(penalty, "has_prox", True) and not penalty.nonconvex:
            return "fixed-point residual of the primal-dual iteration"
        return f"{what} of the pinball loss"
    return what


def support_entries() -> list[SupportEntry]:
    """Every registered loss, and a loss per task (``MIXED_EXAMPLE``: a click, a count and a
    rating), with every penalty: what ``solver="auto"`` runs and how the fit is certified.

    Returns
    -------
    list of SupportEntry
        One entry per (loss, penalty), losses in registry order then ``"mixed"``,
        penalties in the order of ``regmtl.penalties.PENALTY_CLASSES``.

    Examples
    --------
    >>> from regmtl.support_table import support_entries
    >>> entry = next(e for e in support_entries()
    ...              if e.loss == "poisson" and e.penalty == "l21")
    >>> entry.tall, entry.certificate
    ('prox_newton', 'duality gap')
    """
    tall, wide = _problem(40, 5), _problem(4, 12)
    layouts = _class_problem(40, 5), _class_problem(6, 12)
    losses = {name: make_loss(name) for name in LOSSES}
    losses["mixed"] = make_loss(list(MIXED_EXAMPLE))
    out = []
    for cls in PENALTY_CLASSES.values():
        for name, loss in losses.items():
            try:
                problems = layouts if loss.kind == "multiclass" else (tall, wide)
                penalty = class_penalty(_example_penalty(cls, tall.n_features), problems[0])
                rows = [_row(data, loss.bind(data), penalty) for data in problems]
            except ValueError as exc:
                out.append(SupportEntry(name, cls.name, "", "", "", " ".join(str(exc).split())))
                continue
            out.append(SupportEntry(name, cls.name, *rows, _certificate(loss, penalty)))
    return out


def support_table_rst() -> str:
    """The support table as a reStructuredText list table, one row per penalty and one
    column per loss; each cell holds the solver row on tall tasks (on wide tasks after a
    slash where it differs) and the certificate, or the refusal; then the meaning of each
    solver (its ``regime`` in ``regmtl.solvers.policy.SOLVER_TABLE``).

    Returns
    -------
    str
        The table, ready to be included in a page.
    """
    entries = support_entries()
    losses = list(dict.fromkeys(e.loss for e in entries))
    penalties = list(dict.fromkeys(e.penalty for e in entries))
    cell = {(e.loss, e.penalty): e for e in entries}
    heads = [("mixed (" + ", ".join(MIXED_EXAMPLE) + ")") if n == "mixed" else n
             for n in losses]
    lines = [".. list-table::", "   :header-rows: 1", "   :stub-columns: 1", "",
             "   * - penalty"]
    lines += [f"     - {h}" for h in heads]
    for pen in penalties:
        lines.append(f"   * - ``{pen}``")
        for loss in losses:
            e = cell[(loss, pen)]
            if e.refusal:
                lines.append(f"     - refused: {e.refusal}")
                continue
            rows = e.tall if e.wide == e.tall else f"{e.tall} / {e.wide}"
            lines.append(f"     - {rows}; {e.certificate}")
    named = {word for e in entries for word in re.findall(r"\w+", f"{e.tall} {e.wide}")}
    used = [key for key in SOLVER_TABLE if key in named]
    lines += ["", "The solver rows:", ""]
    lines += [f"* ``{key}``: {SOLVER_TABLE[key].regime}. Its cost: {SOLVER_TABLE[key].cost}."
              for key in used]
    return "\n".join(lines) + "\n"


def _bounds_entry(penalty: Penalty) -> str:
    """How a penalty takes ``lower_bounds`` / ``upper_bounds`` (its block step, read by
    :func:`~regmtl.penalties.factored.box_kind`)."""
    kind = box_kind(penalty, 1.0)
    if kind is None:
        return "on unpenalized features only (refused on penalized ones)"
    return f"a box in the prox, by {kind}; block coordinate descent under the box"


def _convention_entry(penalty: Any) -> str:
    """What ``factor_convention="glmnet"`` does to the penalty (:meth:`Penalty.ridge_part`,
    read with ``l1_ratio=0.5`` where the penalty has that parameter)."""
    if "l1_ratio" in penalty.get_params():
        penalty = penalty.set_params(l1_ratio=0.5)
    part = penalty.ridge_part(1.0)
    if part is None:
        return "refused unless every factor is 1 (its squared term is in the metric D)"
    if part > 0.0:
        return "its ridge part weighed by d_j (d_j^2 under ``unit``)"
    return "the same fit (no ridge part)"


def factor_table_rst() -> str:
    """The table of per-feature terms, one row per registered penalty: how a penalty factor
    enters it (its ``factor_entry``), whether it takes factors per feature and task, how it
    takes bounds, and what ``factor_convention="glmnet"`` does to it.

    Returns
    -------
    str
        A reStructuredText list table, ready to be included in a page.

    Examples
    --------
    >>> from regmtl.support_table import factor_table_rst
    >>> "``trace``" in factor_table_rst()
    True
    """
    lines = [".. list-table::", "   :header-rows: 1", "   :stub-columns: 1", "",
             "   * - penalty", "     - a factor d_j enters as", "     - factors (p, T)",
             "     - bounds", "     - ``factor_convention='glmnet'``"]
    for cls in PENALTY_CLASSES.values():
        penalty = _example_penalty(cls, 5)
        per_task = "yes, 0 in some tasks only too" if penalty.separates_over_tasks else \
            "no (couples the tasks)"
        lines += [f"   * - ``{cls.name}``", f"     - ``{cls.factor_entry}``",
                  f"     - {per_task}", f"     - {_bounds_entry(penalty)}",
                  f"     - {_convention_entry(penalty)}"]
    return "\n".join(lines) + "\n"
