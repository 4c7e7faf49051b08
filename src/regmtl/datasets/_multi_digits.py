r"""Two real handwritten digits side by side: tasks "left digit" and "right digit".

:func:`make_two_digit_tasks` builds the two-task image problem of MultiMNIST (Sener & Koltun,
NeurIPS 2018) from scikit-learn's 1,797 digits (8 x 8, shipped with scikit-learn, so it works
offline): each image is two digits placed side by side, one task reads the left digit and the
other the right one. The digit images are split into training and test images *before*
pairing, so no test pair shows a digit image seen in training.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from ._checks import RandomState, as_rng, check_int, check_open_unit

__all__ = ["make_two_digit_tasks"]

TWO_DIGIT_TARGETS: tuple[str, ...] = ("left", "right")

#: the largest value of a pixel of scikit-learn's digits (counts of a 4 x 4 block, 0..16)
_PIXEL_MAX = 16.0


def make_two_digit_tasks(
    n_train: int = 4000,
    n_test: int = 1000,
    *,
    test_size: float = 0.3,
    random_state: RandomState = None,
) -> Bunch:
    r"""Pairs of real digits side by side, one task per side (MultiMNIST on 8 x 8 digits).

    The two-task image problem of Sener & Koltun (2018), built from scikit-learn's
    handwritten digits (:func:`sklearn.datasets.load_digits`: 1,797 images of 8 x 8 pixels in
    0..16, about 180 per digit):

    1. **Split the digit images.** For each digit :math:`d`, its :math:`m_d` images are
       shuffled and :math:`\mathrm{round}(\text{test\_size} \cdot m_d)` of them become test
       images, the rest training images (a split stratified by digit).
    2. **Pair within each side of the split.** Training pair :math:`i` draws a left image
       :math:`a_i` and a right image :math:`b_i` independently and uniformly (with
       replacement) from the training images; the test pairs likewise from the test images.
       So the digit images of the test pairs are disjoint from those of the training pairs,
       while a training image may appear in several pairs, on either side.
    3. **Place them side by side.** :math:`X_i = [\,I_{a_i} \mid I_{b_i}\,] / 16`, an
       8 x 16 image scaled to [0, 1], with labels :math:`Y_i = (\mathrm{digit}(a_i),
       \mathrm{digit}(b_i))`.

    The two labels are independent, each nearly uniform over the 10 digits (about 180 images
    of each), so a model must keep left from right (e.g. :class:`regmtl.deep.ConvTrunk` with
    ``pool=(1, 2)``). Sener & Koltun overlap two 28 x 28 MNIST digits by up to 4 pixels; the
    8 x 8 digits here are placed without overlap.

    Parameters
    ----------
    n_train : int >= 1, default=4000
        Number of training pairs (rows 0 .. n_train - 1).
    n_test : int >= 1, default=1000
        Number of test pairs (the last ``n_test`` rows).
    test_size : float in (0, 1), default=0.3
        Fraction of each digit's images set aside for the test pairs; each side must keep at
        least one image of every digit.
    random_state : int, numpy Generator, RandomState or None
        Seeds :func:`numpy.random.default_rng` (a RandomState supplies the seed); the split is
        drawn first, then the training pairs, then the test pairs.

    Returns
    -------
    Bunch
        ``X`` ((n_train + n_test) x 1 x 8 x 16 float32 in [0, 1]: batch, channel, height,
        width), ``Y`` ((n_train + n_test) x 2 int64 digits; columns left, right),
        ``train`` and ``test`` (int64 row indices: ``arange(n_train)`` and the rest),
        ``image_index`` ((n_train + n_test) x 2 int64: the positions in
        ``load_digits().images`` of each row's left and right image), ``train_images`` and
        ``test_images`` (the sorted, disjoint image positions of each side of the split),
        ``target_names`` (``["left", "right"]``), ``kinds`` (both ``"multiclass"``),
        ``n_classes`` (10), ``image_shape`` ((8, 16)), ``source``, ``DESCR``.

    Raises
    ------
    ValueError
        If ``n_train`` or ``n_test`` is not an int >= 1, ``test_size`` is not in (0, 1), or
        it leaves a side of the split without an image of some digit.

    References
    ----------
    Sener & Koltun (2018). Multi-task learning as multi-objective optimization. NeurIPS
    (MultiMNIST).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.datasets._multi_digits import make_two_digit_tasks
    >>> data = make_two_digit_tasks(200, 50, random_state=0)
    >>> data.X.shape, data.X.dtype, data.Y.shape, data.target_names
    ((250, 1, 8, 16), dtype('float32'), (250, 2), ['left', 'right'])
    >>> data.X[data.train].shape, data.X[data.test].shape   # rows of training / test pairs
    ((200, 1, 8, 16), (50, 1, 8, 16))
    >>> len(np.intersect1d(data.image_index[data.train], data.image_index[data.test]))
    0
    """
    from sklearn.datasets import load_digits

    check_int("n_train", n_train, 1, None, "training pairs")
    check_int("n_test", n_test, 1, None, "test pairs")
    check_open_unit("test_size", test_size)
    n_tr, n_te = int(n_train), int(n_test)
    digits = load_digits()
    images, digit = digits.images, digits.target.astype(np.int64)
    rng = as_rng(random_state)

    counts = np.bincount(digit, minlength=10)
    n_test_images = np.round(test_size * counts).astype(np.int64)
    short = np.flatnonzero((n_test_images == 0) | (n_test_images == counts))
    if short.size:
        d, m = int(short[0]), int(counts.min())
        side = "test" if n_test_images[d] == 0 else "training"
        raise ValueError(f"test_size={test_size!r} leaves the {side} images without a digit {d} "
                         f"({counts[d]} images of it); each side needs every digit: take "
                         f"test_size in ({0.5 / m:.3g}, {1 - 0.5 / m:.3g}).")
    test_parts, train_parts = [], []
    for d in range(10):
        own = rng.permutation(np.flatnonzero(digit == d))
        test_parts.append(own[:n_test_images[d]])
        train_parts.append(own[n_test_images[d]:])
    train_images = np.sort(np.concatenate(train_parts))
    test_images = np.sort(np.concatenate(test_parts))

    pairs = np.concatenate([rng.choice(train_images, size=(n_tr, 2)),
                            rng.choice(test_images, size=(n_te, 2))]).astype(np.int64)
    X = np.concatenate([images[pairs[:, 0]], images[pairs[:, 1]]], axis=2)[:, None]
    X = (X / _PIXEL_MAX).astype(np.float32)
    Y = digit[pairs]

    title = "Two digits side by side"
    descr = (
        f"{title}\n{'-' * len(title)}\n\n"
        "MultiMNIST-style tasks (Sener & Koltun, NeurIPS 2018) from scikit-learn's 1,797\n"
        "handwritten digits (8 x 8, pixels 0..16). Each image (1 x 8 x 16, scaled to [0, 1]) is\n"
        "two digits side by side; task 'left' is the left digit, task 'right' the right one.\n"
        f"The digit images were split by digit first: {len(train_images)} training and "
        f"{len(test_images)} test images\n(test_size = {test_size:g}); rows 0..{n_tr - 1} "
        f"pair training images, rows {n_tr}..{n_tr + n_te - 1} test images,\n"
        "left and right drawn independently and uniformly with replacement.\n"
        "No digit image of a test row appears in a training row.\n"
        "The construction: help(regmtl.datasets.make_two_digit_tasks).\n"
    )
    return Bunch(
        X=X, Y=Y, train=np.arange(n_tr, dtype=np.int64),
        test=np.arange(n_tr, n_tr + n_te, dtype=np.int64), image_index=pairs,
        train_images=train_images, test_images=test_images,
        target_names=list(TWO_DIGIT_TARGETS),
        kinds={name: "multiclass" for name in TWO_DIGIT_TARGETS}, n_classes=10,
        image_shape=(8, 16), source="sklearn.datasets.load_digits (UCI optical recognition of "
        "handwritten digits, test set), paired as in Sener & Koltun, NeurIPS 2018",
        DESCR=descr,
    )
