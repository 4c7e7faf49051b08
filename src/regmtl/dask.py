r"""Dask collections as task blocks: one coupled fit whose rows never leave the workers.

:func:`as_dask_task_data` reads long-form Dask input (``X`` a ``dask.dataframe`` DataFrame or a
``dask.array`` array, ``y`` and ``task`` Dask Series or arrays, or ``task`` a column of ``X``)
and shuffles its rows by task into **task blocks**: contiguous runs of tasks (in the sorted
order of their ids, as in memory) with all their rows, balanced by rows, one in-memory
:class:`~regmtl.TaskData` per block, built and kept on a worker. Only small summaries come back
to the client: the task ids and their row counts (T numbers).

:class:`DaskTaskData` implements the block protocol of ``TaskData`` that the solvers call
(the linear map and its adjoint, per-task sums, the targets and row weights) and one more
operation, :meth:`DaskTaskData.blockwise`: a function run on every block with that block's
slices of the arguments, its results assembled into Dask arrays (per row, per task, per
coefficient column), per-block scalars or objects kept on the workers. Every per-task
computation of the solvers (the per-task Grams, the intercepts, the Newton models) runs that
way, with the in-memory code on each block; the coupling between blocks goes through the
penalty's operations on the coefficient matrix, a Dask array whose column blocks live beside
the rows of their tasks, so that only the penalty's summaries cross blocks (``p`` row norms
for L2,1, the mean task, the ``p x p`` Gram of W for the trace norm, the neighbours' columns
along a sparse graph). ``settle`` persists the iterates between iterations.

This is the only module that imports Dask for fitting; the solvers import neither.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
import warnings
from typing import Any

import numpy as np
from sklearn.utils import check_array

from ._lazy import lazy_module
from .classes import check_classes, expand_classes, task_classes
from .inputs import as_task_data, factorize
from .taskdata import TaskData, task_weights

pd = lazy_module("pandas")

__all__ = ["DaskTaskData", "KeptOnWorkers", "as_dask_task_data", "is_dask_collection",
           "predict_scores", "task_score"]

#: Rows per task block aimed at (blocks are runs of whole tasks, balanced by rows).
BLOCK_ROWS = 2_000_000


def is_dask_collection(obj: Any) -> bool:
    """Whether ``obj`` is a Dask collection (without importing Dask)."""
    return hasattr(obj, "__dask_graph__") and type(obj).__module__.split(".")[0] == "dask"


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - dask is an extra
        raise ImportError(
            'Dask input needs dask: pip install "regmtl[dask]".'
        ) from exc
    return dask, da


# ----------------------------------------------------------------------------- input side
def _partitions(X: Any, y: Any, task: Any, sample_weight: Any, what_y: str):
    """Per input partition, a Delayed of ``(X, y, task, sample_weight)`` NumPy pieces, and the
    feature names (or None)."""
    dask, da = _dask()
    if task is None:
        raise ValueError(
            "task: Dask input is fitted in long form; pass task= (a Dask Series or array with "
            "one task id per row, or the name of a column of X)."
        )
    names = None
    if hasattr(X, "columns") and hasattr(X, "to_delayed"):  # a Dask DataFrame
        cols = list(X.columns)
        if isinstance(task, str):
            if task not in cols:
                raise ValueError(
                    f"task={task!r} is not a column of X; its columns are {cols[:10]}."
                )
            feats = [c for c in cols if c != task]
        else:
            feats = cols
        names = np.asarray([str(c) for c in feats], dtype=object)
        # one frame, so that X, y, task and the weights come in the same partitions (Dask
        # may merge partitions differently for different columns of one Parquet read)
        extra = {key: obj for key, obj in (("__regmtl_y__", y), ("__regmtl_task__", task),
                                           ("__regmtl_w__", sample_weight))
                 if obj is not None and not isinstance(obj, str)}
        for key, obj in extra.items():
            if not (is_dask_collection(obj) and hasattr(obj, "to_frame")):
                raise TypeError(
                    f"{_ARG[key]}: X is a Dask DataFrame, so {_ARG[key]} must be a Dask Series "
                    f"(a column of the same DataFrame, or a name for task); got "
                    f"{type(obj).__name__}."
                )
        if extra:
            try:
                X = X.assign(**extra)
            except Exception as exc:  # noqa: BLE001 - Dask's alignment errors vary
                raise ValueError(
                    "y, task and sample_weight must be columns of the same Dask DataFrame as X "
                    f"(or align with it by index); Dask could not join them: {exc}"
                ) from None
            y, task, sample_weight = (
                "__regmtl_y__" if "__regmtl_y__" in extra else y,
                "__regmtl_task__" if "__regmtl_task__" in extra else task,
                "__regmtl_w__" if "__regmtl_w__" in extra else sample_weight)
        Xs = X.to_delayed()
    elif hasattr(X, "chunks"):  # a Dask array
        if isinstance(task, str):
            raise ValueError(
                f"task={task!r} names a column, but X is a Dask array; pass the task ids as "
                "a Dask array or Series, or X as a Dask DataFrame."
            )
        if X.ndim != 2:
            raise ValueError(f"X: expected a 2-D Dask array, got {X.ndim} dimension(s).")
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        Xs = list(X.to_delayed()[:, 0])
        feats = None
    else:
        raise TypeError(f"X: expected a Dask DataFrame or array, got {type(X).__name__}.")

    def pieces(obj, name):
        if obj is None or isinstance(obj, str):  # a column of X's partitions, or none
            return [obj] * len(Xs)
        if not is_dask_collection(obj):
            raise TypeError(
                f"{name}: X is a Dask collection, so {name} must be one too (a Dask Series or "
                f"array partitioned like X), or a column name for task; got "
                f"{type(obj).__name__}."
            )
        if hasattr(obj, "chunks"):  # Dask array: the rows of X's partitions
            if obj.ndim != 1:
                raise ValueError(f"{name}: expected a 1-D Dask array, got {obj.ndim}-D.")
            if hasattr(X, "chunks"):
                obj = obj.rechunk(X.chunks[0])
            parts = list(obj.to_delayed().ravel())
        else:
            parts = list(obj.to_delayed())
        if len(parts) != len(Xs):
            raise ValueError(
                f"{name} has {len(parts)} partitions but X has {len(Xs)}; take {name} from "
                "the same DataFrame as X (or rechunk it like X)."
            )
        return parts

    ys, ts, ws = pieces(y, what_y), pieces(task, "task"), pieces(sample_weight, "sample_weight")
    parts = [dask.delayed(_piece, pure=True)(x, yy, t, w, feats)
             for x, yy, t, w in zip(Xs, ys, ts, ws, strict=True)]
    return parts, names


_ARG = {"__regmtl_y__": "y", "__regmtl_task__": "task", "__regmtl_w__": "sample_weight"}


def _piece(X, y, task, w, feats):
    """NumPy arrays of one input partition (checked for matching lengths); y, task and w may
    name columns of the partition."""
    y, task, w = (X[v].to_numpy() if isinstance(v, str) else v for v in (y, task, w))
    if feats is not None:
        X = X[feats]
    Xa = X.to_numpy(dtype=np.float64) if hasattr(X, "to_numpy") else np.asarray(
        X, dtype=np.float64)
    n = Xa.shape[0]
    out = []
    for name, v in (("y", y), ("task", task), ("sample_weight", w)):
        if v is None:
            out.append(None)
            continue
        v = v.to_numpy() if hasattr(v, "to_numpy") else np.asarray(v)
        if v.shape[0] != n:
            raise ValueError(
                f"{name} has {v.shape[0]} rows in a partition where X has {n}; X, y and task "
                "must be partitioned alike (take them from one DataFrame)."
            )
        out.append(v)
    t = out[1]
    if t.dtype.kind not in "biuf":
        t = t.astype(object)
    if pd.isna(t).any():
        raise ValueError("task contains missing ids (None/NaN); every row needs a task id.")
    return Xa, out[0], t, out[2]


def _count(piece):
    """The task ids of a partition and their row counts."""
    task = piece[2]
    s = pd.Series(task).value_counts(sort=False)
    return s.index.to_numpy(), s.to_numpy().astype(np.int64)


def _merge(*counts):
    ids = np.concatenate([c[0] for c in counts])
    n = np.concatenate([c[1] for c in counts])
    s = pd.Series(n).groupby(ids, sort=False).sum()
    return s.index.to_numpy(), s.to_numpy().astype(np.int64)


def _tree(dask, fn, items, fan_in=8):
    while len(items) > 1:
        items = [dask.delayed(fn, pure=True)(*items[i:i + fan_in])
                 for i in range(0, len(items), fan_in)]
    return items[0]


def _split(piece, labels, bounds):
    """The rows of one partition routed to the task blocks (codes: positions in ``labels``),
    each block's rows in input order."""
    X, y, task, w = piece
    codes = pd.Index(labels).get_indexer(task).astype(np.int64)
    block = np.searchsorted(bounds, codes, side="right") - 1
    order = np.argsort(block, kind="stable")
    cuts = np.searchsorted(block[order], np.arange(len(bounds)))
    out = []
    for k in range(len(bounds) - 1):
        rows = order[cuts[k]:cuts[k + 1]]
        out.append((X[rows], None if y is None else y[rows], codes[rows],
                    None if w is None else w[rows]))
    return tuple(out)


