"""The names a user may pass as ``solver=`` (:data:`SOLVERS`), apart from the solver table
(:mod:`regmtl.solvers.policy`) so that an estimator's parameter check imports no solver."""

from __future__ import annotations

__all__ = ["SOLVERS"]

#: The names a user may pass as ``solver=``.
SOLVERS = ("auto", "bcd", "fista", "cg", "admm")
