"""Solvers: they know only a problem (the block protocol, :class:`~regmtl.blocks.TaskBlocks`,
which :class:`~regmtl.TaskData` implements), a datafit and a penalty.

:func:`~regmtl.solvers.solve` is what the estimators call: it picks a row of the solver table
(:data:`~regmtl.solvers.policy.SOLVER_TABLE`: block coordinate descent,
:func:`~regmtl.solvers.bcd`; conjugate gradients; an exact ridge; ADMM,
:func:`~regmtl.solvers.admm`; FISTA, :func:`~regmtl.solvers.fista`; majorize-minimize stages)
and certifies the result (:func:`~regmtl.solvers.certify`). This package's ``__init__`` only
gathers those names.

Three layers, no circle: *parts* that import no solver (``epochs``: inner coordinate-descent
loops; ``working_set``; ``newton_model``: the IRLS model and the Armijo search; ``quadratic``
and ``quadratic_fista``: per-task Gram forms and FISTA on them; ``gram``, ``polish``,
``reweighted``, ``moments``, ``screening``, ``anderson``, ``certificates``, ``_kernels``;
``kernel_quadratic`` and ``admm``: the row-space form of wide tasks and ADMM on either form;
``dead_features``: features zero on every row, solved without; ``saddle``: the pinball
loss's certificate at a primal-dual pair);
*solvers* that import only parts (``bcd``, ``newton``, ``structured_newton``, ``prox_grad``,
``linear``, ``splitting``, ``stationary``: block coordinate descent to a stationary point of the
nonconvex penalties; ``majorize``: majorize-minimize stages, each solved by the solve it is
given; ``primal_dual`` and ``linear_program``: the pinball loss exactly, by restarted PDHG or
by HiGHS's linear programs); and the *policy* above them (``policy``: the table, the one
dispatch; ``solve``; ``entries``: the public ``bcd``, ``fista`` and ``admm``, which run the
table's rows).
"""

from __future__ import annotations

from .certificates import Certificate, Reference, certify, reference, rounding_floor
from .entries import admm, bcd, fista
from .policy import SOLVERS
from .result import SolverResult
from .solve import solve

__all__ = ["solve", "SolverResult", "Certificate", "Reference", "reference", "certify",
           "rounding_floor",
           "admm", "bcd", "fista", "SOLVERS"]
