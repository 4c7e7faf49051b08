"""TaskData: the one internal representation of a multi-task problem.

Every input form is converted here, once, and validated:

1. lists (or a dict) of per-task designs: ``fit([X_1, ..., X_T], [y_1, ..., y_T])``;
2. long form: ``fit(X, y, task=ids)`` (``task`` may name a column of a DataFrame ``X``);
3. shared design: ``fit(X, Y)`` with ``Y`` of shape (n, T), NaN marking a missing label;
4. single task: ``fit(X, y)`` with a 1-D ``y`` and no ``task``.

Layout. All per-observation arrays are *flat* and grouped by task: observation ``r`` of task
``t`` lies in ``indptr[t] <= r < indptr[t + 1]``. In the stacked layout (forms 1, 2, 4) the design
``X`` has one row per observation. In the shared layout (form 3) ``X`` is stored once (n x p) and
the flat arrays are the columns of the (n, T) target matrix laid end to end, so observation ``r`` of
task ``t`` uses row ``r - offset[t]`` of ``X``, with ``offset = indptr[:-1]``. A missing label is an
observation with weight 0. Row weights ``c`` fold the per-task mean, ``sample_weight`` and the task
weights of the objective::

    c_r = omega_t * s_r / sum_{r' in t} s_r'      so that   data term = sum_r c_r * loss_r.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from .segments import adjoint_dense, adjoint_sparse, linear_dense, linear_sparse

__all__ = ["TaskData", "as_task_data", "check_numeric_range", "check_column_scales",
           "column_scales", "shift_columns"]

#: Below this many rows per task on average, the linear maps of a dense stacked design run as
#: one compiled pass over the rows (a BLAS call per task costs more than its work).
SMALL_TASK_ROWS = 64

CheckX = Callable[[Any, bool], Any]


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


def _default_check_x(X: Any, reset: bool) -> Any:  # noqa: ARG001 - same signature as estimators'
    return check_array(X, accept_sparse=("csr", "csc"), dtype=np.float64, input_name="X")


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
        else:  # tasks of many rows: one BLAS product per task on a view of the design
            f = np.empty(self.n_obs)
            for t, (a, e) in enumerate(zip(self.indptr[:-1], self.indptr[1:], strict=True)):
                f[a:e] = self.X[a:e] @ W[:, t]
        if b is not None:
            f += np.asarray(b, dtype=np.float64)[self.task_of]
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
        for t, (a, e) in enumerate(zip(self.indptr[:-1], self.indptr[1:], strict=True)):
            G[:, t] = self.X[a:e].T @ u[a:e]
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

    def encode_binary(self) -> TaskData:
        """Map each task's two labels to -1 / +1, in place.

        ``classes[t]`` holds task t's labels, sorted; the second is +1. Classes are counted
        among rows that carry weight (observed, positive sample weight): a task whose other
        class has only zero-weight rows has one class and is refused.

        Returns
        -------
        TaskData
            The data itself, with ``y`` and ``classes`` set.

        Raises
        ------
        ValueError
            If a task has one class among its weighted rows, or more than two classes.
        """
        encoded = _encode_vectorized(self)
        if encoded is None:  # labels of different types per task: each task with its own
            y = np.ones(self.n_obs)
            encoded = y, [_encode_task(self, t, y) for t in range(self.n_tasks)]
        self.y, self.classes = encoded
        return self


# --------------------------------------------------------------------- parsing helpers
def _as_labels(labels: np.ndarray) -> np.ndarray:
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


#: The target types scikit-learn's ``check_classification_targets`` accepts.
_CLASSIFICATION_TYPES = frozenset({"binary", "multiclass", "multiclass-multioutput",
                                   "multilabel-indicator", "multilabel-sequences"})


def _encode_task(data: TaskData, t: int, y: np.ndarray) -> np.ndarray:
    """Task t's two classes, its observed rows of ``y`` set to -1 / +1: the encoding of one
    task on its own (labels of different types per task), and the reference that raises a
    task's error."""
    raw = data.raw_y
    a, b = data.indptr[t], data.indptr[t + 1]
    rows = np.arange(a, b)
    if data.observed is not None:
        rows = rows[data.observed[a:b]]
    labels = _as_labels(raw[rows])
    check_classification_targets(labels)
    if data.sample_weight is not None:
        labels = labels[data.sample_weight[rows] > 0]
    kind = type_of_target(labels, input_name="y")
    cls = np.unique(labels)
    name = _task_name(data, t)
    if len(cls) < 2:
        raise ValueError(
            f"y: task {name} has one class ({cls[0]!r}) among its weighted samples; "
            "each task needs two classes to train a classifier. Remove the task or "
            "add samples of the other class."
        )
    if kind != "binary":
        raise ValueError(
            f"Only binary classification is supported. The type of the target is "
            f"{kind} (task {name} has {len(cls)} classes); fit one task per class "
            "(one-vs-rest) to model more."
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
    labels = _as_labels(data.raw_y if rows is None else data.raw_y[rows])
    if labels.size == 0 or (labels.dtype == object
                            and pd.api.types.infer_dtype(labels, skipna=False) != "string"):
        return None
    task = data.task_of if rows is None else data.task_of[rows]
    # the type check of each task's observed labels, done once: only non-integer floats
    # ("continuous") fail it where the labels of every task share one type
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


def _task_name(data: TaskData, t: int) -> str:
    return repr(data.tasks[data.task_index[t]])


def _is_2d_like(obj: Any) -> bool:
    if sp.issparse(obj) or isinstance(obj, pd.DataFrame):
        return True
    if isinstance(obj, np.ndarray):
        return obj.ndim == 2
    try:
        return np.ndim(obj) == 2
    except (ValueError, TypeError):
        return False


def _is_task_collection(X: Any) -> bool:
    """A list/tuple of 2-D designs, or a dict of them (a nested list of numbers is not)."""
    if sp.issparse(X):  # a DOK matrix is a dict
        return False
    if isinstance(X, Mapping):
        return True
    if isinstance(X, (list, tuple)) and len(X) > 0:
        return all(x.ndim == 2 if isinstance(x, np.ndarray) else _is_2d_like(x) for x in X)
    return False


def _as_design(X: Any, check_x: CheckX, reset: bool, what: str) -> Any:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2 and shape[0] == 0:
        raise ValueError(f"{what} has no rows: every task needs at least one sample.")
    return check_x(X, reset)


def _as_1d(y: Any, name: str, n: int, *, numeric: bool) -> np.ndarray:
    arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D with one value per row; got shape {arr.shape}.")
    if arr.shape[0] != n:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but X has {n} rows; give one per row of X."
        )
    if numeric:
        arr = check_array(arr, ensure_2d=False, dtype=np.float64, input_name=name)
    else:
        if arr.dtype.kind in "fc":
            check_array(arr, ensure_2d=False, input_name=name)
        elif arr.dtype.kind == "O" and pd.isna(arr).any():
            raise ValueError(f"Input {name} contains NaN (a missing label).")
    return arr


