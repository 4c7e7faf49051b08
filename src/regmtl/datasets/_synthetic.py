"""Synthetic multi-task problems whose true weights have a known shared structure.

Every generator draws the true weights first, then the designs and the targets, from one
:class:`numpy.random.Generator`, so the same ``random_state`` gives the same problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.utils import Bunch

from ._checks import RandomState, as_rng, check_int, check_real

__all__ = ["make_multitask_regression", "make_multitask_classification", "STRUCTURES"]

#: The weight structures the generators know.
STRUCTURES: tuple[str, ...] = ("shared_support", "subspace", "clustered", "independent")


# --------------------------------------------------------------------- public generators
def make_multitask_regression(
    n_tasks: int = 10,
    n_samples: int | Sequence[int] = 100,
    n_features: int = 50,
    *,
    structure: str = "shared_support",
    n_informative: int | None = None,
    rank: int | None = None,
    n_clusters: int | None = None,
    relatedness: float = 0.8,
    noise: float = 0.1,
    bias: float | Sequence[float] = 0.0,
    shared_design: bool = False,
    random_state: RandomState = None,
) -> Bunch:
    r"""Multi-task linear regression with structured true weights.

    Task :math:`t`'s targets are

    .. math::

        y_t = X_t w_t + b_t + \varepsilon_t, \qquad \varepsilon_t \sim N(0, \sigma^2 I),

    :math:`\sigma` = ``noise``, :math:`b_t` = ``bias``, and rows of :math:`X_t` iid
    :math:`N(0, I_p)` (one :math:`X` for all tasks with ``shared_design=True``).

    The weights mix a shared and a task-specific part with relatedness :math:`\rho`:

    .. math::

        w_t = \rho\, c_t + \sqrt{1 - \rho^2}\; e_t,

    with :math:`c_t` and :math:`e_t` of the same structure, drawn independently, their nonzero
    entries of unit variance (so the entries of :math:`w_t` have unit variance too, and two
    tasks with the same shared part have :math:`E[w_s^\top w_t] / E\|w_t\|^2 = \rho^2`):

    ==================  ==========================================  ============================
    structure           shared part :math:`c_t`                     task-specific part
                                                                    :math:`e_t`
    ==================  ==========================================  ============================
    ``shared_support``  one vector ``c`` on the support ``S``       iid N(0, 1) on ``S``
    ``subspace``        ``U a``, the same for all tasks             ``U b_t``
    ``clustered``       the center ``m_g`` of the task's cluster g  iid N(0, 1) on all features
    ``independent``     none (``relatedness`` is not used)          iid N(0, 1) on the task's
                                                                    own random support
    ==================  ==========================================  ============================

    ``S`` holds ``n_informative`` features drawn at random; ``U`` (p x rank) has iid
    N(0, 1/rank) entries, ``a`` and ``b_t`` iid N(0, 1) entries; cluster centers iid N(0, 1)
    entries. So ``shared_support`` is the model of L2,1 (joint feature selection), ``subspace``
    that of the trace norm (the weights span ``rank`` dimensions when ``relatedness < 1``;
    ``relatedness = 1`` makes all tasks equal, rank 1), ``clustered`` that of clustered MTL,
    and ``independent`` a control with nothing to share.

    Parameters
    ----------
    n_tasks : int, default=10
        Number of tasks T.
    n_samples : int or sequence of int, default=100
        Rows per task: one count for all tasks, or one count per task (n_t may differ).
    n_features : int, default=50
        Number of features p.
    structure : {"shared_support", "subspace", "clustered", "independent"}
        How the tasks' weights are related (table above).
    n_informative : int, optional
        Nonzero features per task, at most ``n_features`` (``shared_support`` and
        ``independent`` only); default ``min(10, n_features)``.
    rank : int, optional
        Dimension of the shared subspace, at most ``min(n_tasks, n_features)``
        (``subspace`` only); default ``min(3, n_tasks, n_features)``.
    n_clusters : int, optional
        Number of task clusters, at most ``n_tasks``; tasks are spread over them as evenly as
        possible, in random order (``clustered`` only); default ``min(3, n_tasks)``.
    relatedness : float in [0, 1], default=0.8
        :math:`\rho`: 1 makes every task equal to its shared part (identical tasks, or
        identical within a cluster); 0 leaves only the task-specific parts (unrelated values,
        though ``shared_support`` keeps the common support and ``subspace`` the subspace).
    noise : float >= 0, default=0.1
        Standard deviation :math:`\sigma` of the Gaussian noise added to every target.
    bias : float or sequence of T floats, default=0.0
        True intercepts :math:`b_t`.
    shared_design : bool, default=False
        One design for all tasks; ``n_samples`` must then be a single int.
    random_state : int, numpy Generator, RandomState or None
        Seeds :func:`numpy.random.default_rng` (a RandomState supplies the seed).

    Returns
    -------
    Bunch
        ``X`` (list of T float64 arrays, n_t x p), ``y`` (list of T float64 arrays),
        ``coef`` (T x p true weights, row t = :math:`w_t`), ``intercept`` (T,),
        ``task_names``, ``feature_names``, ``kind`` ("regression"), ``structure``, ``DESCR``,
        ``source`` ("synthetic"), and by structure: ``support`` (sorted feature indices:
        shape (n_informative,) for ``shared_support``, (T, n_informative) for
        ``independent``), ``basis`` (rank x p, orthonormal rows spanning the task weights,
        ``subspace``) or ``clusters`` (T cluster labels, ``clustered``). With
        ``shared_design=True`` also ``X_shared`` (n x p; every ``X[t]`` is this array) and
        ``Y`` (n x T).

    Raises
    ------
    ValueError
        If an argument is out of range (e.g. ``n_informative > n_features``), or
        ``n_samples`` is a sequence with ``shared_design=True``.

    See Also
    --------
    make_multitask_classification : The binary classification version.

    Examples
    --------
    >>> from regmtl.datasets import make_multitask_regression
    >>> data = make_multitask_regression(5, [20, 30, 40, 50, 60], 8, n_informative=3,
    ...                                  relatedness=0.5, random_state=0)
    >>> [X.shape for X in data.X][:2], data.coef.shape
    ([(20, 8), (30, 8)], (5, 8))
    """
    check_real("noise", noise, 0.0)
    gen = _Problem(n_tasks, n_samples, n_features, structure, n_informative, rank, n_clusters,
                   relatedness, bias, shared_design, random_state, min_rows=1)
    X, F = gen.designs_and_scores(gen.W)
    y = [f + noise * gen.rng.standard_normal(f.shape[0]) for f in F]
    descr = gen.describe("regression", f"y_t = X_t w_t + b_t + N(0, {noise:g}^2) noise.")
    return gen.bunch(X, y, gen.W, "regression", descr)


def make_multitask_classification(
    n_tasks: int = 10,
    n_samples: int | Sequence[int] = 100,
    n_features: int = 50,
    *,
    structure: str = "shared_support",
    n_informative: int | None = None,
    rank: int | None = None,
    n_clusters: int | None = None,
    relatedness: float = 0.8,
    class_sep: float = 3.0,
    flip_y: float = 0.01,
    bias: float | Sequence[float] = 0.0,
    shared_design: bool = False,
    random_state: RandomState = None,
) -> Bunch:
    r"""Multi-task binary classification (logistic model) with structured true weights.

    The weights :math:`w_t` are drawn as for :func:`make_multitask_regression`, then scaled to
    :math:`\beta_t = s\, w_t / \sqrt{k}`, with :math:`s` = ``class_sep`` and :math:`k` the
    number of nonzero entries a task's weights have (``n_informative`` for ``shared_support``
    and ``independent``, ``n_features`` otherwise). So the true log-odds
    :math:`f = x^\top \beta_t + b_t` has standard deviation :math:`s` around :math:`b_t` on
    average over draws, and

    .. math::

        P(y = 1 \mid x) = 1 / (1 + \exp(-x^\top \beta_t - b_t)).

    Each label is then flipped with probability ``flip_y``. A task whose draw has one class
    only gets the other class on the row most likely to have it, so every task has both
    classes. The Bayes-optimal rule (for ``flip_y < 0.5``) is :math:`\hat y = 1[f > 0]`.

    Parameters
    ----------
    n_tasks, n_samples, n_features, structure, n_informative, rank, n_clusters, relatedness
        As for :func:`make_multitask_regression`; every task needs at least 2 rows.
    class_sep : float >= 0, default=3.0
        Standard deviation :math:`s` of the true log-odds: larger separates the classes
        better (0 gives labels independent of X).
    flip_y : float in [0, 1], default=0.01
        Probability that a label is flipped after it is drawn.
    bias, shared_design, random_state
        As for :func:`make_multitask_regression`.

    Returns
    -------
    Bunch
        As :func:`make_multitask_regression` with ``y`` holding int64 labels 0/1, ``coef``
        = :math:`\beta` (T x p, the true log-odds weights), ``intercept`` = :math:`b` and
        ``kind`` = "binary".

    Raises
    ------
    ValueError
        If an argument is out of range (as for :func:`make_multitask_regression`).

    See Also
    --------
    make_multitask_regression : The regression version.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.datasets import make_multitask_classification
    >>> data = make_multitask_classification(3, 40, 5, n_informative=2, random_state=0)
    >>> [X.shape for X in data.X], data.coef.shape, data.kind
    ([(40, 5), (40, 5), (40, 5)], (3, 5), 'binary')
    >>> [np.bincount(y).tolist() for y in data.y]  # rows of class 0 and 1 per task
    [[18, 22], [26, 14], [21, 19]]
    """
    check_real("class_sep", class_sep, 0.0)
    check_real("flip_y", flip_y, 0.0, 1.0)
    gen = _Problem(n_tasks, n_samples, n_features, structure, n_informative, rank, n_clusters,
                   relatedness, bias, shared_design, random_state, min_rows=2)
    coef = gen.W * (class_sep / np.sqrt(gen.n_active))
    X, F = gen.designs_and_scores(coef)
    draws = [(gen.rng.random(f.shape[0]), gen.rng.random(f.shape[0])) for f in F]
    y = [_labels(f, u, v, flip_y) for f, (u, v) in zip(F, draws, strict=True)]
    descr = gen.describe(
        "binary",
        f"P(y = 1 | x) = sigmoid(x . beta_t + b_t), beta_t = {class_sep:g} w_t / "
        f"sqrt({gen.n_active}); labels flipped with probability {flip_y:g}.",
    )
    return gen.bunch(X, y, coef, "binary", descr)


# --------------------------------------------------------------------- the drawing
class _Problem:
    """Validated arguments, the random generator and the true weights of one problem."""

    def __init__(self, n_tasks, n_samples, n_features, structure, n_informative, rank,
                 n_clusters, relatedness, bias, shared_design, random_state, min_rows):
        check_int("n_tasks", n_tasks, 1)
        check_int("n_features", n_features, 1)
        check_real("relatedness", relatedness, 0.0, 1.0)
        n_informative, rank, n_clusters = _defaults(n_tasks, n_features, n_informative, rank,
                                                    n_clusters)
        if structure not in STRUCTURES:
            raise ValueError(
                f"structure must be one of {', '.join(map(repr, STRUCTURES))}; got {structure!r}."
            )
        if structure in ("shared_support", "independent"):
            check_int("n_informative", n_informative, 1, n_features,
                      "at most n_features")
        elif structure == "subspace":
            check_int("rank", rank, 1, min(n_tasks, n_features),
                      "at most min(n_tasks, n_features)")
        else:
            check_int("n_clusters", n_clusters, 1, n_tasks, "at most n_tasks")
        self.T, self.p = int(n_tasks), int(n_features)
        self.sizes = _sizes(n_samples, self.T, shared_design, min_rows)
        self.shared = bool(shared_design)
        b = np.asarray(bias, dtype=np.float64)
        if b.ndim > 1 or (b.ndim == 1 and b.shape[0] != self.T):
            raise ValueError(f"bias must be a float or have one value per task ({self.T}); "
                             f"got shape {b.shape}.")
        if not np.all(np.isfinite(b)):
            raise ValueError("bias must be finite.")
        self.intercept = np.broadcast_to(b, (self.T,)).copy()
        self.structure = structure
        self.params = {"n_informative": int(n_informative), "rank": int(rank),
                       "n_clusters": int(n_clusters), "relatedness": float(relatedness)}
        self.rng = as_rng(random_state)
        self.W, self.extra, self.n_active = _weights(self.rng, structure, self.T, self.p,
                                                     **self.params)

    def designs_and_scores(self, coef: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Designs X_t and noiseless scores X_t coef_t + b_t."""
        if self.shared:
            X = self.rng.standard_normal((self.sizes[0], self.p))
            F = X @ coef.T + self.intercept
            return [X] * self.T, [F[:, t].copy() for t in range(self.T)]
        Xs = [self.rng.standard_normal((n, self.p)) for n in self.sizes]
        return Xs, [X @ c + b for X, c, b in zip(Xs, coef, self.intercept, strict=True)]

    def bunch(self, X, y, coef, kind, descr) -> Bunch:
        wt, wf = len(str(self.T)), len(str(self.p))
        out = Bunch(
            X=X, y=y, coef=coef, intercept=self.intercept,
            task_names=[f"task_{t + 1:0{wt}d}" for t in range(self.T)],
            feature_names=[f"x_{j + 1:0{wf}d}" for j in range(self.p)],
            kind=kind, structure=self.structure, DESCR=descr, source="synthetic",
            **self.extra,
        )
        if self.shared:
            out.X_shared = X[0]
            out.Y = np.column_stack(y)
        return out

    def describe(self, kind: str, model: str) -> str:
        sizes = (str(self.sizes[0]) if len(set(self.sizes)) == 1
                 else f"{min(self.sizes)} to {max(self.sizes)}")
        used = {"shared_support": "n_informative", "independent": "n_informative",
                "subspace": "rank", "clustered": "n_clusters"}[self.structure]
        rel = ("" if self.structure == "independent"
               else f", relatedness={self.params['relatedness']:g}")
        title = f"Synthetic multi-task {kind} data"
        fn = f"make_multitask_{'regression' if kind == 'regression' else 'classification'}"
        return (
            f"{title}\n{'-' * len(title)}\n\n"
            f"{self.T} tasks, {sizes} rows each{' (shared design)' if self.shared else ''}, "
            f"{self.p} features; rows of X iid N(0, I).\n"
            f"Weights: structure={self.structure!r}, {used}={self.params[used]}{rel};\n"
            "w_t = relatedness * c_t + sqrt(1 - relatedness^2) * e_t, with a shared part c_t\n"
            "and a task-specific part e_t of unit-variance entries.\n"
            f"{model}\n"
            f"The exact model: help(regmtl.datasets.{fn}).\n"
        )


