r"""Named inputs of one row set (a product's photo, title and price in one row), and what is
missing in each row.

:class:`Modalities` holds one input per modality, each of a kind the wrappers read
(``regmtl.deep.wrapper_inputs``), every one with the same rows:

==========  ===============================================  ================================
kind        given                                            missing in a row
==========  ===============================================  ================================
images      array or tensor (n, H, W) or (n, C, H, W)        every value of the row NaN (a
                                                             float array)
table       2-D numeric array or DataFrame (n, p)            every value of the row NaN
text        1-D list, array or Series of str                 None (or a float NaN, as pandas
                                                             writes a missing string)
tokens      integer array (n, L), declared                   never (a row of padding is an
            (``Modalities.from_dict(..., kinds=...)``)       empty text), but a text of
                                                             :meth:`Modalities.tokenized`
                                                             keeps its missing rows
sparse      SciPy sparse matrix (n, V)                       never (a row without entries is
                                                             an empty bag of words)
==========  ===============================================  ================================

A row with some but not all of its values NaN is refused, naming the modality and the row
(impute those values): NaN never enters a net. A row with every modality missing is refused
at construction, naming its row numbers (a row must be read from something), so every
:class:`Modalities`, and every subset of its rows, has at least one modality in every row.

:meth:`Modalities.carried` gives what the data layer carries (``regmtl.deep.inputs``): a dict
of each modality's tensor (or :class:`~regmtl.deep.inputs.SparseRows`), the missing rows'
values replaced by zeros and texts tokenized, plus the mask under the reserved key
``MISSING_KEY`` (``"_missing"``), a bool tensor (n, M) in the order of ``names``.
``inputs.take``, ``to_device`` and ``n_rows`` carry that dict as any dict of named inputs
(the mask is one more (n, M) tensor); :class:`~regmtl.deep.FusedTrunk` reads it.
``as_inputs`` carries a :class:`Modalities` itself that way (what :class:`~regmtl.deep.Trainer`
reads), once its texts are token ids (:meth:`Modalities.tokenized`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._torch import torch
from .frames import ColumnCodes, categorical_columns, check_column_types
from .inputs import SparseRows, as_inputs
from .tokenizer import Tokenizer
from .wrapper_inputs import as_images, kind_of_design

__all__ = ["Modalities", "MISSING_KEY", "MODALITY_KINDS", "table_matrix"]

#: the key of the missing mask in a carried dict (not a modality name: names do not start
#: with "_")
MISSING_KEY = "_missing"
#: the kinds a modality may be
MODALITY_KINDS = ("images", "table", "text", "tokens", "sparse")
_SHOWN = 10  # row numbers shown in a message


def _rows(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:_SHOWN])
    return f"[{shown}{', ...' if len(rows) > _SHOWN else ''}] ({len(rows)} row(s))"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"modality name {name!r:.60} is not an identifier that does not start "
                         "with '_'; name it like a Python variable, e.g. image=..., title=... "
                         f"({MISSING_KEY!r} is reserved for the missing mask).")
    return name


def _float_rows(x: Any, name: str, kind: str) -> tuple[Any, np.ndarray]:
    """``x`` (images or a table) as an array or tensor, and its rows that are all NaN; a row
    partly NaN (or holding infinity) is refused."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        flat = x.reshape(len(x), -1)
        if not x.is_floating_point():
            return x, np.zeros(len(x), dtype=bool)
        nan = torch.isnan(flat)
        inf = torch.isinf(flat).any(dim=1).numpy()
        all_nan, any_nan = nan.all(dim=1).numpy(), nan.any(dim=1).numpy()
    else:
        if isinstance(x, pd.DataFrame):
            check_column_types(x[~x.isna().all(axis=1).to_numpy()], None,
                               f"modality {name!r}")
            x = x.to_numpy(dtype=np.float64, na_value=np.nan)
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise ValueError(f"modality {name!r} ({kind}) has dtype {x.dtype}; it reads "
                             "numbers.")
        if x.dtype.kind != "f":
            return x, np.zeros(len(x), dtype=bool)
        flat = x.reshape(len(x), -1)
        nan = np.isnan(flat)
        inf = np.isinf(flat).any(axis=1)
        all_nan, any_nan = nan.all(axis=1), nan.any(axis=1)
    bad = np.flatnonzero((any_nan & ~all_nan) | inf)
    if len(bad):
        raise ValueError(f"modality {name!r} ({kind}): rows {_rows(bad)} are partly NaN or hold "
                         "infinity; a row is missing only when all its values are NaN. "
                         "Impute the other values, or set the whole row to NaN.")
    return x, all_nan