def _stack(blocks: Sequence[Any]) -> Any:
    """Stack validated per-task designs into one F-ordered float64 array (or CSC)."""
    if any(sp.issparse(b) for b in blocks):
        return sp.vstack([sp.csr_matrix(b) for b in blocks], format="csc", dtype=np.float64)
    n = sum(b.shape[0] for b in blocks)
    out = np.empty((n, blocks[0].shape[1]), order="F")
    r = 0
    for b in blocks:
        out[r : r + b.shape[0]] = b
        r += b.shape[0]
    return out


def _as_solver_design(X: Any) -> Any:
    if sp.issparse(X):
        X = sp.csc_matrix(X, dtype=np.float64)
        X.sum_duplicates()
        X.sort_indices()
        return X
    return np.asfortranarray(X, dtype=np.float64)


def _check_task_column(X: Any, task: str) -> None:
    """``task`` names a column of the DataFrame ``X``."""
    if not isinstance(X, pd.DataFrame):
        raise ValueError(
            f"task={task!r} names a column, but X is a {type(X).__name__}, not a pandas "
            "DataFrame; pass X as a DataFrame with that column, or task as the task ids "
            "themselves (one per row)."
        )
    if task not in X.columns:
        cols = ", ".join(map(repr, X.columns[:20])) + (" ..." if X.shape[1] > 20 else "")
        raise ValueError(
            f"task={task!r} is not a column of X; its columns are {cols}. Name the column "
            "of the task ids, or pass the ids themselves (one per row)."
        )