def _weights(rng: np.random.Generator, structure: str, T: int, p: int, *, n_informative: int,
             rank: int, n_clusters: int, relatedness: float):
    """True weights W (T x p), the structure's extra Bunch entries, nonzeros per task."""
    r = relatedness
    s = np.sqrt(max(0.0, 1.0 - r * r))
    W = np.zeros((T, p))
    if structure == "shared_support":
        support = np.sort(rng.choice(p, n_informative, replace=False))
        c = rng.standard_normal(n_informative)
        E = rng.standard_normal((T, n_informative))
        W[:, support] = r * c + s * E
        return W, {"support": support}, n_informative
    if structure == "subspace":
        U = rng.standard_normal((p, rank)) / np.sqrt(rank)
        a = rng.standard_normal(rank)
        B = rng.standard_normal((T, rank))
        W = (r * a + s * B) @ U.T
        basis = np.linalg.qr(U)[0].T
        return W, {"basis": basis}, p
    if structure == "clustered":
        clusters = rng.permutation(np.arange(T) % n_clusters)
        centers = rng.standard_normal((n_clusters, p))
        E = rng.standard_normal((T, p))
        W = r * centers[clusters] + s * E
        return W, {"clusters": clusters}, p
    support = np.sort(np.stack([rng.choice(p, n_informative, replace=False)
                                for _ in range(T)]), axis=1)
    W[np.arange(T)[:, None], support] = rng.standard_normal((T, n_informative))
    return W, {"support": support}, n_informative


