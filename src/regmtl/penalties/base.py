"""The penalty interface.

A penalty holds only its *shape* (ratios, a graph, a cluster count); the overall strength
``alpha >= 0`` is passed to every method. The coefficients ``W`` are p x T (column t = task t, row
j = feature j across tasks). A penalty may optimize over a *lifted* variable ``V`` of which W is a
linear image (the dirty models' ``W = P + Q`` keep ``V = (P, Q)``); plain penalties have
``V = W``. Parameters are stored as given (scikit-learn's ``clone`` requires it) and validated
by :meth:`Penalty.check` when a problem's shape is known.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["Penalty", "check_ratio", "check_positive"]


class Penalty:
    """Base class of penalties.

    Every penalty defines :meth:`value` and :meth:`prox`. Certificates use :meth:`dual_scaling`
    and :meth:`conjugate` where ``has_dual`` (a duality gap), else the proximal-gradient residual.
    """

    name: str = ""
    #: the conjugate is tractable, so fits certify with a duality gap
    has_dual: bool = True
    _param_names: tuple[str, ...] = ()
    #: names of the fitted attributes :meth:`structure` sets
    structure_attrs: tuple[str, ...] = ()

    # ------------------------------------------------------------------ objective pieces
    def value(self, V: np.ndarray, alpha: float) -> float:
        raise NotImplementedError

    def prox(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        """``argmin_U ||U - V||^2 / (2 step) + Omega(U)``."""
        raise NotImplementedError

    def bcd_params(self, alpha: float) -> tuple[float, float, bool] | None:
        """(l1, l2, group) of a row-separable penalty for block coordinate descent, else None."""
        return None

    # ------------------------------------------------------------------ lifted variables
    def lift(self, W: np.ndarray) -> np.ndarray:
        """A variable V whose image is W (the starting point of a warm start)."""
        return W

    def compose(self, V: np.ndarray) -> np.ndarray:
        """The coefficients W of a variable V."""
        return V

    def spread(self, G: np.ndarray) -> np.ndarray:
        """Adjoint of :meth:`compose`: a gradient in W as a gradient in V."""
        return G

    # ------------------------------------------------------------------ certificates
    def dual_scaling(self, G: np.ndarray, alpha: float) -> float:
        """Factor s in (0, 1] such that ``s * G`` lies in the domain of the conjugate."""
        raise NotImplementedError

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        """``Omega*(G)`` for G in its domain."""
        raise NotImplementedError

    def alpha_max(self, G0: np.ndarray) -> float:
        """Smallest alpha with W = 0 optimal, given ``G0 = X^T (c theta)`` at W = 0."""
        raise ValueError(f"{self!r} has no alpha_max: no finite alpha gives W = 0 exactly.")

    # ------------------------------------------------------------------ problem shape
    def check(self, n_features: int, n_tasks: int) -> Penalty:
        """Validate the parameters against a problem's shape (``ValueError`` naming them)."""
        return self

    def structure(self, V: np.ndarray, alpha: float) -> dict[str, Any]:
        """Fitted attributes that expose the learned structure (set on the estimator)."""
        return {}

    def variable(self, structure: dict[str, Any]) -> np.ndarray | None:
        """The variable V recorded in fitted attributes (warm starts), or None if W is all."""
        return None

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict:
        """Shape parameters (so scikit-learn can clone a penalty and grid-search them)."""
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params) -> Penalty:
        for k, v in params.items():
            if k not in self._param_names:
                raise ValueError(f"{type(self).__name__} has no parameter {k!r}.")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_short(getattr(self, k))}" for k in self._param_names)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return False
        a, b = self.get_params(), other.get_params()
        return all(_same(a[k], b[k]) for k in a)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return bool(a == b)


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"<array {v.shape}>"
    return repr(v)


def check_ratio(value: Any, name: str) -> float:
    """A number in [0, 1], or a ``ValueError`` naming ``name``."""
    if not isinstance(value, numbers.Real) or not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}.")
    return float(value)


def check_positive(value: Any, name: str, *, strict: bool = True) -> float:
    """A finite number > 0 (>= 0 with ``strict=False``), or a ``ValueError`` naming ``name``."""
    ok = isinstance(value, numbers.Real) and np.isfinite(value)
    ok = ok and (value > 0 if strict else value >= 0)
    if not ok:
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}; got {value!r}.")
    return float(value)
