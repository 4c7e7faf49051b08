"""TaskData: the one internal representation of a multi-task problem, and its operations.

Every input form (lists, a long table with task ids, a shared design, one task) is converted
once, by ``regmtl.inputs.as_task_data``, into this layout; this module knows nothing of the input
forms. It holds the layout, its block operations (linear maps, segment sums), the labels'
encoding for classification, the row weights and the per-task shift of far-off columns.

Layout. All per-observation arrays are *flat* and grouped by task: observation ``r`` of task
``t`` lies in ``indptr[t] <= r < indptr[t + 1]``. In the stacked layout (lists, long form, one
task) the design ``X`` has one row per observation. In the shared layout (``fit(X, Y)``) ``X`` is
stored once (n x p) and the flat arrays are the columns of the (n, T) target matrix laid end to
end, so observation ``r`` of task ``t`` uses row ``r - offset[t]`` of ``X``, with
``offset = indptr[:-1]``. A missing label is an observation with weight 0. Row weights ``c`` fold
the per-task mean, ``sample_weight`` and the task weights of the objective::

    c_r = omega_t * s_r / sum_{r' in t} s_r'      so that   data term = sum_r c_r * loss_r.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils.multiclass import check_classification_targets, type_of_target

# the range checks live in regmtl.ranges (their documented path); re-exported here, where
# they were first released
from .blocks import Kept
from .ranges import check_column_scales, check_numeric_range, column_range, column_scales
from .segments import adjoint_dense, adjoint_sparse, linear_dense, linear_sparse

__all__ = ["TaskData", "as_labels", "check_column_scales", "check_label_types", "check_task_labels",
           "check_numeric_range", "column_scales", "design_range", "intercept_shift", "nbytes",
           "observed_weights", "set_weights", "shift_columns", "task_name", "task_weights"]

#: Below this many rows per task on average, the linear maps of a dense stacked design run as
#: one compiled pass over the rows (a BLAS call per task costs more than its work).
SMALL_TASK_ROWS = 64


def nbytes(obj: Any) -> int:
    """Bytes of the arrays in ``obj`` (an array, a sparse matrix, a dict, list or tuple of
    them, or an object sized by its own ``__sizeof__``)."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if sp.issparse(obj):
        return sum(int(getattr(obj, a).nbytes) for a in ("data", "indices", "indptr", "row",
                                                          "col") if hasattr(obj, a))
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj)
    if type(obj).__sizeof__ is not object.__sizeof__ and hasattr(obj, "__dict__"):
        return sys.getsizeof(obj)
    return 0


