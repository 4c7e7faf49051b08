"""The Mulan multi-target regression sets (Spyromitros-Xioufis et al. 2016): shared inputs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._bunch import shared_bunch
from ._home import find_file

__all__ = ["load_mulan", "MULAN_SETS"]

FOLDER = "mulan_mtr"

# name: (number of targets, the last attributes of the file; what the set is)
_SETS: dict[str, tuple[int, str]] = {
    "andro": (6, "Water quality in the Thermaikos Gulf (Andromeda): future values of 6 water "
                 "quality variables from windows of their past values (Hatzikos et al. 2008)."),
    "atp1d": (6, "Airline ticket prices: the next day's price for 6 targets from 411 features "
                 "of the current prices (Spyromitros-Xioufis et al. 2016)."),
    "atp7d": (6, "Airline ticket prices: the minimum price over the next 7 days for 6 targets "
                 "from 411 features (Spyromitros-Xioufis et al. 2016)."),
    "edm": (2, "Electrical discharge machining: 2 control actions (DFlow, DGap) from 16 "
               "process variables (Karalic & Bratko 1997)."),
    "enb": (2, "Energy efficiency of buildings: heating and cooling load (Y1, Y2) from 8 "
               "building parameters (Tsanas & Xifara 2012)."),
    "jura": (3, "Swiss Jura topsoil: concentrations of Cd, Co and Cu from other metals and "
                "location (Goovaerts 1997)."),
    "oes10": (16, "Occupational Employment Survey 2010: employees in 16 occupations per "
                  "metropolitan area from the other occupations (Spyromitros-Xioufis et al. "
                  "2016)."),
    "oes97": (16, "Occupational Employment Survey 1997: employees in 16 occupations per "
                  "metropolitan area from the other occupations (Spyromitros-Xioufis et al. "
                  "2016)."),
    "osales": (12, "Online product sales: sales in the 12 months after launch from product "
                   "features (Kaggle Online Product Sales)."),
    "scpf": (3, "See Click Predict Fix: views, votes and comments of reported city issues "
                "(Kaggle)."),
    "sf1": (3, "Solar flares (1969): numbers of C-, M- and X-class flares from 10 categorical "
               "region descriptors (UCI Solar Flare)."),
    "sf2": (3, "Solar flares (1978): numbers of C-, M- and X-class flares from 10 categorical "
               "region descriptors (UCI Solar Flare)."),
    "slump": (3, "Concrete slump test: slump, flow and 28-day compressive strength from 7 mix "
                 "ingredients (Yeh 2007)."),
    "wq": (14, "River water quality: abundance of 14 plant and animal species from 16 physical "
               "and chemical parameters (Dzeroski et al. 2000)."),
}

#: Names accepted by :func:`load_mulan`.
MULAN_SETS: tuple[str, ...] = tuple(_SETS)

_MISSING = ("keep", "drop", "mean")

_SOURCE = ("data/multi-target/{name}.arff of github.com/tsoumakas/mulan (commit 43f6389); "
           "Spyromitros-Xioufis, Tsoumakas, Groves & Vlahavas, Machine Learning 104(1), 2016")

_REFERENCE = """\
Reference:
  E. Spyromitros-Xioufis, G. Tsoumakas, W. Groves, I. Vlahavas, "Multi-target regression via
  input space expansion: treating targets as inputs", Machine Learning 104(1):55-98, 2016.
