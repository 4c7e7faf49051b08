"""The School data set (ILEA exam scores, 139 schools), shipped with the package."""

from __future__ import annotations

from importlib import resources

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_school", "SCHOOL_FEATURE_NAMES"]

Split = tuple[list[np.ndarray], list[np.ndarray]]

_ETHNIC = ("eswi", "african", "arab", "bangladeshi", "caribbean", "greek", "indian",
           "pakistani", "se_asian", "turkish", "other")

#: Names of the 28 columns of ``load_school().X[t]``.
SCHOOL_FEATURE_NAMES: tuple[str, ...] = (
    "year_1985", "year_1986", "year_1987",
    "pct_free_school_meals", "pct_vr1_band",
    "female", "male",
    "vr_band_3", "vr_band_1", "vr_band_2",
    *(f"ethnic_{e}" for e in _ETHNIC),
    "school_mixed", "school_boys", "school_girls",
    "school_maintained", "school_church_of_england", "school_roman_catholic",
    "bias",
)

_SOURCE = ("MALSAR data/school.mat (github.com/jiayuzhou/MALSAR, commit fb97515); "
           "splits: school_{1..10}_indexes.mat of Argyriou, Evgeniou & Pontil (2008) as kept in "
           "github.com/tjanez/PyMTL data/school (commit 97dfc15); ILEA data of Goldstein (1991)")

_DESCR = """\
School data set (Inner London Education Authority exam scores)
---------------------------------------------------------------

Examination records of 15362 students from 139 London secondary schools in 1985, 1986 and 1987
(a random 50% sample). Each school is a task (22 to 251 students); the target is the student's
exam score (integer, 1 to 70).

Features (28 columns, see ``feature_names``):
  0-2    exam year, one-hot (1985, 1986, 1987)
  3      % of the school's students eligible for free school meals
  4      % of the school's students in verbal-reasoning (VR) band 1
  5-6    student gender (female, male)
  7-9    student VR band, in the order of the original codes (VR3=1, VR1=2, VR2=3);
         15 students have none of the three
  10-20  student ethnic group (ESWI, African, Arab, Bangladeshi, Caribbean, Greek, Indian,
         Pakistani, S.E. Asian, Turkish, other); ESWI = born in England, Scotland, Wales or Ireland
  21-23  school gender (mixed, boys, girls)
  24-26  school denomination (maintained, Church of England, Roman Catholic)
  27     constant 1 (bias)

The distributed files do not name the dummy columns; the names above are read off the data.
Each group sums to one per row; columns 21-26 are constant within a school; within each group the
columns follow the order of the original codes (ethnic group: ESWI is the 63% majority; VR band:
column 8 correlates with column 4 and has the highest mean score, column 7 the lowest). Gender is
the exception: column 5 is 1 for every student of the column-23 schools and column 6 for every
student of the column-22 schools, so if the school-gender columns follow the code order
(mixed, boys, girls), column 5 is female and column 6 male. This reading also gives girls, and
girls' schools, the higher mean score. Treat the gender labels as inferred.

Splits: ``splits`` holds the 10 fixed train/test splits of Argyriou, Evgeniou & Pontil (2008),
also used by Evgeniou, Micchelli & Pontil (2005): in each, 11472 training and 3890 test rows
(about 75/25 within every school, at least 16 training and 6 test rows per school). Use them with
``apply_split(X, y, splits[i])``.

Source: data/school.mat of MALSAR (J. Zhou, J. Chen, J. Ye, 2011), numerically identical to
school_b.mat of Argyriou, Evgeniou & Pontil (2008).

References:
  H. Goldstein, "Multilevel modelling of survey data", The Statistician 40:235-244, 1991.
  T. Evgeniou, C. A. Micchelli, M. Pontil, "Learning multiple tasks with kernel methods",
  JMLR 6, 2005.
  A. Argyriou, T. Evgeniou, M. Pontil, "Convex multi-task feature learning", Machine Learning
  73(3), 2008.
"""


def load_school(*, as_frame: bool = False) -> Bunch:
    """Load the School data set: 139 regression tasks (schools) with 28 features each.

    Parameters
    ----------
    as_frame : bool, default=False
        If True, ``X`` holds one pandas DataFrame per task, ``y`` one Series per task, and
        ``frame`` is the long form: all rows with the features, ``school`` and ``score``.

    Returns
    -------
    Bunch
        ``X`` (list of float64 arrays, n_t x 28; column 27 is a constant 1), ``y`` (list of
        float64 arrays), ``task_names`` ("school_001", ...), ``feature_names``,
        ``kind`` ("regression"), ``splits``, ``DESCR``, ``source`` (and ``frame`` when
        ``as_frame``). ``splits`` is a list of the 10 fixed ``(train, test)`` splits; ``train[t]``
        and ``test[t]`` are integer positions into task ``t``'s rows (``X[t][train[t]]``).

    See Also
    --------
    apply_split : Cuts the tasks by one of the ``splits``.

    Notes
    -----
    ``DESCR`` describes the features, the splits, the sources and the references. The
    literature reports the explained variance of the test rows pooled over schools, see
    :func:`regmtl.metrics.explained_variance`.

    Examples
    --------
    >>> from regmtl.datasets import load_school
    >>> data = load_school()
    >>> len(data.X), data.X[0].shape, data.task_names[0]
    (139, (200, 28), 'school_001')
    >>> sum(len(y) for y in data.y), len(data.splits)
    (15362, 10)

    The long form, with pandas:

    >>> frame = load_school(as_frame=True).frame
    >>> frame.shape, frame.columns[-2:].tolist()
    ((15362, 30), ['school', 'score'])
    """
    with resources.files(__package__).joinpath("data", "school.npz").open("rb") as fh:
        with np.load(fh) as npz:
            X = npz["X"].astype(np.float64)
            y = npz["y"].astype(np.float64)
            indptr = npz["indptr"]
    T = len(indptr) - 1
    Xs = [X[indptr[t]:indptr[t + 1]] for t in range(T)]
    ys = [y[indptr[t]:indptr[t + 1]] for t in range(T)]
    names = [f"school_{t + 1:03d}" for t in range(T)]
    features = list(SCHOOL_FEATURE_NAMES)
    bunch = Bunch(X=Xs, y=ys, task_names=names, feature_names=features, kind="regression",
                  splits=_fixed_splits(), DESCR=_DESCR, source=_SOURCE)
    if as_frame:
        import pandas as pd

        frame = pd.DataFrame(X, columns=features)
        frame["school"] = np.repeat(names, np.diff(indptr))
        frame["score"] = y
        bunch.frame = frame
        bunch.X = [frame.iloc[indptr[t]:indptr[t + 1]][features].reset_index(drop=True)
                   for t in range(T)]
        bunch.y = [frame["score"].iloc[indptr[t]:indptr[t + 1]].reset_index(drop=True)
                   for t in range(T)]
    return bunch


def _fixed_splits() -> list[Split]:
    """The 10 train/test splits of Argyriou et al., as positions within each school's rows."""
    with resources.files(__package__).joinpath("data", "school_splits.npz").open("rb") as fh:
        with np.load(fh) as npz:
            parts = {k: npz[k] for k in ("train", "train_indptr", "test", "test_indptr")}
    splits = []
    for i in range(parts["train"].shape[0]):
        pair = []
        for name in ("train", "test"):
            idx = parts[name][i].astype(np.intp)
            ptr = parts[f"{name}_indptr"][i].astype(np.intp)
            pair.append([idx[ptr[t]:ptr[t + 1]] for t in range(len(ptr) - 1)])
        splits.append((pair[0], pair[1]))
    return splits