def _assemble(lo, hi, labels, omega, numeric_y, encode, blocks, *pieces):
    """One task block: the rows of tasks ``lo..hi-1`` (ids ``labels``) from every partition,
    in partition order, as an in-memory TaskData of long form whose tasks are those ids (so
    that its messages name them). With feature ``blocks`` (``MultiSource``) a source missing
    for a whole task (NaN columns) is filled with zeros there, as in memory: a block holds
    whole tasks, so this is the in-memory problem's own filling."""
    X = np.concatenate([p[0] for p in pieces]) if pieces else np.empty((0, 0))
    codes = np.concatenate([p[2] for p in pieces])
    y = None if pieces[0][1] is None else np.concatenate([p[1] for p in pieces])
    w = None if pieces[0][3] is None else np.concatenate([p[3] for p in pieces])
    data = as_task_data(X, y, labels[codes - lo], sample_weight=w, task_weight=omega,
                        numeric_y=numeric_y, tasks=labels, blocks=blocks,
                        check_x=None if blocks is None else _allow_missing_sources)
    if data.n_tasks != hi - lo:  # (cannot happen: every task has rows)
        raise RuntimeError("a task block lost a task")
    if encode and all(len(c) <= 2 for c in task_classes(data)):
        data.encode_binary()  # (a task of more classes: the multinomial's layout, later)
    return data


def _allow_missing_sources(X: Any, reset: bool) -> Any:  # noqa: ARG001 - check_x's signature
    return check_array(X, dtype=np.float64, input_name="X", ensure_all_finite="allow-nan")


def as_dask_task_data(X: Any, y: Any, task: Any, *, sample_weight: Any = None,
                      task_weight: Any = "equal", numeric_y: bool = True,
                      block_rows: int = BLOCK_ROWS,
                      blocks: tuple[int, ...] | None = None) -> DaskTaskData:
    """The task blocks of long-form Dask input, persisted on the workers.

    One pass counts the rows of every task (T ids and counts come back to the client); the
    tasks, sorted by id, are cut into runs of about ``block_rows`` rows (as many blocks as
    that takes, rounded up to a multiple of the workers so that each worker holds as many,
    never more than the tasks); one shuffle routes every row to its block, where the rows
    are grouped by task in input order (deterministic, whatever the workers) and validated
    like in-memory input. The logistic loss
    (``numeric_y=False``) encodes each task's two labels to -1/+1 on its block. ``blocks``:
    the feature blocks a penalty declares (``MultiSource``), whose missing sources (NaN over
    all the rows of a task) are filled with zeros on each block, as in memory.
    """
    dask, _ = _dask()
    if y is None:
        raise ValueError("y: Dask input needs targets (a Dask Series or array).")
    parts, names = _partitions(X, y, task, sample_weight, "y")
    ids, counts = dask.compute(_tree(dask, _merge, [dask.delayed(_count, pure=True)(p)
                                                    for p in parts]))[0]
    order_codes, labels = factorize(np.asarray(ids, dtype=object if ids.dtype.kind not in
                                                "biuf" else ids.dtype))
    sizes = np.zeros(len(labels), dtype=np.int64)
    sizes[order_codes] = counts
    T, N = len(labels), int(sizes.sum())
    if sample_weight is not None and isinstance(task_weight, str) and task_weight == "samples":
        raise ValueError(
            "task_weight='samples' with sample weights is not available on Dask input; give "
            "task_weight='equal' or an array of per-task weights."
        )
    omega = task_weights(task_weight, sizes.astype(np.float64))
    workers = _n_workers()  # blocks: a multiple of the workers, so that each holds as many
    n_blocks = int(min(T, -(-max(workers, -(-N // max(int(block_rows), 1))) // workers)
                       * workers))
    cum = np.concatenate([[0], np.cumsum(sizes)])
    cuts = np.searchsorted(cum, np.linspace(0, N, n_blocks + 1)[1:-1], side="left")
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 1, T - 1), [T]])) if T > 1 else \
        np.array([0, T])
    K = len(bounds) - 1
    split = [dask.delayed(_split, pure=True, nout=K)(p, labels, bounds) for p in parts]
    blocks = [dask.delayed(_assemble, pure=True)(
        int(bounds[k]), int(bounds[k + 1]), labels[bounds[k]:bounds[k + 1]],
        omega[bounds[k]:bounds[k + 1]], numeric_y,
        not numeric_y, blocks, *[s[k] for s in split]) for k in range(K)]
    blocks = list(dask.persist(*blocks))
    data = DaskTaskData(blocks, bounds, sizes, labels, n_features=None, feature_names=names,
                        n_input_rows=N)
    data._n_features = dask.compute(dask.delayed(_n_features)(blocks[0]))[0]
    if not numeric_y:
        data.classes = [c for part in dask.compute(*[dask.delayed(_classes)(b)
                                                       for b in blocks]) for c in part]
    return data


