r"""One loss per task in one fit: a click (logistic), a count (Poisson) and a rating (squared)
sharing one penalty."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Datafit, one_loss
from .on_blocks import BlockLoss

__all__ = ["Mixed"]


class Mixed(Datafit):
    r"""A loss per task: the data term is :math:`\sum_t \sum_{r \in t} c_r \ell_t(y_r, f_r)`,
    each task's rows under its own loss, and every piece of a certificate is the sum of the
    pieces of its losses (one duality gap: the sum of theirs, each dual point in its own
    loss's domain).

    It is bound to a problem's rows (:meth:`bind`, which the solvers call): ``losses[k]`` is
    the loss of the problem's task ``k`` in its task list (``data.tasks``), so folds and
    subsets of the tasks keep each task's loss.

    Parameters
    ----------
    losses : sequence of str or Datafit
        One loss per task, in the order of the fitted tasks.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 4))
    >>> Y = np.column_stack([rng.poisson(np.exp(X[:, 0])), X[:, 1] + rng.standard_normal(200)])
    >>> model = rm.MultiTaskRegressor("l21", alpha=0.01, loss=["poisson", "squared"]).fit(X, Y)
    >>> model.tasks_.tolist(), bool(model.dual_gap_ < 1e-6)
    ([0, 1], True)
    >>> model.predict(X[:2]).round(2).tolist()  # a mean count and a value per row
    [[1.25, -0.05], [0.74, 0.55]]
    """

    name = ""  # built from a list, not by name
    kind = "mixed"

    def __init__(self, losses: Any):
        self.losses = [one_loss(loss) for loss in losses]
        if not self.losses:
            raise ValueError("loss=[]: give one loss per task.")
        coupled = [loss.name for loss in self.losses if loss.coupled]
        if coupled:
            raise ValueError(f"loss=[...] takes losses of one score per row; {coupled[0]!r} "
                             "scores a row once per class: fit tasks of several classes with "
                             "MultiTaskClassifier (the multinomial loss on every task).")
        self.parts: list[Datafit] = []
        self.task_part = np.zeros(len(self.losses), dtype=np.int64)
        for k, loss in enumerate(self.losses):
            for i, part in enumerate(self.parts):
                if repr(part) == repr(loss):
                    self.task_part[k] = i
                    break
            else:
                self.task_part[k] = len(self.parts)
                self.parts.append(loss)
        self.smooth = all(p.smooth for p in self.parts)
        self.has_dual_prox = all(p.has_dual_prox for p in self.parts)
        self.quadratic = all(p.quadratic for p in self.parts)
        self.piecewise_quadratic = all(p.quadratic or p.piecewise_quadratic
                                       for p in self.parts) and not self.quadratic
        self.curvature = max(p.curvature for p in self.parts)
        self.dual_strong_concavity = min(p.dual_strong_concavity for p in self.parts)
        self.profiles_scale = any(p.profiles_scale for p in self.parts)
        self.reads_data = any(p.reads_data for p in self.parts)
        self._rows: list[np.ndarray] | None = None
        self._n_obs = -1

    # ------------------------------------------------------------------ rows
    def bind(self, data: Any) -> Mixed:
        """This loss on the rows of ``data`` (a new object; ``self`` is left as it is).

        Parameters
        ----------
        data : TaskData
            The problem; ``data.task_index`` says which listed task each segment holds
            (task blocks held elsewhere: each block binds its own tasks' losses,
            ``regmtl.datafits.on_blocks.BlockLoss``).

        Returns
        -------
        Datafit
            The bound loss.
        """
        self._check_tasks(data)
        if self.reads_data:
            return self._scaled(data).bind(data)
        if not getattr(data, "rows_local", True):  # task blocks elsewhere: bound on each
            return BlockLoss(self, data, [self.parts[self.task_part[k]]
                                          for k in data.task_index])
        bound = getattr(self, "_bound", None)  # (held, so that identity means the same rows)
        if bound is not None and bound[0] is data.indptr and bound[1] is data.task_index:
            return self  # (already on these rows: the estimator, solve and reference bind)
        part = np.repeat(self.task_part[data.task_index], np.diff(data.indptr))
        new = object.__new__(Mixed)
        new.__dict__.update(self.__dict__)
        new._rows = [np.flatnonzero(part == i) for i in range(len(self.parts))]
        new._n_obs = part.shape[0]
        new._bound = (data.indptr, data.task_index)
        return new

    def _scaled(self, data: Any) -> Mixed:
        """The list with each loss whose parameter is read from the data (``Huber()``)
        bound on the rows of the tasks it holds."""
        at = self.task_part[data.task_index]
        parts = [part.bind(data, tasks=at == i) if part.reads_data else part
                 for i, part in enumerate(self.parts)]
        return Mixed([parts[i] for i in self.task_part])

    def task_losses(self, data: Any) -> list[Datafit]:
        """The loss of each segment of ``data``."""
        self._check_tasks(data)
        return [self.losses[k] for k in data.task_index]

    def _check_tasks(self, data: Any) -> None:
        """One loss per task of ``data``'s task list."""
        n_tasks = len(data.tasks) if getattr(data, "tasks", None) is not None else \
            int(np.max(data.task_index, initial=-1)) + 1
        if n_tasks != len(self.losses):
            raise ValueError(f"loss has {len(self.losses)} entries for {n_tasks} tasks: give "
                             "one loss per task, in the order of the tasks.")

    def _each(self, y):
        if self._rows is None or np.shape(y)[0] != self._n_obs:
            raise ValueError("a Mixed loss is used on the rows it is bound to (Mixed.bind).")
        return zip(self.parts, self._rows, strict=True)

    def _rowwise(self, method: str, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        out = np.empty(np.shape(f), dtype=np.float64)
        for part, rows in self._each(y):
            out[rows] = getattr(part, method)(y[rows], f[rows])
        return out

    # ------------------------------------------------------------------ the loss
    def value(self, y, f, c):
        return float(sum(p.value(y[r], f[r], c[r]) for p, r in self._each(y)))

    def theta(self, y, f):
        return self._rowwise("theta", y, f)

    def deviance(self, y, f):
        return self._rowwise("deviance", y, f)

    def kink_costs(self, y, f):
        return self._rowwise("kink_costs", y, f)

    def hessian(self, y, f):
        return self._rowwise("hessian", y, f)

    def newton_weights(self, y, f):
        return self._rowwise("newton_weights", y, f)

    def feasible(self, y, theta):
        return self._rowwise("feasible", y, theta)

    def dual_prox(self, y, v, step):
        out = np.empty(np.shape(v), dtype=np.float64)
        for part, rows in self._each(y):
            out[rows] = part.dual_prox(y[rows], v[rows], step)
        return out

    def dual_squares(self, y, theta, c):
        out = np.empty(np.shape(theta), dtype=np.float64)
        for part, rows in self._each(y):
            out[rows] = part.dual_squares(y[rows], theta[rows], c[rows])
        return out

    def mean(self, f):
        out = np.empty(np.shape(f), dtype=np.float64)
        for part, rows in self._each(f):
            out[rows] = part.mean(f[rows])
        return out

    def dual_value(self, y, theta, c):
        return float(sum(p.dual_value(y[r], theta[r], c[r]) for p, r in self._each(y)))

    def floor(self, y, c):
        return float(sum(p.floor(y[r], c[r]) for p, r in self._each(y)))

    def curvature_at(self, y, f):
        return max(p.curvature_at(y[r], f[r]) for p, r in self._each(y) if r.size) \
            if self._rows is not None else self.curvature

    def check_targets(self, y, what="y"):
        for part, rows in self._each(y):
            part.check_targets(y[rows], f"{what} of the {part.name} tasks")

    def with_offset(self, y, c, offset):
        y, c = y.copy(), c.copy()
        for part, rows in self._each(y):
            if rows.size and np.any(offset[rows] != 0):
                y[rows], c[rows] = part.with_offset(y[rows], c[rows], offset[rows])
        return y, c

    def offset_constant(self, y, c, offset):
        return float(sum(p.offset_constant(y[r], c[r], offset[r])
                         for p, r in self._each(y) if r.size and np.any(offset[r] != 0)))

    def smoothed(self, delta: float) -> Mixed:
        """The same losses, the nonsmooth ones smoothed with width ``delta``."""
        new = object.__new__(Mixed)
        new.__dict__.update(self.__dict__)
        new.parts = [p if p.smooth else p.smoothed(delta) for p in self.parts]
        new.smooth, new.curvature = True, max(p.curvature for p in new.parts)
        new.has_dual_prox = all(p.has_dual_prox for p in new.parts)
        new.dual_strong_concavity = min(p.dual_strong_concavity for p in new.parts)
        return new

    def neg2_log_likelihood(self, data, f, s):
        """The sum of the tasks' ``-2 log L``, each task's by its own loss (a Gaussian
        variance or a Gamma shape still profiled per task); refused where a task's loss is
        not a log-likelihood (Huber, quantile)."""
        bound = self.bind(data)
        total = 0.0
        for part, rows in bound._each(data.y):
            mine = np.zeros(np.shape(data.y)[0], dtype=bool)
            mine[rows] = True
            view = _TasksOf(data, np.where(mine, data.y, 1.0),
                            np.unique(np.repeat(np.arange(len(data.indptr) - 1),
                                                np.diff(data.indptr))[rows]))
            total += part.neg2_log_likelihood(view, f, np.where(mine, s, 0.0))
        return float(total)

    def __repr__(self) -> str:
        return f"Mixed({[repr(loss) for loss in self.losses]})"




class _TasksOf:
    """The problem as one loss of a :class:`Mixed` fit sees it for its likelihood: its
    tasks' sums only, targets outside its rows set to 1 (a valid target of every loss; their
    weights are 0)."""

    def __init__(self, data: Any, y: np.ndarray, tasks: np.ndarray):
        self.y, self._data, self._tasks = y, data, tasks

    def task_sums(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(self._data.task_sums(values), dtype=np.float64)[self._tasks]
