r"""Rows of an image, a text and a table, three tasks each needing a different one.

:func:`make_multimodal_tasks` joins scikit-learn's real handwritten digits (8 x 8, shipped with
scikit-learn, so it works offline) with a short product text and a table column per digit, and
sets three tasks that each read a different modality; some rows miss their text or their
image. It is what :class:`regmtl.deep.Modalities` is for, built so that the answer is known:
a net that reads one modality only cannot learn the tasks of the others.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from ._checks import RandomState, as_rng, check_open_unit

__all__ = ["make_multimodal_tasks", "MULTIMODAL_KINDS", "COLOURS"]

#: the three tasks and their kinds, in order
MULTIMODAL_KINDS = {"parity": "classification", "colour": "classification",
                    "value": "regression"}
#: the ``parity`` task's classes (the digit modulo 2: 0, 1)
PARITIES = ("even", "odd")
#: the colour words a text names (one per text), the ``colour`` task's classes
COLOURS = ("red", "green", "blue", "yellow")
#: the other words of a text (two before the colour, two after, drawn with replacement)
FILLER = ("box", "small", "lamp", "the", "a", "old", "new", "shiny", "round", "one", "big")
#: the largest value of a pixel of scikit-learn's digits
_PIXEL_MAX = 16.0
#: the ink's weight in the ``value`` task
INK_WEIGHT = 5.0


def make_multimodal_tasks(*, missing_text: float = 0.2, missing_image: float = 0.1,
                          test_size: float = 0.2, random_state: RandomState = 0) -> Bunch:
    r"""Three tasks on rows of a digit image, a text and a table column, some rows missing
    their text or image (the long form: each sample once per task).

    For each of scikit-learn's 1,797 digits :math:`i` (:func:`sklearn.datasets.load_digits`,
    pixels scaled to [0, 1]):

    - a **text** of five words, a colour :math:`c_i` drawn uniformly from ``COLOURS`` in the
      middle, two ``FILLER`` words on each side ("old box blue the round");
    - a **table** column :math:`u_i \sim N(0, 1)`;
    - three **tasks**: ``parity``, "even" or "odd" (from the image); ``colour``,
      :math:`c_i` (from the text); ``value``, :math:`5 \bar{x}_i + u_i` with
      :math:`\bar{x}_i` the image's mean pixel (from the image and the table together).

    Each sample appears once per task (5,391 rows, a ``task`` per row). Each row then loses
    its text with probability ``missing_text`` (None) and, independently, its image with
    probability ``missing_image`` (every pixel NaN); the table is never missing, so every row
    has a modality. The samples (not the rows) are split into training and test: the rows
    of a test sample are all in ``test``.

    A row without its text can only guess its colour (one in four), so a model's colour
    accuracy over all rows is at most about :math:`1 - 0.75\,\text{missing\_text}`; over the
    rows with a text it can be 1.

    Parameters
    ----------
    missing_text, missing_image : float in [0, 1), default=0.2 and 0.1
        The probability that a row misses its text, its image.
    test_size : float in (0, 1), default=0.2
        The fraction of the samples whose rows are test rows.
    random_state : int, numpy Generator, RandomState or None, default=0
        Seeds the texts, the table, the missing rows and the split (in that order).

    Returns
    -------
    Bunch
        ``image`` (N, 8, 8) float64, NaN rows where missing; ``text`` (list of N str or None);
        ``table`` (N, 1) float64; ``y`` (N,) object: "even" / "odd", colour names, values;
        ``task`` (N,) str; ``kinds`` (``MULTIMODAL_KINDS``); ``train`` and ``test`` (row
        indices); ``missing_text`` and ``missing_image`` (bool (N,)); ``sample`` (N,) the
        digit of each row (its position in ``load_digits()``); ``source``, ``DESCR``.

    Raises
    ------
    ValueError
        If a probability is outside [0, 1) or ``test_size`` outside (0, 1).

    Examples
    --------
    >>> from regmtl.datasets import make_multimodal_tasks
    >>> d = make_multimodal_tasks(random_state=0)
    >>> d.image.shape, len(d.text), d.table.shape, sorted(set(d.task.tolist()))
    ((5391, 8, 8), 5391, (5391, 1), ['colour', 'parity', 'value'])
    >>> d.text[1797], d.y[1797]  # the first colour row
    ('new shiny yellow round lamp', 'yellow')
    >>> round(float(d.missing_text.mean()), 2), round(float(d.missing_image.mean()), 2)
    (0.2, 0.1)
    """
    from sklearn.datasets import load_digits

    for name, p in (("missing_text", missing_text), ("missing_image", missing_image)):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"{name}={p!r:.40} is not a probability in [0, 1).")
    check_open_unit("test_size", test_size)
    rng = as_rng(random_state)
    digits = load_digits()
    img, n = digits.images / _PIXEL_MAX, len(digits.images)
    colour = rng.integers(0, len(COLOURS), n)
    words = rng.choice(FILLER, size=(n, 4))
    text = [" ".join([*w[:2], COLOURS[c], *w[2:]]) for w, c in zip(words, colour, strict=True)]
    table = rng.standard_normal((n, 1))
    value = INK_WEIGHT * img.mean(axis=(1, 2)) + table[:, 0]

    tasks = list(MULTIMODAL_KINDS)
    sample = np.tile(np.arange(n), len(tasks))
    task = np.repeat(np.array(tasks), n)
    N = len(sample)
    no_text = rng.random(N) < missing_text
    no_image = rng.random(N) < missing_image
    images = img[sample].copy()
    images[no_image] = np.nan
    texts = [None if m else text[i] for i, m in zip(sample, no_text, strict=True)]
    y = np.empty(N, dtype=object)
    parity = np.array(PARITIES, dtype=object)[digits.target % 2]
    targets = (parity, np.array(COLOURS, dtype=object)[colour], value)
    for k, target in enumerate(targets):
        y[task == tasks[k]] = list(target[sample[task == tasks[k]]])
    test_samples = rng.permutation(n)[: int(round(test_size * n))]
    is_test = np.isin(sample, test_samples)

    title = "Digits, texts and a table: three tasks, three modalities"
    descr = (
        f"{title}\n{'-' * len(title)}\n\n"
        "Each of scikit-learn's 1,797 handwritten digits (8 x 8, pixels scaled to [0, 1]) with\n"
        "a five-word text naming a colour and a table column u ~ N(0, 1). Tasks: 'parity' (even\n"
        "or odd: the image), 'colour' (the text), 'value' = 5 * mean pixel + u (the image\n"
        "and the table). One row per sample and task; each row misses its text with\n"
        f"probability {missing_text:g} and its image with {missing_image:g}. "
        f"Samples split {1 - test_size:g} / {test_size:g}.\n"
        "The construction: help(regmtl.datasets.make_multimodal_tasks).\n"
    )
    return Bunch(
        image=images, text=texts, table=table[sample], y=y, task=task,
        kinds=dict(MULTIMODAL_KINDS), train=np.flatnonzero(~is_test),
        test=np.flatnonzero(is_test), missing_text=no_text, missing_image=no_image,
        sample=sample, source="sklearn.datasets.load_digits (UCI optical recognition of "
        "handwritten digits, test set), with generated texts and a table column",
        DESCR=descr,
    )