def _n_workers() -> int:
    """Workers of the current ``dask.distributed`` client (1 without one): at least one task
    block each, and no more blocks than the rows ask for (every block costs a task per
    operation of every iteration)."""
    try:
        from distributed import get_client

        return max(len(get_client().scheduler_info()["workers"]), 1)
    except (ImportError, ValueError):
        return 1


def _n_features(block: TaskData) -> int:
    return block.n_features


def _classes(block: TaskData) -> list | None:
    """A block's classes per task: those of its encoding, else the labels of its weighted
    rows (a task of more than two classes leaves its block unencoded); None for a block
    without labels to encode."""
    if block.classes is not None:
        return list(block.classes)
    if block.raw_y is None:
        return None
    return task_classes(block)


def _held_classes(block: TaskData) -> list | None:
    return None if block.classes is None else list(block.classes)


def _mapped(block: TaskData, fn, *args) -> TaskData:
    """``fn`` on a copy of a block (the block itself is kept as it is)."""
    out = copy.copy(block)
    out._cache = {}
    return fn(out, *args)


def _expand_block(block: TaskData, classes: list) -> TaskData:
    """A block in the classes' layout, its tasks' classes checked."""
    check_classes(block, classes)
    return expand_classes(block, classes)


def _x_shift(block: TaskData) -> np.ndarray | None:
    return getattr(block, "x_shift", None)