def _labels(f: np.ndarray, u: np.ndarray, v: np.ndarray, flip_y: float) -> np.ndarray:
    """0/1 labels with P(1) = sigmoid(f), flipped with probability flip_y, both classes kept."""
    prob = 0.5 * (1.0 + np.tanh(0.5 * f))
    y = (u < prob).astype(np.int64)
    y = np.where(v < flip_y, 1 - y, y)
    if y.min() == y.max():
        if y[0] == 0:
            y[np.argmax(f)] = 1
        else:
            y[np.argmin(f)] = 0
    return y


# --------------------------------------------------------------------- argument checks
def _defaults(T: int, p: int, n_informative: Any, rank: Any, n_clusters: Any
              ) -> tuple[Any, Any, Any]:
    """The structure sizes, their defaults bounded by the problem's size."""
    return (min(10, p) if n_informative is None else n_informative,
            min(3, T, p) if rank is None else rank,
            min(3, T) if n_clusters is None else n_clusters)


def _sizes(n_samples: Any, T: int, shared: bool, min_rows: int) -> list[int]:
    what = "for classification, so that each task has both classes" if min_rows > 1 else ""
    if isinstance(n_samples, Integral) and not isinstance(n_samples, bool):
        check_int("n_samples", n_samples, min_rows, None, what)
        return [int(n_samples)] * T
    if shared:
        raise ValueError(
            "n_samples must be a single int with shared_design=True (one design for all tasks)."
        )
    try:
        sizes = list(n_samples)
    except TypeError:
        raise ValueError(
            f"n_samples must be an int or a sequence of {T} ints; got {n_samples!r}."
        ) from None
    if len(sizes) != T:
        raise ValueError(f"n_samples has {len(sizes)} counts but n_tasks is {T}; give one per "
                         "task or a single int.")
    for t, n in enumerate(sizes):
        check_int(f"n_samples[{t}]", n, min_rows, None, what)
    return [int(n) for n in sizes]