@dataclass
class TaskData:
    r"""A validated multi-task problem: the one representation the solvers see.

    Every input form of the estimators (lists per task, a long table with task ids, a shared
    design with a target matrix, a single task) is converted once, by
    :func:`~regmtl.as_task_data`, into this layout. All per-observation arrays are *flat* and
    grouped by task: observation ``r`` of task ``t`` lies in
    ``indptr[t] <= r < indptr[t + 1]``. In the stacked layout ``X`` has one row per
    observation (N x p). In the shared layout (``fit(X, Y)``) ``X`` is stored once (n x p)
    and the flat arrays are the columns of the (n, T) target matrix laid end to end, so
    observation ``r`` of task ``t`` uses row ``r - offset[t]`` of ``X``; a missing label
    (NaN) is an observation with weight 0. The row weights fold the per-task mean, the
    sample weights ``s_r`` and the task weights :math:`\omega_t` of the objective:

    .. math::

        c_r = \frac{\omega_t\, s_r}{\sum_{r' \in t} s_{r'}}, \qquad
        \text{data term} = \sum_r c_r\, \ell(y_r, x_r^\top w_t + b_t).

    Users rarely build one by hand; every function that takes ``X, y, task`` also takes a
    TaskData as ``X``, which saves converting the same data again.

    Parameters
    ----------
    X : ndarray of shape (n_obs, p) or (n, p), or sparse matrix
        Stacked design (one row per observation) or shared design, Fortran-ordered float64
        or a CSC matrix.
    indptr : ndarray of shape (T + 1,)
        Offsets of each task's segment in the flat arrays.
    task_index : ndarray of shape (T,)
        Position of each segment's task in ``tasks`` (the fitted task list at predict time).
    tasks : ndarray of shape (n_tasks,), dtype object
        Task labels, any hashable.
    shared : bool
        Whether the layout is shared (one design for every task).
    form : {"single", "list", "dict", "long", "shared"}
        The input form, used to give outputs back in it (:meth:`to_form`).
    y : ndarray of shape (n_obs,), optional
        Targets as float (+1/-1 for classification after :meth:`encode_binary`).
    c : ndarray of shape (n_obs,), optional
        Row weights of the data term.
    order : ndarray of shape (n_obs,), optional
        Long form only: ``order[r]`` is the input row of flat observation ``r``.
    observed : ndarray of bool of shape (n_obs,), optional
        Shared layout only: False where the label is missing.
    sample_weight : ndarray of shape (n_obs,), optional
        Sample weights in flat order.
    raw_y : ndarray of shape (n_obs,), optional
        Targets as given (class labels before encoding).
    classes : list of ndarray, optional
        Each task's two labels, sorted (after :meth:`encode_binary`).
    n_input_rows : int, default=0
        Number of rows of the input.
    x_shift : ndarray of shape (p, T), optional
        Set by :func:`~regmtl.taskdata.shift_columns`: ``X`` holds the input minus
        ``x_shift[:, t]`` on task t's rows, so intercepts fitted on it are
        ``b_t + x_shift[:, t] . w_t`` in input units.
    class_blocks : ndarray of shape (n_segments, 2), optional
        The multinomial layout (``regmtl.classes.expand_classes``): each segment is one
        class of a task, and row ``i`` of this array gives, for the i-th task's rows, the
        first segment of its classes and their number ``K`` (its ``K`` segments hold the
        task's rows once per class, the target 1 where the row has that class).

    Attributes
    ----------
    n_tasks : int
        Number of tasks T.
    n_features : int
        Number of features p.
    n_obs : int
        Number of flat observations (``indptr[-1]``).

    See Also
    --------
    regmtl.as_task_data : Build one from any input form.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import as_task_data
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((3, 2)), rng.standard_normal((2, 2))]
    >>> data = as_task_data(Xs, [np.ones(3), np.zeros(2)])
    >>> data.n_tasks, data.n_features, data.n_obs, data.form
    (2, 2, 5, 'list')
    >>> data.indptr.tolist()
    [0, 3, 5]
    >>> data.c.round(3).tolist()  # equal task weights: 1 / n_t per row
    [0.333, 0.333, 0.333, 0.5, 0.5]
    >>> [part.tolist() for part in data.to_form(np.arange(5.0))]
    [[0.0, 1.0, 2.0], [3.0, 4.0]]
    """

    X: Any
    indptr: np.ndarray
    task_index: np.ndarray
    tasks: np.ndarray
    shared: bool
    form: str
    y: np.ndarray | None = None
    c: np.ndarray | None = None
    order: np.ndarray | None = None
    observed: np.ndarray | None = None
    sample_weight: np.ndarray | None = None
    raw_y: np.ndarray | None = None
    classes: list[np.ndarray] | None = None
    n_input_rows: int = 0
    x_shift: np.ndarray | None = None
    class_blocks: np.ndarray | None = None
    _task_of: np.ndarray | None = field(default=None, repr=False)
    _small: bool | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def __sizeof__(self) -> int:
        """Bytes held, arrays and cached results included (``sys.getsizeof``: what Dask's
        scheduler weighs before moving a task block between workers, and counts against a
        worker's memory)."""
        return object.__sizeof__(self) + nbytes(vars(self))

    # ----------------------------------------------------------------- shape facts
    @property
    def n_tasks(self) -> int:
        """Number of tasks T."""
        return len(self.indptr) - 1

    @property
    def n_features(self) -> int:
        """Number of features p."""
        return self.X.shape[1]

    @property
    def n_obs(self) -> int:
        """Number of flat observations."""
        return int(self.indptr[-1])

    @property
    def offset(self) -> np.ndarray:
        """Row of ``X`` = flat index - offset[t] (0 in the stacked layout)."""
        if self.shared:
            return self.indptr[:-1].copy()
        return np.zeros(self.n_tasks, dtype=np.int64)

    @property
    def _small_tasks(self) -> bool:
        """Tasks average fewer than :data:`SMALL_TASK_ROWS` rows (dense stacked design): the
        linear maps run as one compiled pass over the rows instead of a BLAS call per task,
        and X is Fortran-ordered for it."""
        if self._small is None:
            self._small = (not self.shared and not sp.issparse(self.X)
                           and self.n_obs < SMALL_TASK_ROWS * self.n_tasks
                           and self.X.flags.f_contiguous)
        return self._small

    @property
    def task_of(self) -> np.ndarray:
        """Task (segment) of each flat observation."""
        if self._task_of is None:
            self._task_of = np.repeat(
                np.arange(self.n_tasks, dtype=np.int64), np.diff(self.indptr)
            )
        return self._task_of

    # ----------------------------------------------------------------- linear maps
    def linear(self, W: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        """Scores ``f_r = x_r . w_t + b_t`` of every flat observation.

        Parameters
        ----------
        W : ndarray of shape (p, T)
            Coefficients, column t for task t.
        b : ndarray of shape (T,), optional
            Intercepts (none when omitted).

        Returns
        -------
        ndarray of shape (n_obs,)
            The scores, in flat order.
        """
        W = np.asarray(W, dtype=np.float64)
        if self.shared:
            F = np.asarray(self.X @ W)
            if b is not None:
                F = F + b
            return np.asarray(F, dtype=np.float64).ravel(order="F")
        if sp.issparse(self.X):
            f = np.zeros(self.n_obs)
            linear_sparse(self.X.data, self.X.indices, self.X.indptr, self.task_of, W, f)
        elif self._small_tasks:  # one compiled pass over the rows, whatever T
            f = np.empty(self.n_obs)
            linear_dense(self.X, self.indptr, np.ascontiguousarray(W), f)
        elif "class_design" in self._cache:  # the classes' layout: one product per task
            f = self._class_linear(W)
        else:  # tasks of many rows: one BLAS product per task on a view of the design
            f = np.empty(self.n_obs)
            for t, (a, e) in enumerate(zip(self.indptr[:-1], self.indptr[1:], strict=True)):
                f[a:e] = self.X[a:e] @ W[:, t]
        if b is not None:
            b = np.asarray(b, dtype=np.float64)
            f += b[0] if self.n_tasks == 1 else b[self.task_of]
        return f

    def adjoint(self, u: np.ndarray) -> np.ndarray:
        """The transpose of :meth:`linear` in W: ``G[:, t] = X_t^T u_t``.

        Parameters
        ----------
        u : ndarray of shape (n_obs,)
            A value per flat observation.

        Returns
        -------
        ndarray of shape (p, T)
            ``G``, one column per task.
        """
        u = np.ascontiguousarray(u, dtype=np.float64)
        if self.shared:
            U = u.reshape(-1, self.n_tasks, order="F")
            return np.asarray(self.X.T @ U, dtype=np.float64)
        if sp.issparse(self.X):
            G = np.zeros((self.n_features, self.n_tasks))
            adjoint_sparse(self.X.data, self.X.indices, self.X.indptr, self.task_of, u, G)
            return G
        G = np.empty((self.n_features, self.n_tasks))
        if self._small_tasks:
            adjoint_dense(self.X, self.indptr, u, G)
            return G
        if "class_design" in self._cache:
            return self._class_adjoint(u, G)
        for t, (a, e) in enumerate(zip(self.indptr[:-1], self.indptr[1:], strict=True)):
            G[:, t] = self.X[a:e].T @ u[a:e]
        return G

    def _class_spans(self):
        """On the classes' layout with its task design kept (``_cache["class_design"]``, set
        by :func:`regmtl.classes.expand_classes`): per task, its rows of that design, its
        first class column, its number of classes and its flat range (K segments of n rows)."""
        Xc, first_row = self._cache["class_design"]
        for (c0, K), r0 in zip(self.class_blocks.tolist(), first_row.tolist(), strict=True):
            a, e = int(self.indptr[c0]), int(self.indptr[c0 + K])
            yield Xc[r0:r0 + (e - a) // K], c0, K, a, e

    def _class_linear(self, W: np.ndarray) -> np.ndarray:
        """:meth:`linear` on the classes' layout: the task's scores of all its classes in one
        product ``X_t W_(t)`` (n x K) with the task's rows, read once instead of K times."""
        f = np.empty(self.n_obs)
        for X, c0, K, a, e in self._class_spans():
            f[a:e] = (X @ W[:, c0:c0 + K]).ravel(order="F")
        return f

    def _class_adjoint(self, u: np.ndarray, G: np.ndarray) -> np.ndarray:
        """:meth:`adjoint` on the classes' layout, ``X_t^T U_(t)`` per task."""
        for X, c0, K, a, e in self._class_spans():
            G[:, c0:c0 + K] = X.T @ u[a:e].reshape(K, -1).T
        return G

    def feature_means(self) -> np.ndarray:
        """Per-task weighted means of the features, ``sum_{r in t} c_r x_r / sum_{r in t} c_r``
        (p x T); missing labels carry no weight."""
        return self.adjoint(self.c) / self.task_sums(self.c)

    def segments(self):
        """Each task's observed rows.

        Yields
        ------
        rows : ndarray of int
            Flat indices of the task's observations with a label.
        weights : ndarray or None
            Their sample weights (None without sample weights).
        """
        for a, b in zip(self.indptr[:-1], self.indptr[1:], strict=True):
            s = np.arange(a, b)
            if self.observed is not None:
                s = s[self.observed[a:b]]
            yield s, (None if self.sample_weight is None else self.sample_weight[s])

    def effective_sizes(self) -> np.ndarray:
        """``n_t / omega_t`` per task: what divides task t's loss sum in the data term
        (``n_t`` counts the observed rows, weighted by ``sample_weight``)."""
        s = np.ones(self.n_obs) if self.sample_weight is None else self.sample_weight
        if self.observed is not None:
            s = np.where(self.observed, s, 0.0)
        return self.task_sums(s) / self.task_sums(self.c)

    def task_sums(self, u: np.ndarray) -> np.ndarray:
        """Per-task sums of a flat array.

        Parameters
        ----------
        u : ndarray of shape (n_obs,)
            A value per flat observation.

        Returns
        -------
        ndarray of shape (T,)
            The sum over each task's segment (0 for a task without rows here, as in a
            validation part that holds none of a one-row task).
        """
        u = np.asarray(u, dtype=np.float64)
        if "nonempty" not in self._cache:  # the tasks with rows, once (reduceat misreads
            n_t = np.diff(self.indptr)      # an empty segment)
            self._cache["nonempty"] = None if n_t.all() else np.flatnonzero(n_t > 0)
        full = self._cache["nonempty"]
        if full is None:
            return np.add.reduceat(u, self.indptr[:-1])
        out = np.zeros(self.n_tasks)
        if len(full):
            out[full] = np.add.reduceat(u, self.indptr[:-1][full])
        return out

    # ----------------------------------------------------------------- the block protocol
    # (:class:`regmtl.blocks.TaskBlocks`): in memory the data is its one block, in this process
    #: the rows are NumPy/SciPy arrays in this process (see :class:`regmtl.blocks.TaskBlocks`)
    rows_local = True  # (a class attribute, not a field)

    def per_row(self, v: Any) -> Any:
        """A value per task (or one number) as a value per flat observation."""
        if np.ndim(v) == 0:
            return v
        return np.asarray(v)[self.task_of]

    def row_zeros(self) -> np.ndarray:
        """Zeros, one per flat observation."""
        return np.zeros(self.n_obs)

    def blockwise(self, fn: Any, *args: Any, out: Any = "rows") -> Any:  # noqa: ARG002
        """``fn(self, *args)``: the data is its one block; results as ``fn`` gives them."""
        res = fn(self, *args)
        return list(res) if isinstance(out, list) else res

    def settle(self, *arrays: Any) -> tuple:
        """The arrays as they are (nothing to compute or place in memory)."""
        return arrays

    def memo(self, key: Any, make: Any) -> Any:
        """``make()``, computed at the first call with ``key`` and kept with the problem."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def keep(self, cls: type, *args: Any, several: bool = True) -> Any:  # noqa: ARG002
        """``cls(*args)`` in this process (the data is its one block, its one holder)."""
        return Kept([cls(*args)])

    def with_columns(self, keep: np.ndarray) -> TaskData:
        """The same problem on the columns ``keep`` of ``X`` (a copy, its own memo; a CSC X
        whose columns left out hold no entries shares its entries and row indices)."""
        X = _kept_columns(self.X, keep) if sp.issparse(self.X) else np.asfortranarray(
            np.asarray(self.X)[:, keep])
        shift = None if self.x_shift is None else self.x_shift[keep]
        return dataclasses.replace(self, X=X, x_shift=shift, _cache={})

    def numbers(self, *values: Any) -> tuple[float, ...]:
        """Scalars as floats."""
        return tuple(float(v) for v in values)

    def arrays(self, *values: Any) -> tuple[np.ndarray, ...]:
        """The arrays as NumPy arrays (no copy)."""
        return tuple(np.asarray(v) for v in values)

    # ----------------------------------------------------------------- outputs
    def to_form(self, flat: np.ndarray) -> Any:
        """Arrange flat per-observation values in the form of the input.

        Parameters
        ----------
        flat : ndarray of shape (n_obs,) or (n_obs, k)
            Values (or rows of values) in flat order.

        Returns
        -------
        ndarray, list or dict
            One array (single task), a list or dict of arrays per task (lists and dicts),
            an array in the input's row order (long form), or an (n, T) matrix for a shared
            design (a list of (n, k) arrays per task for 2-D values).
        """
        segs = [flat[a:b] for a, b in zip(self.indptr[:-1], self.indptr[1:], strict=True)]
        if self.form == "single":
            return segs[0]
        if self.form == "list":
            return segs
        if self.form == "dict":
            return {self.tasks[k]: s for k, s in zip(self.task_index, segs, strict=True)}
        if self.form == "long":
            out = np.empty_like(flat)
            out[self.order] = flat
            return out
        # shared: (n, T) matrix, or a list of (n, k) arrays per task for 2-D values
        if flat.ndim == 1:
            return np.column_stack(segs)
        return segs

    def encode_binary(self, tasks: np.ndarray | None = None) -> TaskData:
        """Map each task's two labels to -1 / +1, in place.

        ``classes[t]`` holds task t's labels, sorted; the second is +1. Classes are counted
        among rows that carry weight (observed, positive sample weight): a task whose other
        class has only zero-weight rows has one class and is refused.

        Parameters
        ----------
        tasks : ndarray of int, optional
            Only these segments (a fit with one loss per task: its binary tasks); the
            others keep their targets and have ``classes[t] = None``.

        Returns
        -------
        TaskData
            The data itself, with ``y`` and ``classes`` set.

        Raises
        ------
        ValueError
            If a task has one class among its weighted rows, or more than two classes.
        """
        if tasks is not None:  # these segments only (one loss per task): the others as given
            y = np.array(self.y if self.y is not None else self.raw_y, dtype=np.float64)
            classes: list = [None] * self.n_tasks
            for t in tasks:
                classes[t] = _encode_task(self, int(t), y)
            self.y, self.classes = y, classes
            return self
        encoded = _encode_vectorized(self)
        if encoded is None:  # labels of different types per task: each task with its own
            y = np.ones(self.n_obs)
            encoded = y, [_encode_task(self, t, y) for t in range(self.n_tasks)]
        self.y, self.classes = encoded
        return self


# --------------------------------------------------------------------- labels
def _kept_columns(X: Any, keep: np.ndarray) -> Any:
    """``X[:, keep]`` of a sparse X (``keep`` a mask). Where X is CSC and the columns left out
    hold no stored entry (a bag-of-words design's unused words), the result is X's own
    entries and row indices under new column pointers: the same matrix as scipy's indexing
    gives, without a copy of the entries."""
    keep = np.asarray(keep)
    if X.format != "csc" or keep.dtype != bool or keep.shape != (X.shape[1],):
        return X[:, keep]
    counts = np.diff(X.indptr)
    if counts[~keep].any():
        return X[:, keep]
    indptr = np.zeros(int(keep.sum()) + 1, dtype=X.indptr.dtype)
    np.cumsum(counts[keep], out=indptr[1:])
    return type(X)((X.data, X.indices, indptr), shape=(X.shape[0], indptr.size - 1),
                   copy=False)


def as_labels(labels: np.ndarray) -> np.ndarray:
    """One task's labels with their own dtype when an object array holds a single type.

    Labels of tasks with different types (``'spam'/'ham'`` and ``3/7``) travel together in an
    object array; scikit-learn reads an object array of numbers as an unknown target type.
    """
    labels = np.asarray(labels)
    if labels.dtype == object and len(labels):
        kinds = {type(v) for v in labels}
        if len(kinds) == 1 and not issubclass(next(iter(kinds)), str):
            try:
                homog = np.asarray(labels.tolist())
            except (TypeError, ValueError):
                return labels
            if homog.ndim == 1 and homog.dtype != object:
                return homog
    return labels


def check_label_types(labels: np.ndarray, name: object) -> None:
    """Refuse a task whose labels mix strings with numbers (``[1, 'a', ...]``): such labels
    have no order, so its classes cannot be sorted (``name``: the task's name).

    Raises
    ------
    ValueError
        Naming the task, ``y`` and the fix (one label type per task).
    """
    labels = np.asarray(labels)
    if labels.dtype != object or not len(labels):
        return
    kinds = {type(v) for v in labels.tolist()}
    text = {k for k in kinds if issubclass(k, (str, bytes))}
    if text and kinds - text:
        seen = ", ".join(sorted(k.__name__ for k in kinds))
        raise ValueError(
            f"y: task {name} mixes label types ({seen}); the labels of one task must all be "
            "strings or all numbers. Convert them to one type (e.g. all to str).")


#: The target types scikit-learn's ``check_classification_targets`` accepts.
_CLASSIFICATION_TYPES = frozenset({"binary", "multiclass", "multiclass-multioutput",
                                   "multilabel-indicator", "multilabel-sequences"})


def check_task_labels(labels: np.ndarray, name: str) -> None:
    """scikit-learn's check that ``labels`` are classes, its message naming the task
    ``name`` and the first label that is not a class (a 0.25 among clicks)."""
    try:
        check_classification_targets(labels)
    except ValueError as exc:  # (scikit-learn's words first: its checks read them)
        odd = labels[labels != np.round(labels)][:1] if labels.dtype.kind == "f" else labels[:0]
        raise ValueError(
            f"{exc} Task {name}'s labels"
            + (f" include {float(odd[0])!r}" if odd.size else " are not classes")
            + ": a task of labels takes classes (e.g. 0 and 1); a probability or rate as "
            "target is a regression task (the squared loss, or sample weights).") from None


def _encode_task(data: TaskData, t: int, y: np.ndarray) -> np.ndarray:
    """Task t's two classes, its observed rows of ``y`` set to -1 / +1: the encoding of one
    task on its own (labels of different types per task), and the reference that raises a
    task's error."""
    raw = data.raw_y
    a, b = data.indptr[t], data.indptr[t + 1]
    rows = np.arange(a, b)
    if data.observed is not None:
        rows = rows[data.observed[a:b]]
    check_label_types(raw[rows], task_name(data, t))
    labels = as_labels(raw[rows])
    check_task_labels(labels, task_name(data, t))
    if data.sample_weight is not None:
        labels = labels[data.sample_weight[rows] > 0]
    kind = type_of_target(labels, input_name="y")
    cls = np.unique(labels)
    name = task_name(data, t)
    if len(cls) < 2:
        raise ValueError(
            f"y: task {name} has one class ({cls[0]!r}) among its weighted samples; "
            "each task needs two classes to train a classifier. Remove the task or "
            "add samples of the other class."
        )
    if kind != "binary":
        raise ValueError(
            f"Only binary classification is supported here. The type of the target is "
            f"{kind} (task {name} has {len(cls)} classes): MultiTaskClassifier fits the "
            "multinomial loss for such tasks; here, fit one task per class (one-vs-rest)."
        )
    y[rows] = np.where(raw[rows] == cls[1], 1.0, -1.0)
    return cls


def _encode_vectorized(data: TaskData) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """:meth:`TaskData.encode_binary` over all tasks at once, with the errors (and warnings)
    of :func:`_encode_task`: one type check and one ``np.unique`` over the observed labels,
    then each task's smallest and largest class among its weighted rows by segment.

    None when the labels of different tasks have different types (an object array mixing
    ``'spam'``/``'ham'`` and ``3``/``7``): then each task is encoded on its own.
    """
    T = data.n_tasks
    rows = None if data.observed is None else np.flatnonzero(data.observed)
    labels = as_labels(data.raw_y if rows is None else data.raw_y[rows])
    if labels.dtype == object:
        import pandas as pd
    if labels.size == 0 or (labels.dtype == object
                            and pd.api.types.infer_dtype(labels, skipna=False) != "string"):
        return None
    task = data.task_of if rows is None else data.task_of[rows]
    # the type check of each task's observed labels, done once: only non-integer floats
    # ("continuous") fail it where the labels of every task share one type
    if labels.dtype.kind in "iub" and labels.ndim == 1:
        kind = "multiclass"  # (integers and booleans: classes whatever their values)
    else:
        try:
            kind = type_of_target(labels, input_name="y")
        except ValueError:
            kind = None
    first_bad = T
    if kind not in _CLASSIFICATION_TYPES:
        bad = (np.flatnonzero(labels != labels.astype(int)) if labels.dtype.kind == "f"
               else np.zeros(1, dtype=np.int64))
        first_bad = int(task[bad[0]]) if len(bad) else 0
    values, inv = np.unique(labels, return_inverse=True)
    inv = inv.reshape(-1)
    # each task's smallest (lo) and largest (hi) class among its weighted rows
    if data.sample_weight is None:
        wtask, winv = task, inv
    else:
        weighted = (data.sample_weight if rows is None else data.sample_weight[rows]) > 0
        wtask, winv = task[weighted], inv[weighted]
    n_w = np.bincount(wtask, minlength=T)
    some = n_w > 0
    lo = np.full(T, -1, dtype=np.int64)
    hi = np.full(T, -1, dtype=np.int64)
    if some.any():
        starts = (np.cumsum(n_w) - n_w)[some]
        lo[some] = np.minimum.reduceat(winv, starts)
        hi[some] = np.maximum.reduceat(winv, starts)
    lo_w, hi_w = lo[wtask], hi[wtask]
    n_lohi = np.bincount(wtask[(winv == lo_w) | (winv == hi_w)], minlength=T)
    wrong = np.flatnonzero(~some | (lo == hi) | (n_lohi != n_w))  # not two classes
    first_error = min(first_bad, int(wrong[0]) if len(wrong) else T)
    _warn_many_classes(labels, task, inv, lo, hi, first_error)
    if first_error < T:  # raises that task's error
        _encode_task(data, first_error, np.ones(data.n_obs))
        return None  # not reached: the task's own encoding found no error after all
    y = np.ones(data.n_obs)
    sign = np.where(inv == hi[task], 1.0, -1.0)
    if rows is None:
        y = sign
    else:
        y[rows] = sign
    return y, list(values[np.stack([lo, hi], axis=1)])


def _warn_many_classes(labels, task, inv, lo, hi, first_error) -> None:
    """scikit-learn's warning that a target has more classes than half its samples, for each
    task before ``first_error`` that ``check_classification_targets`` warns about."""
    T = len(lo)
    n_obs = np.bincount(task, minlength=T)
    extra = (inv != lo[task]) & (inv != hi[task])  # a class beyond the weighted two
    cand = np.unique(task[extra])
    cand = cand[(cand < first_error) & (n_obs[cand] > 20)]
    if len(cand) == 0:
        return
    keep = np.isin(task, cand)
    pairs = np.unique(task[keep] * (int(inv.max()) + 1) + inv[keep])
    n_classes = np.bincount(pairs // (int(inv.max()) + 1), minlength=T)
    start = np.cumsum(n_obs) - n_obs
    for t in cand:
        if n_classes[t] > 2 and n_classes[t] > round(0.5 * n_obs[t]):
            check_classification_targets(labels[start[t] : start[t] + n_obs[t]])


def task_name(data: TaskData, t: int) -> str:
    """The label of segment ``t``'s task, as written in messages (``repr``)."""
    return repr(data.tasks[data.task_index[t]])


#: A column is offset within a task when its |mean| exceeds this many times its range there:
#: centered sums of products formed in one pass (Gram forms, sparse moments) would then lose
#: ``eps * ratio**2`` of their value to rounding.
_OFFSET_RATIO = 100.0


def observed_weights(data: TaskData) -> np.ndarray:
    """Sample weight of every flat observation, 0 where the label is missing (their sum is the
    N of BIC)."""
    s = np.ones(data.n_obs) if data.sample_weight is None else data.sample_weight.copy()
    if data.observed is not None:
        s = np.where(data.observed, s, 0.0)
    return s


def intercept_shift(data: Any, W: np.ndarray) -> np.ndarray | float:
    r""":math:`s_t^\top w_t` of every task (0 when ``data`` holds no shift, see
    :func:`~regmtl.taskdata.shift_columns`): an intercept fitted on the shifted columns is
    :math:`b_t = b'_t - s_t^\top w_t` in the input's units, and a starting intercept maps
    the other way. ``W`` is (p, T), or (p, 1) for one slope shared by every task."""
    x_shift = getattr(data, "x_shift", None)
    return 0.0 if x_shift is None else (x_shift * W).sum(axis=0)


def design_range(data: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(hi, lo)``, the largest and smallest entry of each column of a dense float design,
    NaN ignored (:func:`~regmtl.ranges.column_range`): per task, (T, p), in the per-task
    layout when every task has rows, else over all rows, (1, p); None for a sparse design
    or rows held elsewhere.

    Computed once per problem and kept with it (:meth:`TaskData.memo`): the input checks'
    column scales, the solve's ``max|X|`` (:func:`~regmtl.solvers.parts.balance.problem_scales`)
    and the spans of :func:`shift_columns` all read this one pass over X.
    """
    if not getattr(data, "rows_local", False) or sp.issparse(data.X) or \
            np.asarray(data.X).dtype.kind != "f":
        return None

    def make():
        X = np.asarray(data.X)
        if not data.shared and data.n_tasks > 1 and X.shape[0] and \
                bool(np.all(np.diff(data.indptr) > 0)):
            return column_range(X, data.indptr[:-1])
        hi, lo = column_range(X)
        return hi[None, :], lo[None, :]

    return data.memo("design_range", make)


def shift_columns(data: TaskData) -> TaskData:
    r"""The problem with each task's feature columns shifted to their task means, where the
    columns sit far from zero; ``data`` itself otherwise.

    With intercepts the objective is invariant under a per-task shift of the features:
    :math:`x^\top w_t + b_t = (x - s_t)^\top w_t + (b_t + s_t^\top w_t)`, and the penalty
    acts on W only. So W is the same on shifted columns, and intercepts fitted there map back
    as :math:`b_t = b'_t - s_t^\top w_t` (``x_shift`` holds :math:`s`). On the shifted
    columns every centered moment is exact: columns like timestamps or prices
    (:math:`10^9 + \mathcal N(0, 1)`) keep their variation, which sums of squares formed in
    one pass (:math:`\sum x^2 - n \bar x^2`) lose to rounding.

    A column of task t is shifted when :math:`|\bar x_{jt}| > 100\,(\max - \min)` of the
    column over the task's rows (constant columns are left alone: the solvers read them as
    constant already). Dense designs only (a shift would fill a sparse one); in the shared
    layout the shift is one per column (the mean over all rows), the same for every task.
    A sparse column can only be offset where it stores every row of the task (an implicit
    zero makes the range at least the mean): those stored values are shifted, the sparsity
    pattern is kept.

    Parameters
    ----------
    data : TaskData
        The problem, fitted with intercepts.

    Returns
    -------
    TaskData
        A new TaskData with ``X`` shifted and ``x_shift`` set, or ``data`` when no column is
        offset (or already shifted); Dask task blocks are shifted block by block
        (``regmtl.dask.DaskTaskData.shift_columns``).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import as_task_data
    >>> from regmtl.taskdata import shift_columns
    >>> X = 1e9 + np.arange(6.0).reshape(3, 2)
    >>> shifted = shift_columns(as_task_data(X, np.arange(3.0)))
    >>> shifted.X.tolist(), shifted.x_shift[:, 0].tolist()
    ([[-2.0, -2.0], [0.0, 0.0], [2.0, 2.0]], [1000000002.0, 1000000003.0])
    """
    if getattr(data, "x_shift", None) is not None:
        return data
    if not data.rows_local:  # task blocks: each shifted where it lives
        return data.shift_columns()
    X = data.X
    if X.shape[0] == 0:
        return data
    if sp.issparse(X):
        return _shift_sparse(data)
    starts = data.indptr[:-1]
    if data.shared:
        mean = X.mean(axis=0)[None, :]
    else:
        counts = np.diff(data.indptr).astype(np.float64)[:, None]
        mean = np.add.reduceat(X, starts, axis=0) / counts  # T x p
    # finite means: no NaN or inf in X, where the ranges ignoring NaN are the plain ones
    known = design_range(data) if np.isfinite(mean).all() else None
    if known is not None and known[0].shape[0] == mean.shape[0]:
        span = known[0] - known[1]
    elif data.shared:
        span = (X.max(axis=0) - X.min(axis=0))[None, :]
    else:
        span = np.maximum.reduceat(X, starts, axis=0) - np.minimum.reduceat(X, starts, axis=0)
    offset = (np.abs(mean) > _OFFSET_RATIO * span) & (span > 0)
    if not offset.any():
        return data
    S = np.where(offset, mean, 0.0)  # T x p (1 x p shared)
    out = np.empty(X.shape, order="F")
    if data.shared:
        np.subtract(X, S[0], out=out)
        shift = np.repeat(S.T, data.n_tasks, axis=1)
    else:
        for j in np.flatnonzero(offset.any(axis=0)):  # column by column: no N x p temporary
            np.subtract(X[:, j], S[data.task_of, j], out=out[:, j])
        rest = np.flatnonzero(~offset.any(axis=0))
        if len(rest):
            out[:, rest] = X[:, rest]
        shift = np.ascontiguousarray(S.T)
    return dataclasses.replace(data, X=out, x_shift=shift, _small=None, _cache={})


def _shift_sparse(data: TaskData) -> TaskData:
    """:func:`shift_columns` for a CSC design (sorted indices): by segments of each column's
    stored values that fall in one task (one group of all rows in the shared layout)."""
    X = data.X
    n_rows, p = X.shape
    if X.nnz == 0:
        return data
    groups = 1 if data.shared else data.n_tasks
    sizes = np.array([n_rows]) if data.shared else np.diff(data.indptr)
    col = np.repeat(np.arange(p, dtype=np.int64), np.diff(X.indptr))
    grp = np.zeros(X.nnz, dtype=np.int64) if data.shared else data.task_of[X.indices]
    key = col * groups + grp
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    count = np.diff(np.r_[starts, X.nnz])
    mean = np.add.reduceat(X.data, starts) / count
    span = np.maximum.reduceat(X.data, starts) - np.minimum.reduceat(X.data, starts)
    full = count == sizes[grp[starts]]
    offset = full & (np.abs(mean) > _OFFSET_RATIO * span) & (span > 0)
    if not offset.any():
        return data
    seg_shift = np.where(offset, mean, 0.0)
    out = X.copy()
    out.data -= np.repeat(seg_shift, count)
    S = np.zeros(p * groups)
    S[key[starts]] = seg_shift
    S = S.reshape(p, groups)
    shift = np.repeat(S, data.n_tasks, axis=1) if data.shared else S
    return dataclasses.replace(data, X=out, x_shift=shift, _small=None, _cache={})


# --------------------------------------------------------------------- row weights
def set_weights(data: TaskData, task_weight: Any) -> None:
    r"""Set the row weights ``data.c`` (and the float targets ``data.y`` of regression data)
    from the sample weights and the task weights, in place:

    .. math::

        c_r = \frac{\omega_t\, s_r}{\sum_{r' \in t} s_{r'}},

    a missing label weighing 0; ``task_weight`` gives :math:`\omega_t` (``task_weights``).

    Raises
    ------
    ValueError
        If a task's sample weights sum to zero, or ``task_weight`` is invalid.
    """
    s = data.sample_weight
    if s is None:
        s = np.ones(data.n_obs)
    if data.observed is not None:
        s = np.where(data.observed, s, 0.0)
    if data.raw_y is not None and data.raw_y.dtype.kind in "fc":
        data.y = np.asarray(data.raw_y, dtype=np.float64)
    totals = data.task_sums(s)
    bad = np.flatnonzero(totals <= 0)
    if len(bad):
        raise ValueError(
            f"sample_weight: task {task_name(data, bad[0])} has zero total weight; "
            "give every task at least one sample with a positive weight."
        )
    data.c = s * (task_weights(task_weight, totals) / totals)[data.task_of]


def task_weights(task_weight: Any, totals: np.ndarray) -> np.ndarray:
    """The task weights ``omega_t`` of ``task_weight`` ("equal": 1; "samples": ``T n_t / N``
    with ``n_t`` the tasks' total sample weights ``totals``; or the given array, checked)."""
    T = len(totals)
    if isinstance(task_weight, str):
        if task_weight == "equal":
            return np.ones(T)
        if task_weight == "samples":
            # n_t counts weighted samples, so integer weights act as repeated rows
            return T * totals / totals.sum()
        raise ValueError(
            f"task_weight={task_weight!r} is not one of 'equal', 'samples' or an array "
            "of per-task weights."
        )
    omega = np.asarray(task_weight, dtype=np.float64)
    if omega.shape != (T,) or not np.all(np.isfinite(omega)) or np.any(omega <= 0):
        raise ValueError(
            f"task_weight must hold {T} finite positive weights (one per task); got "
            f"{omega!r}."
        )
    return omega
