r"""Each task's classes as columns: the layout of the multinomial loss.

A task t with classes :math:`1..K_t` is fitted with one coefficient vector per class
(:math:`W` holds :math:`\sum_t K_t` columns, the classes of a task side by side), each row
scored once per class of its task. :func:`expand_classes` builds that problem from a task
problem: segment ``(t, k)`` holds task t's rows with the target 1 where the row's label is
class k and 0 elsewhere (and the row's weight on every copy), so that the multinomial loss
(:class:`~regmtl.Multinomial`) reads each row's ``K_t`` scores as one group. With a shared
design the copies read the same rows of ``X``; per-task designs are gathered once per class.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils.multiclass import check_classification_targets

from .taskdata import TaskData, as_labels, check_label_types, check_task_labels, task_name

__all__ = ["ClassLayout", "check_classes", "check_overlap", "check_overlap_along",
           "class_layout", "class_penalty", "expand_classes", "layout_of_classes", "separated",
           "source_rows", "task_classes"]


def task_classes(data: TaskData) -> list[np.ndarray]:
    """Each segment's classes, sorted: the labels of its observed rows that carry weight.

    Parameters
    ----------
    data : TaskData
        A problem with labels (``raw_y``).

    Returns
    -------
    list of ndarray
        One array of labels per segment.

    Raises
    ------
    ValueError
        If a task's labels are not classes (scikit-learn's ``Unknown label type``: continuous
        values).
    """
    out = []
    w = np.ones(data.n_obs, dtype=bool) if data.observed is None else data.observed.copy()
    if data.sample_weight is not None:
        w &= data.sample_weight > 0
    raw = np.asarray(data.raw_y)
    if raw.dtype != object and data.n_tasks > 1:
        # one type for every task: the union's check is each task's (a continuous task makes
        # the union continuous), and the classes come from one sort of (segment, label)
        labels = raw[w]
        try:
            if labels.dtype.kind not in "iub":  # (integers and booleans are classes)
                check_classification_targets(labels)
        except ValueError:
            labels = None  # (the loop below names the task)
        if labels is not None:
            uniq, code = np.unique(labels, return_inverse=True)
            segment = np.repeat(np.arange(data.n_tasks), np.diff(data.indptr))[w]
            pairs = np.unique(segment * len(uniq) + code.ravel())
            cut = np.searchsorted(pairs // max(len(uniq), 1), np.arange(data.n_tasks + 1))
            return [uniq[pairs[cut[t]:cut[t + 1]] % len(uniq)] for t in range(data.n_tasks)]
    for t, (a, b) in enumerate(zip(data.indptr[:-1], data.indptr[1:], strict=True)):
        check_label_types(data.raw_y[a:b][w[a:b]], task_name(data, t))
        labels = as_labels(data.raw_y[a:b][w[a:b]])
        check_task_labels(labels, task_name(data, t))
        out.append(np.unique(labels))
    return out


def check_classes(data: TaskData, classes: list[np.ndarray]) -> None:
    """Refuse a task with fewer than two classes; warn where a task has as many classes as
    half its samples (numbers given as labels?).

    Parameters
    ----------
    data : TaskData
        The problem.
    classes : list of ndarray
        Each segment's classes (:func:`task_classes`).

    Raises
    ------
    ValueError
        If a task has one class among its weighted samples.
    """
    sizes = np.diff(data.indptr)
    for t, cls in enumerate(classes):
        if len(cls) < 2:
            raise ValueError(
                f"y: task {task_name(data, t)} has one class "
                f"({cls[0] if len(cls) else None!r}) among its weighted samples; each task "
                "needs two classes to train a classifier. Remove the task or add samples of "
                "the other class.")
        if len(cls) > 2 and len(cls) > 0.5 * sizes[t] and sizes[t] > 20:
            warnings.warn(f"y: task {task_name(data, t)} has {len(cls)} classes for "
                          f"{sizes[t]} samples; are the targets numbers rather than labels?",
                          UserWarning, stacklevel=3)


def separated(X: Any, labels: np.ndarray, classes: np.ndarray, fit_intercept: bool) -> bool:
    r"""Whether the rows ``X`` (dense or sparse) with ``labels`` among ``classes`` are
    (quasi-)separated: some coefficients ``D`` (one column per class, an intercept row with
    ``fit_intercept``) score every row's own class at least as high as each other class,
    strictly for some row. Then the unpenalized logistic or multinomial loss has no minimum
    (its infimum is approached as ``D`` times a growing factor is added to any point: Albert
    & Anderson 1984); else (the classes overlap) it has one.

    One linear program (HiGHS): maximize :math:`\sum_{i,k} \tilde x_i (d_{y_i} - d_k)`
    subject to :math:`\tilde x_i (d_{y_i} - d_k) \ge 0` and :math:`|D| \le 1`; its optimum
    is 0 exactly when the classes overlap. The rows and columns of ``[X, 1]`` are first
    brought to 1 in magnitude (positive factors leave the constraints' signs alone)."""
    from scipy.optimize import linprog

    A = sp.csr_matrix(X, dtype=np.float64)
    if fit_intercept:
        A = sp.hstack([A, np.ones((A.shape[0], 1))], format="csr")
    col = np.asarray(abs(A).max(axis=0).todense()).ravel()
    A = A @ sp.diags(np.where(col > 0, 1.0 / np.where(col > 0, col, 1.0), 0.0))
    row = np.asarray(abs(A).max(axis=1).todense()).ravel()
    keep = row > 0
    A = sp.diags(1.0 / row[keep]) @ A[keep]
    y = np.searchsorted(classes, np.asarray(labels)[keep])
    n, K = A.shape[0], len(classes)
    if n == 0 or K < 2:
        return False
    # row (i, k) of the constraints: x_i in the block of class y_i, -x_i in that of class k
    # (k = y_i gives a zero row); the rows grouped i-major
    R = sp.kron(A, np.ones((K, 1)), format="csr")
    onehot = np.zeros((n, K))
    onehot[np.arange(n), y] = 1.0
    blocks = [sp.diags((onehot[:, [c]] - np.eye(K)[c][None, :]).ravel()) @ R for c in range(K)]
    M = sp.hstack(blocks, format="csr")
    res = linprog(-np.asarray(M.sum(axis=0)).ravel(), A_ub=-M, b_ub=np.zeros(M.shape[0]),
                  bounds=(-1.0, 1.0), method="highs")
    if res.status != 0:  # (not solved: nothing to say)
        return False
    total = float(abs(M).sum())  # the margins' largest possible sum, near 2 n (K - 1)
    return -float(res.fun) > 1e-6 * max(total, 1.0)


def check_overlap(data: TaskData, fit_intercept: bool, what: str = "alpha=0") -> None:
    """Refuse an unpenalized classification fit whose tasks' classes are separated
    (:func:`separated`, on each task's observed rows of positive weight): its loss has no
    minimum, the coefficients would grow without bound.

    Raises
    ------
    ValueError
        Naming the first such task, ``alpha`` and the fix (``alpha > 0``).
    """
    if not data.rows_local or data.raw_y is None:
        return
    w = np.ones(data.n_obs, dtype=bool) if data.observed is None else data.observed.copy()
    if data.sample_weight is not None:
        w &= data.sample_weight > 0
    for t, cls in enumerate(task_classes(data)):
        a, b, o = data.indptr[t], data.indptr[t + 1], data.offset[t]
        rows = np.flatnonzero(w[a:b])
        if len(cls) < 2 or not len(rows):
            continue
        if separated(data.X[a - o:b - o][rows], as_labels(data.raw_y[a:b][rows]), cls,
                     fit_intercept):
            raise ValueError(
                f"{what}: the classes of task {task_name(data, t)} are separated by its "
                "features (some coefficients score every row's own class highest), so the "
                "unpenalized loss has no minimum: the coefficients would grow without bound "
                "while the loss decreases towards its infimum. Give alpha > 0 (a penalty "
                "keeps them finite), or more rows.")


#: The largest pooled problem (rows times columns, intercepts included) that
#: :func:`check_overlap_along` checks: one linear program of that size takes about 5 ms.
POOLED_CHECK_SIZE = 5_000


def check_overlap_along(data: TaskData, groups: list[np.ndarray], fit_intercept: bool,
                        penalty: Any) -> None:
    """Refuse a classification fit whose penalty leaves a group's common coefficients free
    (``penalty.free_task_groups``) when those separate the group's pooled classes: one
    vector for all its tasks, each task its own intercepts (:func:`separated` on the pooled
    rows, with one indicator column per task). Along that direction the penalty costs
    nothing and the loss only falls, so the objective has no minimum. Groups whose pooled
    problem is larger than :data:`POOLED_CHECK_SIZE` are not checked (the linear program
    would cost more than the fit; many rows rarely separate), nor multinomial groups whose
    tasks have different classes.

    Raises
    ------
    ValueError
        Naming the penalty, the group's tasks and the fixes.
    """
    if not data.rows_local or data.raw_y is None:
        return
    w = np.ones(data.n_obs, dtype=bool) if data.observed is None else data.observed.copy()
    if data.sample_weight is not None:
        w &= data.sample_weight > 0
    counts = np.diff(np.concatenate([[0], np.cumsum(w)])[data.indptr])  # rows per task
    # (a linear program larger than this costs more than most fits: not checked)
    groups = [g for g in groups
              if int(counts[g].sum()) * (data.n_features + len(g)) <= POOLED_CHECK_SIZE]
    if not groups:
        return
    classes = task_classes(data)
    binary = all(len(c) <= 2 for c in classes)
    for group in groups:
        if not binary and any(not np.array_equal(classes[t], classes[group[0]]) for t in group):
            continue  # (the pooled program would score rows against classes their task lacks)
        parts, labels, tasks = [], [], []
        for t in group:
            a, b, o = data.indptr[t], data.indptr[t + 1], data.offset[t]
            rows = np.flatnonzero(w[a:b])
            if len(classes[t]) < 2 or not len(rows):
                continue
            parts.append(sp.csr_matrix(data.X[a - o:b - o][rows]))
            y = as_labels(data.raw_y[a:b][rows])
            # binary tasks: each task's larger label is its +1 class; else the labels as named
            labels.append(np.searchsorted(classes[t], y) if binary else y)
            tasks.append(np.full(len(rows), len(tasks)))
        if not parts:
            continue
        X = sp.vstack(parts, format="csr")
        if fit_intercept:
            task = np.concatenate(tasks)
            X = sp.hstack([X, sp.csr_matrix((np.ones(len(task)), (np.arange(len(task)), task)))],
                          format="csr")
        y = np.concatenate(labels)
        if separated(X, y, np.unique(y), False):
            names = ", ".join(str(task_name(data, int(t))) for t in group[:5])
            more = f" and {len(group) - 5} more" if len(group) > 5 else ""
            raise ValueError(
                f"penalty: {penalty!r} leaves the coefficients common to tasks {names}{more} "
                "free, and those separate the tasks' pooled classes (each task with its own "
                "intercept), so the loss has no minimum: the shared coefficients would grow "
                "without bound. Use a penalty that charges them (MeanRegularized(ridge=0.1), "
                "'l21', 'trace'), or more rows.")


def expand_classes(data: TaskData, classes: list[np.ndarray]) -> TaskData:
    """The problem with one segment per class of each task (see the module's text).

    Parameters
    ----------
    data : TaskData
        The task problem (its ``raw_y`` read when present: fit; absent: predict).
    classes : list of ndarray
        The classes of every fitted task, in the order of ``data.tasks``.

    Returns
    -------
    TaskData
        The expanded problem: ``tasks`` holds ``(task, class)`` pairs over every fitted task
        (``task_index`` into it), ``class_blocks`` the layout, ``y`` the 0/1 targets and ``c``
        each row's weight on every copy.
    """
    K_all = np.array([len(c) for c in classes], dtype=np.int64)
    first_all = np.concatenate(([0], np.cumsum(K_all)[:-1])).astype(np.int64)
    K = K_all[data.task_index]
    sizes = np.diff(data.indptr)
    seg_task = np.repeat(np.arange(data.n_tasks), K)  # original segment of each new one
    seg_class = np.arange(int(K.sum())) - np.repeat(np.cumsum(K) - K, K)
    new_sizes = sizes[seg_task]
    indptr = np.concatenate(([0], np.cumsum(new_sizes))).astype(np.int64)
    seg_of = np.repeat(np.arange(seg_task.size), new_sizes)
    src = data.indptr[seg_task][seg_of] + (np.arange(indptr[-1]) - indptr[seg_of])
    pairs = np.empty(int(K_all.sum()), dtype=object)
    pairs[:] = [(task, cls) for task, cl in zip(data.tasks, classes, strict=True) for cls in cl]
    one_design = data.shared or data.n_tasks == 1  # every copy reads the same rows of X
    if one_design:
        X = data.X
    elif sp.issparse(data.X):
        X = sp.csc_matrix(data.X[src])
    else:
        X = np.asfortranarray(data.X[src])
    new = TaskData(
        X=X, indptr=indptr,
        task_index=(first_all[data.task_index][seg_task] + seg_class).astype(np.int64),
        tasks=pairs, shared=bool(one_design), form=data.form,
        n_input_rows=data.n_input_rows,
        class_blocks=np.column_stack([np.cumsum(K) - K, K]).astype(np.int64),
    )
    if not one_design and not sp.issparse(data.X):
        # the task design beside its copies: the linear maps read each task's rows once for
        # all its classes (a copy per class is what the compiled kernels walk)
        new._cache["class_design"] = (data.X, data.indptr[:-1].astype(np.int64))
    for name in ("c", "observed", "sample_weight", "raw_y", "order"):
        value = getattr(data, name)
        if value is not None and name != "order":
            setattr(new, name, value[src])
    if data.raw_y is not None:
        label = np.empty(seg_task.size, dtype=object)
        label[:] = [classes[data.task_index[t]][k]
                    for t, k in zip(seg_task, seg_class, strict=True)]
        hit = np.asarray(new.raw_y == label[seg_of], dtype=bool)
        new.y = hit.astype(np.float64)
    return new


def source_rows(data: TaskData) -> tuple[np.ndarray, np.ndarray]:
    """For a problem built by :func:`expand_classes`: each flat observation's row in the task
    problem and its class position within its task.

    Parameters
    ----------
    data : TaskData
        An expanded problem (``class_blocks`` set).

    Returns
    -------
    rows, position : ndarray of int
        ``rows[r]`` indexes the task problem's flat arrays; ``position[r]`` is ``k`` for
        segment ``(t, k)``.
    """
    first, K = data.class_blocks[:, 0], data.class_blocks[:, 1]
    sizes = np.diff(data.indptr)[first]
    orig = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    block = np.repeat(np.arange(first.size), K)  # block of each segment
    position = np.arange(block.size) - first[block]
    seg_of = np.repeat(np.arange(block.size), np.diff(data.indptr))
    rows = orig[block][seg_of] + (np.arange(data.n_obs) - data.indptr[seg_of])
    return rows, position[seg_of]


@dataclass(frozen=True)
class ClassLayout:
    """The columns of W on the classes' layout, as a penalty reads them.

    Attributes
    ----------
    first : ndarray of int, shape (T,)
        Each task's first column (a task's ``K_t`` columns are side by side).
    sizes : ndarray of int, shape (T,)
        ``K_t``, each task's number of classes.
    label : ndarray of int, shape (sum_t K_t,)
        Each column's class, an index into ``labels`` (columns of one class label in
        different tasks share it).
    labels : ndarray of object
        The distinct class labels, in the order they first appear.
    """

    first: np.ndarray
    sizes: np.ndarray
    label: np.ndarray
    labels: np.ndarray

    @property
    def n_tasks(self) -> int:
        """T, the number of tasks."""
        return int(self.sizes.size)

    @property
    def n_columns(self) -> int:
        """``sum_t K_t``, the number of columns of W."""
        return int(self.label.size)

    @property
    def task(self) -> np.ndarray:
        """Each column's task, shape (sum_t K_t,)."""
        return np.repeat(np.arange(self.n_tasks), self.sizes)


def class_layout(data: TaskData) -> ClassLayout | None:
    """The layout of an expanded problem (:func:`~regmtl.classes.expand_classes`: its
    ``tasks`` are the ``(task, class)`` pair of every column of W), None for a problem of
    tasks.

    Parameters
    ----------
    data : TaskData
        A problem.

    Returns
    -------
    ClassLayout or None
    """
    if getattr(data, "class_blocks", None) is None:  # (task blocks elsewhere: none)
        return None
    per_task: dict[Any, list] = {}
    for task, label in data.tasks:  # (a task's columns side by side)
        per_task.setdefault(task, []).append(label)
    return layout_of_classes(list(per_task.values()))


def layout_of_classes(classes: Sequence[Sequence[Any]]) -> ClassLayout:
    """The layout of W's columns when task t has the classes ``classes[t]``, its columns side
    by side in that order; classes matched across tasks by equality.

    Parameters
    ----------
    classes : sequence of sequences
        Each task's classes (a multinomial fit's ``classes_``).

    Returns
    -------
    ClassLayout

    Examples
    --------
    >>> from regmtl.classes import layout_of_classes
    >>> lay = layout_of_classes([["a", "b"], ["b", "c", "a"]])
    >>> lay.first.tolist(), lay.sizes.tolist(), lay.label.tolist()
    ([0, 2], [2, 3], [0, 1, 1, 2, 0])
    """
    sizes = np.array([len(c) for c in classes], dtype=np.int64)
    ids: dict[Any, int] = {}
    label = np.array([ids.setdefault(c, len(ids)) for cs in classes for c in cs],
                     dtype=np.int64)
    labels = np.empty(len(ids), dtype=object)
    labels[:] = list(ids)
    return ClassLayout(first=(np.cumsum(sizes) - sizes).astype(np.int64), sizes=sizes,
                       label=label, labels=labels)


def class_penalty(penalty: Any, data: TaskData) -> Any:
    """The penalty that acts on ``data``'s columns: on the classes' layout, what the penalty
    declares there (``penalty.on_classes(layout)``); on a problem of tasks, the penalty.

    Parameters
    ----------
    penalty : Penalty
        A penalty object.
    data : TaskData
        The problem it is fitted on.

    Returns
    -------
    Penalty
    """
    layout = class_layout(data)
    return penalty if layout is None else penalty.on_classes(layout)