def _group_order(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """The rows grouped by code, each group in input order: a stable argsort of ``codes``
    (values in ``[0, n_groups)``), by radix passes over 16-bit digits."""
    if len(codes) < 2 or np.all(codes[1:] >= codes[:-1]):
        return np.arange(len(codes), dtype=np.int64)
    if n_groups > 1 << 32:
        return np.argsort(codes, kind="stable")
    if n_groups <= 1 << 16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    first = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    return first[np.argsort((codes[first] >> 16).astype(np.uint16), kind="stable")]


def _take_rows(X: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rows ``order`` of a dense design, gathered straight into the solvers' (Fortran) order
    by blocks of rows small enough for the cache."""
    out = np.empty((len(order), X.shape[1]), dtype=X.dtype, order="F")
    step = max(64, (1 << 18) // max(X.shape[1], 1))
    for s in range(0, len(order), step):
        out[s : s + step] = X[order[s : s + step]]
    return out


def _task_codes(task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` of the task ids, refusing unhashable ids with a ValueError."""
    try:
        series = pd.Series(task, dtype=None if task.dtype.kind in "biuf" else object)
        return pd.factorize(series, sort=False)
    except TypeError:
        i = next((i for i, v in enumerate(task) if not _hashable(v)), 0)
        raise ValueError(
            f"task: ids must be hashable (str, int, tuple, ...); row {i} holds a "
            f"{type(task[i]).__name__} ({task[i]!r}). Use tuples instead of lists, or one "
            "str/int label per task."
        ) from None


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _check_bool_mix(ids: np.ndarray, name: str) -> None:
    """Refuse task ids that mix booleans with numbers: ``True == 1`` and ``False == 0`` (and
    hash alike), so such ids would merge two tasks into one. One C pass (pandas' type
    inference); the Python scan runs only on mixed ids."""
    if ids.dtype.kind == "b" or ids.dtype.kind != "O" or len(ids) == 0:
        return
    if pd.api.types.infer_dtype(ids, skipna=True) not in ("mixed-integer", "mixed",
                                                          "mixed-integer-float"):
        return
    is_bool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in ids), dtype=bool,
                          count=len(ids))
    if not is_bool.any():
        return
    is_num = np.fromiter((isinstance(v, (int, float, complex, np.number))
                          and not isinstance(v, (bool, np.bool_)) for v in ids), dtype=bool,
                         count=len(ids))
    if is_num.any():
        b, k = int(np.argmax(is_bool)), int(np.argmax(is_num))
        raise ValueError(
            f"{name}: task ids mix booleans and numbers ({ids[b]!r} at position {b}, "
            f"{ids[k]!r} at position {k}); True equals 1 and False equals 0, so two tasks "
            "would be merged into one. Use ids of one type (e.g. all strings, or all "
            "integers)."
        )


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _factorize(task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = _task_codes(task)
    labels = np.asarray(uniques, dtype=object)
    try:
        perm = np.argsort(labels.astype(object), kind="stable")
        labels_sorted = labels[perm]
    except TypeError:  # labels of mixed types: keep order of appearance
        return codes.astype(np.int64), labels
    rank = np.empty_like(perm)
    rank[perm] = np.arange(len(perm))
    return rank[codes].astype(np.int64), labels_sorted


def _lookup(labels: Sequence[Hashable], tasks: np.ndarray, name: str) -> np.ndarray:
    pos = {}
    for k, lab in enumerate(tasks):
        pos[lab] = k
    out = np.empty(len(labels), dtype=np.int64)
    for i, lab in enumerate(labels):
        try:
            out[i] = pos[lab]
            if _is_bool(lab) != _is_bool(tasks[out[i]]):  # True == 1: not the same task
                raise KeyError(lab)
        except (KeyError, TypeError):
            known = ", ".join(repr(t) for t in tasks[:10]) + (" ..." if len(tasks) > 10 else "")
            raise ValueError(
                f"{name}: unknown task {lab!r}; the model was fitted on tasks {known}. "
                "Predict only for tasks the model was fitted on."
            ) from None
    return out


#: Largest ``max|v| * sqrt(n_rows)`` accepted: the sums of squares of the loss stay below
#: 1e300, well inside float64's range (about 1.8e308).
_SCALE_LIMIT = 1e150
#: Smallest nonzero largest-|value| of a column accepted: below it the squares (and products
#: with row weights) of the column underflow to zero or subnormals (float64's smallest normal
#: number is about 2.2e-308), and the fit would read the column as zeros.
_TINY_LIMIT = 1e-150


def column_scales(values: Any) -> np.ndarray:
    """The largest ``|value|`` of each column (of the whole array when 1-D), NaN ignored.

    Two passes (max and min) and no copy for a dense array; ``|data|`` for a sparse one.
    """
    if sp.issparse(values):
        A = abs(sp.csc_matrix(values))
        return np.asarray(A.max(axis=0).toarray(), dtype=np.float64).ravel()
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        arr = arr.astype(np.float64)
    if arr.size == 0:
        return np.zeros(arr.shape[1] if arr.ndim == 2 else 1)
    if arr.ndim == 1:
        arr = arr[:, None]
    with warnings.catch_warnings():  # an all-NaN column (missing labels) has scale 0
        warnings.simplefilter("ignore", RuntimeWarning)
        hi = np.nanmax(arr, axis=0) if arr.dtype.kind == "f" else arr.max(axis=0)
        lo = np.nanmin(arr, axis=0) if arr.dtype.kind == "f" else arr.min(axis=0)
    out = np.maximum(np.asarray(hi, dtype=np.float64), -np.asarray(lo, dtype=np.float64))
    return np.nan_to_num(out, nan=0.0)


def check_column_scales(scales: np.ndarray, n_rows: int, name: str,
                        labels: Sequence[Any] | None = None, where: str | None = None) -> None:
    r"""Refuse columns whose squares overflow or underflow float64.

    With :math:`a_j = \max_r |v_{rj}|` (``scales``, e.g. from
    :func:`~regmtl.taskdata.column_scales`), refused are :math:`a_j \sqrt{n} > 10^{150}`
    (sums of squares over ``n_rows`` rows overflow) and :math:`0 < a_j < 10^{-150}`
    (squares underflow to zero or subnormals: the column would be read as zeros). The one
    range check of every entry point (estimators, CLI, deep data).

    Parameters
    ----------
    scales : ndarray of shape (n_columns,)
        Largest ``|value|`` of each column.
    n_rows : int
        Rows summed over.
    name : str
        The argument, for the message (``"X"``, ``"y"``, ``"--features"``).
    labels : sequence, optional
        Column names (default: positions); a single column is not named.
    where : str, optional
        Overrides ``name`` in the message's first words (e.g. ``"X[2]"``, a task).

    Raises
    ------
    ValueError
        Naming the argument, the column, its largest magnitude and the fix.
    """
    scales = np.asarray(scales, dtype=np.float64).ravel()
    if scales.size == 0:
        return
    where = where or name

    def col(j: int) -> str:
        return "" if scales.size == 1 else \
            f" (column {labels[j] if labels is not None else j!r})"

    big = np.flatnonzero(scales > _SCALE_LIMIT / np.sqrt(max(n_rows, 1)))  # (no overflow)
    if len(big):
        j = int(big[np.argmax(scales[big])])
        raise ValueError(
            f"{where} holds values as large as {scales[j]:.3g} in magnitude{col(j)}: "
            f"over {n_rows} "
            "rows their squares overflow float64 in the loss sums (max|value| * sqrt(n_rows) "
            f"must stay below {_SCALE_LIMIT:g}). Rescale {name} first (its largest |value| "
            f"is {scales[j]:.3g}), e.g. standardize it (subtract the mean, divide by the "
            "standard deviation)."
        )
    tiny = np.flatnonzero((scales > 0) & (scales < _TINY_LIMIT))
    if len(tiny):
        j = int(tiny[np.argmin(scales[tiny])])
        raise ValueError(
            f"{where} holds only values tiny in magnitude{col(j)}: its largest |value| is "
            f"{scales[j]:.3g}, below {_TINY_LIMIT:g}, so its squares underflow float64 and "
            f"the fit would read it as zeros. Rescale {name} first (multiply it by a power "
            "of ten, or standardize it); a coefficient then changes by the same factor."
        )


def check_numeric_range(values: Any, name: str, *, n_rows: int | None = None,
                        labels: Sequence[Any] | None = None) -> None:
    """:func:`~regmtl.taskdata.check_column_scales` of an array (dense, sparse; 1-D is one column).

    Parameters
    ----------
    values : array-like or sparse matrix
        The numbers to check (NaN ignored).
    name : str
        The argument, for the message.
    n_rows : int, optional
        Rows summed over (default: ``values.shape[0]``).
    labels : sequence, optional
        Column names.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.taskdata import check_numeric_range
    >>> check_numeric_range(np.ones((3, 2)), "X")
    >>> try:
    ...     check_numeric_range(np.full(3, 1e-200), "y")
    ... except ValueError as exc:
    ...     print(str(exc)[:50])
    y holds only values tiny in magnitude: its largest
    """
    shape = getattr(values, "shape", None) or np.shape(values)
    n = int(shape[0]) if n_rows is None and len(shape) else int(n_rows or 0)
    check_column_scales(column_scales(values), n, name, labels)


def _check_scale(data: TaskData, numeric_y: bool) -> None:
    """Refuse a design (or regression targets) whose squares overflow or underflow in the
    loss sums (:func:`~regmtl.taskdata.check_column_scales`), naming the task of the largest
    value in the lists form; regression targets are checked task by task for underflow too."""
    X = data.X
    scales = column_scales(X)
    where = None
    if data.form in ("list", "dict") and np.any(scales > _SCALE_LIMIT / np.sqrt(X.shape[0])):
        where = _task_of_largest(data, X, "X")
    check_column_scales(scales, X.shape[0], "X", where=where)
    if not (numeric_y and data.raw_y is not None and data.raw_y.dtype.kind == "f"):
        return
    y = np.abs(data.raw_y)
    if data.observed is not None:
        y = np.where(data.observed, y, 0.0)
    if y.size == 0:
        return
    per_task = np.maximum.reduceat(y, data.indptr[:-1])
    where = None
    if data.form in ("list", "dict") and float(per_task.max()) * np.sqrt(data.n_obs) > \
            _SCALE_LIMIT:
        where = f"y[{_task_name(data, int(np.argmax(per_task)))}]"
    check_column_scales(np.array([per_task.max()]), data.n_obs, "y", where=where)
    tiny = np.flatnonzero((per_task > 0) & (per_task < _TINY_LIMIT))
    if len(tiny):
        t = int(tiny[0])
        check_column_scales(per_task[t : t + 1], data.n_obs, "y",
                            where=f"y of task {_task_name(data, t)}")


def _task_of_largest(data: TaskData, X: Any, name: str) -> str:
    """``name[task]`` for the task holding the largest |value| of a stacked design."""
    if sp.issparse(X):
        k = int(np.argmax(np.abs(X.data)))
        row = int(X.indices[k])
    else:
        k = int(np.argmax(np.abs(X)))
        row = int(np.unravel_index(k, X.shape)[0])
    t = int(np.searchsorted(data.indptr, row, side="right")) - 1
    return f"{name}[{data.tasks[data.task_index[t]]!r}]"


#: A column is offset within a task when its |mean| exceeds this many times its range there:
#: centered sums of products formed in one pass (Gram forms, sparse moments) would then lose
#: ``eps * ratio**2`` of their value to rounding.
_OFFSET_RATIO = 100.0


def intercept_shift(data: Any, W: np.ndarray) -> np.ndarray | float:
    r""":math:`s_t^\top w_t` of every task (0 when ``data`` holds no shift, see
    :func:`~regmtl.taskdata.shift_columns`): an intercept fitted on the shifted columns is
    :math:`b_t = b'_t - s_t^\top w_t` in the input's units, and a starting intercept maps
    the other way. ``W`` is (p, T), or (p, 1) for one slope shared by every task."""
    x_shift = getattr(data, "x_shift", None)
    return 0.0 if x_shift is None else (x_shift * W).sum(axis=0)


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
    >>> from regmtl.taskdata import as_task_data, shift_columns
    >>> X = 1e9 + np.arange(6.0).reshape(3, 2)
    >>> shifted = shift_columns(as_task_data(X, np.arange(3.0)))
    >>> shifted.X.tolist(), shifted.x_shift[:, 0].tolist()
    ([[-2.0, -2.0], [0.0, 0.0], [2.0, 2.0]], [1000000002.0, 1000000003.0])
    """
    if getattr(data, "x_shift", None) is not None:
        return data
    if getattr(data, "distributed", False):  # task blocks: each shifted where it lives
        return data.shift_columns()
    X = data.X
    if X.shape[0] == 0:
        return data
    if sp.issparse(X):
        return _shift_sparse(data)
    starts = data.indptr[:-1]
    if data.shared:
        mean = X.mean(axis=0)[None, :]
        span = (X.max(axis=0) - X.min(axis=0))[None, :]
    else:
        counts = np.diff(data.indptr).astype(np.float64)[:, None]
        mean = np.add.reduceat(X, starts, axis=0) / counts  # T x p
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


def _check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight, dtype=np.float64)
    if sw.ndim == 0:
        sw = np.full(n, float(sw))
    if sw.ndim != 1 or sw.shape[0] != n:
        raise ValueError(
            f"sample_weight.shape == {sw.shape}, expected ({n},): one weight per row of X."
        )
    check_array(sw, ensure_2d=False, input_name="sample_weight")
    if np.any(sw < 0):
        raise ValueError("sample_weight has negative entries; weights must be >= 0.")
    return sw


def column_target(X: Any, y: Any, task: Any) -> Any:
    """A classifier's (n, 1) y with one design and no task ids, read as one task (1-D), with
    scikit-learn's DataConversionWarning."""
    if (task is None and not isinstance(X, (list, tuple, dict))
            and getattr(y, "ndim", 0) == 2 and y.shape[1] == 1):
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected: y is read as one "
            "task. Pass a 1-D y (y.ravel()) to silence this.",
            DataConversionWarning, stacklevel=4,
        )
        return np.asarray(y).ravel()
    return y


