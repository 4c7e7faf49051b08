r"""Data-fit terms: the loss side of the objective (one module per loss).

A datafit evaluates, on flat per-observation arrays (targets ``y``, scores ``f``, row weights
``c``; see :class:`~regmtl.TaskData`)::

    F(f) = sum_r c_r * l(y_r, f_r)

and the pieces a certified solver needs: the dual variable ``theta = -l'(f)`` and the
Fenchel-dual term ``-sum_r c_r l*(-theta_r)`` (so that for any feasible ``theta`` the dual value is
``dual_value(theta) - Omega*(X^T (c theta))``).

===========  ==============================  ================================================
datafit      l(y, f)                          -l*(-theta), on the dual domain
===========  ==============================  ================================================
Quadratic    (y - f)^2 / 2                    theta y - theta^2 / 2
Logistic     log(1 + exp(-y f)), y = +-1      -(a log a + (1 - a) log(1 - a)), a = y theta
Poisson      exp(f) - y f, y >= 0             m - m log m, m = y - theta >= 0
Gamma        y exp(-f) + f, y > 0             a - a log(a / y), a = 1 + theta >= 0
Huber        r^2/2 or delta |r| - delta^2/2   theta y - theta^2 / 2, |theta| <= delta
Quantile     tau r+ + (1 - tau) r-            theta y, tau - 1 <= theta <= tau
===========  ==============================  ================================================

(``r = y - f``.) :class:`~regmtl.datafits.mixed.Mixed` holds one of them per task.

The package imports every module it holds; each loss class with a ``name`` registers itself
(``base.REGISTRY``), so a new loss is its own module.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import numpy as np

from .base import REGISTRY, Datafit, one_loss
from .mixed import Mixed

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

#: every registered datafit class, by class name (each one is an attribute of this package)
DATAFIT_CLASSES: dict[str, type[Datafit]] = {cls.__name__: cls for cls in REGISTRY.values()}
globals().update(DATAFIT_CLASSES)

#: the estimators' ``loss=`` names: name -> class
LOSSES: dict[str, type[Datafit]] = dict(REGISTRY)



def make_loss(loss: Any) -> Datafit:
    """A loss from a registered name (:data:`LOSSES`, with its default parameters), a
    :class:`Datafit`, or a list of either, one per task (a
    :class:`~regmtl.datafits.mixed.Mixed` loss).

    Parameters
    ----------
    loss : str, Datafit, or sequence of them
        What the estimators' ``loss=`` takes.

    Returns
    -------
    Datafit
        The loss.

    Raises
    ------
    ValueError
        For an unknown name.

    Examples
    --------
    >>> from regmtl.datafits import make_loss
    >>> make_loss("huber"), make_loss(["poisson", "squared"])
    (Huber(delta=1.35), Mixed(['Poisson()', 'Quadratic()']))
    """
    if isinstance(loss, (list, tuple, np.ndarray)):
        return Mixed(list(loss))
    return one_loss(loss)


__all__ = ["Datafit", *DATAFIT_CLASSES, "DATAFIT_CLASSES", "LOSSES", "make_loss"]