# ----------------------------------------------------------------------------- the blocks
class DaskTaskData:
    """A long-form problem held as task blocks on Dask workers (see the module docstring).

    Holds, on the client, only the task ids, their row counts (``task_rows``) and the block
    bounds (task ``bounds[k]`` to ``bounds[k+1] - 1`` in block k). Arrays per row are Dask arrays
    chunked by block; arrays per task (T) or per coefficient (m x T) are Dask arrays chunked by
    the blocks' tasks, so that block k of each lives with block k's rows.
    """

    #: the block protocol's capability (:class:`regmtl.blocks.TaskBlocks`): the rows are on the
    #: workers, reached only through the protocol's operations
    rows_local = False
    shared = False
    form = "long"
    sample_weight = None
    observed = None
    x_shift = None  # set by :meth:`shift_columns`
    class_blocks = None  # set by :meth:`expand_classes`

    def __init__(self, blocks, bounds, task_rows, tasks, *, n_features, feature_names=None,
                 n_input_rows=0):
        self.blocks = blocks
        self.bounds = np.asarray(bounds, dtype=np.int64)
        self.task_rows = np.asarray(task_rows, dtype=np.int64)
        self.rows = np.add.reduceat(self.task_rows, self.bounds[:-1]) if len(
            self.task_rows) else np.zeros(0, dtype=np.int64)
        self.tasks = np.asarray(tasks, dtype=object)
        self.task_index = np.arange(len(tasks), dtype=np.int64)
        self._n_features = n_features
        self.feature_names = feature_names
        self.n_input_rows = n_input_rows
        self.classes = None
        self._cache: dict = {}

    # ------------------------------------------------------------------ shape facts
    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def n_features(self) -> int:
        return int(self._n_features)

    @property
    def n_obs(self) -> int:
        return int(self.rows.sum())

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @property
    def row_chunks(self) -> tuple:
        return tuple(int(r) for r in self.rows)

    @property
    def task_chunks(self) -> tuple:
        return tuple(int(t) for t in np.diff(self.bounds))

    def with_blocks(self, blocks, task_rows) -> DaskTaskData:
        """The same tasks and blocks, other rows (a fold's side): ``blocks`` the new per-block
        TaskData (Delayed, persisted), ``task_rows`` their rows per task."""
        sub = DaskTaskData(list(blocks), self.bounds, task_rows, self.tasks,
                           n_features=self._n_features, feature_names=self.feature_names,
                           n_input_rows=int(np.sum(task_rows)))
        sub.classes = self.classes
        return sub

    def shift_columns(self) -> DaskTaskData:
        r"""The problem with each task's columns far from zero shifted to their task means,
        block by block on the workers (:func:`regmtl.taskdata.shift_columns` on every block:
        a task's rows all sit in one block, so each task's shift is the in-memory one), or
        ``self`` when no column is offset. ``x_shift`` (p x T, the shifts ``s_t``) comes to
        the client; intercepts fitted on the shifted columns map back as
        :math:`b_t = b'_t - s_t^\top w_t`. Sums of squares formed in one pass over columns
        like :math:`10^8 + \mathcal N(0, 1)` lose their variation to rounding; on the shifted
        columns every centered moment of the blocks is exact."""
        from .taskdata import shift_columns

        dask, _ = _dask()
        if self.x_shift is not None:
            return self
        shifted = list(dask.persist(*[dask.delayed(shift_columns, pure=True)(b)
                                      for b in self.blocks]))
        shifts = dask.compute(*[dask.delayed(_x_shift, pure=True)(b) for b in shifted])
        if all(sh is None for sh in shifts):
            return self
        sub = self.with_blocks(shifted, self.task_rows)
        sub.n_input_rows = self.n_input_rows
        sub.x_shift = np.concatenate(
            [np.zeros((self.n_features, int(t))) if sh is None else np.asarray(sh)
             for sh, t in zip(shifts, self.task_chunks, strict=True)], axis=1)
        for key in ("y", "c"):  # the same rows in the same order: only X changed
            if key in self._cache:
                sub._cache[key] = self._cache[key]
        return sub

    def map_blocks(self, fn, *args) -> DaskTaskData:
        """The same tasks and rows with every block ``fn(block, *args)`` on its worker, ``fn``
        given a copy of the block (to change its targets: a loss per task encodes its
        binary tasks' labels there); ``classes`` (to the client) those the new blocks hold,
        None for a task without."""
        dask, _ = _dask()
        blocks = list(dask.persist(*[dask.delayed(_mapped, pure=True)(b, fn, *args)
                                     for b in self.blocks]))
        classes = dask.compute(*[dask.delayed(_held_classes)(b) for b in blocks])
        sub = self.with_blocks(blocks, self.task_rows)
        sub.n_input_rows = self.n_input_rows
        sub.classes = None if all(c is None for c in classes) else [
            c for part, n in zip(classes, self.task_chunks, strict=True)
            for c in (part if part is not None else [None] * n)]
        return sub

    def expand_classes(self, classes: list) -> DaskTaskData:
        """The classes' layout of the multinomial loss (:func:`regmtl.classes.expand_classes`)
        built on every block from its rows: one segment per class of each task, the blocks'
        tasks ``(task, class)`` pairs; ``classes`` the tasks' classes (found on the blocks,
        :func:`as_dask_task_data`), checked there (two or more each)."""
        dask, _ = _dask()
        K = np.array([len(c) for c in classes], dtype=np.int64)
        first = np.concatenate([[0], np.cumsum(K)]).astype(np.int64)
        blocks = list(dask.persist(*[
            dask.delayed(_expand_block, pure=True)(b, classes[lo:hi])
            for b, lo, hi in zip(self.blocks, self.bounds[:-1], self.bounds[1:],
                                 strict=True)]))
        pairs = np.empty(int(K.sum()), dtype=object)
        pairs[:] = [(task, c) for task, cl in zip(self.tasks, classes, strict=True)
                    for c in cl]
        new = DaskTaskData(blocks, first[self.bounds], np.repeat(self.task_rows, K), pairs,
                           n_features=self._n_features, feature_names=self.feature_names,
                           n_input_rows=self.n_input_rows)
        new.class_blocks = np.column_stack([first[:-1], K]).astype(np.int64)
        new.classes = list(classes)
        return new

    # ------------------------------------------------------------------ blockwise
    def _key(self, arg: Any, k: int):
        """Block k's part of an argument: the key of a Dask array's block-k chunk (the array
        rechunked by blocks first if needed), a persisted per-block object's key, the columns
        of a NumPy array whose last axis has T entries; anything else as it is."""
        T = self.n_tasks
        if isinstance(arg, Blocks):
            return arg.items[k].key
        if hasattr(arg, "__dask_graph__") and hasattr(arg, "chunks"):
            return (arg.name,) + (0,) * (arg.ndim - 1) + (k,)
        if isinstance(arg, np.ndarray) and arg.ndim >= 1 and arg.shape[-1] == T:
            return arg[..., self.bounds[k]:self.bounds[k + 1]]
        return arg

    def _aligned(self, arr):
        """A Dask array chunked by blocks along its last axis (tasks or rows), whole along
        the others."""
        n = arr.shape[-1]
        if n not in (self.n_tasks, self.n_obs):
            raise ValueError(f"an array of {n} entries is neither per task nor per row")
        if n == self.n_tasks and arr.chunks[-1] == self.task_chunks:
            want = self.task_chunks
        else:
            want = self.row_chunks if n == self.n_obs else self.task_chunks
        target = tuple((s,) for s in arr.shape[:-1]) + (want,)
        return arr if arr.chunks == target else arr.rechunk(target)

    def blockwise(self, fn, *args, out: Any = "rows"):
        """``fn(block, *pieces)`` on every block; the results as ``out`` says, one kind per
        result: ``"rows"`` (a Dask array per row), ``"tasks"`` (per task), ``("coef", m)``
        (m x T; m a tuple for the parts of a lifted variable, (2, p) x T), ``"scalar"`` (a
        Dask array of one value per block, to be reduced by the caller) or ``"object"`` (a
        :class:`Blocks` of per-block objects, kept on the workers). One task per block,
        reading block k of every argument: no data moves between blocks."""
        dask, da = _dask()
        from dask.highlevelgraph import HighLevelGraph

        kinds = out if isinstance(out, list) else [out]
        args = [self._aligned(a) if hasattr(a, "__dask_graph__") and hasattr(a, "chunks")
                else a for a in args]
        deps = [a for a in args if hasattr(a, "__dask_graph__")]
        deps += [item for a in args if isinstance(a, Blocks) for item in a.items]
        deps += self.blocks
        token = uuid.uuid4().hex
        call = f"regmtl-{getattr(fn, '__name__', 'fn').strip('_')}-{token}"
        if len(kinds) == 1 and kinds[0] != "object":  # one array: its chunks are the calls
            kind, K = kinds[0], len(self.blocks)
            chunks, index = self._layout(kind)
            layer = {(call, *index(k)): (_call_one, fn, blk.key, kind == "scalar",
                                          *[self._key(a, k) for a in args])
                     for k, blk in enumerate(self.blocks)}
            graph = HighLevelGraph.from_collections(call, layer, dependencies=deps)
            arr = da.Array(graph, call, chunks, dtype=np.float64)
            return [arr] if isinstance(out, list) else arr
        layer = {}
        for k, blk in enumerate(self.blocks):
            layer[(call, k)] = (_call, fn, blk.key, len(kinds),
                                *[self._key(a, k) for a in args])
        graph = HighLevelGraph.from_collections(call, layer, dependencies=deps)
        results = []
        for i, kind in enumerate(kinds):
            name = f"{call}-{i}"
            K = len(self.blocks)
            if kind == "object":
                from dask.delayed import Delayed

                sub = {(name, k): (_item, (call, k), i) for k in range(K)}
                g = HighLevelGraph.from_collections(name, sub, dependencies=[_Graph(graph)])
                results.append(Blocks([Delayed((name, k), g, layer=name) for k in range(K)],
                                      self))
                continue
            chunks, index = self._layout(kind)
            keys = [(name, *index(k)) for k in range(K)]
            wrap = _item_scalar if kind == "scalar" else _item
            sub = {key: (wrap, (call, k), i) for k, key in enumerate(keys)}
            g = HighLevelGraph.from_collections(name, sub, dependencies=[_Graph(graph)])
            results.append(da.Array(g, name, chunks, dtype=np.float64))
        return results if isinstance(out, list) else results[0]

    def _layout(self, kind):
        """The chunks of a :meth:`blockwise` result of ``kind`` and the index of block k's
        chunk."""
        if kind == "rows":
            return (self.row_chunks,), lambda k: (k,)
        if kind == "tasks":
            return (self.task_chunks,), lambda k: (k,)
        if kind == "scalar":
            return ((1,) * len(self.blocks),), lambda k: (k,)
        # ("coef", m): m x T, or (m1, m2, ...) x T (a lifted variable's parts)
        lead = tuple(int(m) for m in np.atleast_1d(kind[1]))
        return (*((m,) for m in lead), self.task_chunks), lambda k: (*(0,) * len(lead), k)

    def settle(self, *arrays):
        """The arrays computed and kept on the workers (``persist``), so that the next
        iteration starts from them instead of from the whole history of operations. A NumPy
        array per task (T, or m x T: a starting W) is placed on the blocks first, each block
        holding its tasks' columns (Dask would make it one chunk and slice it elsewhere; a
        lifted variable's (2, p, T) parts the same way).
        Per-block objects (:class:`Blocks`, ``blockwise(..., out="object")``) are kept on the
        workers of their blocks the same way."""
        dask, _ = _dask()
        placed = [self._place(a) if isinstance(a, np.ndarray) and a.ndim in (1, 2, 3)
                  and a.shape[-1] == self.n_tasks else a for a in arrays]
        with self.pinned(), warnings.catch_warnings():
            # (placed columns travel in the graph on purpose: the size of W, once)
            warnings.filterwarnings("ignore", message="Sending large graph")
            kept = dask.persist(*[a.items if isinstance(a, Blocks) else a for a in placed])
        return tuple(Blocks(k, self) if isinstance(a, Blocks) else k
                     for a, k in zip(placed, kept, strict=True))

    def _place(self, a: np.ndarray):
        """A NumPy array per task on the blocks: its columns sent to each block in the graph
        (not scattered: data scattered once cannot be recomputed, and a chunk recomputed
        later would wait on it forever), or, all zeros (a cold start), made there (nothing
        sent)."""
        out = "tasks" if a.ndim == 1 else ("coef", a.shape[:-1])
        if not a.any():
            return self.blockwise(_zero_columns, list(a.shape[:-1]), out=out)
        return self.blockwise(_columns, a, out=out)

    def numbers(self, *values) -> tuple[float, ...]:
        """Scalars (0-d Dask arrays or numbers) as floats, computed in one round trip."""
        dask, _ = _dask()
        with self.pinned():
            return tuple(float(v) for v in dask.compute(*values))

    def arrays(self, *values) -> tuple[np.ndarray, ...]:
        """Small arrays (per task, per coefficient) as NumPy arrays, in one round trip."""
        dask, _ = _dask()
        with self.pinned():
            return tuple(np.asarray(v) for v in dask.compute(*values))

    def memo(self, key, make):
        """``make()``, computed at the first call with ``key`` and kept with the problem (on
        the client: a Gram form's blocks stay on the workers)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def keep(self, cls, *args, several: bool = True) -> KeptOnWorkers | None:
        """``cls(*pieces)`` built on every worker that holds blocks, from its blocks' parts of
        the arguments (a list, in block order, of each :class:`Blocks` and of each array
        chunked by blocks; other arguments as they are), and kept there as a Dask actor: its
        methods then run where the blocks are, called from here directly (no scheduler task,
        no graph: about 2 ms a call on a local cluster, against about 4 ms per scheduled
        task). None without a distributed client, while a block's holder is unknown, or
        where there would be several objects and not ``several``."""
        from distributed import futures_of, get_client

        try:
            client = get_client()
        except ValueError:
            return None
        holders = self._block_workers()
        if holders is None or not all(holders):
            return None
        order = list(dict.fromkeys(holders))  # the workers, in the order of their first block
        if len(order) > 1 and not several:
            return None
        args = [self.settle(self._aligned(a))[0] if hasattr(a, "__dask_graph__")
                and hasattr(a, "chunks") else a for a in args]
        owned = {f.key: f for a in args if hasattr(a, "__dask_graph__")
                 for f in futures_of(a)}
        owned.update({f.key: f for a in args if isinstance(a, Blocks) for item in a.items
                      for f in futures_of(item)})

        def pieces(arg, ks):
            if isinstance(arg, Blocks) or (hasattr(arg, "__dask_graph__")
                                           and hasattr(arg, "chunks")):
                return [owned[self._key(arg, k)] for k in ks]
            return arg

        made, held = [], []
        for addr in order:
            ks = [k for k, h in enumerate(holders) if h == addr]
            held.append(ks)
            made.append(client.submit(cls, *[pieces(a, ks) for a in args], actor=True,
                                      workers=[addr], allow_other_workers=False, pure=False))
        return KeptOnWorkers(made, [f.result() for f in made], held, order,
                             lambda: self._cache.pop("workers", None))

    def pinned(self):
        """A context in which every task submitted for chunk k of an array chunked by blocks
        (its key ends with k) runs on the worker that holds block k's rows, where its inputs
        are: without it the scheduler places an elementwise step on W's columns wherever its
        inputs' sizes tie and moves the chunks (about a third of W per iteration, measured on
        5 blocks and 2 workers). A preference (``allow_other_workers``): a lost worker's
        blocks are recomputed elsewhere as usual. Without a distributed client, no-op."""
        dask, _ = _dask()
        workers = self._block_workers()
        if workers is None:
            return contextlib.nullcontext()
        return dask.annotate(workers=_BlockPlacement(workers), allow_other_workers=True)

    def _block_workers(self) -> tuple[str, ...] | None:
        """The address of a worker holding each block (asked once; None without a
        distributed client)."""
        if "workers" not in self._cache:
            try:
                from distributed import futures_of, get_client, wait

                client = get_client()
            except (ImportError, ValueError):
                return None
            futures = [futures_of(b) for b in self.blocks]
            if not all(futures):
                return None
            wait([f[0] for f in futures])  # (a block still being built has no holder yet)
            who = client.who_has([f[0] for f in futures])
            addrs = [sorted(who.get(f[0].key, ()))[:1] for f in futures]
            self._cache["workers"] = tuple(a[0] if a else "" for a in addrs)
        return self._cache["workers"]

    # ------------------------------------------------------------------ the protocol
    @property
    def y(self):
        if "y" not in self._cache:
            self._cache["y"] = self.settle(self.blockwise(_attr, "y", out="rows"))[0]
        return self._cache["y"]

    @property
    def c(self):
        if "c" not in self._cache:
            self._cache["c"] = self.settle(self.blockwise(_attr, "c", out="rows"))[0]
        return self._cache["c"]

    def linear(self, W, b=None):
        """Scores ``x_r . w_t + b_t`` per row (a Dask array chunked by block)."""
        return self.blockwise(_linear, W, b, out="rows")

    def adjoint(self, u):
        """``G[:, t] = X_t^T u_t`` (p x T, chunked by block)."""
        return self.blockwise(_adjoint, u, out=("coef", self.n_features))

    def task_sums(self, u):
        return self.blockwise(_task_sums, u, out="tasks")

    def per_row(self, v):
        """A value per task (or one number) as a value per row."""
        if np.ndim(v) == 0:
            return v
        return self.blockwise(_per_row, v, out="rows")

    def row_zeros(self):
        return self.blockwise(_zeros, out="rows")

    def feature_means(self):
        """Per-task weighted feature means (p x T), computed once and kept on the workers:
        lazy, every graph that reads them would sum the blocks again (each fused branch on
        its own: 660 block sums an iteration, measured on a multinomial FISTA fit)."""
        return self.memo("feature_means", lambda: self.settle(
            self.adjoint(self.c) / self.task_sums(self.c))[0])

    def effective_sizes(self) -> np.ndarray:
        return np.asarray(self.blockwise(_effective_sizes, out="tasks"))

    def encode_binary(self) -> DaskTaskData:  # labels are encoded on the blocks as they form
        return self


class Blocks:
    """Per-block objects kept on the workers (Delayed), e.g. the blocks' task quadratics;
    ``data`` the :class:`DaskTaskData` whose blocks they follow."""

    def __init__(self, items, data=None):
        self.items, self.data = list(items), data


class KeptOnWorkers:
    """Objects kept on the workers as Dask actors (:meth:`DaskTaskData.keep`), one per
    worker, each holding the blocks of :attr:`blocks`: :meth:`call` runs a method on each at
    once and waits for every result (one round trip).

    An actor lives only on its worker: when that worker dies (a killed process, a lost
    node), its state is gone and no recomputation brings it back. :meth:`call` then raises
    :class:`~regmtl.blocks.HolderLost` naming the workers lost, after making the problem
    forget where its blocks were (the scheduler recomputes them on the survivors from their
    graph when they are next asked for), so that the solver can keep its objects anew."""

    #: seconds to wait, after a failed call, for the scheduler to see a worker gone
    LOSS_WAIT = 30.0

    def __init__(self, futures: list, actors: list, blocks: list, workers: list | None = None,
                 forget: Any = None):
        self.futures, self.actors = futures, actors
        #: the blocks each actor holds, by index (a worker's blocks need not be consecutive)
        self.blocks = blocks
        #: the address of each actor's worker
        self.workers = list(workers or [])
        self._forget = forget

    def __len__(self) -> int:
        return len(self.actors)

    def call(self, name: str, *args: Any) -> list:
        """``obj.name(*args)`` on every worker, in order; :class:`~regmtl.blocks.HolderLost`
        where a worker holding one is gone."""
        return self.call_each(name, [args] * len(self.actors))

    def call_each(self, name: str, args: list) -> list:
        """``obj.name(*args[i])`` on the i-th worker (each its own arguments), in order; as
        :meth:`call`."""
        from .blocks import HolderLost

        try:
            pending = [getattr(actor, name)(*a)
                       for actor, a in zip(self.actors, args, strict=True)]
            return [p.result() for p in pending]
        except Exception as exc:  # noqa: BLE001 - distributed's errors of a lost worker vary
            # (an actor's worker gone: "Unable to contact Actor's worker" (OSError), "Worker
            # holding Actor was lost" (ValueError); an error of the method itself is raised)
            lost = self._lost() if isinstance(exc, OSError) or "Actor" in str(exc) else []
            if not lost:
                raise
            if self._forget is not None:
                self._forget()
            raise HolderLost(lost) from exc

    def call_alive(self, name: str, *args: Any) -> list:
        """``obj.name(*args)`` on every worker still alive, in order; None for a worker gone
        (or whose call fails as a lost one's does)."""
        alive = self._alive()
        out = []
        for actor, worker in zip(self.actors, self.workers, strict=True):
            if alive is not None and worker not in alive:
                out.append(None)
                continue
            try:
                out.append(getattr(actor, name)(*args).result())
            except Exception:  # noqa: BLE001 - a worker gone since: its objects with it
                out.append(None)
        return out

    def _alive(self) -> set[str] | None:
        """The addresses of the workers the scheduler has (None where it cannot tell)."""
        from distributed import get_client

        try:
            client = get_client()
            try:
                info = client.scheduler_info(n_workers=-1)
            except TypeError:  # (distributed before 2025: every worker by default)
                info = client.scheduler_info()
        except Exception:  # noqa: BLE001 - no client, or the scheduler unreachable
            return None
        return set(info["workers"])

    def _lost(self) -> list[str]:
        """The actors' workers the scheduler no longer has (waiting up to
        :attr:`LOSS_WAIT` seconds for it to see a dead one go)."""
        import time

        deadline = time.monotonic() + self.LOSS_WAIT
        while True:
            alive = self._alive()
            if alive is None:  # (the scheduler unreachable: nothing to tell)
                return []
            lost = [w for w in self.workers if w not in alive]
            if lost or time.monotonic() > deadline:
                return lost
            time.sleep(0.1)

    def close(self) -> None:
        """Release the actors (their state leaves the workers' memory)."""
        for f in self.futures:
            with contextlib.suppress(Exception):  # (an actor of a lost worker)
                f.release()
        self.futures, self.actors = [], []


class _BlockPlacement:
    """The workers annotation of :meth:`DaskTaskData.pinned`: a key ``(..., k)`` goes to the
    worker of block k; any other key anywhere."""

    def __init__(self, workers: tuple[str, ...]):
        self.workers = workers

    def __call__(self, key) -> list[str]:
        k = key[-1] if isinstance(key, tuple) and key else None
        if isinstance(k, int) and 0 <= k < len(self.workers) and self.workers[k]:
            return [self.workers[k]]
        return []


def _call(fn, block, n_out, *pieces):
    res = fn(block, *pieces)
    return res if n_out > 1 else (res,)


def _call_one(fn, block, scalar, *pieces):
    res = fn(block, *pieces)
    return np.atleast_1d(np.asarray(res, dtype=np.float64)) if scalar else res


def _item(res, i):
    return res[i]


def _item_scalar(res, i):
    return np.atleast_1d(np.asarray(res[i], dtype=np.float64))


class _Graph:
    """A bare graph as a Dask collection (a dependency of the layers built on it)."""

    def __init__(self, graph):
        self.graph = graph

    def __dask_graph__(self):
        return self.graph

    def __dask_layers__(self):
        return tuple(self.graph.layers)


def _columns(block, a):
    return np.array(a, dtype=np.float64)


def _zero_columns(block, lead: list):
    return np.zeros((*lead, block.n_tasks))


def _attr(block, name):
    return np.asarray(getattr(block, name), dtype=np.float64)


def _linear(block, W, b):
    return block.linear(W, b)


def _adjoint(block, u):
    return block.adjoint(u)


def _task_sums(block, u):
    return block.task_sums(u)


def _per_row(block, v):
    return np.asarray(v, dtype=np.float64)[block.task_of]


def _zeros(block):
    return np.zeros(block.n_obs)


def _effective_sizes(block):
    return block.effective_sizes()


# ----------------------------------------------------------------------------- predict side
def predict_scores(X: Any, task: Any, W: np.ndarray, b: np.ndarray, tasks: np.ndarray, *,
                   post=None, blocks: tuple[int, ...] | None = None):
    """Lazy results per row of Dask input, in its row order, partition by partition (no
    shuffle, nothing computed now): the scores ``x_r . w_t + b_t``, or ``post(scores, task
    positions)`` (labels, probabilities). The coefficients go once to each worker. A Dask
    array chunked like X (chunks of unknown length for a DataFrame whose partition lengths
    Dask does not know: ``compute_chunk_sizes()`` finds them). Unknown task ids raise when
    computed, naming the task. ``blocks``: the feature blocks of a ``MultiSource`` model,
    whose sources missing in a row (NaN over the block) count as zeros where the row's task
    does not use them, as in memory."""
    dask, da = _dask()
    parts, _ = _partitions(X, None, task, None, "y")
    model = _model(dask, W, b, tasks)
    post = post if blocks is None else _MissingSources(tuple(blocks), post)
    lengths = X.chunks[0] if hasattr(X, "chunks") else (np.nan,) * len(parts)
    probe = post(np.zeros(1), np.zeros(1, dtype=np.int64)) if post is not None else np.zeros(1)
    arrays = [da.from_delayed(dask.delayed(_scores, pure=True)(p, *model, post),
                              (n,) + probe.shape[1:], dtype=probe.dtype)
              for p, n in zip(parts, lengths, strict=True)]
    return da.concatenate(arrays) if len(arrays) > 1 else arrays[0]


def _model(dask, W, b, tasks) -> tuple:
    """The fitted model as Delayed values, sent once to each worker that needs it."""
    return (dask.delayed(np.ascontiguousarray(W.T), pure=True),
            dask.delayed(np.asarray(b, dtype=np.float64), pure=True),
            dask.delayed(np.asarray(tasks, dtype=object), pure=True))


def _scores(piece, coef, inter, labels, post):
    X, _, task, _ = piece
    codes = pd.Index(labels).get_indexer(task)
    if len(codes) and codes.min() < 0:
        bad = task[np.flatnonzero(codes < 0)[0]]
        known = ", ".join(repr(t) for t in labels[:10]) + (" ..." if len(labels) > 10 else "")
        raise ValueError(
            f"task: unknown task {bad!r}; the model was fitted on tasks {known}. Predict only "
            "for tasks the model was fitted on."
        )
    if X.shape[1] != coef.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features, but the model was fitted with {coef.shape[1]}."
        )
    if isinstance(post, _MissingSources):
        X, post = post.fill(X, coef[codes]), post.post
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity; impute or drop those rows first.")
    f = np.einsum("ij,ij->i", X, coef[codes]) + inter[codes]
    return f if post is None else post(f, codes)