# --------------------------------------------------------------------- main entry
def as_task_data(
    X: Any,
    y: Any = None,
    task: Any = None,
    *,
    sample_weight: Any = None,
    task_weight: Any = "equal",
    tasks: np.ndarray | None = None,
    check_x: CheckX | None = None,
    numeric_y: bool = True,
    require_y: bool = True,
    reset: bool = True,
    single: bool = False,
) -> TaskData:
    """Convert any input form of the estimators to a :class:`~regmtl.TaskData`.

    The accepted forms, everywhere in the library:

    1. lists (or dicts) of per-task designs and targets, ``n_t`` may differ;
    2. long form: ``X`` with one task id per row in ``task`` (``task`` may name a column of a
       DataFrame ``X``, which is then dropped from the features);
    3. shared design: ``X`` (n, p) with ``y`` of shape (n, T), NaN marking a missing label
       (that row is dropped for that task only);
    4. one task: ``X`` with a 1-D ``y`` and no ``task``.

    Parameters
    ----------
    X : array-like, sparse matrix or DataFrame, or list or dict of them
        The design(s): one per task (lists and dicts), or one for all rows.
    y : array-like, or list or dict of them, optional
        Targets: one array per task, a 1-D array (long form, single task), or an (n, T)
        matrix for a shared design. Required unless ``require_y=False``.
    task : array-like of shape (n_samples,) or str, optional
        Task id of every row of ``X`` (long form), or the name of a column of ``X``.
    sample_weight : array-like, or list or dict of them, optional
        One weight per row (a list or dict per task for the lists form), >= 0.
    task_weight : {"equal", "samples"} or array-like of shape (T,), default="equal"
        The task weights omega_t: 1 for every task, ``T * n_t / N``, or given positive
        weights.
    tasks : ndarray, optional
        Labels of the fitted tasks (at predict and score time); unknown labels raise.
    check_x : callable, optional
        ``check_x(X, reset)`` validates one design (an estimator passes scikit-learn's
        ``validate_data``); by default ``check_array`` with sparse CSR/CSC accepted.
    numeric_y : bool, default=True
        Regression targets (float) or class labels (kept as given, see
        :meth:`TaskData.encode_binary`).
    require_y : bool, default=True
        False at predict time.
    reset : bool, default=True
        Passed to ``check_x`` (True when fitting).
    single : bool, default=False
        The model was fitted on a single task (1-D y): a 2-D ``X`` alone means that task.

    Returns
    -------
    TaskData
        The validated problem, with row weights ``c`` set when ``y`` is given.

    Raises
    ------
    ValueError
        For inconsistent shapes (one target per row, one array per task), no tasks (an
        empty list), ``task`` with the lists form, a ``task`` column that ``X`` lacks,
        missing or unhashable task ids, unknown tasks at predict time, a task without
        observed labels or with zero total weight, negative sample weights, invalid task
        weights, or values of ``X`` or ``y`` so large that their squares overflow
        (``max|v| * sqrt(n_rows) > 1e150``: rescale them).

    Examples
    --------
    Long form: rows of two tasks in one table, grouped by task inside:

    >>> import numpy as np
    >>> from regmtl import as_task_data
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> data = as_task_data(X, np.arange(5.0), task=["b", "a", "b", "a", "b"])
    >>> data.form, data.tasks.tolist(), data.indptr.tolist()
    ('long', ['a', 'b'], [0, 2, 5])
    >>> data.y.tolist()  # task "a" first
    [1.0, 3.0, 0.0, 2.0, 4.0]

    Shared design with a missing label:

    >>> Y = np.array([[1.0, np.nan], [2.0, 5.0], [3.0, 6.0]])
    >>> data = as_task_data(np.ones((3, 2)), Y)
    >>> data.shared, data.observed.tolist()
    (True, [True, True, True, False, True, True])
    >>> data.effective_sizes().tolist()  # observed rows per task
    [3.0, 2.0]
    """
    check_x = check_x or _default_check_x
    if require_y and y is None:
        raise ValueError(
            "requires y to be passed, but the target y is None. Give the targets: one "
            "array per task, a 1-D y with task ids, or a 2-D Y of shape (n, T)."
        )
    if isinstance(X, (list, tuple, Mapping)) and not sp.issparse(X) and len(X) == 0:
        raise ValueError(
            f"X: no tasks were given (an empty {type(X).__name__}); give one design per task "
            "([X_1, ..., X_T] with [y_1, ..., y_T]), or one design with task ids."
        )
    if _is_task_collection(X):
        if task is not None:
            raise ValueError(
                "task: X is a list (or dict) of per-task designs, which carries the tasks by "
                "position (or by key), so task=... would be ignored. Drop task, or pass one "
                "design with one task id per row."
            )
        data = _from_collection(X, y, check_x, reset, numeric_y, tasks, sample_weight)
    elif task is not None:
        data = _from_long(X, y, task, check_x, reset, numeric_y, tasks, sample_weight)
    else:
        data = _from_matrix(X, y, check_x, reset, numeric_y, tasks, sample_weight, single)
    if y is not None:
        _check_scale(data, numeric_y)
        _set_weights(data, task_weight)
    return data


