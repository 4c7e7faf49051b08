"""USPS and MNIST digits as 10 one-vs-rest tasks (Kang, Grauman & Sha 2011)."""

from __future__ import annotations

import os

import numpy as np
import scipy.io
from sklearn.utils import Bunch

from ._bunch import generic_names, same_rows_split, shared_bunch
from ._home import find_file

__all__ = ["load_usps", "load_mnist"]

_FILES = {
    "usps": ("usps_digits_kang", "split1_usps_1000train.mat", 64),
    "mnist": ("mnist_digits_kang", "split1_mnist_1000train.mat", 87),
}

_SOURCE = ("{file} of github.com/tjanez/PyMTL data/{name}_digits (commit 97dfc15), as provided "
           "by Kang, Grauman & Sha; Kang, Grauman & Sha, ICML 2011")

_DESCR = """\
{title} digits, one-vs-rest (Kang, Grauman & Sha 2011)
{rule}

2000 images of handwritten digits, reduced by PCA to {p} components (no bias). The 10 tasks are
one-vs-rest: task "digit_d" has y = 1 for images of digit d and 0 for the others (about 10%
positive). All tasks share the same rows: ``X_shared`` (2000 x {p}), ``Y`` (2000 x 10);
``digit`` holds each row's digit (0-9; the file codes digit d as d + 1).

Split (split 1 of the 10 random splits of Kang et al.): rows 0-999 are the training set, rows
1000-1499 the validation set and rows 1500-1999 the test set. ``splits[0]`` is (train, test)
and ``validation[0]`` the validation rows, per task.

Reference:
  Z. Kang, K. Grauman, F. Sha, "Learning with whom to share in multi-task feature learning",
  ICML 2011.
"""


def _load(name: str, data_home: str | os.PathLike[str] | None) -> Bunch:
    folder, file, p = _FILES[name]
    mat = scipy.io.loadmat(find_file(folder, file, data_home))
    parts = ("train", "valid", "test")
    X = np.vstack([mat[f"digit_{s}x"] for s in parts])
    digit = np.concatenate([mat[f"digit_{s}y"].ravel() for s in parts]).astype(np.int64) - 1
    Y = (digit[:, None] == np.arange(10)[None, :]).astype(np.float64)
    train, valid, test = np.arange(1000), np.arange(1000, 1500), np.arange(1500, 2000)
    title = name.upper()
    return shared_bunch(
        X, Y, task_names=[f"digit_{d}" for d in range(10)],
        feature_names=generic_names("pc", X.shape[1]), kind="binary",
        descr=_DESCR.format(title=title, rule="-" * (len(title) + 47), p=p),
        source=_SOURCE.format(file=file, name=name), splits=[same_rows_split(10, train, test)],
        validation=[same_rows_split(10, valid, valid)[0]], digit=digit,
    )


def load_usps(data_home: str | os.PathLike[str] | None = None) -> Bunch:
    """Load USPS digits: 10 one-vs-rest binary tasks sharing 2000 rows of 64 PCA features.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``usps_digits_kang/split1_usps_1000train.mat``; by default the
        ``REGMTL_DATA`` environment variable, else ``./data`` (see :func:`get_data_home`).

    Returns
    -------
    Bunch
        ``X``, ``y`` (10 tasks x 2000 rows, y in {0, 1}), ``X_shared``, ``Y``, ``digit``,
        ``task_names``, ``feature_names``, ``kind`` ("binary"), ``splits`` (one pair: 1000
        train / 500 test rows), ``validation`` (500 rows), ``DESCR``, ``source``.

    Raises
    ------
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
    >>> from regmtl.datasets import load_usps
    >>> with tempfile.TemporaryDirectory() as home:  # an empty data home
    ...     try:
    ...         load_usps(data_home=home)
    ...     except FileNotFoundError as exc:
    ...         print(type(exc).__name__ + ":", exc)
    FileNotFoundError: ...split1_usps_1000train.mat not found (data home ...,
    from the data_home argument). Put the 'usps_digits_kang' folder in a data home
    and pass data_home=... or set REGMTL_DATA=/path/to/data.

    With the file in place, ``data = load_usps()`` gives ``data.X_shared`` (2000 x 64)
    and ``data.Y`` (2000 x 10, one 0/1 column per digit); ``apply_split(data.X, data.y,
    data.splits[0])`` cuts the published train and test rows.
    """
    return _load("usps", data_home)


def load_mnist(data_home: str | os.PathLike[str] | None = None) -> Bunch:
    """Load MNIST digits: 10 one-vs-rest binary tasks sharing 2000 rows of 87 PCA features.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``mnist_digits_kang/split1_mnist_1000train.mat``; by default the
        ``REGMTL_DATA`` environment variable, else ``./data`` (see :func:`get_data_home`).

    Returns
    -------
    Bunch
        As :func:`load_usps`, with 87 features.

    Raises
    ------
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
    >>> from regmtl.datasets import load_mnist
    >>> with tempfile.TemporaryDirectory() as home:  # an empty data home
    ...     try:
    ...         load_mnist(data_home=home)
    ...     except FileNotFoundError as exc:
    ...         print(type(exc).__name__ + ":", exc)
    FileNotFoundError: ...split1_mnist_1000train.mat not found (data home ...,
    from the data_home argument). Put the 'mnist_digits_kang' folder in a data home
    and pass data_home=... or set REGMTL_DATA=/path/to/data.

    With the file in place, ``data = load_mnist()`` gives ``data.X_shared`` (2000 x 87)
    and ``data.Y`` (2000 x 10, one 0/1 column per digit).
    """
    return _load("mnist", data_home)
