"""The Solar Flare data set (UCI): counts of C-, M- and X-class flares, shipped with the package."""

from __future__ import annotations

from importlib import resources

import numpy as np
from sklearn.utils import Bunch

from ._bunch import shared_bunch

__all__ = ["load_solar_flare", "SOLAR_FLARE_ATTRIBUTES"]

#: The 10 nominal attributes of an active region and their levels, in the order of the file.
SOLAR_FLARE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "mod_zurich_class": ("A", "B", "C", "D", "E", "F", "H"),
    "largest_spot_size": ("X", "R", "S", "A", "H", "K"),
    "spot_distribution": ("X", "O", "I", "C"),
    "activity": ("1", "2"),
    "evolution": ("1", "2", "3"),
    "previous_day_activity": ("1", "2", "3"),
    "hist_complex": ("1", "2"),
    "become_hist_complex": ("1", "2"),
    "area": ("1", "2"),
    "area_largest": ("1", "2"),
}

_TARGETS = ("c-class", "m-class", "x-class")
_PERIODS = (1969, 1978)

_SOURCE = ("UCI Machine Learning Repository, Solar Flare (id 89, donor G. Bradshaw, 1989; "
           "CC BY 4.0), as data/multi-target/sf1.arff and sf2.arff of github.com/tsoumakas/mulan "
           "(commit 43f6389)")

_DESCR = """\
Solar Flare data set (UCI): flares of solar active regions in the next 24 hours
-------------------------------------------------------------------------------

Each row is one active region on the sun, described by 10 nominal attributes; the three
targets (tasks) are the numbers of C-class (common), M-class (moderate) and X-class (severe)
flares the region produced in the following 24 hours. 1389 regions: 323 observed in 1969 and
1066 in 1978 (the two files of the UCI distribution). The tasks share the rows (shared design).

The counts are small and mostly zero: C-class 0 to 8, M-class 0 to 5, X-class 0 to 2, with
X-class flares in only 12 of the 1389 rows. A Poisson loss (log link) fits them; the rare
tasks, M and X, borrow from the common one when a penalty ties the features across tasks.

Attributes (one-hot, every declared level, named ``attribute=level``; 33 columns):
  mod_zurich_class       modified Zurich class: A, B, C, D, E, F, H
  largest_spot_size      code for the largest spot size: X, R, S, A, H, K
  spot_distribution      code for the spot distribution: X, O, I, C
  activity               1 = reduced, 2 = unchanged
  evolution              1 = decay, 2 = no growth, 3 = growth
  previous_day_activity  previous 24 hours' flare activity: 1 = nothing as big as an M1,
                         2 = one M1, 3 = more activity than one M1
  hist_complex           historically complex: 1 = yes, 2 = no
  become_hist_complex    became historically complex on this pass across the disk: 1 = yes,
                         2 = no
  area                   1 = small, 2 = large
  area_largest           area of the largest spot: 1 = at most 5, 2 = above 5
With both periods, a 34th column ``period=1978`` (0 for 1969, 1 for 1978) tells them apart; the
observation period is also in ``period``. There are no missing values; many regions share the
same attributes. The declared level ``mod_zurich_class=A`` never occurs (a column of zeros).

Source: UCI Machine Learning Repository, "Solar Flare" (donor Gary Bradshaw, 1989), licensed
CC BY 4.0; the files as distributed in the Mulan multi-target collection (sf1.arff = 1969,
sf2.arff = 1978).

References:
  Solar Flare, UCI Machine Learning Repository, 1989, https://archive.ics.uci.edu/dataset/89.
  E. Spyromitros-Xioufis, G. Tsoumakas, W. Groves, I. Vlahavas, "Multi-target regression via
  input space expansion: treating targets as inputs", Machine Learning 104(1):55-98, 2016.
"""


