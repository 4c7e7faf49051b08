"""The computer survey of Lenk et al. (1996): 190 respondents rate the same 20 computers."""

from __future__ import annotations

import os

import numpy as np
import scipy.io
from sklearn.utils import Bunch

from ._bunch import generic_names, same_rows_split, shared_bunch
from ._home import find_file

__all__ = ["load_computer_survey"]

FOLDER = "computer_survey"
FILE = "conjointAnalysisComputerBuyers.mat"

_FEATURES = ("bias", "hot_line", "ram", "screen_size", "cpu_speed", "hard_disk", "cd_rom",
             "cache", "color_of_unit", "availability", "warranty", "software", "guarantee",
             "price")

_SOURCE = ("conjointAnalysisComputerBuyers.mat of github.com/probml/pmtkdata (commit 42bc273), "
           "identical in github.com/tjanez/PyMTL data/computer_survey (commit 97dfc15); "
           "Lenk, DeSarbo, Green & Young, Marketing Science 15(2), 1996")

_DESCR = """\
Computer survey (conjoint analysis of personal computers, Lenk et al. 1996)
---------------------------------------------------------------------------

190 MBA students (tasks) each rated the same 20 computer profiles from 0 (not likely to buy) to
10 (very likely to buy). The design is shared: ``X_shared`` (20 x 14) is the same for every task,
``Y`` (20 x 190) holds the ratings. Respondent 123 gave all 20 profiles the same rating.

Features (14): a constant 1 (bias) and 13 attributes coded -1/+1: hot line, RAM, screen size,
CPU speed, hard disk, CD ROM, cache, colour of unit, availability, warranty, software,
guarantee, price.

Split: profiles 1-16 are the calibration design and 17-20 the holdout design of the survey;
``splits[0]`` is that (train, test) pair.

``task_covariates`` (190 x 7) are respondent covariates stored with the ratings; column 1 is a
constant 1. The file does not name them; their ranges fit the survey codebook's derived variables
FEMALE, NERD, USA, OWN (0/1), APPLY (0-8) and EXPERT (2-10), in that order, which is inferred.

Multi-task papers (Evgeniou et al. 2005, Argyriou et al. 2008) report 180 respondents; this file
has 190 and does not say which 180 they used.

References:
  P. J. Lenk, W. S. DeSarbo, P. E. Green, M. R. Young, "Hierarchical Bayes conjoint analysis:
  recovery of partworth heterogeneity from reduced experimental designs", Marketing Science
  15(2):173-191, 1996.
  A. Argyriou, T. Evgeniou, M. Pontil, "Convex multi-task feature learning", Machine Learning
  73(3), 2008.
"""


def load_computer_survey(data_home: str | os.PathLike[str] | None = None) -> Bunch:
    """Load the computer survey: 190 regression tasks sharing one 20 x 14 design.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``computer_survey/conjointAnalysisComputerBuyers.mat``; by default the
        ``REGMTL_DATA`` environment variable, else ``./data`` (see :func:`get_data_home`).

    Returns
    -------
    Bunch
        ``X``, ``y`` (190 tasks x 20 rows), ``X_shared`` (20 x 14), ``Y`` (20 x 190),
        ``task_names``, ``feature_names``, ``kind`` ("regression"), ``splits`` (one pair:
        profiles 1-16 / 17-20), ``task_covariates``, ``DESCR``, ``source``.

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
    >>> from regmtl.datasets import load_computer_survey
    >>> with tempfile.TemporaryDirectory() as home:  # an empty data home
    ...     try:
    ...         load_computer_survey(data_home=home)
    ...     except FileNotFoundError as exc:
    ...         print(type(exc).__name__ + ":", exc)
    FileNotFoundError: ...conjointAnalysisComputerBuyers.mat not found (data home ...,
    from the data_home argument). Put the 'computer_survey' folder in a data home
    and pass data_home=... or set REGMTL_DATA=/path/to/data.

    With the file in place, ``data = load_computer_survey()`` gives ``data.X_shared``
    (20 x 14) and ``data.Y`` (20 x 190); ``fit(data.X_shared, data.Y)`` fits all
    respondents at once.
    """
    mat = scipy.io.loadmat(find_file(FOLDER, FILE, data_home))
    X = mat["designMarix"].astype(np.float64)
    Y = mat["likeBuy"].astype(np.float64).T
    T = Y.shape[1]
    return shared_bunch(
        X, Y, task_names=generic_names("respondent", T), feature_names=_FEATURES,
        kind="regression", descr=_DESCR, source=_SOURCE,
        splits=[same_rows_split(T, np.arange(16), np.arange(16, 20))],
        task_covariates=mat["computerDataZ"].astype(np.float64),
    )
