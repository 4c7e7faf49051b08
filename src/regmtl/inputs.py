"""Input conversion: every input form of the estimators, checked, into one TaskData.

The accepted forms (:func:`~regmtl.as_task_data`):

1. lists (or a dict) of per-task designs: ``fit([X_1, ..., X_T], [y_1, ..., y_T])``;
2. long form: ``fit(X, y, task=ids)`` (``task`` may name a column of a DataFrame ``X``);
3. shared design: ``fit(X, Y)`` with ``Y`` of shape (n, T), NaN marking a missing label;
4. single task: ``fit(X, y)`` with a 1-D ``y`` and no ``task``.

Here live the parsing of each form, the stacking of per-task designs, the coding of task ids
(``factorize``, the lookup of fitted tasks), the checks of targets and sample weights and the
range check of the converted problem. Data flows one way: this module builds
:class:`~regmtl.TaskData` (``regmtl.taskdata``: the layout and its operations), which knows
nothing of the input forms.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_array

from ._frames import is_frame, is_pandas, is_series, isna
from .ranges import SCALE_LIMIT, TINY_LIMIT, check_column_scales, column_scales, range_scales
from .taskdata import TaskData, design_range, set_weights, task_name

__all__ = ["as_task_data", "column_target", "factorize", "fill_missing_blocks", "flat_rows",
           "offset_column"]

CheckX = Callable[[Any, bool], Any]


def _default_check_x(X: Any, reset: bool) -> Any:  # noqa: ARG001 - same signature as estimators'
    return check_array(X, accept_sparse=("csr", "csc"), dtype=np.float64, input_name="X")



def _is_2d_like(obj: Any) -> bool:
    if sp.issparse(obj) or is_frame(obj):
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
    arr = np.asarray(y.to_numpy() if is_pandas(y) else y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D with one value per row; got shape {arr.shape}.")
    if arr.shape[0] != n:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but X has {n} rows; give one per row of X."
        )
    if numeric:
        try:
            arr = check_array(arr, ensure_2d=False, dtype=np.float64, input_name=name)
        except ValueError as exc:
            if "could not convert" not in str(exc):
                raise
            raise ValueError(_not_numbers(name, exc)) from None
    else:
        if arr.dtype.kind in "fc":
            check_array(arr, ensure_2d=False, input_name=name)
        elif arr.dtype.kind == "O" and isna(arr).any():
            raise ValueError(f"Input {name} contains NaN (a missing label).")
    return arr


def _not_numbers(name: str, exc: Exception) -> str:
    """The message for targets that are not numbers where a loss needs numbers."""
    return (f"{name} holds values that are not numbers ({exc}): a regression loss takes "
            "numbers; labels go to MultiTaskClassifier, and a binary task of loss=[...] "
            "(one loss per task) takes its two labels as numbers, e.g. 0/1.")


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
    if not is_frame(X):
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
    """``pd.factorize`` of the task ids (codes in order of first appearance), refusing
    unhashable ids with a ValueError; numbers without NaN are coded by NumPy alone."""
    if task.dtype.kind in "biuf" and not (task.dtype.kind == "f" and np.isnan(task).any()):
        uniq, first, inverse = np.unique(task, return_index=True, return_inverse=True)
        by_first = np.argsort(first, kind="stable")
        rank = np.empty_like(by_first)
        rank[by_first] = np.arange(len(by_first))
        return rank[inverse.ravel()], uniq[by_first].astype(object)
    import pandas as pd

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
    import pandas as pd

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


def factorize(task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Task ids coded ``0..T-1`` in sorted label order (order of appearance when the labels
    do not sort, e.g. of mixed types): ``(codes per row, labels)``; unhashable ids raise a
    ValueError naming the row."""
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


#: each fitted task list's label -> position table, built once per list (not on every
#: predict: a model of 10^5 tasks spent 18 ms a call building it for 1,000 rows), held while
#: the list lives (a weak reference tells a list that died from a new one at its address;
#: a model's ``tasks_`` is replaced, never changed in place)
_POSITIONS: dict[int, tuple[Any, dict]] = {}


def _positions(tasks: Any) -> dict:
    """``{label: position}`` of a fitted task list (the last position of a repeated label)."""
    hit = _POSITIONS.get(id(tasks))
    if hit is not None and hit[0]() is tasks:
        return hit[1]
    pos = {}
    for k, lab in enumerate(tasks):
        pos[lab] = k
    try:
        ref = weakref.ref(tasks)
    except TypeError:  # (a list: no weak reference, no table kept)
        return pos
    if len(_POSITIONS) >= 16:
        _POSITIONS.clear()
    _POSITIONS[id(tasks)] = (ref, pos)
    return pos


