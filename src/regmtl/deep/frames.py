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

Columns the user declares categorical (the wrappers' ``categorical_features``: integer user
or item ids) are read the same way whatever their dtype, integral floats as ints (a NaN that
made an id column float does not make 3.0 a new value). Numeric and bool columns pass
unchanged; :func:`id_like_columns` finds the integer ones that look like ids, and
:func:`check_column_types` refuses, naming it, a column the net cannot read (dates, durations,
complex numbers, missing values in a numeric column). Values must be str, int, float or bool
(what JSON keeps exactly); a column of other objects is refused, naming it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .conversion import find_stack_level

__all__ = ["ColumnCodes", "TableInputs", "categorical_columns", "check_column_types",
           "id_like_columns"]

_SCALARS = (str, bool, int, float)


def categorical_columns(frame: pd.DataFrame, exclude: Any = None,
                        declared: Iterable = ()) -> list[str]:
    """The columns of ``frame`` read as categories: ``category``, ``object`` or ``string`` dtype,
    and the ``declared`` ones whatever their dtype (integer ids), in the frame's order
    (``exclude``, the long form's task column, aside)."""
    declared = set(declared)
    out = []
    for name, dtype in frame.dtypes.items():
        if name == exclude and exclude is not None:
            continue
        if (name in declared or isinstance(dtype, pd.CategoricalDtype | pd.StringDtype)
                or dtype.kind == "O"):
            out.append(name)
    return out


#: words of a column's name that say it holds ids (``user_id``, ``itemId``, ``user``)
_ID_WORDS = frozenset({"id", "ids", "uid", "iid", "user", "item", "sku"})


def _words(name: Any) -> set[str]:
    """The lower-case words of a column name (split at non-letters and camelCase)."""


    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return {w.lower() for w in re.split(r"[^A-Za-z]+", spaced) if w}


def id_like_columns(frames: list[pd.DataFrame], exclude: Any = None,
                    skip: Iterable = ()) -> list[tuple[Any, int, int, int]]:
    r"""The integer columns that look like ids (of users, items) rather than quantities.

    An integer column (not bool) with :math:`K` distinct values over the range
    :math:`[a, b]` looks like ids when the values are dense codes,
    :math:`K / (b - a + 1) \ge 1/2`, and many: :math:`K \ge 100`, or :math:`K \ge 20`
    where its name has a word of ids (``id``, ``user``, ``item``, ...). Ages, years, hours
    (fewer values) and weights, amounts, zip codes (sparse over their range) do not.

    Parameters
    ----------
    frames : list of DataFrame
        The tables of every task (rows of all of them counted).
    exclude : column name, optional
        The long form's task column.
    skip : iterable of column names
        Columns already read as categories.

    Returns
    -------
    list of (column, K, a, b)
        In the order of the first frame's columns.
    """
    skip = set(skip)
    out = []
    for name, dtype in frames[0].dtypes.items():
        if (name == exclude and exclude is not None) or name in skip or dtype.kind not in "iu":
            continue
        parts = [f[name] for f in frames if name in f.columns]
        values = pd.concat(parts, ignore_index=True).dropna()
        if not len(values):
            continue
        k = int(values.nunique())
        lo, hi = int(values.min()), int(values.max())
        many = 20 if _words(name) & _ID_WORDS else 100
        if k >= many and k >= 0.5 * (hi - lo + 1):
            out.append((name, k, lo, hi))
    return out


def _integral(col: pd.Series) -> pd.Series:
    """A declared numeric column's values as integers where they all are (``3.0`` -> ``3``:
    a NaN that made an id column float does not make its ids new values)."""
    if col.dtype.kind != "f" or isinstance(col.dtype, pd.CategoricalDtype):
        return col
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    if len(finite) and np.all(finite == np.round(finite)) and np.abs(finite).max() < 2.0 ** 53:
        return col.astype("Int64")
    return col