class _MissingSources:
    """The feature blocks of a ``MultiSource`` model, carried with the scores' ``post``: a
    source missing in a row (NaN in all its columns) is read as zeros where the row's task
    does not use it (its coefficients there are 0, as for a source that task never had)."""

    def __init__(self, blocks: tuple[int, ...], post):
        self.edges = np.concatenate(([0], np.cumsum(blocks)))
        self.post = post

    def __call__(self, f, codes):  # (the probe of predict_scores)
        return f if self.post is None else self.post(f, codes)

    def fill(self, X: np.ndarray, coef: np.ndarray) -> np.ndarray:
        nan = np.isnan(X)
        if not nan.any():
            return X
        for a, b in zip(self.edges[:-1], self.edges[1:], strict=True):
            whole = nan[:, a:b].all(axis=1)
            if (nan[:, a:b].any(axis=1) & ~whole).any():
                raise ValueError(
                    f"X: block (columns {a} to {b - 1}) holds NaN inside an observed source; "
                    "only a whole source may be missing (NaN in all its columns): impute "
                    "those values or drop those rows.")
            if (whole & np.any(coef[:, a:b] != 0, axis=1)).any():
                raise ValueError(
                    f"X: block (columns {a} to {b - 1}) is missing in a row whose task's "
                    "fitted model uses that source (it was observed when fitting): give its "
                    "values.")
        return np.where(nan, 0.0, X)