def _from_collection(X, y, check_x, reset, numeric_y, tasks, sample_weight) -> TaskData:
    if isinstance(X, Mapping):
        labels = list(X.keys())
        Xs = [X[k] for k in labels]
        if y is not None:
            if not isinstance(y, Mapping) or set(y.keys()) != set(labels):
                raise ValueError("y must be a dict with the same task keys as X.")
            ys = [y[k] for k in labels]
        form = "dict"
    else:
        Xs = list(X)
        labels = list(range(len(Xs)))
        if y is not None:
            if not isinstance(y, (list, tuple)) and _is_2d_like(y):
                raise ValueError("X is a list of per-task designs, so y must be a list too.")
            ys = list(y)
            if len(ys) != len(Xs):
                raise ValueError(
                    f"X has {len(Xs)} tasks but y has {len(ys)}; give one target array per "
                    "design (lists of the same length)."
                )
        form = "list"
    if tasks is None:
        tasks_arr = np.empty(len(labels), dtype=object)
        tasks_arr[:] = labels
        task_index = np.arange(len(labels), dtype=np.int64)
    else:
        tasks_arr = tasks
        if form == "list":
            if len(Xs) != len(tasks):
                raise ValueError(
                    f"X has {len(Xs)} tasks but the model was fitted on {len(tasks)}; give "
                    "one design per fitted task, in order (or a dict keyed by task)."
                )
            task_index = np.arange(len(Xs), dtype=np.int64)
        else:
            task_index = _lookup(labels, tasks, "X")
    stacked, sizes = _stack_validated(Xs, check_x, reset)
    if stacked is None:  # per task: mixed kinds of input, or a problem to name the task of
        blocks = [_as_design(Xt, check_x, reset and k == 0, f"X[{labels[k]!r}]")
                  for k, Xt in enumerate(Xs)]
        stacked, sizes = _stack(blocks), [b.shape[0] for b in blocks]
    indptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(sizes)
    data = TaskData(
        X=_as_solver_design(stacked),
        indptr=indptr,
        task_index=task_index,
        tasks=tasks_arr,
        shared=False,
        form=form,
        n_input_rows=int(indptr[-1]),
    )
    if y is not None:
        data.raw_y = _stacked_targets(ys, labels, sizes, numeric_y)
        data.sample_weight = _collect_weights(sample_weight, sizes, labels)
    return data


