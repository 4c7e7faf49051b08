"""pandas where the input is pandas: type checks that do not import it, and missing-value
tests that need it only for object arrays.

An object can only be a ``DataFrame`` or ``Series`` once pandas has been imported (by the
caller, who made it), so the checks below look in ``sys.modules`` and never load pandas
themselves: a fit on NumPy arrays does not pay pandas' import.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["is_frame", "is_pandas", "is_series", "isna"]


def is_frame(obj: Any) -> bool:
    """``isinstance(obj, pandas.DataFrame)``, without importing pandas."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame)


def is_series(obj: Any) -> bool:
    """``isinstance(obj, pandas.Series)``, without importing pandas."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.Series)


def is_pandas(obj: Any) -> bool:
    """A pandas ``Series`` or ``DataFrame`` (pandas not imported for anything else)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, (pd.Series, pd.DataFrame))


def isna(arr: Any) -> np.ndarray:
    """``pandas.isna`` of an array: ``np.isnan`` for numbers (no missing value in an integer
    or boolean array), pandas' test (None, NaN, ``pd.NA``, NaT) for anything else."""
    a = np.asarray(arr)
    if a.dtype.kind in "biu":
        return np.zeros(a.shape, dtype=bool)
    if a.dtype.kind in "fc":
        return np.isnan(a)
    import pandas as pd

    return np.asarray(pd.isna(arr))