def task_score(X: Any, y: Any, task: Any, W: np.ndarray, b: np.ndarray, tasks: np.ndarray,
               kind: str, *, sample_weight: Any = None, post=None):
    r"""The mean over the tasks present in the rows of each task's R^2 (``kind="r2"``, ``post``
    giving the scores and task positions) or accuracy (``"accuracy"``, ``post`` the labels and
    positions), lazily, as the in-memory ``score`` on the same rows: tasks without rows are not
    averaged, a task with fewer than two rows scores NaN (scikit-learn's ``r2_score``), a task
    whose rows all weigh zero is an error. A 0-d Dask array.

    One pass over the input's partitions (X, y, task and the weights joined, as for a fit)
    gives per-task summaries (a few numbers per task and partition), merged in a tree. R^2 is
    ``1 - sum w (y - f)^2 / sum w (y - ybar)^2``; the total sum of squares is merged stably,
    never as ``sum w y^2 - (sum w y)^2 / sum w`` (which cancels for y far from zero): each
    partition centers its rows on its own per-task mean ``H + L`` (``H`` the plain mean, ``L``
    the mean of ``y - H``, so that ``y - H`` is exact), and two parts merge by Chan et al.'s
    update ``M2 = M2_a + M2_b + delta^2 s_a s_b / (s_a + s_b)``, ``delta`` the difference of
    their means taken as ``(H_b - H_a) + (L_b - L_a)`` (exact for means of one magnitude)."""
    dask, da = _dask()
    if kind not in ("r2", "accuracy"):
        raise ValueError(f"kind={kind!r}: expected 'r2' or 'accuracy'.")
    if not is_dask_collection(y):
        raise TypeError("y: X is a Dask collection, so y must be one too (a Dask Series or "
                        f"array), got {type(y).__name__}.")
    parts, _ = _partitions(X, y, task, sample_weight, "y")
    model = _model(dask, W, b, tasks)
    sums = [dask.delayed(_score_part, pure=True)(p, *model, post, len(tasks), kind)
            for p in parts]
    total = _tree(dask, _merge_r2 if kind == "r2" else _add, sums)
    return da.from_delayed(dask.delayed(_finish_score, pure=True)(total, kind, model[2]), (),
                           dtype=np.float64)