def _stack_validated(Xs, check_x, reset) -> tuple[Any, list[int]]:
    """The designs stacked and then validated once over all their rows (one check, not one
    per task): NumPy arrays of numbers, DataFrames of numbers with the same columns, or sparse
    matrices, with the same number of columns. ``(None, [])`` for any other input (mixed
    kinds, a task without rows), or when the stacked rows fail the check: the check task by
    task then names the task."""
    first = Xs[0]
    if isinstance(first, np.ndarray):
        stacked = _stack_arrays(Xs)
    elif isinstance(first, pd.DataFrame):
        stacked = _stack_frames(Xs)
    elif sp.issparse(first):
        stacked = _stack_sparse(Xs)
    else:
        stacked = None
    if stacked is None:
        return None, []
    try:
        checked = check_x(stacked, reset)
    except ValueError:
        return None, []
    return checked, [x.shape[0] for x in Xs]


def _stack_arrays(Xs: list[Any]) -> np.ndarray | None:
    """2-D NumPy arrays of numbers with the same columns, stacked straight into the solvers'
    (Fortran) order, in their common dtype."""
    if not all(isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[0] > 0
               and x.dtype.kind in "biuf" for x in Xs):
        return None
    return _concat_fortran(Xs)


def _concat_fortran(blocks: list[np.ndarray]) -> np.ndarray | None:
    if len({b.shape[1] for b in blocks}) != 1:
        return None
    dtype = np.result_type(*{b.dtype for b in blocks})
    out = np.empty((sum(b.shape[0] for b in blocks), blocks[0].shape[1]), dtype=dtype,
                   order="F")
    return np.concatenate(blocks, axis=0, out=out)


