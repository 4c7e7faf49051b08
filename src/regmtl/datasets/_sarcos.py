"""SARCOS robot-arm inverse dynamics (the GPML test file): 7 joint torques, shared inputs."""

from __future__ import annotations

import os

import scipy.io
from sklearn.utils import Bunch

from ._bunch import shared_bunch
from ._home import find_file

__all__ = ["load_sarcos"]

FOLDER = "sarcos_test_only"
FILE = "sarcos_inv_test.mat"

_FEATURES = tuple(f"{kind}_{j}" for kind in ("position", "velocity", "acceleration")
                  for j in range(1, 8))

_SOURCE = ("sarcos_inv_test.mat of github.com/trungngv/cogp data/sarcos (commit 3b07f62), same "
           "file in github.com/probml/pmtkdata (commit 1f3ffa3), from "
           "gaussianprocess.org/gpml/data; Vijayakumar & Schaal, ICML 2000; Rasmussen & "
           "Williams, GPML, 2006")

_DESCR = """\
SARCOS robot-arm inverse dynamics, test file (Vijayakumar & Schaal 2000)
------------------------------------------------------------------------

4449 states of a 7-degree-of-freedom SARCOS anthropomorphic robot arm. The 7 tasks are the 7
joint torques (standard deviations about 20.4, 14.9, 9.9, 13.8, 0.97, 1.7 and 2.6), predicted
from the same 21 inputs: ``X_shared`` (4449 x 21) and ``Y`` (4449 x 7).

Features (21, no bias): joint positions 1-7, joint velocities 1-7, joint accelerations 1-7.

This is the published test file only (sarcos_inv_test.mat); the 44484-row training file is not
read. The test rows are reported to be taken from the same trajectories as the training rows.

References:
  S. Vijayakumar, S. Schaal, "Locally weighted projection regression: an O(n) algorithm for
  incremental real time learning in high dimensional space", ICML 2000.
  C. E. Rasmussen, C. K. I. Williams, "Gaussian Processes for Machine Learning", MIT Press, 2006.
"""


def load_sarcos(data_home: str | os.PathLike[str] | None = None) -> Bunch:
    """Load the SARCOS test file: 7 regression tasks (joint torques) sharing 21 inputs.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``sarcos_test_only/sarcos_inv_test.mat``; by default the ``REGMTL_DATA``
        environment variable, else ``./data`` (see :func:`get_data_home`).

    Returns
    -------
    Bunch
        ``X``, ``y`` (7 tasks x 4449 rows), ``X_shared`` (4449 x 21), ``Y`` (4449 x 7),
        ``task_names`` ("torque_1", ...), ``feature_names``, ``kind`` ("regression"),
        ``DESCR``, ``source``.

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
    >>> from regmtl.datasets import load_sarcos
    >>> with tempfile.TemporaryDirectory() as home:  # an empty data home
    ...     try:
    ...         load_sarcos(data_home=home)
    ...     except FileNotFoundError as exc:
    ...         print(type(exc).__name__ + ":", exc)
    FileNotFoundError: ...sarcos_inv_test.mat not found (data home ...,
    from the data_home argument). Put the 'sarcos_test_only' folder in a data home
    and pass data_home=... or set REGMTL_DATA=/path/to/data.

    With the file in place, ``data = load_sarcos()`` gives ``data.X_shared`` (4449 x 21)
    and ``data.Y`` (4449 x 7); ``fit(data.X_shared, data.Y)`` fits the 7 torques.
    """
    data = scipy.io.loadmat(find_file(FOLDER, FILE, data_home))["sarcos_inv_test"]
    return shared_bunch(data[:, :21], data[:, 21:], feature_names=_FEATURES,
                        task_names=[f"torque_{j}" for j in range(1, 8)], kind="regression",
                        descr=_DESCR, source=_SOURCE)
