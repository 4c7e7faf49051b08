"""Parkinson's telemonitoring (Tsanas et al. 2010): one task per patient."""

from __future__ import annotations

import os

import numpy as np
from sklearn.utils import Bunch

from .._lazy import lazy_module
from ._bunch import task_bunch
from ._home import find_file

pd = lazy_module("pandas")

__all__ = ["load_parkinsons"]

FOLDER = "parkinsons_telemonitoring"
FILE = "parkinsons_updrs.data"
TARGETS = ("motor_UPDRS", "total_UPDRS")

_SOURCE = ("parkinsons_updrs.data of github.com/behnazrzf/Parkinson-s_Telemonitoring "
           "(commit f603774), the UCI Parkinsons Telemonitoring file; Tsanas, Little, McSharry "
           "& Ramig, IEEE Trans. Biomedical Engineering 57(4), 2010")

_DESCR = """\
Parkinson's telemonitoring (UCI; Tsanas et al. 2010)
----------------------------------------------------

5875 voice recordings of 42 people with early-stage Parkinson's disease, made at home over a
six-month trial. Each patient is a task (101 to 168 recordings). The target is the clinician's
{target} score (linearly interpolated between visits; motor_UPDRS 5.04 to 39.51,
total_UPDRS 7 to 54.99); the other UPDRS score is left out of the features.

Features (19, no bias): age, sex (0 = male, 1 = female), test_time (days since recruitment),
and 16 voice measures: Jitter(%), Jitter(Abs), Jitter:RAP, Jitter:PPQ5, Jitter:DDP (variation
in fundamental frequency), Shimmer, Shimmer(dB), Shimmer:APQ3, Shimmer:APQ5, Shimmer:APQ11,
Shimmer:DDA (variation in amplitude), NHR, HNR (noise to tonal ratios), RPDE, DFA, PPE. Age and
sex are constant within a task.

Reference:
  A. Tsanas, M. A. Little, P. E. McSharry, L. O. Ramig, "Accurate telemonitoring of Parkinson's
  disease progression by non-invasive speech tests", IEEE Transactions on Biomedical
  Engineering 57(4):884-893, 2010.
"""


def load_parkinsons(data_home: str | os.PathLike[str] | None = None, *,
                    target: str = "motor_UPDRS") -> Bunch:
    """Load Parkinson's telemonitoring: 42 regression tasks (patients) with 19 features.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``parkinsons_telemonitoring/parkinsons_updrs.data``; by default the
        ``REGMTL_DATA`` environment variable, else ``./data`` (see :func:`get_data_home`).
    target : {"motor_UPDRS", "total_UPDRS"}, default="motor_UPDRS"
        The score to predict.

    Returns
    -------
    Bunch
        ``X`` (42 arrays, n_t x 19), ``y``, ``task_names`` ("patient_01", ...),
        ``feature_names``, ``kind`` ("regression"), ``target``, ``DESCR``, ``source``.

    Raises
    ------
    ValueError
        If ``target`` is not one of the two scores.
    FileNotFoundError
        If the file is not under the data home; the message names the path and how to set
        the data home.

    See Also
    --------
    list_datasets : Which data sets are at hand, and where they are looked for.
    get_data_home : Where the data home is.

    Examples
    --------
    The file is not shipped with regmtl; without it, the loader says where to put it:

    >>> import tempfile
    >>> from regmtl.datasets import load_parkinsons
    >>> with tempfile.TemporaryDirectory() as home:  # an empty data home
    ...     try:
    ...         load_parkinsons(data_home=home, target="total_UPDRS")
    ...     except FileNotFoundError as exc:
    ...         print(type(exc).__name__ + ":", exc)
    FileNotFoundError: ...parkinsons_updrs.data not found (data home ..., from the data_home
    argument). Put the 'parkinsons_telemonitoring' folder in a data home and pass
    data_home=... or set REGMTL_DATA=/path/to/data.

    With the file in place, ``data = load_parkinsons()`` gives ``data.X`` (42 arrays of 19
    features) and ``data.y`` (the motor UPDRS score).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    frame = pd.read_csv(find_file(FOLDER, FILE, data_home))
    features = [c for c in frame.columns if c not in ("subject#", *TARGETS)]
    subjects = np.unique(frame["subject#"].to_numpy())
    groups = [frame[frame["subject#"] == s] for s in subjects]
    return task_bunch(
        [g[features].to_numpy() for g in groups], [g[target].to_numpy() for g in groups],
        task_names=[f"patient_{s:02d}" for s in subjects], feature_names=features,
        kind="regression", descr=_DESCR.format(target=target), source=_SOURCE, target=target,
    )
