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
Tweedie      e^(af)/a + y e^(-bf)/b, y >= 0   min_f l(y, f) + theta f; a = 2-rho, b = rho-1
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
    (Huber(), Mixed(['Poisson()', 'Quadratic()']))
    """
    if isinstance(loss, (list, tuple, np.ndarray)):
        return Mixed(list(loss))
    return one_loss(loss)


def fitted_loss(given: Datafit, bound: Any) -> Datafit:
    """The loss a fit solved, with the parameters it read from the data (``Huber()``'s
    delta) in place: ``bound`` (the loss bound to the problem) as an unbound loss, or
    ``given`` where binding read nothing.

    Parameters
    ----------
    given : Datafit
        The loss as given (``make_loss``).
    bound : Datafit
        The loss bound to the problem (``given.bind(data)``).

    Returns
    -------
    Datafit
        The loss, not bound to any rows.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.datafits import fitted_loss, make_loss
    >>> data = rm.as_task_data(np.ones((4, 1)), np.array([0.0, 1.0, 2.0, 30.0]))
    >>> given = make_loss("huber")
    >>> fitted_loss(given, given.bind(data)), fitted_loss(make_loss("squared"), None)
    (Huber(delta=2.00151), Quadratic())
    """
    if not given.reads_data:
        return given
    bound = getattr(bound, "loss", bound)  # (task blocks elsewhere: the loss they bound)
    return Mixed(bound.losses) if isinstance(given, Mixed) else bound


def loss_on_targets(loss: Any, ys: Any, weights: Any = None) -> Datafit:
    """``make_loss`` with the parameters a loss reads from the data read from targets
    given task by task (``Huber()``'s delta): where a fit is not the only user of the loss
    (:func:`regmtl.compare` scores every model on one loss, a new task's transfer).

    Parameters
    ----------
    loss : str, Datafit, or sequence of them
        What the estimators' ``loss=`` takes.
    ys : sequence of array-like
        Each task's targets (numbers).
    weights : sequence of array-like, optional
        Each task's row weights.

    Returns
    -------
    Datafit
        The loss, its parameters in the targets' units.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.datafits import loss_on_targets
    >>> loss_on_targets("huber", [np.array([0.0, 1.0, 2.0, 30.0])])
    Huber(delta=2.00151)
    """
    datafit = make_loss(loss)
    if not datafit.reads_data or (isinstance(datafit, Mixed)
                                  and len(datafit.losses) != len(ys)):
        return datafit  # (nothing to read; or a list the caller refuses by its length)
    from ..inputs import as_task_data

    # (the targets of a loss list's other tasks, labels perhaps, are not read: zeros)
    reads = [loss.reads_data for loss in (
        datafit.losses if isinstance(datafit, Mixed) else [datafit] * len(ys))]
    ys = [np.asarray(y, dtype=np.float64).ravel() if r else np.zeros(np.shape(y)[0])
          for y, r in zip(ys, reads, strict=True)]
    data = as_task_data([np.zeros((len(y), 1)) for y in ys], ys, sample_weight=weights)
    return fitted_loss(datafit, datafit.bind(data))


__all__ = ["Datafit", *DATAFIT_CLASSES, "DATAFIT_CLASSES", "LOSSES", "fitted_loss",
           "loss_on_targets", "make_loss"]