def _score_part(piece, coef, inter, labels, post, n_tasks, kind):
    return _task_sums_part(_scores(piece, coef, inter, labels, post), piece[1], piece[3],
                           n_tasks, kind)


def _task_sums_part(pred, y, w, n_tasks, kind):
    """One partition's per-task summaries, rows of a ``(k, T)`` array: for ``"r2"`` the rows,
    the rows of positive weight, ``s = sum w``, the mean ``H + L``, ``M2 = sum w (y - H -
    L)^2`` and ``sum w (y - f)^2``; for ``"accuracy"`` the rows, ``sum w`` and ``sum w hit``."""
    codes = np.asarray(pred[:, 1]).astype(np.int64)
    n = len(codes)
    if w is None:
        w = np.ones(n)
    else:
        w = np.asarray(w, dtype=np.float64)
        if not np.all(np.isfinite(w)):
            raise ValueError("sample_weight contains NaN or infinity; give every row a finite "
                             "weight >= 0.")
        if np.any(w < 0):
            raise ValueError("sample_weight has negative entries; weights must be >= 0.")
    if pd.isna(np.asarray(y)).any():
        raise ValueError("y contains NaN (a missing label); drop those rows before scoring.")

    def per_task(v):
        return np.bincount(codes, weights=v, minlength=n_tasks)

    rows = np.bincount(codes, minlength=n_tasks).astype(np.float64)
    s = per_task(w)
    if kind == "accuracy":
        hit = np.fromiter((a == b for a, b in zip(np.asarray(y).tolist(),
                                                  pred[:, 0].tolist(), strict=True)),
                          dtype=bool, count=n)
        return np.stack([rows, s, per_task(w * hit)])
    f, yv = np.asarray(pred[:, 0], dtype=np.float64), np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(yv)):
        raise ValueError("y contains infinity; every target must be finite.")
    safe = np.where(s > 0, s, 1.0)
    H = np.where(s > 0, per_task(w * yv) / safe, 0.0)
    d = yv - H[codes]
    L = np.where(s > 0, per_task(w * d) / safe, 0.0)
    d -= L[codes]
    return np.stack([rows, per_task((w > 0).astype(np.float64)), s, H, L, per_task(w * d * d),
                     per_task(w * (yv - f) ** 2)])