def _lookup(labels: Sequence[Hashable], tasks: np.ndarray, name: str) -> np.ndarray:
    pos = _positions(tasks)
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


def _check_scale(data: TaskData, numeric_y: bool) -> None:
    """Refuse a design (or regression targets) whose squares overflow or underflow in the
    loss sums (``check_column_scales``), naming the task of the largest
    value in the lists form; regression targets are checked task by task for underflow too."""
    X = data.X
    known = design_range(data)  # (one pass over X, kept for the solve's scales)
    scales = column_scales(X) if known is None else range_scales(*known)
    where = None
    if data.form in ("list", "dict") and np.any(scales > SCALE_LIMIT / np.sqrt(X.shape[0])):
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
            SCALE_LIMIT:
        where = f"y[{task_name(data, int(np.argmax(per_task)))}]"
    check_column_scales(np.array([per_task.max()]), data.n_obs, "y", where=where)
    tiny = np.flatnonzero((per_task > 0) & (per_task < TINY_LIMIT))
    if len(tiny):
        t = int(tiny[0])
        check_column_scales(per_task[t : t + 1], data.n_obs, "y",
                            where=f"y of task {task_name(data, t)}")


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
    blocks: tuple[int, ...] | None = None,
    blocks_used: np.ndarray | None = None,
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
    blocks : tuple of int, optional
        The sizes of the feature blocks (sources) the penalty declares
        (:meth:`~regmtl.Penalty.feature_blocks`, e.g. :class:`~regmtl.MultiSource`): a block
        of NaN over all the rows of a task is a source that task does not observe, filled
        with zeros (``regmtl.inputs.fill_missing_blocks``); ``check_x`` must then let NaN
        through.
    blocks_used : ndarray of bool of shape (T_fitted, n_blocks), optional
        At predict time: the blocks each fitted task's model uses (nonzero weights); a
        missing block is refused where it is used.

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
    if blocks is not None:
        data = fill_missing_blocks(data, blocks, blocks_used)
    if y is not None:
        _check_scale(data, numeric_y)
        set_weights(data, task_weight)
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
    elif is_frame(first):
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


def _stack_frames(Xs: list[Any]) -> Any:
    """DataFrames of numbers with the same columns (names and order) as one DataFrame, so that
    the check sees the feature names."""
    cols = Xs[0].columns
    if not all(is_frame(x) and x.shape[0] > 0
               and (x.columns is cols or x.columns.equals(cols)) for x in Xs):
        return None
    values = [x.to_numpy() for x in Xs]
    if not all(v.dtype.kind in "biuf" for v in values):
        return None
    stacked = _concat_fortran(values)
    import pandas as pd

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
        if is_series(task):
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
    if isna(task_col).any():
        raise ValueError("task contains missing ids (None/NaN); every row needs a task id.")
    _check_bool_mix(task_col, "task")
    if tasks is None:
        codes, tasks_arr = factorize(task_col)
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
        y_arr = np.asarray(y.to_numpy() if is_pandas(y) else y)
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
        cols = list(y.columns) if is_frame(y) else list(range(T))
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
        try:
            Yf = np.asarray(Y, dtype=np.float64) if Y.dtype.kind != "O" else Y.astype(np.float64)
        except ValueError as exc:
            raise ValueError(_not_numbers("y", exc)) from None
        if np.isinf(Yf).any():
            raise ValueError("Input y contains infinity or a value too large for dtype('float64').")
        missing = np.isnan(Yf)
    else:
        missing = isna(Y)
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