def _temporal(dtype: Any) -> str | None:
    """"dates" or "durations" for a column type of dates or durations (NumPy, pandas'
    time zones and periods, Arrow's), else None."""
    if isinstance(dtype, pd.PeriodDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return "dates"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "durations"
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        t = dtype.pyarrow_dtype
        if pa.types.is_duration(t):
            return "durations"
        if pa.types.is_temporal(t):
            return "dates"
    return None


def _conversion(name: Any, kind: str) -> str:
    """How to turn a column of dates or durations into numbers (for a message)."""
    c = f"X[{name!r}]"
    if kind == "durations":
        return f"as seconds, {c} = {c}.dt.total_seconds() (or pd.to_timedelta({c}) first)"
    return (f"as seconds since a fixed origin, {c} = (pd.to_datetime({c}) - "
            f"pd.Timestamp('2000-01-01')).dt.total_seconds() (the same origin at fit and "
            f"predict), as calendar features ({c}.dt.dayofweek, {c}.dt.month, ...), or as "
            f"categories, {c}.astype(str)")


def check_column_types(frame: pd.DataFrame, exclude: Any = None, what: str = "X",
                       categorical: Iterable = ()) -> None:
    """Refuse, naming the column and the fix, a column the net cannot read as it is.

    Dates and durations (``datetime64``, with or without a time zone, ``timedelta64``,
    periods, Arrow's date, time and duration types) have no number the estimator could
    choose for the user (seconds since when? calendar features?); complex numbers are not
    real; a missing (NaN, ``pd.NA``) or infinite value in a numeric column has no value to
    learn from (a categorical column reads a missing value as a category of its own).

    Parameters
    ----------
    frame : DataFrame
        The table.
    exclude : column name, optional
        A column that is not a feature (the long form's task column).
    what : str, default="X"
        How the message names the table.
    categorical : iterable of column names, default=()
        Columns read as categories whatever their dtype (missing values allowed).

    Raises
    ------
    ValueError
        Naming the first such column, its dtype, and how to convert it.
    """
    declared = set(categorical)
    for name, dtype in frame.dtypes.items():
        if (name == exclude and exclude is not None) or name in declared:
            continue
        kind = _temporal(dtype)
        if kind is not None:
            raise ValueError(
                f"{what}: column {name!r} holds {kind} ({dtype}); the net reads numbers and "
                f"categories. Convert it first: {_conversion(name, kind)}.")
        if dtype.kind == "c":
            raise ValueError(
                f"{what}: column {name!r} is complex ({dtype}); the net reads real numbers. "
                f"Give its real and imaginary parts as two columns, e.g. X[{name!r}] = "
                f"X[{name!r}].to_numpy().real and X[{str(name) + '_imag'!r}] = "
                f"X[{name!r}].to_numpy().imag.")
        if dtype.kind not in "biuf" or isinstance(dtype, pd.CategoricalDtype):
            continue
        col = frame[name]
        missing = int(col.isna().sum())
        if missing:
            raise ValueError(
                f"{what}: column {name!r} ({dtype}) has {missing} missing value(s) (NaN or "
                f"NA) in {len(col)} rows; the net needs a number in every numeric column. "
                f"Fill them (e.g. X[{name!r}].fillna(X[{name!r}].median())), drop those "
                f"rows, or read the column as categories (X[{name!r}].astype('category'): "
                "a missing value is then a category of its own).")
        if dtype.kind == "f":
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isinf(values).any():
                raise ValueError(
                    f"{what}: column {name!r} ({dtype}) holds infinity "
                    f"({int(np.isinf(values).sum())} value(s)); replace them with finite "
                    "values or drop those rows.")


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
    def learn(cls, frames: Iterable[pd.DataFrame], exclude: Any = None,
              declared: Iterable = ()) -> ColumnCodes | None:
        """The vocabularies of the categorical columns over the rows of all ``frames``.

        Parameters
        ----------
        frames : iterable of DataFrame
            The tables of every task (the same columns).
        exclude : column name, optional
            A column that is not a feature (the long form's task column).
        declared : iterable of column names, default=()
            Columns read as categories whatever their dtype (integer ids); integral floats
            are read as ints there.

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
        declared = list(declared)
        names = [categorical_columns(f, exclude, declared) for f in frames]
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
            parts = [_integral(f[c]) for f in frames if c in f.columns]
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
        numeric = {c for c in numeric  # (integer ids read as categories stay numbers)
                   if any(isinstance(v, str) for v in self.categories[c])}
        if numeric:
            raise ValueError(
                f"column {sorted(numeric, key=str)[0]!r} was categorical at fit and holds numbers "
                "now; give it the dtype it had (e.g. .astype(str) or .astype('category')).")
        out = {}
        for name in frame.columns:
            col = frame[name]
            if name in self._index:
                out[name] = _codes(_integral(col), self._index[name],
                                   len(self.categories[name]))
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


class TableInputs:
    """What the scikit-learn wrappers do to DataFrames: their categorical and string columns,
    and those ``categorical_features`` names, as codes (mixed into the wrappers)."""

    def _frames(self, X: Any, task: Any, fitting: bool) -> Any:
        """``X`` with its categorical / string columns, and those ``categorical_features``
        names, as codes (``regmtl.deep.frames``): vocabularies learned over every task's table
        at fit (``categories_``), read after. A column the net cannot read (dates, durations,
        complex numbers, missing values in a numeric column) is refused naming it; at fit, an
        integer column that looks like ids, fit as a number, is warned about."""
        if isinstance(X, pd.DataFrame):
            frames, put = [X], lambda out: out[0]
        elif isinstance(X, (list, tuple)) and len(X) and all(
                isinstance(f, pd.DataFrame) for f in X):
            frames, put = list(X), list
        elif (isinstance(X, dict) and not sp.issparse(X)  # a dok matrix is a dict
              and len(X) and all(isinstance(f, pd.DataFrame) for f in X.values())):
            frames, put = list(X.values()), lambda out: dict(zip(X, out, strict=True))
        else:
            frames, put = [], None
        exclude = task if isinstance(task, str) else None
        declared = self._declared_categorical(frames, exclude) if fitting else list(
            getattr(self, "categories_", None) or ())
        for i, f in enumerate(frames):
            check_column_types(f, exclude, "X" if len(frames) == 1 else f"X[{i}]",
                               categorical_columns(f, exclude, declared))
        if fitting:
            codes = ColumnCodes.learn(frames, exclude, declared) if frames else None
            self.__dict__.pop("categories_", None)
            if frames and isinstance(self.categorical_features, str):
                _warn_id_columns(frames, exclude, [] if codes is None else codes.columns)
            if codes is not None:
                named = [c for c in frames[0].columns if c != exclude]
                if not all(isinstance(c, str) for c in named):
                    raise ValueError(
                        "X has categorical columns, so its columns need string names (they "
                        "key the vocabularies saved with the model); got "
                        f"{[c for c in named if not isinstance(c, str)][:3]}. Rename them, "
                        "e.g. X.columns = X.columns.astype(str).")
                self.categories_ = codes.categories
        elif getattr(self, "categories_", None) is not None:
            if not frames:
                raise ValueError(
                    "this estimator was fitted on a DataFrame with categorical columns "
                    f"{list(self.categories_)[:5]}; give X as a DataFrame (or a list or dict "
                    "of them) with those columns.")
            codes = ColumnCodes(self.categories_)
        else:
            codes = None
        if codes is None:
            return X
        return put([codes.encode(f) for f in frames])

    def _declared_categorical(self, frames: list, exclude: Any) -> list:
        """The columns ``categorical_features`` names (none for ``"from_dtype"``), checked
        against the tables' columns."""
        names = self.categorical_features
        if isinstance(names, str):
            return []
        names = list(names)
        bad = [c for c in names if not isinstance(c, str)]
        if bad:
            raise ValueError(f"categorical_features names DataFrame columns by their names "
                             f"(str), got {bad[0]!r:.40}; give the column names, e.g. "
                             "categorical_features=['user', 'item'].")
        if names and not frames:
            raise ValueError(f"categorical_features={names[:5]!r} names DataFrame columns, "
                             "but X is not a DataFrame (nor a list or dict of them); give X "
                             "as a DataFrame with those columns.")
        for f in frames:
            absent = [c for c in names if c not in f.columns or c == exclude]
            if absent:
                raise ValueError(f"categorical_features: X has no feature column "
                                 f"{absent[0]!r}; its columns are "
                                 f"{[c for c in f.columns if c != exclude][:10]}.")
        return names


def _warn_id_columns(frames: list, exclude: Any, categorical: list) -> None:
    """Warn, naming them, about the integer columns that look like ids but are fit as
    numbers (:func:`~regmtl.deep.frames.id_like_columns`)."""
    found = id_like_columns(frames, exclude, categorical)
    if not found:
        return
    name, k, lo, hi = found[0]
    names = [c for c, *_ in found]
    warnings.warn(
        f"X: integer column(s) {names[:5]!r} look like ids and are fit as numbers (column "
        f"{name!r}: {k} distinct values in {lo}..{hi}): the net reads id {lo + 1} as lying "
        f"between ids {lo} and {lo + 2}. If they are ids, declare them categorical, "
        f"categorical_features={names[:5]!r} (or X[{name!r}] = X[{name!r}].astype('category')), "
        "and each id gets an embedding; if they are quantities, name the categorical columns "
        "yourself (categorical_features=[] for "
        "none) and this warning is not given.", UserWarning, stacklevel=find_stack_level())
