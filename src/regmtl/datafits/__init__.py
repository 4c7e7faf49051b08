r"""Data-fit terms: the loss side of the objective (one module per loss).

A datafit evaluates, on flat per-observation arrays (targets ``y``, scores ``f``, row weights
``c``; see :class:`~regmtl.TaskData`)::

    F(f) = sum_r c_r * l(y_r, f_r)

and the pieces a certified solver needs: the dual variable ``theta = -l'(f)`` and the
Fenchel-dual term ``-sum_r c_r l*(-theta_r)`` (so that for any feasible ``theta`` the dual value is
``dual_value(theta) - Omega*(X^T (c theta))``).

===========  =========================  ==============================================
datafit      l(y, f)                     -l*(-theta), with a = y theta in [0, 1]
===========  =========================  ==============================================
Quadratic    (y - f)^2 / 2               theta y - theta^2 / 2
Logistic     log(1 + exp(-y f)), y=+-1   -(a log a + (1 - a) log(1 - a))
===========  =========================  ==============================================

The package imports every module it holds; each loss class with a ``name`` registers itself
(``base.REGISTRY``), so a new loss is its own module.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import REGISTRY, Datafit

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

#: every registered datafit class, by class name (each one is an attribute of this package)
DATAFIT_CLASSES: dict[str, type[Datafit]] = {cls.__name__: cls for cls in REGISTRY.values()}
globals().update(DATAFIT_CLASSES)

#: the estimators' ``loss=`` names: name -> class
LOSSES: dict[str, type[Datafit]] = dict(REGISTRY)

__all__ = ["Datafit", *DATAFIT_CLASSES, "DATAFIT_CLASSES", "LOSSES"]
