"""The table of data sets regmtl can load, and which of them are at hand."""

from __future__ import annotations

import os
from typing import NamedTuple

from .._lazy import lazy_module
from ._home import find_file, get_data_home

pd = lazy_module("pandas")

__all__ = ["list_datasets", "load_dataset", "DATASET_NAMES"]


class _Entry(NamedTuple):
    name: str
    loader: str
    tasks: int
    samples: int
    features: int
    kind: str
    design: str
    folder: str | None  # None: shipped with regmtl
    files: tuple[str, ...]
    source: str


_MALSAR = "jiayuzhou/MALSAR@fb97515"
_PYMTL = "tjanez/PyMTL@97dfc15"
_MULAN = "tsoumakas/mulan@43f6389"

# name, tasks, samples (rows), features as loaded (sf1/sf2: nominal attributes one-hot)
_MULAN_SIZES = (
    ("andro", 6, 49, 30), ("atp1d", 6, 337, 411), ("atp7d", 6, 296, 411), ("edm", 2, 154, 16),
    ("enb", 2, 768, 8), ("jura", 3, 359, 15), ("oes10", 16, 403, 298), ("oes97", 16, 334, 263),
    ("osales", 12, 639, 401), ("scpf", 3, 1137, 23), ("sf1", 3, 323, 33), ("sf2", 3, 1066, 33),
    ("slump", 3, 103, 7), ("wq", 14, 1060, 16),
)

_ENTRIES: tuple[_Entry, ...] = (
    _Entry("school", "load_school()", 139, 15362, 28, "regression", "per task", None, (),
           f"{_MALSAR}; splits {_PYMTL}"),
    _Entry("solar_flare", "load_solar_flare()", 3, 1389, 34, "regression", "shared", None, (),
           f"UCI Solar Flare (CC BY 4.0) via {_MULAN}"),
    _Entry("computer_survey", "load_computer_survey()", 190, 20, 14, "regression", "shared",
           "computer_survey", ("conjointAnalysisComputerBuyers.mat",),
           "probml/pmtkdata@42bc273"),
    _Entry("landmine", "load_landmine()", 29, 14820, 9, "binary", "per task", "landmine",
           ("LandmineData.mat",), "daizhongxiang/Federated_Bayesian_Optimization@30a4548"),
    _Entry("parkinsons", "load_parkinsons()", 42, 5875, 19, "regression", "per task",
           "parkinsons_telemonitoring", ("parkinsons_updrs.data",),
           "behnazrzf/Parkinson-s_Telemonitoring@f603774"),
    _Entry("sarcos", "load_sarcos()", 7, 4449, 21, "regression", "shared", "sarcos_test_only",
           ("sarcos_inv_test.mat",), "trungngv/cogp@3b07f62"),
    _Entry("usps", "load_usps()", 10, 2000, 64, "binary", "shared", "usps_digits_kang",
           ("split1_usps_1000train.mat",), _PYMTL),
    _Entry("mnist", "load_mnist()", 10, 2000, 87, "binary", "shared", "mnist_digits_kang",
           ("split1_mnist_1000train.mat",), _PYMTL),
    _Entry("spam", "load_spam()", 15, 6000, 152543, "binary", "per task (sparse)",
           "spam_ecml2006_15users", ("emails.mat",), "JingxiXu/humble-peer-amtl@f425116"),
    _Entry("newsgroups/comp.vs.sci", "load_newsgroups('comp.vs.sci')", 2, 3702, 2000, "binary",
           "per task (sparse)", "newsgroup_malsar/comp.vs.sci", ("task1.mat", "task2.mat"),
           _MALSAR),
    _Entry("newsgroups/rec.vs.talk", "load_newsgroups('rec.vs.talk')", 2, 3389, 2000, "binary",
           "per task (sparse)", "newsgroup_malsar/rec.vs.talk", ("task1.mat", "task2.mat"),
           _MALSAR),
    *(_Entry(f"mulan/{name}", f"load_mulan('{name}')", tasks, n, p, "regression", "shared",
             "mulan_mtr", (f"{name}.arff",), _MULAN)
      for name, tasks, n, p in _MULAN_SIZES),
)


def _available(entry: _Entry, data_home: str | os.PathLike[str] | None) -> bool:
    if entry.folder is None:
        return True
    try:
        for file in entry.files:
            find_file(entry.folder, file, data_home, ignore_case=True)
    except FileNotFoundError:
        return False
    return True