def fill_missing_blocks(data: TaskData, blocks: tuple[int, ...],
                        blocks_used: np.ndarray | None = None) -> TaskData:
    """The problem with every missing source (a block of NaN columns over all the rows of a
    task) filled with zeros, for a penalty that declares feature blocks
    (:meth:`~regmtl.Penalty.feature_blocks`, e.g. :class:`~regmtl.MultiSource`).

    Parameters
    ----------
    data : TaskData
        The problem, NaN allowed in ``X``.
    blocks : tuple of int
        The sizes of the consecutive column blocks (sources).
    blocks_used : ndarray of bool of shape (T_fitted, n_blocks), optional
        At predict time: the blocks each fitted task's model uses; a missing block is
        refused where it is used. When fitting (None), a task with no source is refused.

    Returns
    -------
    TaskData
        ``data`` itself when ``X`` holds no NaN, otherwise a copy with the missing blocks
        set to 0.

    Raises
    ------
    ValueError
        For a NaN inside an observed block, a block missing for only part of a task's rows,
        a task that observes no source, NaN in a sparse or shared design, a missing block
        that the fitted model of its task uses, or blocks that do not cover the features.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.inputs import as_task_data, fill_missing_blocks
    >>> from sklearn.utils import check_array
    >>> X2 = np.array([[1.0, np.nan], [2.0, np.nan]])
    >>> data = as_task_data([np.ones((2, 2)), X2], [np.ones(2), np.ones(2)],
    ...     check_x=lambda X, r: check_array(X, ensure_all_finite="allow-nan"))
    >>> fill_missing_blocks(data, (1, 1)).X.tolist()
    [[1.0, 1.0], [1.0, 1.0], [1.0, 0.0], [2.0, 0.0]]
    """
    X = data.X
    p = X.shape[1]
    if sum(blocks) != p:
        raise ValueError(
            f"MultiSource blocks {tuple(blocks)} cover {sum(blocks)} features, but X has {p} "
            "columns: give one size per source, adding up to the number of columns."
        )
    if sp.issparse(X):
        if np.isnan(X.data).any():
            raise ValueError("X: a sparse design cannot mark a missing source with NaN; give "
                             "dense designs, NaN over the missing source's columns.")
        return data
    nan = np.isnan(X)
    if not nan.any():
        return data
    if data.shared:
        raise ValueError(
            "X contains NaN, but a shared design gives every task the same rows, so no "
            "source can be missing for one task: give one design per task (a list, or long "
            "form with task ids), the group of samples that lack a source as its own task."
        )
    edges = np.concatenate(([0], np.cumsum(blocks)))
    for t in range(len(data.indptr) - 1):
        rows = slice(data.indptr[t], data.indptr[t + 1])
        name = task_name(data, t)
        n_missing = 0
        for b in range(len(blocks)):
            m = nan[rows, edges[b]:edges[b + 1]]
            where = f"task {name}, block {b} (columns {edges[b]} to {edges[b + 1] - 1})"
            if m.all():
                n_missing += 1
                if blocks_used is not None and blocks_used[data.task_index[t], b]:
                    raise ValueError(
                        f"X: {where} is missing, but the fitted model of that task uses that "
                        "source (it was observed when fitting): give its values."
                    )
            elif m.all(axis=1).any():
                raise ValueError(
                    f"X: {where} is missing for some rows of the task only; a source is "
                    "observed by all the rows of a task or by none: put the rows that lack "
                    "it in a task of their own (one task per group of samples that share "
                    "their sources)."
                )
            elif m.any():
                raise ValueError(
                    f"X: {where} holds NaN inside an observed source; only a whole source "
                    "may be missing (NaN in all its columns, for all the rows of the task): "
                    "impute those values or drop those rows."
                )
        if n_missing == len(blocks) and blocks_used is None:
            raise ValueError(
                f"X: task {name} observes no source (every block is NaN); drop that task."
            )
    return dataclasses.replace(data, X=np.where(nan, 0.0, X), _small=None, _cache={})


