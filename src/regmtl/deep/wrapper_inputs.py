r"""What the scikit-learn wrappers read besides tables: images, sparse bags of words, token
ids and raw texts, and the trunk that reads each.

=========  =====================================================  ==========================
kind       given (one design, or one per task)                    read by
=========  =====================================================  ==========================
table      2-D array or DataFrame (``regmtl.deep.frames``)        the MLP (and embeddings)
images     array or tensor of rank >= 3: (n, H, W), (n, C, H, W)  :class:`ConvTrunk`
           (more leading axes are channels: (n, A, C, H, W)
           has A * C channels)
sparse     SciPy sparse matrix (n, V) of counts or weights        :class:`TextTrunk` (bag
                                                                  of words, no densifying)
tokens     integer array (n, L), ids padded with ``padding_idx``  :class:`TextTrunk` (ids)
           (declared: ``input_kind="tokens"``)
text       1-D array, list or Series of str                       the built-in tokenizer
                                                                  (``regmtl.deep.tokenizer``)
                                                                  then :class:`TextTrunk`
=========  =====================================================  ==========================

``input_kind="auto"`` reads rank >= 3 as images, a sparse matrix as a bag of words, strings as
texts and anything else as a table (an integer table is a table: token ids are declared). The
task forms are those of the tables: each design of a list or dict is one task's, and a single
design goes with a ``task`` array or a 2-D ``y``. The rows are routed through
:func:`regmtl.as_task_data` as a one-column design of row numbers (:func:`row_numbers`), so
the long form's grouping and the shared form's missing labels are those of the tables; the
net then reads the rows those numbers select (:func:`take_inputs`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..inputs import as_task_data
from ..taskdata import TaskData
from ._torch import torch
from .conversion import find_stack_level
from .inputs import SparseRows, tensor_of
from .tokenizer import Tokenizer
from .trunks import ConvTrunk, TextTrunk

__all__ = ["INPUT_KINDS", "TRUNK_KINDS", "RowInputs", "TrunkInputs", "as_images", "kind_of",
           "row_numbers", "take_inputs"]

INPUT_KINDS = ("auto", "table", "images", "sparse", "tokens", "text")
#: the kinds a trunk reads (not the MLP)
TRUNK_KINDS = ("images", "sparse", "tokens", "text")
#: the options of ``trunk`` each kind takes (the wrapper sets the rest from the data)
TRUNK_OPTIONS = {
    "images": ("channels", "kernel_size", "out_features", "dropout", "batch_norm", "pool"),
    "sparse": ("dim", "mode", "out_features", "dropout", "oov_rate"),
    "tokens": ("dim", "mode", "conv", "out_features", "dropout", "oov_rate", "padding_idx"),
    "text": ("dim", "mode", "conv", "out_features", "dropout", "oov_rate"),
}


def designs_of(X: Any) -> list | None:
    """The per-task designs of a list or dict form (None for one design): a dict, or a list
    or tuple whose entries are arrays, tensors, sparse matrices, frames or lists of str."""
    if sp.issparse(X) or isinstance(X, str):
        return None
    if isinstance(X, Mapping):
        return list(X.values())
    if isinstance(X, (list, tuple)) and len(X) and all(
            isinstance(x, (np.ndarray, torch.Tensor, pd.DataFrame, pd.Series))
            or sp.issparse(x) or (isinstance(x, (list, tuple)) and len(x)
                                  and all(isinstance(s, str) for s in x))
            for x in X):
        if all(isinstance(x, np.ndarray) and x.ndim <= 1 and x.dtype.kind not in "UO"
               for x in X):
            return None  # rows of numbers given as arrays: one table
        return list(X)
    return None


def _is_text(x: Any) -> bool:
    """One string per row (some rows may be missing: refused later, naming the row)."""
    if isinstance(x, (list, tuple)):
        return any(isinstance(s, str) for s in x) and not any(
            isinstance(s, (list, tuple, np.ndarray)) for s in x)
    if isinstance(x, pd.Series):
        return x.dtype.kind == "O" or isinstance(x.dtype, pd.StringDtype)
    return isinstance(x, np.ndarray) and x.ndim == 1 and (
        x.dtype.kind == "U" or (x.dtype.kind == "O" and any(isinstance(s, str) for s in x)))


def _is_bytes(x: Any) -> bool:
    """One bytes string per row (texts not yet decoded)."""
    if isinstance(x, (list, tuple)):
        return any(isinstance(s, bytes) for s in x)
    if isinstance(x, pd.Series):
        x = x.to_numpy()
    return isinstance(x, np.ndarray) and x.ndim == 1 and (
        x.dtype.kind == "S" or (x.dtype.kind == "O" and any(isinstance(s, bytes) for s in x)))


def kind_of_design(x: Any, what: str = "X") -> str:
    """The kind of one design (``"table"``, ``"images"``, ``"sparse"`` or ``"text"``).

    Raises
    ------
    ValueError
        For a 2-D array of strings and a ragged list, naming ``what`` and the forms read.
    """
    if sp.issparse(x):
        return "sparse"
    if isinstance(x, torch.Tensor):
        return "images" if x.ndim >= 3 else "table"
    if isinstance(x, pd.DataFrame):
        return "table"
    if _is_text(x):
        return "text"
    if _is_bytes(x):
        raise ValueError(f"{what} holds bytes; the wrappers read texts as str. Decode them "
                         "first, e.g. [b.decode('utf-8') for b in X].")
    if isinstance(x, np.ndarray):
        arr = x
    elif isinstance(x, (list, tuple)):
        try:
            arr = np.asarray(x)
        except ValueError:
            raise ValueError(
                f"{what} is a ragged list (rows of different lengths); the wrappers read one "
                "row per sample of one shape. Pad token ids to one length (e.g. with 0) and "
                "pass input_kind='tokens', give texts as one string per row (a 1-D list of "
                "str), or images of one shape.") from None
    else:
        return "table"
    if arr.ndim == 2 and (arr.dtype.kind in "US" or (
            arr.dtype.kind == "O" and arr.size and isinstance(arr.flat[0], str))):
        raise ValueError(
            f"{what} is a 2-D array of strings {arr.shape}; the wrappers read texts as one "
            "string per row (a 1-D array, list or Series of str: the built-in tokenizer), and "
            "string columns of a table through a DataFrame (pd.DataFrame(X), each column "
            "read as categories; categorical_features names them).")
    return "images" if arr.ndim >= 3 else "table"


def kind_of(X: Any, declared: str) -> str:
    """The kind of the designs ``X`` (one, or a list or dict per task): the ``declared`` one
    (``input_kind``), checked against the data, or the one found (``"auto"``)."""
    parts = designs_of(X)
    named = [("X", X)] if parts is None else [
        (f"X[{k!r}]", x) for k, x in zip(X if isinstance(X, Mapping) else range(len(parts)),
                                         parts, strict=True)]
    found = {kind_of_design(x, w) for w, x in named}
    if len(found) > 1:
        hint = ("" if not isinstance(X, Mapping) else " If the keys name inputs of the same "
                "rows (an image and a text of each sample), not tasks, give X as "
                "regmtl.deep.Modalities(**X), with task=... or a 2-D y.")
        raise ValueError(f"X mixes kinds of input across tasks ({sorted(found)}); give every "
                         f"task's design in one kind (all tables, all images, ...).{hint}")
    kind = found.pop()
    if declared == "auto" or declared == kind:
        return kind
    if declared == "tokens":
        for w, x in named:
            if isinstance(x, torch.Tensor):  # its dtype read where it lies, not copied
                ids = not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)
                ndim = x.ndim
            else:
                arr = None if sp.issparse(x) else np.asarray(x)
                ids = arr is not None and arr.dtype.kind in "iu"
                ndim = x.ndim if arr is None else arr.ndim
            if not ids or ndim != 2:
                raise ValueError(
                    f"input_kind='tokens' reads integer token ids of shape (n, length), "
                    f"padded; {w} is {_described(x)}. Pass the ids as an integer array, texts "
                    "as strings (input_kind='text'), or a bag of words as a sparse matrix.")
        return "tokens"
    if declared == "table" and kind in ("table", "sparse"):
        return "table"  # (a sparse table is refused by the table's own check, naming it)
    raise ValueError(f"input_kind={declared!r}, but X is {_described(named[0][1])} (read as "
                     f"{kind!r}); pass input_kind='auto' or {kind!r}, or give X as "
                     f"{_FORMS[declared]}.")


_FORMS = {"table": "a 2-D array or DataFrame", "images": "an array of rank >= 3 "
          "(n, H, W) or (n, C, H, W)", "sparse": "a SciPy sparse matrix",
          "text": "a 1-D array or list of str", "tokens": "an integer array (n, length)"}


def _described(x: Any) -> str:
    if sp.issparse(x):
        return f"a sparse matrix {x.shape}"
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return f"an array of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"a {type(x).__name__}"


def _texts(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x.to_numpy() if isinstance(x, pd.Series) else x, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"{what}: texts are one string per row (1-D); got shape {arr.shape}.")
    bad = [i for i, s in enumerate(arr) if not isinstance(s, str)]
    if bad:
        raise ValueError(f"{what}: row {bad[0]} is {arr[bad[0]]!r:.40}, not a string; every "
                         "row of a text input is a str (fill missing texts with '').")
    return arr


def as_images(x: Any, what: str) -> Any:
    """Images as (n, C, H, W): (n, H, W) gets one channel, extra leading axes are channels."""
    t = x if isinstance(x, torch.Tensor) else np.asarray(x)
    if isinstance(t, torch.Tensor):
        numbers = not (t.dtype == torch.bool or t.is_complex())
    else:
        numbers = t.dtype.kind in "iuf"
    if not numbers:
        raise ValueError(f"{what}: images of dtype {t.dtype}; the conv trunk reads float "
                         "pixels or 8-bit integers 0..255.")
    n, (H, W) = t.shape[0], t.shape[-2:]
    if 0 in tuple(t.shape[1:]):
        raise ValueError(f"{what}: images of shape {tuple(t.shape[1:])} hold no pixels; give "
                         "images of at least one channel, row and column.")
    return t.reshape(n, int(np.prod(t.shape[1:-2])), H, W)  # (n = 0: refused by the caller)


def _tokens(x: Any, what: str) -> np.ndarray:
    return np.asarray(x.cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.int64)


def _stack(parts: list, kind: str, padding: int) -> Any:
    if len(parts) == 1:
        return parts[0]
    if kind == "sparse":
        return sp.vstack(parts, format="csr")
    if kind == "text":
        return np.concatenate(parts)
    if kind == "tokens":  # each task's ids padded to the longest
        L = max(p.shape[1] for p in parts)
        return np.concatenate([np.pad(p, ((0, 0), (0, L - p.shape[1])), constant_values=padding)
                               for p in parts])
    if any(isinstance(p, torch.Tensor) for p in parts):
        return torch.cat([p.cpu() if isinstance(p, torch.Tensor) else tensor_of(np.asarray(p))
                          for p in parts])
    return np.concatenate(parts)


class RowInputs:
    """The rows of every task's design, stacked in task order, in the form the trunk reads.

    Parameters
    ----------
    X : design, or list or dict of designs
        The wrappers' ``X``.
    kind : str
        One of :data:`TRUNK_KINDS`.
    padding : int, default=0
        The padding id of token ids (where tasks' ids of different lengths are stacked).

    Attributes
    ----------
    rows : array, tensor or CSR matrix
        Images (n, C, H, W), a CSR bag of words, int64 token ids, or an object array of str.
    index : ndarray, or list or dict of them
        ``X`` with each design replaced by its rows' numbers in ``rows``, (n_t, 1) floats:
        what :func:`regmtl.as_task_data` groups and orders.
    """

    def __init__(self, X: Any, kind: str, padding: int = 0):
        parts = designs_of(X)
        keys = None
        if parts is None:
            named = [("X", X)]
        else:
            keys = list(X) if isinstance(X, Mapping) else None
            named = [(f"X[{k!r}]", x) for k, x in zip(keys or range(len(parts)), parts,
                                                       strict=True)]
        convert = {"images": as_images, "text": _texts, "tokens": _tokens,
                   "sparse": lambda x, w: sp.csr_matrix(x)}[kind]
        blocks = [convert(x, w) for w, x in named]
        for (w, _), b in zip(named, blocks, strict=True):
            if b.shape[0] == 0:
                raise ValueError(f"{w} has no rows: every task needs at least one sample.")
        if kind == "images" and len({tuple(b.shape[1:]) for b in blocks}) > 1:
            raise ValueError(f"X: the tasks' images have different shapes "
                             f"{sorted({tuple(b.shape[1:]) for b in blocks})}; give every "
                             "task images of one shape (C, H, W).")
        if kind == "sparse" and len({b.shape[1] for b in blocks}) > 1:
            raise ValueError("X: the tasks' sparse matrices have different numbers of columns; "
                             "give every task the same vocabulary (columns).")
        self.kind = kind
        self.rows = _stack(blocks, kind, padding)
        sizes = np.cumsum([0] + [b.shape[0] for b in blocks])
        index = [np.arange(a, b, dtype=np.float64)[:, None]
                 for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        self.index = (index[0] if parts is None else dict(zip(keys, index, strict=True))
                      if keys is not None else index)

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def row_numbers(X: np.ndarray) -> np.ndarray:
    """The row numbers of a routed design (its one column) as int64."""
    return np.asarray(X, dtype=np.float64)[:, 0].astype(np.int64)


def take_inputs(rows: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of stacked inputs (the same object when ``idx`` is every row in order;
    a dict of them, as :meth:`~regmtl.deep.Modalities.carried` gives, entry by entry)."""
    if isinstance(rows, Mapping):
        return {k: take_inputs(v, idx) for k, v in rows.items()}
    if len(idx) == rows.shape[0] and np.array_equal(idx, np.arange(len(idx))):
        return rows
    if isinstance(rows, torch.Tensor):
        return rows[torch.from_numpy(idx).to(rows.device)]
    if isinstance(rows, SparseRows):
        return rows.subset(idx)
    return rows[idx]


class TrunkInputs:
    """What the scikit-learn wrappers do to inputs a trunk reads: the rows routed by their
    numbers, the fitted kind and size, the trunk (mixed into the wrappers)."""

    def _trunk_data(self, X, y, task, kind: str, fitting: bool) -> TaskData:
        """The task data of images, a bag of words, token ids or texts
        (``regmtl.deep.wrapper_inputs``): the rows routed through ``as_task_data`` by their
        numbers, the net's input in ``row_inputs``."""
        if isinstance(task, str):
            raise ValueError(f"task={task!r} names a DataFrame column, but X is {kind} input; "
                             "pass the task ids themselves (one per row), or one design per "
                             "task (a list or dict).")
        if fitting and not isinstance(self.categorical_features, str) \
                and list(self.categorical_features):
            raise ValueError(f"categorical_features={list(self.categorical_features)[:5]!r} "
                             f"names DataFrame columns, but X is {kind} input; leave "
                             "categorical_features='from_dtype'.")
        rows = RowInputs(X, kind, self._trunk_options(kind).get("padding_idx", 0) or 0)
        if fitting:
            self._learn_inputs(rows)
        else:
            self._check_inputs(rows)
        data = as_task_data(
            rows.index, y, task, tasks=None if fitting else self.tasks_,
            check_x=lambda Z, reset: Z, numeric_y=self._kind == "regression",
            require_y=y is not None or fitting, reset=fitting,
            single=False if fitting else self.input_form_ == "single",
        )
        data.row_inputs = (self.tokenizer_.transform(rows.rows) if kind == "text"
                           else rows.rows)
        return data

    def _learn_inputs(self, rows: RowInputs) -> None:
        """The fitted input's kind and size (and the texts' vocabulary)."""
        for attr in ("categories_", "feature_names_in_", "x_mean_", "x_scale_", "tokenizer_"):
            self.__dict__.pop(attr, None)
        kind, x = rows.kind, rows.rows
        self.input_kind_ = kind
        if kind == "images":
            self.input_size_ = [int(v) for v in x.shape[1:]]
            self.n_features_in_ = int(np.prod(self.input_size_))
        elif kind == "sparse":
            self.input_size_ = [int(x.shape[1])]
            self.n_features_in_ = int(x.shape[1])
        elif kind == "tokens":
            self.input_size_ = [max(int(x.max()) + 1 if x.size else 1, 1)]
            self.n_features_in_ = int(x.shape[1])
        else:
            self.tokenizer_ = Tokenizer.from_options(self.tokenizer).fit(x)
            self.input_size_ = [self.tokenizer_.n_ids]
            self.n_features_in_ = 1

    def _check_inputs(self, rows: RowInputs) -> None:
        """Refuse, naming it, an input of another shape than the fit's."""
        x, size = rows.rows, self.input_size_
        if rows.kind == "images" and list(x.shape[1:]) != size:
            raise ValueError(
                f"X holds images of shape {tuple(x.shape[1:])} (channels, height, width), but "
                f"the estimator was fitted on {tuple(size)}; give images of the fitted shape "
                "(resize or crop them first).")
        if rows.kind == "sparse" and x.shape[1] != size[0]:
            raise ValueError(f"X has {x.shape[1]} columns (words), but the estimator was "
                             f"fitted on {size[0]}; give the bag of words over the fitted "
                             "vocabulary.")

    def _warn_unused_options(self, kind: str) -> None:
        """Warn that ``trunk`` (a table) or ``tokenizer`` (not texts) has no effect."""
        unused = [(name, reads) for name, reads in (
            ("trunk", "images, sparse bags of words, token ids and texts"),
            ("tokenizer", "raw texts")) if getattr(self, name) is not None
            and kind not in (TRUNK_KINDS if name == "trunk" else ("text",))]
        for name, reads in unused:
            warnings.warn(f"{name}={getattr(self, name)!r:.60} has no effect: X is {kind} "
                          f"input, and {name} sets how {reads} are read; leave {name}=None.",
                          UserWarning, stacklevel=find_stack_level())

    def _trunk_options(self, kind: str) -> dict:
        """``trunk``, checked against the options of ``kind``'s trunk."""
        options = dict(self.trunk or {})
        allowed = TRUNK_OPTIONS.get(kind, ())
        unknown = [k for k in options if k not in allowed]
        if unknown:
            raise ValueError(f"trunk: {unknown[0]!r:.40} is not an option of the trunk of "
                             f"{kind} input; those are {list(allowed)}.")
        return options

    def _trunk_encoder(self, kind: str) -> torch.nn.Module:
        """The trunk of images (``ConvTrunk``) or of a bag of words, ids or texts
        (``TextTrunk``), with the ``trunk`` options."""
        options = self._trunk_options(kind)
        if kind == "images":
            return ConvTrunk(self.input_size_[0], **options)
        if kind == "text":
            options["padding_idx"] = Tokenizer.PADDING_ID
        return TextTrunk(self.input_size_[0], **options)