def list_datasets(data_home: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The data sets regmtl can load, one row each, and whether each is at hand.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Where to look for the data sets that are not shipped; by default the ``REGMTL_DATA``
        environment variable, else ``./data`` (see :func:`get_data_home`).

    Returns
    -------
    DataFrame
        Columns ``name``, ``loader`` (the call that loads it), ``tasks``, ``samples`` (rows; for
        a shared design the rows every task shares), ``features`` (as loaded), ``kind``,
        ``design`` ("per task" or "shared"), ``shipped`` (inside regmtl), ``available`` (shipped
        or its files are under the data home), ``path`` (where it is looked for) and ``source``
        (repository@commit).

    See Also
    --------
    load_dataset : Loads one by its name.

    Examples
    --------
    >>> from regmtl.datasets import list_datasets
    >>> table = list_datasets()
    >>> print(table[["name", "tasks", "samples", "features", "kind", "shipped"]].head(4)
    ...       .to_string(index=False))
               name  tasks  samples  features       kind  shipped
             school    139    15362        28 regression     True
        solar_flare      3     1389        34 regression     True
    computer_survey    190       20        14 regression    False
           landmine     29    14820         9     binary    False
    >>> table.loc[table["name"] == "school", "available"].item()
    True
    """
    home = get_data_home(data_home)
    rows = [{
        "name": e.name, "loader": e.loader, "tasks": e.tasks, "samples": e.samples,
        "features": e.features, "kind": e.kind, "design": e.design,
        "shipped": e.folder is None, "available": _available(e, data_home),
        "path": "(in regmtl)" if e.folder is None else str(home / e.folder), "source": e.source,
    } for e in _ENTRIES]
    return pd.DataFrame(rows)


#: Names accepted by :func:`load_dataset` (and ``regmtl compare NAME``).
DATASET_NAMES: tuple[str, ...] = tuple(e.name for e in _ENTRIES)


def load_dataset(name: str, data_home: str | os.PathLike[str] | None = None, **kwargs):
    """Load a data set by its name in :func:`~regmtl.datasets.list_datasets`.

    Parameters
    ----------
    name : str
        One of ``DATASET_NAMES`` (the ``name`` column of :func:`list_datasets`), e.g.
        ``"school"``, ``"landmine"``, ``"newsgroups/rec.vs.talk"``, ``"mulan/enb"``; case is
        ignored.
    data_home : str or path-like, default=None
        Where the data sets that are not shipped are read from (see :func:`get_data_home`);
        not used for the shipped sets (School, Solar Flare).
    **kwargs
        Passed to the loader (e.g. ``as_frame=True`` for School, ``target=`` for Parkinson's,
        ``missing=`` for Mulan).

    Returns
    -------
    Bunch
        What the loader returns: ``X`` and ``y`` (one entry per task), ``task_names``,
        ``feature_names``, ``kind``, ``DESCR``, ``source``, and the set's extras.

    Raises
    ------
    ValueError
        If ``name`` is unknown.
    FileNotFoundError
        If the set's files are not under the data home.

    See Also
    --------
    list_datasets : The names, sizes and availability of the data sets.

    Examples
    --------
    >>> from regmtl.datasets import load_dataset
    >>> data = load_dataset("school")
    >>> len(data.X), data.X[0].shape, data.kind
    (139, (200, 28), 'regression')
    """
    from . import (
        _digits,
        _landmine,
        _mulan,
        _parkinsons,
        _sarcos,
        _school,
        _solar_flare,
        _survey,
        _text,
    )

    key = str(name).lower()
    if key not in DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATASET_NAMES)} "
                         "(regmtl datasets lists them).")
    if key == "school":
        return _school.load_school(**kwargs)
    if key == "solar_flare":
        return _solar_flare.load_solar_flare(**kwargs)
    if key.startswith("newsgroups/"):
        return _text.load_newsgroups(key.split("/", 1)[1], data_home=data_home, **kwargs)
    if key.startswith("mulan/"):
        return _mulan.load_mulan(key.split("/", 1)[1], data_home=data_home, **kwargs)
    loaders = {"computer_survey": _survey.load_computer_survey,
               "landmine": _landmine.load_landmine, "parkinsons": _parkinsons.load_parkinsons,
               "sarcos": _sarcos.load_sarcos, "usps": _digits.load_usps,
               "mnist": _digits.load_mnist, "spam": _text.load_spam}
    return loaders[key](data_home=data_home, **kwargs)