def _merge_r2(*parts):
    """Per-task R^2 summaries of several partitions merged (Chan et al.'s parallel update of
    the weighted mean and centered sum of squares, see :func:`task_score`)."""
    out = parts[0]
    for nxt in parts[1:]:
        ra, pa, sa, Ha, La, Ma, Ea = out
        rb, pb, sb, Hb, Lb, Mb, Eb = nxt
        s = sa + sb
        frac = np.where(s > 0, sb / np.where(s > 0, s, 1.0), 0.0)
        both = (sa > 0) & (sb > 0)
        delta = np.where(both, (Hb - Ha) + (Lb - La), 0.0)
        out = np.stack([ra + rb, pa + pb, s, np.where(sa > 0, Ha, Hb),
                        np.where(sa > 0, La + delta * frac, Lb),
                        Ma + Mb + delta * delta * sa * frac, Ea + Eb])
    return out


def _add(*parts):
    return sum(parts[1:], parts[0])


def _finish_score(S, kind, labels):
    """The mean over the tasks with rows of each task's score (see :func:`task_score`)."""
    rows, s = S[0], S[2] if kind == "r2" else S[1]
    present = np.flatnonzero(rows > 0)
    if not len(present):
        raise ValueError("X has no rows to score; pass at least one row of a fitted task.")
    zero = present[s[present] <= 0]
    if len(zero):
        raise ValueError(
            f"sample_weight: task {labels[zero[0]]!r} has zero total weight; give every task "
            "at least one sample with a positive weight."
        )
    if kind == "accuracy":
        return np.float64(np.mean(S[2][present] / s[present]))
    pos, M2, res = S[1], S[5], S[6]
    tot = np.where(pos >= 2, np.maximum(M2, 0.0), 0.0)  # one weighted row: no spread
    with np.errstate(divide="ignore", invalid="ignore"):  # as r2_score: 1 or 0 if constant
        r2 = np.where(tot > 0, 1.0 - res / tot, np.where(res == 0, 1.0, 0.0))
    if np.any(rows[present] < 2):  # fewer than two samples: scikit-learn's warning and NaN
        import warnings

        from sklearn.exceptions import UndefinedMetricWarning

        warnings.warn("R^2 score is not well-defined with less than two samples.",
                      UndefinedMetricWarning, stacklevel=2)
        r2 = np.where(rows < 2, np.nan, r2)
    return np.float64(np.mean(r2[present]))