def flat_rows(data: TaskData, values: Any, name: str) -> np.ndarray:
    """A per-row input (an ``offset``) in the flat order of ``data``, given as
    ``sample_weight`` is -- one array per task for lists, one value per row of ``X``
    otherwise, with a shared design also an (n, T) matrix, one column per task, or a list of
    one array per task with None for the tasks without -- or, in
    every form, a dict keyed by task holding each task's values (in the order its rows
    come in ``X``; with a shared design, one per row of ``X``). A task whose entry is None
    (in a list or dict) or that a dict leaves out gets zeros: an offset for some tasks only.

    Parameters
    ----------
    data : TaskData
        The problem the rows belong to.
    values : array-like, or list or dict of them
        The values.
    name : str
        The argument's name, for the messages.

    Returns
    -------
    ndarray of shape (n_obs,)
        The values of the flat observations, float64 and finite.

    Raises
    ------
    ValueError
        If the shape does not match the rows, a dict names a task the problem does not
        have, or a value is NaN or infinite (the message names the task).
    """
    sizes = np.diff(data.indptr)
    labels = [data.tasks[k] for k in data.task_index]

    def numbers(v: Any, where: str) -> np.ndarray:
        try:
            return np.asarray(v.to_numpy() if is_pandas(v) else v, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must hold numbers {where} ({exc}); for some tasks "
                             "only, give a dict keyed by task.") from None

    def arr(v: Any, where: str) -> np.ndarray:
        a = numbers(v, where)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} has NaN or infinite entries {where}; give a finite "
                             "value for every row (0 for no offset), or give the offsets "
                             "of some tasks only as a dict keyed by task.")
        return a

    def per_task(parts: list, what: str) -> np.ndarray:
        out = []
        for k, (v, n) in enumerate(zip(parts, sizes, strict=True)):
            if v is None:
                out.append(np.zeros(n))
                continue
            a = arr(v, f"for task {labels[k]!r}").ravel()
            if a.size != n:
                raise ValueError(f"{name}{what(k)} has {a.size} values for the {n} rows of "
                                 f"task {labels[k]!r}.")
            out.append(a)
        return np.concatenate(out) if out else np.zeros(0)

    if isinstance(values, Mapping):
        known = {lab: k for k, lab in enumerate(labels)}
        unknown = [key for key in values if key not in known]
        if unknown:
            shown = ", ".join(map(repr, labels[:10])) + (" ..." if len(labels) > 10 else "")
            raise ValueError(f"{name} is keyed by {unknown[0]!r}, which is not a task of X; "
                             f"its tasks are {shown}.")
        parts = [values.get(lab) for lab in labels]
        # lists: each task's array; long form: each task's rows in their order in X;
        # a shared design: one value per row of X for each task
        return per_task(parts, lambda k: f"[{labels[k]!r}]")
    if data.form in ("list", "dict"):
        if not isinstance(values, (list, tuple)) or len(values) != data.n_tasks:
            raise ValueError(f"{name} must be a list with one array (or None) per task when "
                             "X is a list, or a dict keyed by task.")
        return per_task(list(values), lambda k: f"[{k}]")
    if (data.form == "shared" and isinstance(values, (list, tuple))
            and len(values) == data.n_tasks
            and all(v is None or np.ndim(v) >= 1 for v in values)
            and (any(v is None for v in values) or data.n_input_rows != data.n_tasks)):
        # a shared design: one array of a value per row of X (or None) per task
        return per_task([values[k] for k in data.task_index], lambda k: f"[{k}]")
    a = numbers(values, "one per row of X")
    n = data.n_input_rows
    if data.form == "shared" and a.ndim == 2:
        if a.shape != (n, data.n_tasks):
            raise ValueError(f"{name}.shape == {a.shape}; expected ({n},) or "
                             f"({n}, {data.n_tasks}): one value per row, or per row and task.")
        a = np.ascontiguousarray(a[:, data.task_index].T).ravel()
    elif a.shape != (n,):
        raise ValueError(f"{name}.shape == {a.shape}, expected ({n},): one value per row of X.")
    elif data.form == "long":
        a = a[data.order]
    elif data.form == "shared":
        a = np.tile(a, data.n_tasks)
    else:
        a = a.copy()
    bad = ~np.isfinite(a)
    if bad.any():
        tasks = sorted({repr(labels[k]) for k in data.task_of[bad]})
        arr(a[bad], "in the rows of task" + ("s " if len(tasks) > 1 else " ")
            + ", ".join(tasks[:5]) + (" ..." if len(tasks) > 5 else ""))
    return a


def offset_column(X: Any, offset: Any) -> tuple[Any, Any]:
    """``(X, offset)`` with an ``offset`` that names a column of the DataFrame ``X`` (the long
    form's column, as ``task`` may) read from it and dropped from the design; any other
    ``offset`` as it is."""
    if not isinstance(offset, str):
        return X, offset
    if not is_frame(X):
        raise ValueError(
            f"offset={offset!r} names a column, but X is a {type(X).__name__}, not a pandas "
            "DataFrame; pass X as a DataFrame with that column, or the offsets themselves.")
    if offset not in X.columns:
        cols = ", ".join(map(repr, X.columns[:20])) + (" ..." if X.shape[1] > 20 else "")
        raise ValueError(f"offset={offset!r} is not a column of X; its columns are {cols}.")
    return X.drop(columns=[offset]), X[offset]
