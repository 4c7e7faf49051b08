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
    data_home : path-like, optional
        Folder holding ``landmine/LandmineData.mat``; by default the ``REGMTL_DATA``
        environment variable, else ``./data``.

    Returns
    -------
    Bunch
        ``X`` (29 arrays, n_t x 9), ``y`` (0/1, 1 = landmine), ``task_names``,
        ``feature_names``, ``kind`` ("binary"), ``DESCR``, ``source``.
    """
    mat = scipy.io.loadmat(find_file(FOLDER, FILE, data_home))
    Xs = list(mat["feature"].ravel())
    ys = [np.asarray(v).ravel() for v in mat["label"].ravel()]
    return task_bunch(Xs, ys, task_names=generic_names("field", len(Xs)),
                      feature_names=generic_names("feature", Xs[0].shape[1]), kind="binary",
                      descr=_DESCR, source=_SOURCE)
