"""Sparse bag-of-words sets: ECML 2006 spam (15 users) and two 20 Newsgroups pairs."""

from __future__ import annotations

import os

import numpy as np
import scipy.io
from sklearn.utils import Bunch

from ._bunch import generic_names, task_bunch
from ._home import find_file

__all__ = ["load_spam", "load_newsgroups", "NEWSGROUP_PAIRS"]

#: The two pairs of ``load_newsgroups``.
NEWSGROUP_PAIRS = ("comp.vs.sci", "rec.vs.talk")

_SPAM_SOURCE = ("emails.mat of github.com/JingxiXu/humble-peer-amtl (commit f425116); "
                "Bickel, ECML/PKDD Discovery Challenge 2006; Murugesan & Carbonell, NIPS 2017")

_SPAM_DESCR = """\
Spam filtering, 15 users (ECML/PKDD 2006 Discovery Challenge, task B)
---------------------------------------------------------------------

The inboxes of 15 users (tasks), 400 emails each (6000 rows), each labelled 0 or 1 with exactly
200 of each per user. The file does not say which label is spam. ``X`` holds sparse CSR
matrices of term counts over a 152543-word vocabulary (37120 words occur at least once; the file
does not hold the words, so the names are generic); no bias.

References:
  S. Bickel, "ECML-PKDD Discovery Challenge 2006 overview", Proc. ECML/PKDD Discovery Challenge
  Workshop, 2006.
  K. Murugesan, J. Carbonell, "Active learning from peers", NIPS 2017 (this 15 x 400 form).
"""

_NEWS_SOURCE = ("data/Newsgroup/{pair} of github.com/jiayuzhou/MALSAR (commit fb97515); "
                "Lang, ICML 1995; Gu & Zhou, ICDM 2009")

_NEWS_DESCR = """\
20 Newsgroups, {pair} (MALSAR; Gu & Zhou 2009)
{rule}

Two tasks, each a binary problem between two top-level categories ({a} vs {b}) drawn from
different sub-newsgroups, so the tasks are related but not identical. {n1} and {n2} documents;
``X`` holds sparse CSR matrices of term counts over a 2000-word vocabulary (the file does not
hold the words, so the names are generic); no bias. y = 0 / 1 for the file's labels 1 / 2, which
the file does not name (presumably {a} / {b}).

References:
  K. Lang, "NewsWeeder: learning to filter netnews", ICML 1995.
  Q. Gu, J. Zhou, "Learning the shared subspace for multi-task clustering and transductive
  transfer classification", ICDM 2009.
"""


def load_spam(data_home: str | os.PathLike[str] | None = None) -> Bunch:
    """Load the ECML 2006 spam data: 15 binary tasks (users), 400 sparse rows each.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``spam_ecml2006_15users/emails.mat``; by default the ``REGMTL_DATA``
        environment variable, else ``./data`` (see :func:`get_data_home`).

    Returns
    -------
    Bunch
        ``X`` (15 CSR matrices, 400 x 152543), ``y`` (0/1), ``task_names`` ("user_01", ...),
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
    >>> from regmtl.datasets import load_spam
    >>> with tempfile.TemporaryDirectory() as home:  # an empty data home
    ...     try:
    ...         load_spam(data_home=home)
    ...     except FileNotFoundError as exc:
    ...         print(type(exc).__name__ + ":", exc)
    FileNotFoundError: ...emails.mat not found (data home ...,
    from the data_home argument). Put the 'spam_ecml2006_15users' folder in a data home
    and pass data_home=... or set REGMTL_DATA=/path/to/data.

    With the file in place, ``data = load_spam()`` gives ``data.X`` (15 sparse CSR
    matrices of term counts) and ``data.y`` (0/1).
    """
    mat = scipy.io.loadmat(find_file("spam_ecml2006_15users", "emails.mat", data_home))
    Xs = list(mat["X"].ravel())
    ys = [np.asarray(v).ravel() for v in mat["Y"].ravel()]
    return task_bunch(Xs, ys, task_names=generic_names("user", len(Xs)),
                      feature_names=generic_names("term", Xs[0].shape[1]), kind="binary",
                      descr=_SPAM_DESCR, source=_SPAM_SOURCE)


def load_newsgroups(pair: str = "comp.vs.sci",
                    data_home: str | os.PathLike[str] | None = None) -> Bunch:
    """Load one 20 Newsgroups pair: 2 binary tasks with 2000 sparse term-count features.

    Parameters
    ----------
    pair : {"comp.vs.sci", "rec.vs.talk"}, default="comp.vs.sci"
        Which pair of top-level categories (``NEWSGROUP_PAIRS``).
    data_home : str or path-like, default=None
        Folder holding ``newsgroup_malsar/<pair>/task1.mat`` and ``task2.mat`` (either case);
        by default the ``REGMTL_DATA`` environment variable, else ``./data`` (see
        :func:`get_data_home`).

    Returns
    -------
    Bunch
        ``X`` (2 CSR matrices, n_t x 2000), ``y`` (0/1), ``task_names`` ("task_1", "task_2"),
        ``feature_names``, ``kind`` ("binary"), ``DESCR``, ``source``.

    Raises
    ------
    ValueError
        If ``pair`` is unknown.
    FileNotFoundError
        If a file is not under the data home; the message names the path and how to set
        the data home.

    See Also
    --------
    list_datasets : Which data sets are at hand, and where they are looked for.
    get_data_home : Where the data home is.

    Examples
    --------
    The files are not shipped with regmtl; without them, the loader says where to put them:

    >>> import tempfile
    >>> from regmtl.datasets import load_newsgroups
    >>> with tempfile.TemporaryDirectory() as home:  # an empty data home
    ...     try:
    ...         load_newsgroups("rec.vs.talk", data_home=home)
    ...     except FileNotFoundError as exc:
    ...         print(type(exc).__name__ + ":", exc)
    FileNotFoundError: ...task1.mat not found (data home ...,
    from the data_home argument). Put the 'newsgroup_malsar/rec.vs.talk' folder in a data home
    and pass data_home=... or set REGMTL_DATA=/path/to/data.

    With the files in place, ``data = load_newsgroups("rec.vs.talk")`` gives ``data.X``
    (2 sparse CSR matrices of 2000 term counts) and ``data.y`` (0/1).
    """
    if pair not in NEWSGROUP_PAIRS:
        raise ValueError(f"pair must be one of {NEWSGROUP_PAIRS}, got {pair!r}")
    Xs, ys = [], []
    for t in (1, 2):
        path = find_file(f"newsgroup_malsar/{pair}", f"task{t}.mat", data_home, ignore_case=True)
        mat = scipy.io.loadmat(path)
        Xs.append(mat["fea"])
        ys.append(mat["gnd"].ravel().astype(np.float64) - 1.0)
    a, b = pair.split(".vs.")
    title = f"20 Newsgroups, {pair} (MALSAR; Gu & Zhou 2009)"
    descr = _NEWS_DESCR.format(pair=pair, rule="-" * len(title), a=a, b=b,
                               n1=Xs[0].shape[0], n2=Xs[1].shape[0])
    return task_bunch(Xs, ys, task_names=["task_1", "task_2"],
                      feature_names=generic_names("word", Xs[0].shape[1]), kind="binary",
                      descr=descr, source=_NEWS_SOURCE.format(pair=pair))