def _stack_frames(Xs: list[Any]) -> pd.DataFrame | None:
    """DataFrames of numbers with the same columns (names and order) as one DataFrame, so that
    the check sees the feature names."""
    cols = Xs[0].columns
    if not all(isinstance(x, pd.DataFrame) and x.shape[0] > 0
               and (x.columns is cols or x.columns.equals(cols)) for x in Xs):
        return None
    values = [x.to_numpy() for x in Xs]
    if not all(v.dtype.kind in "biuf" for v in values):
        return None
    stacked = _concat_fortran(values)
    return None if stacked is None else pd.DataFrame(stacked, columns=cols, copy=False)


def _stack_sparse(Xs: list[Any]) -> Any:
    """Sparse matrices of numbers with the same columns, stacked as one CSR matrix."""
    if not all(sp.issparse(x) and x.ndim == 2 and x.shape[0] > 0 and x.dtype.kind in "biuf"
               for x in Xs):
        return None
    if len({x.shape[1] for x in Xs}) != 1:
        return None
    return sp.vstack(Xs, format="csr")


def _stacked_targets(ys, labels, sizes, numeric: bool) -> np.ndarray:
    """The tasks' targets laid end to end, checked once over all rows when they are 1-D
    arrays (of numbers, or labels of one dtype); otherwise, or when the check fails, task by
    task (the message then names the task)."""
    if all(isinstance(v, np.ndarray) and v.ndim == 1 and v.shape[0] == n
           for v, n in zip(ys, sizes, strict=True)):
        if numeric and all(v.dtype.kind in "biuf" for v in ys):
            flat = np.concatenate(ys).astype(np.float64, copy=False)
            if np.all(np.isfinite(flat)):
                return flat
        elif not numeric and len({v.dtype for v in ys}) == 1:
            flat = np.concatenate(ys)
            try:
                return _as_1d(flat, "y", flat.shape[0], numeric=False)
            except ValueError:
                pass
    flat = [_as_1d(yt, f"y[{labels[k]!r}]", sizes[k], numeric=numeric)
            for k, yt in enumerate(ys)]
    if not numeric and len({a.dtype for a in flat}) > 1:
        # labels of different types per task ('spam'/'ham', 3/7): keep each one's type
        flat = [a.astype(object) for a in flat]
    return np.concatenate(flat)


def _collect_weights(sample_weight, sizes, labels) -> np.ndarray | None:
    if sample_weight is None:
        return None
    if isinstance(sample_weight, Mapping):
        sample_weight = [sample_weight[k] for k in labels]
    if not isinstance(sample_weight, (list, tuple)) or len(sample_weight) != len(sizes):
        raise ValueError(
            "sample_weight must be a list with one weight array per task when X is a list."
        )
    if all(isinstance(w, np.ndarray) and w.ndim == 1 and w.shape[0] == n
           and w.dtype.kind in "biuf" for w, n in zip(sample_weight, sizes, strict=True)):
        flat = np.concatenate(sample_weight).astype(np.float64, copy=False)
        try:  # once over all rows; task by task when it fails (the first task's message)
            return _check_sample_weight(flat, flat.shape[0])
        except ValueError:
            pass
    return np.concatenate(
        [_check_sample_weight(w, n) for w, n in zip(sample_weight, sizes, strict=True)]
    )


