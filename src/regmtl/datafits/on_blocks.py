r"""A loss that finds its rows in each task block: one loss per task, or the multinomial, on a
problem held as task blocks elsewhere (Dask).

Such a loss reads a task's rows through the block layout (``Mixed``: which task a row belongs
to; ``Multinomial``: which rows are one sample's classes), which only a block holds. On task
blocks held elsewhere (``data.rows_local`` False) it is bound as a :class:`BlockLoss`: every
operation runs on every block (``data.blockwise``), the loss bound there to that block's rows,

.. math::

    F(f) = \sum_k \sum_{r \in \text{block } k} c_r \ell_{t(r)}(y_r, f_r),

so per-row results (the dual variable, curvatures, the projection onto the dual domain) stay
where the rows are and only the sums (the loss, the dual term, the floor) come back. A task's
rows, and a sample's classes, all sit in one block, so each block's value is the in-memory
one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Datafit

__all__ = ["BlockLoss"]

#: the declarations a bound loss shares with the loss it binds
_DECLARED = ("name", "kind", "code", "quadratic", "piecewise_quadratic", "smooth",
             "curvature", "dual_strong_concavity", "box_dual", "has_dual_prox", "coupled",
             "profiles_scale", "reads_data")


class BlockLoss(Datafit):
    """``loss`` on the task blocks of ``data`` (see the module's text).

    Parameters
    ----------
    loss : Datafit
        The loss as given (``Mixed``, ``Multinomial``): what a block binds.
    data : TaskBlocks
        The problem, its blocks held elsewhere.
    task_losses : sequence of Datafit, optional
        One loss per task of ``data`` (``Mixed``): each block binds the loss's class built
        from its own tasks' losses. None: each block binds ``loss`` itself.
    """

    def __init__(self, loss: Datafit, data: Any, task_losses: Any = None):
        self.loss, self._data = loss, data
        for attr in _DECLARED:
            setattr(self, attr, getattr(loss, attr))
        self.task_losses = None if task_losses is None else list(task_losses)
        self._position = None if task_losses is None else {
            task: k for k, task in enumerate(data.tasks.tolist())}

    def __getstate__(self) -> dict:  # (sent to the blocks without the problem)
        return {**self.__dict__, "_data": None}

    # ------------------------------------------------------------------ rows
    def bind(self, data: Any) -> Datafit:
        """The loss bound to one block's rows (a problem in this process: a block), or to
        another problem of task blocks (a fold's side)."""
        if data is self._data:
            return self
        if not data.rows_local:
            return self.loss.bind(data)
        if self.task_losses is None:
            return self.loss.bind(data)
        first = self._position[data.tasks.tolist()[0]] if data.n_tasks else 0
        # (a loss per task: the same kind of loss, built from the block's tasks' losses)
        return type(self.loss)(self.task_losses[first:first + data.n_tasks]).bind(data)

    def _rows(self, method: str, *arrays):
        return self._data.blockwise(_block_call, self, method, *arrays, out="rows")

    def _lazy_sum(self, method: str, *arrays):
        return self._data.blockwise(_block_call, self, method, *arrays, out="scalar").sum()

    def _sum(self, method: str, *arrays) -> float:
        return self._data.numbers(self._lazy_sum(method, *arrays))[0]

    # ------------------------------------------------------------------ the loss
    def value(self, y, f, c):
        return self._sum("value", y, f, c)

    def dual_value(self, y, theta, c):
        return self._sum("dual_value", y, theta, c)

    def lazy_value(self, y, f, c):
        """The blocks' losses summed, lazy (``Datafit.lazy_value``)."""
        return self._lazy_sum("value", y, f, c)

    def lazy_dual_value(self, y, theta, c):
        return self._lazy_sum("dual_value", y, theta, c)

    def floor(self, y, c):
        return self._sum("floor", y, c)

    def theta(self, y, f):
        return self._rows("theta", y, f)

    def deviance(self, y, f):
        return self._rows("deviance", y, f)

    def hessian(self, y, f):
        return self._rows("hessian", y, f)

    def newton_weights(self, y, f):
        return self._rows("newton_weights", y, f)

    def feasible(self, y, theta):
        return self._rows("feasible", y, theta)

    def mean(self, f):
        return self._rows("mean", f)

    def curvature_at(self, y, f):
        if np.isfinite(self.curvature):
            return float(self.curvature)
        part = self._data.blockwise(_block_call, self, "curvature_at", y, f, out="scalar")
        return self._data.numbers(part.max())[0]

    def smoothed(self, delta: float) -> Datafit:
        if self.smooth:
            return self
        return self.loss.smoothed(delta).bind(self._data)

    def neg2_log_likelihood(self, data, f, s):
        return self.loss.neg2_log_likelihood(data, f, s)

    def __repr__(self) -> str:
        return repr(self.loss)


def _block_call(block, loss: BlockLoss, method: str, *arrays):
    """``method`` of the loss bound to one block's rows, on the block's pieces."""
    return getattr(loss.bind(block), method)(*arrays)
