"""Solvers: they know only a problem (the block protocol, :class:`~regmtl.blocks.TaskBlocks`,
which :class:`~regmtl.TaskData` implements), a datafit and a penalty.

:func:`~regmtl.solvers.solve` is what the estimators call: it picks a row of the solver table
(:data:`~regmtl.solvers.policy.SOLVER_TABLE`: block coordinate descent,
:func:`~regmtl.solvers.bcd`; conjugate gradients; an exact ridge; ADMM,
:func:`~regmtl.solvers.admm`; FISTA, :func:`~regmtl.solvers.fista`; majorize-minimize stages)
and certifies the result (:func:`~regmtl.solvers.certify`). This package's ``__init__`` only
gathers those names.

The modules are grouped by role, in three layers with no circle:

- ``parts/``: what the solvers are made of, importing no solver (``epochs``: inner
  coordinate-descent loops; ``working_set``; ``newton_model``: the IRLS model and the Armijo
  search; ``quadratic`` and ``quadratic_fista``: per-task Gram forms and FISTA on them;
  ``kernel_quadratic`` and ``admm``: the row-space form of wide tasks and ADMM on either form;
  ``gram``, ``reweighted``, ``moments``, ``anderson``, ``intercepts``, ``_kernels`` and their
  NumPy twins ``small``; ``dead_features``: features zero on every row, solved without);
- ``certificates/``: the certificates and their dual points, also parts (``certify``: the
  duality gap and the KKT residual; ``dual_projection``, ``group_dual`` and ``polish``: better
  dual points; ``kinks`` and ``saddle``: the pinball loss's; ``screening``: the gap-safe rules;
  ``zero_stationary``);
- ``methods/``: the solvers on rows in memory, importing only parts (``bcd``, ``newton``,
  ``structured_newton``, ``prox_grad``, ``linear``, ``splitting``, ``stationary``: block
  coordinate descent to a stationary point of the nonconvex penalties; ``majorize``:
  majorize-minimize stages, each solved by the solve it is given; ``primal_dual`` and
  ``linear_program``: the pinball loss exactly, by restarted PDHG or by HiGHS's linear
  programs; ``smoothing``, ``quasi_newton``, ``small_squares``, ``low_rank_subspace``);
- ``blocks/``: the solvers whose iterates live in groups of task blocks on the workers that hold
  the rows (FISTA's and PDHG's groups, their pieces and their certificate);
- ``streamed/``: the out-of-core fit of a task source read chunk by chunk, and its checkpoint;
- at the top, the *policy* above them all (``solver``: the ``Solver`` object of one call
  signature, ``run(call, start)``; ``rows``: one such object per solver, declaring its regime,
  cost and certificates; ``requirements``: what each needs; ``policy``: the table and its
  stated rule, the one dispatch; ``solve``; ``entries``: the public ``bcd``, ``fista`` and
  ``admm``, which run the table's solvers), and ``names`` and ``result`` below them.
"""

from __future__ import annotations

import importlib
import sys
import types

from .certificates.certify import Certificate, Reference, certify, reference, rounding_floor
from .names import SOLVERS
from .result import SolverResult

#: the names imported on first use, by module: a solve imports the solver modules it runs, so
#: that ``import regmtl`` loads none of them
_LAZY = {"admm": "entries", "bcd": "entries", "fista": "entries", "solve": "solve"}

__all__ = ["solve", "SolverResult", "Certificate", "Reference", "reference", "certify",
           "rounding_floor",
           "admm", "bcd", "fista", "SOLVERS"]


def __getattr__(name: str):
    """The entries of :data:`_LAZY` and the submodules, imported on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """``regmtl.solvers``: ``bcd`` and ``admm`` stay the public functions when the modules of
    the same names are imported (as a solve does), as they were when imported eagerly."""

    def __setattr__(self, name: str, value) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