def _from_long(X, y, task, check_x, reset, numeric_y, tasks, sample_weight) -> TaskData:
    if isinstance(task, str):
        _check_task_column(X, task)
        task_col = X[task].to_numpy()
        X = X.drop(columns=[task])
    else:
        if isinstance(task, pd.Series):
            task_col = task.to_numpy()
        elif isinstance(task, (list, tuple)):
            # one id per row even when the ids are tuples (np.asarray would make a 2-D array)
            task_col = np.fromiter(task, dtype=object, count=len(task))
        else:
            task_col = np.asarray(task)
    Xc = _as_design(X, check_x, reset, "X")
    n = Xc.shape[0]
    task_col = np.asarray(task_col)
    if task_col.dtype.kind not in "biuf":  # numbers keep their dtype: faster to group
        task_col = task_col.astype(object)
    if task_col.ndim != 1 or task_col.shape[0] != n:
        raise ValueError(
            f"task has shape {task_col.shape} but X has {n} rows; give one task id per row."
        )
    if pd.isna(task_col).any():
        raise ValueError("task contains missing ids (None/NaN); every row needs a task id.")
    _check_bool_mix(task_col, "task")
    if tasks is None:
        codes, tasks_arr = _factorize(task_col)
    else:
        tasks_arr = tasks
        row_codes, uniq = _task_codes(task_col)
        codes = _lookup(list(uniq), tasks, "task")[row_codes]
    counts = np.bincount(codes, minlength=len(tasks_arr))
    present = np.flatnonzero(counts)
    order = _group_order(codes, len(counts))
    indptr = np.zeros(len(present) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(counts[present])
    if sp.issparse(Xc):
        Xs = sp.csr_matrix(Xc)[order]
    elif np.all(order[1:] > order[:-1]):
        Xs = Xc
    else:
        Xs = _take_rows(Xc, order)
    data = TaskData(
        X=_as_solver_design(Xs),
        indptr=indptr,
        task_index=present.astype(np.int64),
        tasks=tasks_arr,
        shared=False,
        form="long",
        order=order,
        n_input_rows=n,
    )
    if y is not None:
        data.raw_y = _as_1d(y, "y", n, numeric=numeric_y)[order]
        sw = _check_sample_weight(sample_weight, n)
        data.sample_weight = None if sw is None else sw[order]
    return data


def _from_matrix(X, y, check_x, reset, numeric_y, tasks, sample_weight, single) -> TaskData:
    Xc = _as_design(X, check_x, reset, "X")
    n = Xc.shape[0]
    y_arr = None
    if y is not None:
        y_arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y)
        if y_arr.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D (n, T); got shape {y_arr.shape}.")
        if y_arr.shape[0] != n:
            raise ValueError(
                f"X has {n} rows but y has {y_arr.shape[0]}; give one target row per sample."
            )
    if y_arr is not None and y_arr.ndim == 1 and not single and tasks is not None:
        raise ValueError(
            f"y is 1-D but the model was fitted on {len(tasks)} tasks: pass task=... (one "
            "id per row), a list per task, or a 2-D y with one column per task."
        )
    if (y_arr is not None and y_arr.ndim == 1) or (y_arr is None and single):
        tasks_arr = tasks if tasks is not None else np.array([0], dtype=object)
        data = TaskData(
            X=_as_solver_design(Xc),
            indptr=np.array([0, n], dtype=np.int64),
            task_index=np.zeros(1, dtype=np.int64),
            tasks=tasks_arr,
            shared=False,
            form="single",
            n_input_rows=n,
        )
        if y_arr is not None:
            data.raw_y = _as_1d(y_arr, "y", n, numeric=numeric_y)
            data.sample_weight = _check_sample_weight(sample_weight, n)
        return data
    # shared design
    if y_arr is not None:
        T = y_arr.shape[1]
        if tasks is not None and T != len(tasks):
            raise ValueError(
                f"y has {T} columns but the model was fitted on {len(tasks)} tasks."
            )
        cols = list(y.columns) if isinstance(y, pd.DataFrame) else list(range(T))
    else:
        if tasks is None:
            raise ValueError("task ids are needed to predict: pass task=... (one per row).")
        T = len(tasks)
        cols = list(tasks)
    if tasks is None:
        _check_bool_mix(np.fromiter(cols, dtype=object, count=len(cols)), "y (its columns)")
        tasks_arr = np.empty(T, dtype=object)
        tasks_arr[:] = cols
    else:
        tasks_arr = tasks
    indptr = np.arange(T + 1, dtype=np.int64) * n
    data = TaskData(
        X=_as_solver_design(Xc),
        indptr=indptr,
        task_index=np.arange(T, dtype=np.int64),
        tasks=tasks_arr,
        shared=True,
        form="shared",
        n_input_rows=n,
    )
    if y_arr is not None:
        data.raw_y, data.observed = _shared_targets(y_arr, numeric_y, tasks_arr)
        sw = _check_sample_weight(sample_weight, n)
        data.sample_weight = None if sw is None else np.tile(sw, T)
    return data


def _shared_targets(Y: np.ndarray, numeric_y: bool, tasks: np.ndarray):
    if numeric_y:
        Yf = np.asarray(Y, dtype=np.float64) if Y.dtype.kind != "O" else Y.astype(np.float64)
        if np.isinf(Yf).any():
            raise ValueError("Input y contains infinity or a value too large for dtype('float64').")
        missing = np.isnan(Yf)
    else:
        missing = pd.isna(Y)
        Yf = Y
    observed = ~missing
    empty = np.flatnonzero(~observed.any(axis=0))
    if len(empty):
        raise ValueError(
            f"y: task {tasks[empty[0]]!r} (column {empty[0]}) has no observed label; every "
            "task needs at least one. Drop that column."
        )
    flat = np.asarray(Yf).ravel(order="F")
    obs_flat = observed.ravel(order="F")
    if numeric_y:
        flat = np.where(obs_flat, flat, 0.0)
    return flat, (None if obs_flat.all() else obs_flat)


def _set_weights(data: TaskData, task_weight: Any) -> None:
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
            f"sample_weight: task {_task_name(data, bad[0])} has zero total weight; "
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