def _frame_rows(x: pd.DataFrame, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """A table with categorical columns, kept as a DataFrame (its codes come from
    vocabularies, :meth:`Modalities.carried`), and its rows missing every value; a numeric
    value missing in a row that is not, or a column the net cannot read, is refused."""
    what = f"modality {name!r}"
    bad = [c for c in x.columns if not isinstance(c, str)]
    if bad:
        raise ValueError(f"{what}: a table with categorical columns needs string column names "
                         f"(they key its vocabularies), got {bad[0]!r:.40}; e.g. "
                         "X.columns = X.columns.astype(str).")
    if not x.columns.is_unique:
        raise ValueError(f"{what}: the table repeats a column name; give each column once.")
    missing = x.isna().all(axis=1).to_numpy()
    check_column_types(x[~missing], None, what, categorical_columns(x))
    return x, missing


def table_matrix(frame: pd.DataFrame, codes: ColumnCodes) -> np.ndarray:
    """A table with categorical columns as the float64 matrix a
    :class:`~regmtl.deep.TableTrunk` reads: the categorical columns' codes first (in the
    order of ``codes``), then the numeric columns in the frame's order."""
    encoded = codes.encode(frame)
    order = codes.columns + [c for c in frame.columns if c not in codes.categories]
    return encoded[order].to_numpy(dtype=np.float64, na_value=np.nan)


def _text_rows(x: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.empty(len(x), dtype=object)
    arr[:] = list(x.to_numpy() if isinstance(x, pd.Series) else x)
    missing = np.array([s is None or (isinstance(s, float) and np.isnan(s)) for s in arr],
                       dtype=bool)
    bad = np.flatnonzero(~missing & np.array([not isinstance(s, str) for s in arr], dtype=bool))
    if len(bad):
        raise ValueError(f"modality {name!r} (text): rows {_rows(bad)} are neither str nor "
                         "None; give one string per row, None where the text is missing.")
    return arr, missing


def _kind(x: Any, name: str, declared: str | None) -> str:
    if declared is not None and declared not in MODALITY_KINDS:
        raise ValueError(f"kinds[{name!r}] = {declared!r:.60} is not one of "
                         f"{list(MODALITY_KINDS)}.")
    if isinstance(x, (list, tuple)) and len(x) and all(s is None for s in x):
        found = "text"  # every text missing: still texts
    else:
        found = kind_of_design(x, f"modality {name!r}")
    if declared is None or declared == found:
        return found
    if declared == "tokens" and found == "table":
        arr = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if arr.ndim == 2 and arr.dtype.kind in "iu":
            return "tokens"
    raise ValueError(f"modality {name!r} is declared {declared!r} but reads as {found!r}; "
                     "tokens are a 2-D integer array of ids, texts one str per row, images "
                     "rank >= 3.")


class Modalities:
    """Named inputs of one row set: one input per modality, each row missing in some of them.

    Parameters
    ----------
    **inputs : array-like, tensor, list of str, DataFrame or SciPy sparse matrix
        One input per modality, by name (an identifier not starting with "_"), each with the
        same rows; the kind of each is read as the wrappers read it (the module's table).
        :meth:`from_dict` declares token ids.

    Attributes
    ----------
    names : tuple of str
        The modalities, in the order given.
    kinds : dict of str to str
        Each modality's kind: "images", "table", "text", "tokens" or "sparse".

    Raises
    ------
    ValueError
        On no modality, a name that is not an identifier, an unknown kind, no rows, unequal
        numbers of rows, a row partly NaN, or a row with every modality missing (naming the
        modality or the rows and the fix).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import Modalities
    >>> m = Modalities(photo=np.zeros((3, 8, 8)), title=["red mug", None, "lamp"],
    ...                price=np.array([[1.0], [np.nan], [2.5]]))
    >>> len(m), m.names, m.kinds["title"]
    (3, ('photo', 'title', 'price'), 'text')
    >>> m.missing().tolist()
    [[False, False, False], [False, True, True], [False, False, False]]
    >>> m[1:].missing().shape
    (2, 3)
    """

    def __init__(self, **inputs: Any):
        self._build(inputs, {})

    @classmethod
    def from_dict(cls, inputs: Mapping[str, Any], kinds: Mapping[str, str] | None = None
                  ) -> Modalities:
        """Modalities from a dict of named inputs, with declared kinds.

        Parameters
        ----------
        inputs : mapping of str to input
            As the keywords of the constructor.
        kinds : mapping of str to str, optional
            A declared kind per modality (checked against the data); "tokens" reads a 2-D
            integer array as token ids rather than a table.

        Returns
        -------
        Modalities
        """
        if not isinstance(inputs, Mapping):
            raise ValueError(f"inputs must be a dict of named inputs, got "
                             f"{type(inputs).__name__}.")
        kinds = dict(kinds or {})
        unknown = sorted(set(kinds) - set(inputs), key=str)
        if unknown:
            raise ValueError(f"kinds names {unknown[:5]}, which are not modalities "
                             f"{list(inputs)[:10]}.")
        new = object.__new__(cls)
        new._build(dict(inputs), kinds)
        return new

    def _build(self, inputs: dict, declared: dict) -> None:
        if not inputs:
            raise ValueError("Modalities needs at least one modality, e.g. "
                             "Modalities(image=images, text=texts).")
        data, kinds, missing, lengths = {}, {}, {}, {}
        for name, x in inputs.items():
            _check_name(name)
            if x is None:
                raise ValueError(f"modality {name!r} is None; leave it out, or give None per "
                                 "row of a text (missing texts).")
            if not hasattr(x, "shape") and not hasattr(x, "__len__") or \
                    len(getattr(x, "shape", (0,))) == 0:
                raise ValueError(f"modality {name!r} is a {type(x).__name__}, not one entry "
                                 "per row; give an array, a list of texts or a sparse matrix.")
            if (x.shape[0] if hasattr(x, "shape") else len(x)) == 0:
                raise ValueError(f"modality {name!r} has no rows.")
            kind = _kind(x, name, declared.get(name))
            if kind == "images":
                as_images(x, f"modality {name!r}")  # (its dtype and a pixel at least: checked)
            if kind == "table" and isinstance(x, pd.DataFrame) and categorical_columns(x):
                x, miss = _frame_rows(x, name)
            elif kind in ("images", "table"):
                x, miss = _float_rows(x, name, kind)
                if kind == "table" and x.ndim != 2:
                    x = x.reshape(len(x), -1) if x.ndim == 1 else x
            elif kind == "text":
                x, miss = _text_rows(x, name)
            elif kind == "sparse":
                x = sp.csr_matrix(x)
                miss = np.zeros(x.shape[0], dtype=bool)
            else:  # tokens
                x = x.detach().cpu() if isinstance(x, torch.Tensor) else np.asarray(x)
                miss = np.zeros(len(x), dtype=bool)
            n = x.shape[0] if hasattr(x, "shape") else len(x)
            data[name], kinds[name], missing[name], lengths[name] = x, kind, miss, n
        if len(set(lengths.values())) > 1:
            raise ValueError(f"the modalities have different numbers of rows {lengths}; each "
                             "needs one row per sample, in the same order (a missing one "
                             "given as None or a row of NaN).")
        self._data, self._kinds = data, kinds
        self._missing = np.stack([missing[k] for k in data], axis=1)
        self.check()

    # ------------------------------------------------------------------ reading
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._data)

    @property
    def kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def __len__(self) -> int:
        return int(self._missing.shape[0])

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self._data.items())

    def __getitem__(self, idx: Any) -> Modalities:
        """The rows ``idx`` (an int, a slice, an integer array or a bool mask of ``len``
        rows) as a new :class:`Modalities`, in that order."""
        n = len(self)
        if isinstance(idx, slice):
            rows = np.arange(n)[idx]
        else:
            arr = idx.numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
            if arr.dtype == bool:
                if arr.shape != (n,):
                    raise ValueError(f"a bool mask of rows has shape {arr.shape}; it needs "
                                     f"({n},).")
                rows = np.flatnonzero(arr)
            elif arr.dtype.kind in "iu" and arr.ndim <= 1:
                rows = arr.reshape(-1).astype(np.int64)
                if len(rows) and (rows.min() < -n or rows.max() >= n):
                    raise IndexError(f"row index out of range for {n} rows.")
                rows = np.where(rows < 0, rows + n, rows)
            else:
                raise ValueError(f"rows are selected by an int, a slice, integers or a bool "
                                 f"mask; got {type(idx).__name__} of dtype {arr.dtype}.")
        if len(rows) == 0:
            raise ValueError("the selection has no rows; a Modalities holds at least one.")
        new = object.__new__(Modalities)
        new._kinds = dict(self._kinds)
        new._data = {k: (x[torch.from_numpy(rows)] if isinstance(x, torch.Tensor) else
                         x.iloc[rows] if isinstance(x, pd.DataFrame) else x[rows])
                     for k, x in self._data.items()}
        new._missing = self._missing[rows]
        return new

    def missing(self) -> np.ndarray:
        """The missing modalities of each row.

        Returns
        -------
        ndarray of bool, shape (n, M)
            Column ``j`` is modality ``names[j]``.
        """
        return self._missing.copy()

    def check(self) -> None:
        """Refuse rows with every modality missing, naming them (called at construction).

        Raises
        ------
        ValueError
            Listing the first such rows and how many.
        """
        empty = np.flatnonzero(self._missing.all(axis=1))
        if len(empty):
            raise ValueError(f"rows {_rows(empty)} have every modality {list(self.names)} "
                             "missing; a row needs at least one. Drop those rows.")

    def tokenized(self, tokenizers: Mapping[str, Tokenizer]) -> Modalities:
        """The text modalities as token ids, by fitted tokenizers (what a net built by hand
        reads, e.g. through :class:`~regmtl.deep.Trainer`).

        Parameters
        ----------
        tokenizers : mapping of str to Tokenizer
            A fitted :class:`~regmtl.deep.Tokenizer` per text modality (the one its
            :class:`~regmtl.deep.TextTrunk` was sized for, ``TextTrunk(tok.n_ids)``).

        Returns
        -------
        Modalities
            The same rows, each text modality of kind "tokens" (ids padded to the longest
            text); a missing text stays missing (its row is padding).

        Raises
        ------
        ValueError
            If a text modality has no tokenizer, or one is not a modality of kind text.
        """
        texts = [k for k, kind in self._kinds.items() if kind == "text"]
        if not isinstance(tokenizers, Mapping) or set(tokenizers) != set(texts):
            given = sorted(tokenizers) if isinstance(tokenizers, Mapping) else tokenizers
            raise ValueError(f"tokenizers must give one fitted Tokenizer per text modality "
                             f"{texts}, got {given!r:.80}.")
        new = object.__new__(Modalities)
        new._data, new._kinds, new._missing = dict(self._data), dict(self._kinds), \
            self._missing.copy()
        for j, name in enumerate(self.names):
            if name in tokenizers:
                tok = tokenizers[name]
                if not isinstance(tok, Tokenizer):
                    raise ValueError(f"tokenizers[{name!r}] is a {type(tok).__name__}; give a "
                                     "fitted regmtl.deep.Tokenizer.")
                miss = self._missing[:, j]
                new._data[name] = tok.transform(
                    ["" if m else s for s, m in zip(self._data[name], miss, strict=True)])
                new._kinds[name] = "tokens"
        return new

    def carried(self, tokenizers: dict[str, Tokenizer] | None = None,
                codes: dict[str, ColumnCodes] | None = None) -> dict[str, Any]:
        """What the data layer carries: each modality with no NaN, and the missing mask.

        Missing images and table rows are zeros, missing texts empty (only padding ids);
        texts are tokenized by ``tokenizers[name]``, a table with categorical columns is
        ``table_matrix`` of ``codes[name]`` (codes first, then the numbers).

        Parameters
        ----------
        tokenizers : dict of str to Tokenizer, optional
            A fitted tokenizer per text modality; a text modality without one gets a new
            :class:`~regmtl.deep.Tokenizer` fitted on its present texts, stored in the dict
            (pass ``{}`` to receive them, to carry other rows the same way).
        codes : dict of str to ColumnCodes, optional
            The vocabularies of each table with categorical columns; one without gets them
            learned from its present rows, stored in the dict.

        Returns
        -------
        dict of str to Tensor or SparseRows
            Per modality, as ``regmtl.deep.inputs.as_inputs`` carries it (tables as float32),
            and ``MISSING_KEY``: a bool tensor (n, M) in the order of ``names``.
        """
        tokenizers = {} if tokenizers is None else tokenizers
        codes = {} if codes is None else codes
        out: dict[str, Any] = {}
        for j, (name, x) in enumerate(self._data.items()):
            kind, miss = self._kinds[name], self._missing[:, j]
            what = f"modality {name!r}"
            if kind == "text":
                if name not in tokenizers:
                    tokenizers[name] = Tokenizer().fit(x[~miss])
                out[name] = as_inputs(tokenizers[name].transform(
                    ["" if m else s for s, m in zip(x, miss, strict=True)]), what)
            elif kind == "sparse":
                out[name] = SparseRows(x, what=what)
            elif kind in ("images", "table") and (miss.any() or isinstance(x, pd.DataFrame)):
                if isinstance(x, pd.DataFrame):
                    if name not in codes:
                        codes[name] = ColumnCodes.learn([x[~miss]])
                    x = table_matrix(x, codes[name])
                if isinstance(x, torch.Tensor):
                    x = x.clone()
                    x[torch.from_numpy(miss)] = 0
                else:
                    x = np.array(x, copy=True)
                    x[miss] = 0
                out[name] = as_inputs(x, what)
            else:
                out[name] = as_inputs(x, what)
            if kind == "table":
                out[name] = out[name].to(torch.float32)
        out[MISSING_KEY] = torch.from_numpy(self._missing.copy())
        return out

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={self._kinds[k]}" for k in self._data)
        return f"Modalities({parts}; {len(self)} rows)"
