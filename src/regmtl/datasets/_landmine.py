"""The landmine detection data of Xue et al. (2007): 29 minefields."""

from __future__ import annotations

import os

import numpy as np
import scipy.io
from sklearn.utils import Bunch

from ._bunch import generic_names, task_bunch
from ._home import find_file

__all__ = ["load_landmine"]

FOLDER = "landmine"
FILE = "LandmineData.mat"

_SOURCE = ("LandmineData.mat of github.com/daizhongxiang/Federated_Bayesian_Optimization "
           "(commit 30a4548), same file in github.com/JingxiXu/humble-peer-amtl (commit f425116); "
           "Xue, Liao, Carin & Krishnapuram, JMLR 8, 2007")

_DESCR = """\
Landmine detection (Xue et al. 2007)
------------------------------------

Radar images of 29 minefields (tasks); each row is a candidate object, labelled 1 (landmine) or
0 (clutter). 14820 rows (445 to 690 per field), 904 of them positive (6.1%; 2.9% to 9.4% per
field). Fields 1-15 are from highly foliated regions, 16-29 from bare earth or desert.

Features (9, no bias): four moment-based, three correlation-based, one energy-ratio and one
spatial-variance feature of the radar image (Xue et al.); the file does not name the columns.

The usual score is the area under the ROC curve per field, averaged over fields.

Reference:
  Y. Xue, X. Liao, L. Carin, B. Krishnapuram, "Multi-task learning for classification with
  Dirichlet process priors", JMLR 8:35-63, 2007.
"""


def load_landmine(data_home: str | os.PathLike[str] | None = None) -> Bunch:
    """Load the landmine data: 29 binary tasks (minefields) with 9 features.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``landmine/LandmineData.mat``; by default the ``REGMTL_DATA``
        environment variable, else ``./data`` (see :func:`get_data_home`).

    Returns
    -------
    Bunch
        ``X`` (29 arrays, n_t x 9), ``y`` (0/1, 1 = landmine), ``task_names``,
        ``feature_names``, ``kind`` ("binary"), ``DESCR``, ``source``.

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
    >>> from regmtl.datasets import load_landmine
    >>> with tempfile.TemporaryDirectory() as home:  # an empty data home
    ...     try:
    ...         load_landmine(data_home=home)
    ...     except FileNotFoundError as exc:
    ...         print(type(exc).__name__ + ":", exc)
    FileNotFoundError: ...LandmineData.mat not found (data home ...,
    from the data_home argument). Put the 'landmine' folder in a data home
    and pass data_home=... or set REGMTL_DATA=/path/to/data.

    With the file in place, ``data = load_landmine()`` gives ``data.X`` (29 arrays of 9
    features) and ``data.y`` (0/1); score with :func:`regmtl.metrics.auc`.
    """
    mat = scipy.io.loadmat(find_file(FOLDER, FILE, data_home))
    Xs = list(mat["feature"].ravel())
    ys = [np.asarray(v).ravel() for v in mat["label"].ravel()]
    return task_bunch(Xs, ys, task_names=generic_names("field", len(Xs)),
                      feature_names=generic_names("feature", Xs[0].shape[1]), kind="binary",
                      descr=_DESCR, source=_SOURCE)
