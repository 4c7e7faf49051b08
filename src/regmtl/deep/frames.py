r"""Categorical and string columns of DataFrames as integer codes, for the deep estimators.

A table's categorical columns (pandas ``category``, ``object`` or ``string`` dtype) are
embedded by the net (:class:`~regmtl.deep.FeatureColumns`); :class:`ColumnCodes` is what turns
their values into the codes the embedding tables read, with the vocabularies saved beside the
model:

- **At fit** (:meth:`ColumnCodes.learn`), each such column's vocabulary is the sorted set of
  its values over the rows of every task (a ``category`` column keeps its categories' order;
  values of several types are sorted by type name, then value). A missing value (None, NaN,
  ``pd.NA``) seen at fit is an entry of its own, the last.
- **Encoding** (:meth:`ColumnCodes.encode`) gives value :math:`v_k` the code :math:`k`, and a
  value outside the vocabulary (a category unseen at fit) the code :math:`V` (the vocabulary's
  size), which the embedding reads as its out-of-vocabulary bucket. The codes replace the
  column in a float64 frame (exact below :math:`2^{53}`), so the rest of the input checks see
  numbers only.

Numeric and bool columns pass unchanged. Values must be str, int, float or bool (what JSON
keeps exactly); a column of other objects is refused, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ColumnCodes", "categorical_columns"]

_SCALARS = (str, bool, int, float)


def categorical_columns(frame: pd.DataFrame, exclude: Any = None) -> list[str]:
    """The columns of ``frame`` read as categories: ``category``, ``object`` or ``string`` dtype
    (``exclude``, the long form's task column, aside)."""
    out = []
    for name, dtype in frame.dtypes.items():
        if name == exclude and exclude is not None:
            continue
        if isinstance(dtype, pd.CategoricalDtype | pd.StringDtype) or dtype.kind == "O":
            out.append(name)
    return out


def _check_unique(frame: pd.DataFrame) -> None:
    dup = frame.columns[frame.columns.duplicated()]
    if len(dup):
        raise ValueError(f"X repeats column {dup[0]!r}; give each column one name.")


def _plain(v: Any, column: Any) -> Any:
    """A JSON scalar for vocabulary value ``v`` (None for missing)."""
    if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if not isinstance(v, _SCALARS):
        raise ValueError(
            f"column {column!r} holds a {type(v).__name__} value ({v!r}); categorical columns "
            "take str, int, float or bool values. Convert it first, e.g. "
            f"X[{column!r}] = X[{column!r}].astype(str).")
    if isinstance(v, float) and not np.isfinite(v):
        raise ValueError(f"column {column!r} holds {v!r}; give finite values or strings.")
    return v


class ColumnCodes:
    """The vocabulary of each categorical column of a table, and the codes of its values.

    Parameters
    ----------
    categories : mapping of column name -> list
        Each categorical column's vocabulary: distinct str / int / float / bool values, None
        for the missing value.

    Attributes
    ----------
    columns : list
        The categorical columns, in the order of ``categories``.

    Examples
    --------
    >>> import pandas as pd
    >>> from regmtl.deep.frames import ColumnCodes
    >>> df = pd.DataFrame({"city": ["Oslo", "Rome", "Oslo", None], "age": [31, 40, 25, 52]})
    >>> codes = ColumnCodes.learn([df])
    >>> codes.categories
    {'city': ['Oslo', 'Rome', None]}
    >>> codes.encode(pd.DataFrame({"city": ["Rome", "Paris"], "age": [1, 2]}))["city"].tolist()
    [1.0, 3.0]
    """

    def __init__(self, categories: Mapping[Any, list]):
        self.categories = {k: list(v) for k, v in categories.items()}
        self.columns = list(self.categories)
        self._index = {k: _lookup(v) for k, v in self.categories.items()}

    @classmethod
    def learn(cls, frames: Iterable[pd.DataFrame], exclude: Any = None) -> ColumnCodes | None:
        """The vocabularies of the categorical columns over the rows of all ``frames``.

        Parameters
        ----------
        frames : iterable of DataFrame
            The tables of every task (the same columns).
        exclude : column name, optional
            A column that is not a feature (the long form's task column).

        Returns
        -------
        ColumnCodes or None
            None when no frame has a categorical column.

        Raises
        ------
        ValueError
            If a categorical column holds values other than str, int, float and bool, or is
            categorical in one frame and numeric in another.
        """
        frames = list(frames)
        for f in frames:
            _check_unique(f)
        names = [categorical_columns(f, exclude) for f in frames]
        if not any(names):
            return None
        cols = list(dict.fromkeys(c for ns in names for c in ns))
        for f, ns in zip(frames, names, strict=True):
            other = [c for c in cols if c in f.columns and c not in ns]
            if other:
                raise ValueError(
                    f"column {other[0]!r} is categorical in one table and numeric in another; "
                    "give it the same dtype in every task's DataFrame.")
        categories = {}
        for c in cols:
            parts = [f[c] for f in frames if c in f.columns]
            categories[c] = _vocabulary(parts, c)
        return cls(categories)

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with each categorical column replaced by its float64 codes.

        Parameters
        ----------
        frame : DataFrame
            A table with every categorical column of the vocabulary.

        Returns
        -------
        DataFrame
            The same columns in the same order; codes 0..V-1 for known values, V for the rest.

        Raises
        ------
        ValueError
            If a categorical column is absent.
        """
        _check_unique(frame)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"X has no column {missing[0]!r}, a categorical column seen at fit; give X the "
                "columns it was fitted with.")
        numeric = set(self.columns) - set(categorical_columns(frame))
        if numeric:
            raise ValueError(
                f"column {sorted(numeric, key=str)[0]!r} was categorical at fit and holds numbers "
                "now; give it the dtype it had (e.g. .astype(str) or .astype('category')).")
        out = {}
        for name in frame.columns:
            col = frame[name]
            if name in self._index:
                out[name] = _codes(col, self._index[name], len(self.categories[name]))
            else:
                out[name] = col
        return pd.DataFrame(out, index=frame.index, columns=frame.columns, copy=False)

    def to_json(self) -> list:
        """``[[column, vocabulary], ...]``: JSON keeps the columns' order and non-str names."""
        return [[_plain(c, "name") if not isinstance(c, str) else c, list(v)]
                for c, v in self.categories.items()]

    @classmethod
    def from_json(cls, value: Any) -> ColumnCodes:
        """The vocabularies written by :meth:`to_json`, checked.

        Raises
        ------
        ValueError
            If ``value`` is not such a list: a column repeated, a vocabulary empty, repeating
            a value, or holding something else than str, int, float, bool or None.
        """
        if not isinstance(value, list) or not value:
            raise ValueError("categories_ must be a non-empty list of [column, vocabulary].")
        categories: dict = {}
        for entry in value:
            if (not isinstance(entry, list) or len(entry) != 2
                    or not isinstance(entry[1], list) or not entry[1]):
                raise ValueError("categories_ entries must be [column, non-empty vocabulary].")
            name, vocab = entry
            if not isinstance(name, _SCALARS) or name in categories:
                raise ValueError(f"categories_ names column {name!r} twice or not as a scalar.")
            if not all(v is None or isinstance(v, _SCALARS) for v in vocab):
                raise ValueError(f"the vocabulary of column {name!r} holds a value that is "
                                 "not str, int, float, bool or None.")
            if len(_lookup(vocab)) != len(vocab):
                raise ValueError(f"the vocabulary of column {name!r} repeats a value.")
            categories[name] = vocab
        return cls(categories)


def _kind(v: Any) -> str:
    """A value's type for the vocabulary: 1, 1.0, True and "1" are four values."""
    if isinstance(v, bool | np.bool_):
        return "bool"
    if isinstance(v, str):
        return "str"
    if isinstance(v, int | np.integer):
        return "int"
    if isinstance(v, float | np.floating):
        return "float"
    return type(v).__name__


def _lookup(vocab: list) -> dict:
    """(kind, value) -> code (JSON keeps 1, 1.0 and True apart too)."""
    return {(_kind(v), v): k for k, v in enumerate(vocab) if v is not None} | (
        {("missing", None): vocab.index(None)} if None in vocab else {})


def _factorize(col: pd.Series, column: Any = None) -> tuple[np.ndarray, list]:
    """Codes of the rows and the distinct values, telling values of different types apart
    (pandas' factorize takes True for 1); missing values get -1. Values that are not str,
    int, float or bool are refused naming ``column`` when given, else one unknown value."""
    values = col.astype(object).to_numpy()
    missing = pd.isna(values)
    kinds = np.array([_kind(v) for v in values], dtype=object)
    kinds[missing] = "missing"
    inverse = np.full(len(values), -1, dtype=np.int64)
    uniques: list = []
    for kind in pd.unique(kinds[~missing]):
        rows = np.flatnonzero(kinds == kind)
        if kind not in ("bool", "str", "int", "float"):
            if column is not None:
                _plain(values[rows[0]], column)  # raises, naming the column and the type
            inverse[rows] = len(uniques)
            uniques.append((kind, None))
            continue
        codes, uniq = pd.factorize(values[rows])
        inverse[rows] = codes + len(uniques)
        uniques.extend((kind, u.item() if isinstance(u, np.generic) else u) for u in uniq)
    return inverse, uniques


def _vocabulary(parts: list[pd.Series], column: Any) -> list:
    first = parts[0]
    if isinstance(first.dtype, pd.CategoricalDtype) and all(
            isinstance(p.dtype, pd.CategoricalDtype)
            and p.cat.categories.equals(first.cat.categories) for p in parts):
        values = [_plain(v, column) for v in first.cat.categories]
        has_missing = any(bool(p.isna().any()) for p in parts)
    else:
        inverse, uniq = _factorize(pd.concat(parts, ignore_index=True), column)
        values = sorted((_plain(v, column) for _, v in uniq),
                        key=lambda v: (_kind(v), v))
        has_missing = bool((inverse < 0).any())
    return values + [None] * has_missing


def _codes(col: pd.Series, index: dict, size: int) -> np.ndarray:
    """Each value's code (``size`` for values outside the vocabulary), as float64."""
    inverse, uniq = _factorize(col)
    table = np.array([_code_of(index, key, size) for key in uniq]
                     + [index.get(("missing", None), size)], dtype=np.float64)
    return table[inverse]  # -1 reads the last entry: the missing value's code


def _code_of(index: dict, key: tuple, size: int) -> int:
    return size if key[1] is None else index.get(key, size)