"""


def _read_arff(path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """All attributes as float columns (NaN = missing), nominal ones one-hot; names and kinds."""
    from scipy.io import arff

    data, meta = arff.loadarff(path)
    columns, names, kinds = [], [], []
    for name in meta.names():
        kind, levels = meta[name]
        col = data[name]
        if kind == "numeric":
            columns.append(col.astype(np.float64))
            names.append(name)
            kinds.append("numeric")
        elif kind == "nominal":
            values = np.array([v.decode() if isinstance(v, bytes) else v for v in col])
            missing = values == "?"
            for level in levels:
                onehot = (values == level).astype(np.float64)
                onehot[missing] = np.nan
                columns.append(onehot)
                names.append(f"{name}={level}")
                kinds.append("nominal")
        else:
            raise ValueError(f"{path}: attribute {name!r} is of type {kind!r}; only numeric "
                             "and nominal attributes can be read")
    return np.column_stack(columns), names, kinds


def load_mulan(name: str, data_home: str | os.PathLike[str] | None = None, *,
               missing: str = "keep") -> Bunch:
    """Load one Mulan multi-target regression set: the targets are tasks sharing one design.

    Parameters
    ----------
    name : str
        One of ``MULAN_SETS``: andro, atp1d, atp7d, edm, enb, jura, oes10, oes97, osales, scpf,
        sf1, sf2, slump, wq.
    data_home : str or path-like, default=None
        Folder holding ``mulan_mtr/<name>.arff``; by default the ``REGMTL_DATA`` environment
        variable, else ``./data`` (see :func:`get_data_home`).
    missing : {"keep", "drop", "mean"}, default="keep"
        Missing feature values (only osales and scpf have them): keep them as NaN, drop the
        rows that have any, or replace them by the column mean. ``DESCR`` states the count.

    Returns
    -------
    Bunch
        ``X``, ``y`` (one task per target), ``X_shared`` (n x p), ``Y`` (n x T),
        ``task_names`` (the target names), ``feature_names`` (nominal attributes one-hot as
        ``attribute=level``), ``kind`` ("regression"), ``n_missing``, ``DESCR``, ``source``.

    Raises
    ------
    ValueError
        If ``name`` or ``missing`` is unknown, the file's targets are not numeric and
        complete, or ``missing`` cannot be applied.
    FileNotFoundError
        If the file is not under the data home; the message names the path and how to set
        the data home.

    See Also
    --------
    list_datasets : The sizes of the 14 sets, and which are at hand.
    get_data_home : Where the data home is.

    Examples
    --------
    The files are not shipped with regmtl; without one, the loader says where to put it:

    >>> import tempfile
    >>> from regmtl.datasets import load_mulan
    >>> with tempfile.TemporaryDirectory() as home:  # an empty data home
    ...     try:
    ...         load_mulan("enb", data_home=home)
    ...     except FileNotFoundError as exc:
    ...         print(type(exc).__name__ + ":", exc)
    FileNotFoundError: ...enb.arff not found (data home ...,
    from the data_home argument). Put the 'mulan_mtr' folder in a data home
    and pass data_home=... or set REGMTL_DATA=/path/to/data.

    With the file in place, ``data = load_mulan("enb")`` gives ``data.X_shared`` (768 x 8)
    and ``data.Y`` (768 x 2: heating and cooling load).
    """
    if name not in _SETS:
        raise ValueError(f"name must be one of {', '.join(MULAN_SETS)}; got {name!r}")
    if missing not in _MISSING:
        raise ValueError(f"missing must be one of {_MISSING}, got {missing!r}")
    q, about = _SETS[name]
    table, names, kinds = _read_arff(find_file(FOLDER, f"{name}.arff", data_home))
    X, Y = table[:, :-q], table[:, -q:]
    features, targets = names[:-q], names[-q:]
    if any(k != "numeric" for k in kinds[-q:]) or np.isnan(Y).any():
        raise ValueError(f"{name}: the last {q} attributes are not all numeric and complete")
    miss = np.isnan(X)
    n_missing, rows_missing = int(miss.sum()), int(miss.any(axis=1).sum())
    n_rows = X.shape[0]
    if missing == "drop" and rows_missing:
        if rows_missing == n_rows:
            raise ValueError(f"{name}: every one of the {n_rows} rows has a missing feature "
                             "value, so missing='drop' would leave nothing; use 'mean' or 'keep'")
        keep = ~miss.any(axis=1)
        X, Y = X[keep], Y[keep]
    elif missing == "mean" and n_missing:
        empty = [f for f, m in zip(features, miss.all(axis=0), strict=True) if m]
        if empty:
            raise ValueError(f"{name}: feature(s) {', '.join(empty)} have no value at all, so "
                             "missing='mean' cannot fill them; use 'keep'")
        X = np.where(miss, np.nanmean(X, axis=0)[None, :], X)
    n_nominal = sum(k == "nominal" for k in kinds[:-q])
    design = (f"{n_rows} rows, {len(features)} features, {q} targets (tasks) sharing the rows: "
              f"``X_shared`` ({X.shape[0]} x {X.shape[1]}), ``Y`` ({Y.shape[0]} x {q}); no bias "
              "column. " + (f"{n_nominal} feature columns are one-hot levels of nominal "
                            "attributes (``attribute=level``; every declared level, seen or not). "
                            if n_nominal else "All attributes are numeric. ")
              + _missing_text(n_missing, rows_missing, n_rows, missing, X.shape[0]))
    title = f"Mulan multi-target regression: {name}"
    descr = "\n\n".join([
        f"{title}\n{'-' * len(title)}",
        _fill(about),
        _fill(design),
        _fill(f"Targets: {', '.join(targets)}."),
        _REFERENCE,
    ])
    return shared_bunch(X, Y, task_names=targets, feature_names=features, kind="regression",
                        descr=descr, source=_SOURCE.format(name=name), n_missing=n_missing)


def _fill(text: str) -> str:
    return textwrap.fill(text, 96, break_on_hyphens=False, break_long_words=False)


def _missing_text(n_missing: int, rows_missing: int, n_rows: int, how: str, n_left: int) -> str:
    if not n_missing:
        return "No missing values."
    said = (f"{n_missing} feature values are missing, in {rows_missing} of the {n_rows} rows; ")
    if how == "keep":
        return said + "they are NaN (missing='keep')."
    if how == "drop":
        return said + f"those rows were dropped (missing='drop'), {n_left} rows remain."
    return said + "they were replaced by their column's mean (missing='mean')."