def _onehot(codes: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Every level of every attribute as a 0/1 column, in the order of the file."""
    columns, names = [], []
    for j, (attribute, levels) in enumerate(SOLAR_FLARE_ATTRIBUTES.items()):
        for k, level in enumerate(levels):
            columns.append(codes[:, j] == k)
            names.append(f"{attribute}={level}")
    return np.column_stack(columns).astype(np.float64), names


def load_solar_flare(*, period: str | int = "both", as_frame: bool = False) -> Bunch:
    r"""Load the Solar Flare data: 3 count tasks (C-, M-, X-class flares) on shared rows.

    The targets are flare counts in the 24 hours after the observation, natural for the
    Poisson loss :math:`\ell(y, \eta) = e^\eta - y\eta` (``loss="poisson"``).

    Parameters
    ----------
    period : {"both", 1969, 1978}, default="both"
        Which observations: the 323 of 1969, the 1066 of 1978, or all 1389. With both, the
        design has a 34th column ``period=1978``.
    as_frame : bool, default=False
        If True, also return ``frame``: the long form, one row per (region, task) with the
        attributes' levels as strings, ``period``, ``task`` and ``count``.

    Returns
    -------
    Bunch
        ``X`` and ``y`` (one entry per task, every task the same rows), ``X_shared``
        (n x 33 or n x 34, float64 0/1), ``Y`` (n x 3, float64 integer counts),
        ``task_names`` ("c-class", "m-class", "x-class"), ``feature_names``
        (``attribute=level``), ``period`` (the year of each row), ``kind`` ("regression"),
        ``loss`` ("poisson", the loss the targets call for), ``DESCR``, ``source`` (and
        ``frame`` when ``as_frame``).

    Raises
    ------
    ValueError
        If ``period`` is not "both", 1969 or 1978.

    See Also
    --------
    load_mulan : The same two files as separate sets (``"sf1"``, ``"sf2"``), read from a data
        home.

    Examples
    --------
    >>> from regmtl.datasets import load_solar_flare
    >>> data = load_solar_flare()
    >>> data.X_shared.shape, data.Y.shape, data.task_names
    ((1389, 34), (1389, 3), ['c-class', 'm-class', 'x-class'])
    >>> data.Y.sum(axis=0).astype(int).tolist(), data.loss
    ([363, 94, 13], 'poisson')
    >>> load_solar_flare(period=1969).X_shared.shape
    (323, 33)
    """
    if period not in ("both", *_PERIODS):
        raise ValueError(f"period must be 'both', 1969 or 1978, got {period!r}")
    with resources.files(__package__).joinpath("data", "solar_flare.npz").open("rb") as fh:
        with np.load(fh) as npz:
            codes, counts, years = npz["codes"], npz["counts"], npz["period"].astype(np.int64)
    rows = np.ones(len(years), dtype=bool) if period == "both" else years == period
    codes, counts, years = codes[rows], counts[rows], years[rows]
    X, features = _onehot(codes)
    if period == "both":
        X = np.column_stack([X, (years == _PERIODS[1]).astype(np.float64)])
        features.append(f"period={_PERIODS[1]}")
    bunch = shared_bunch(X, counts.astype(np.float64), task_names=list(_TARGETS),
                         feature_names=features, kind="regression", descr=_DESCR,
                         source=_SOURCE, period=years, loss="poisson")
    if as_frame:
        bunch.frame = _long_frame(codes, counts, years)
    return bunch


def _long_frame(codes: np.ndarray, counts: np.ndarray, years: np.ndarray):
    """One row per (region, task): the attributes' levels, ``period``, ``task``, ``count``."""
    import pandas as pd

    wide = pd.DataFrame({
        attribute: pd.Categorical.from_codes(codes[:, j].astype(np.int64), categories=levels)
        for j, (attribute, levels) in enumerate(SOLAR_FLARE_ATTRIBUTES.items())})
    wide["period"] = years
    parts = []
    for t, name in enumerate(_TARGETS):
        part = wide.copy()
        part["task"] = name
        part["count"] = counts[:, t].astype(np.int64)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
