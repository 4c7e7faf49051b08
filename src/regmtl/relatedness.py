r"""Are the tasks related enough for multi-task learning to help? Ask before fitting.

Every task gets a vector, the tasks' vectors are compared pairwise, and the comparison is
measured against what *unrelated* tasks would give:

- ``method="ridge"``: each task's ridge coefficients (L2 logistic regression for binary tasks),
  fitted independently on features z-scored with the pooled rows of all tasks, one alpha for
  all tasks chosen by cross-validation inside every task (the ``"l2"`` penalty is separable, so
  one :class:`~regmtl.MultiTaskRegressorCV` fit is T independent ridge fits);
- ``method="model"``: the ``coef_`` of a fitted linear multi-task model;
- ``method="residual"``: out-of-fold ridge residuals on a shared design (every task labels the
  same rows), compared across tasks row by row.

Similarity of tasks s, t with vectors u, v (coefficients over features, or residuals over the
rows both tasks label):

.. math::

    \text{cosine} = \frac{u^\top v}{\|u\|\,\|v\|}, \qquad
    \text{correlation} = \frac{(u - \bar u)^\top (v - \bar v)}
                              {\|u - \bar u\|\,\|v - \bar v\|}.

The test statistic is the mean absolute off-diagonal similarity,
:math:`\bar s = \binom{T}{2}^{-1} \sum_{s<t} |S_{st}|`. Its null distribution comes from B draws
of unrelated tasks: every task's coefficient vector permuted across features with random sign
flips (so each task keeps its coefficient magnitudes but loses any alignment with the others),
or every task's residuals permuted across its rows; for per-task ridge coefficients also refits
on targets shuffled within every task (what estimation noise alone gives with these designs),
the larger p-value of the two counting. The p-value is
:math:`(1 + \#\{b: \bar s_b \ge \bar s\}) / (1 + B)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ._lazy import lazy_module
from .task_lists import as_task_lists, task_kind

pd = lazy_module("pandas")

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["task_relatedness", "Relatedness", "METHODS", "SIMILARITIES"]

#: The ways to get a vector per task.
METHODS: tuple[str, ...] = ("ridge", "model", "residual")
#: The similarities between two tasks' vectors.
SIMILARITIES: tuple[str, ...] = ("cosine", "correlation")

_LEVELS = {"strong": "Strong evidence of shared structure",
           "some": "Some evidence of shared structure",
           "none": "No evidence of shared structure"}
_MAX_NULL_PAIRS = 5_000_000  # off-diagonal null entries kept for the pairwise threshold
_FOLD_SEED = 0  # CV folds are fixed, so the matrix does not depend on random_state


@dataclass
class Relatedness:
    """What :func:`~regmtl.task_relatedness` measured: similarity, a test and clusters.

    Printing it shows the verdict and the numbers behind it; :meth:`to_frame` lists the
    pairs of tasks and :meth:`plot` draws the matrix ordered by cluster. Users get one from
    :func:`~regmtl.task_relatedness` rather than building it.

    Parameters
    ----------
    matrix : DataFrame of shape (T, T)
        Pairwise similarity, indexed by task names; symmetric, unit diagonal.
    method, similarity : str
        How the tasks' vectors were obtained and compared.
    clusters : Series
        Task name -> cluster id (1 = the largest cluster); a task alone in its cluster is in
        no group.
    linkage : ndarray of shape (T - 1, 4)
        SciPy average-linkage matrix on the distance ``1 - similarity``.
    order : ndarray of shape (T,)
        Leaf order of the dendrogram (clusters are contiguous in it).
    statistic : float
        Mean absolute off-diagonal similarity.
    null_mean, null_quantile : float
        Mean and 95% quantile of the statistic over the unrelated-task draws.
    pair_threshold : float
        95% quantile of ``|similarity|`` of single pairs of unrelated tasks.
    p_value : float
        ``(1 + #{null >= statistic}) / (1 + n_permutations)``.
    related : bool
        ``p_value < 0.05``.
    level : {"strong", "some", "none"}
        ``p < 0.01``, ``p < 0.05``, otherwise.
    verdict : str
        The conclusion in plain language, with the numbers.
    coefficients : ndarray of shape (T, p') or None
        The compared coefficient vectors (coefficient methods), on the features ``features``.
    features : list or None
        Names of the features used (features constant within every task, or with a zero
        coefficient in every task, say nothing about relatedness and are left out).
    residuals : ndarray of shape (n, T) or None
        Out-of-fold residuals (``method="residual"``; NaN where a task has no label).
    null_statistics : ndarray of shape (n_permutations,)
        The statistic of every unrelated-task draw.
    alpha : float or None
        The ridge alpha chosen by cross-validation (``"ridge"`` and ``"residual"``).
    kind : {"regression", "binary"}
        The kind of the tasks.
    n_features : int or None
        Number of features of the data or model (before leaving any out).
    notes : list of str
        Caveats that the verdict also states.
    source : str
        What was compared, in words (e.g. ``"per-task ridge coefficients"``).

    Attributes
    ----------
    n_tasks : int
        Number of tasks T.
    n_permutations : int
        Number of unrelated-task draws B.
    groups : list of list
        Clusters of two or more tasks (task names), largest first.

    See Also
    --------
    regmtl.plotting.plot_relatedness : The heat map :meth:`plot` draws.

    Examples
    --------
    >>> import regmtl as rm
    >>> from regmtl.datasets import make_multitask_regression
    >>> d = make_multitask_regression(6, 60, 8, n_informative=4, relatedness=0.95,
    ...                               random_state=0)
    >>> rel = rm.task_relatedness(d, n_permutations=100)
    >>> rel.matrix.shape, rel.related, rel.n_permutations
    ((6, 6), True, 100)
    >>> rel.groups
    [['task_1', 'task_2', 'task_3', 'task_4', 'task_5', 'task_6']]
    >>> rel.to_frame().columns.tolist()
    ['task_a', 'task_b', 'similarity', 'same_cluster']
    """

    matrix: pd.DataFrame
    method: str
    similarity: str
    clusters: pd.Series
    linkage: np.ndarray
    order: np.ndarray
    statistic: float
    null_mean: float
    null_quantile: float
    pair_threshold: float
    p_value: float
    related: bool
    level: str
    verdict: str
    coefficients: np.ndarray | None = None
    features: list | None = None
    residuals: np.ndarray | None = field(default=None, repr=False)
    null_statistics: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    alpha: float | None = None
    kind: str = "regression"
    n_features: int | None = None
    notes: list = field(default_factory=list)
    source: str = "per-task ridge coefficients"

    @property
    def n_tasks(self) -> int:
        """Number of tasks T."""
        return self.matrix.shape[0]

    @property
    def n_permutations(self) -> int:
        """Number of unrelated-task draws B."""
        return int(self.null_statistics.size)

    @property
    def groups(self) -> list[list]:
        """Clusters of two or more tasks (task names), largest first."""
        out = []
        for k in sorted(self.clusters.unique()):
            members = list(self.clusters.index[self.clusters.to_numpy() == k])
            if len(members) > 1:
                out.append(members)
        return out

    def _what(self) -> str:
        return f"|{self.similarity}| of the {self.source}"

    def summary_lines(self) -> list[str]:
        """The numbers behind the verdict, one fact a line.

        Returns
        -------
        list of str
            The statistic, its null distribution and p-value, the unrelated-pair threshold,
            the data facts and the clusters.
        """
        B = self.n_permutations
        lines = [f"statistic: mean {self._what()} off the diagonal {self.statistic:.4f}",
                 f"unrelated tasks ({B} permutations): mean {self.null_mean:.4f}, 95% "
                 f"quantile {self.null_quantile:.4f}; p = {_p_text(self.p_value, B)}",
                 f"single pairs of unrelated tasks: 95% of |{self.similarity}| below "
                 f"{self.pair_threshold:.4f}"]
        facts = [f"{self.n_tasks} tasks"]
        if self.features is not None and self.n_features is not None:
            facts.append(f"{len(self.features)} of {self.n_features} features compared")
        if self.alpha is not None:
            facts.append(f"L2 alpha {self.alpha:.4g} (chosen by cross-validation)")
        lines.append(", ".join(facts))
        sizes = [len(g) for g in self.groups]
        alone = self.n_tasks - sum(sizes)
        lines.append(f"clusters: {self.clusters.nunique()} ({len(sizes)} group(s) of related "
                     f"tasks{', sizes ' + ', '.join(map(str, sizes)) if sizes else ''}; "
                     f"{alone} task(s) in no group)")
        return lines

    def __str__(self) -> str:
        """The verdict, then :meth:`summary_lines`."""
        return self.verdict + "\n\n" + "\n".join(self.summary_lines())

    def to_frame(self) -> pd.DataFrame:
        """The pairs of tasks as a tidy table.

        Returns
        -------
        DataFrame
            One row per pair: ``task_a``, ``task_b``, ``similarity``, ``same_cluster``,
            sorted by similarity (most similar first).
        """
        names = list(self.matrix.index)
        S = self.matrix.to_numpy()
        iu, ju = np.triu_indices(len(names), 1)
        lab = self.clusters.to_numpy()
        df = pd.DataFrame({"task_a": [names[i] for i in iu], "task_b": [names[j] for j in ju],
                           "similarity": S[iu, ju], "same_cluster": lab[iu] == lab[ju]})
        return df.sort_values("similarity", ascending=False, kind="stable").reset_index(
            drop=True)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Heat map of the matrix ordered by cluster.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw (a new figure by default).

        Returns
        -------
        matplotlib Axes
            The axes drawn on (see :func:`regmtl.plotting.plot_relatedness`).
        """
        from .plotting import plot_relatedness

        return plot_relatedness(self, ax=ax)


# ----------------------------------------------------------------------------- inputs
def _is_estimator(obj: Any) -> bool:
    return hasattr(obj, "fit") and hasattr(obj, "get_params")


def _penalty_of(model: Any) -> Any:
    for attr in ("penalty_", "penalty"):
        pen = getattr(model, attr, None)
        if pen is not None:
            return pen
    return None


def _fitted_of(model: Any) -> Any:
    """The refitted model of a search (``best_estimator_``), else ``model``."""
    best = getattr(model, "best_estimator_", None)
    return model if best is None else best


def is_independent(model: Any) -> bool:
    """Whether ``model``'s penalty is a pure ridge (``"l2"``: independent ridge fits, one per
    task), as its ``ridge_strength`` says."""
    from .penalties import Penalty, make_penalty

    pen = _penalty_of(_fitted_of(model))
    if isinstance(pen, str):
        try:
            pen = make_penalty(pen.lower())
        except ValueError:
            return False
    return isinstance(pen, Penalty) and pen.ridge_strength(1.0) is not None


def _penalty_name(model: Any) -> str | None:
    pen = _penalty_of(model)
    if pen is None:
        return None
    if isinstance(pen, str):
        from .penalties import make_penalty

        try:
            pen = make_penalty(pen)
        except (ValueError, TypeError):
            return repr(pen)
    return repr(pen)


def _model_coefficients(model: Any) -> tuple[np.ndarray, list | None, list | None, str]:
    """(coef T x p in standardized units where known, task names, feature names, kind)."""
    fitted = _fitted_of(model)
    coef = getattr(fitted, "coef_", None)
    if coef is None:
        raise ValueError(f"model: the {type(model).__name__} is not fitted (it has no coef_); "
                         "call model.fit(...) first, or pass the data instead (method='ridge').")
    W = np.asarray(coef, dtype=np.float64)
    if W.ndim == 1:
        W = W[None, :]
    if W.ndim != 2:
        raise ValueError(f"model: coef_ has shape {W.shape}; expected (T, p).")
    if not np.all(np.isfinite(W)):
        raise ValueError("model: coef_ has NaN or infinite values; refit the model.")
    scale = getattr(fitted, "feature_scale_", None)
    if scale is not None and np.shape(scale) == (W.shape[1],):
        W = W * np.asarray(scale, dtype=np.float64)  # back to z-scored units
    tasks = getattr(fitted, "tasks_", None)
    names = getattr(fitted, "feature_names_in_", None)
    kind = "binary" if hasattr(fitted, "classes_") else "regression"
    return (W, None if tasks is None else list(tasks),
            None if names is None else [str(f) for f in names], kind)


def _task_lists(X: Any, y: Any, task: Any) -> tuple[list, list, list, Any, list | None]:
    """(Xs, ys, task names, source Bunch, feature names) from any input form."""
    if isinstance(X, dict) and not (hasattr(X, "X") and hasattr(X, "y")):  # not a Bunch
        names = list(X)
        if not isinstance(y, dict) or set(y) != set(names):
            raise ValueError("y: with a dict X, give a dict y with the same task keys.")
        return [X[k] for k in names], [y[k] for k in names], names, None, None
    if X is None:
        raise ValueError("X: pass the data (a loader's Bunch, lists per task, a long table "
                         "with task ids, or X (n, p) with Y (n, T)), or a fitted model.")
    Xs, ys, bunch = as_task_lists(X, y, task)
    features = None
    if bunch is not None:
        names = list(getattr(bunch, "task_names", None) or range(len(Xs)))
        features = getattr(bunch, "feature_names", None)
    elif isinstance(X, (list, tuple)):
        names = list(range(len(Xs)))
    elif task is not None:
        ids = X[task].to_numpy() if isinstance(task, str) else np.asarray(task)
        names = list(np.unique(ids))
        if hasattr(X, "columns"):
            features = [c for c in X.columns if not (isinstance(task, str) and c == task)]
    else:
        names = list(y.columns) if hasattr(y, "columns") else list(range(len(Xs)))
        if hasattr(X, "columns"):
            features = list(X.columns)
    return Xs, ys, names, bunch, None if features is None else [str(f) for f in features]


def _shared_design(X: Any, y: Any, task: Any) -> tuple[Any, np.ndarray, list, list | None]:
    """(X (n, p), Y (n, T) with NaN = no label, task names, feature names), or ValueError."""
    fix = ("method='residual' needs a shared design: X (n, p) with Y (n, T), every task "
           "labelling the same rows (NaN = no label), or a data set loaded with one; for "
           "per-task data use method='ridge'.")
    if hasattr(X, "X_shared") and hasattr(X, "Y") and y is None:
        names = list(getattr(X, "task_names", None) or range(np.shape(X.Y)[1]))
        feats = getattr(X, "feature_names", None)
        return (X.X_shared, np.asarray(X.Y, dtype=np.float64), names,
                None if feats is None else [str(f) for f in feats])
    if X is None or isinstance(X, (list, tuple, dict)) or task is not None or y is None \
            or hasattr(X, "X"):
        raise ValueError(fix)
    Yv = np.asarray(y, dtype=np.float64) if not hasattr(y, "to_numpy") else \
        y.to_numpy(dtype=np.float64)
    if Yv.ndim != 2:
        raise ValueError(fix)
    names = list(y.columns) if hasattr(y, "columns") else list(range(Yv.shape[1]))
    feats = [str(c) for c in X.columns] if hasattr(X, "columns") else None
    Xv = X if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    if Xv.ndim != 2 or Xv.shape[0] != Yv.shape[0]:
        raise ValueError(f"X has shape {Xv.shape} but Y has {Yv.shape[0]} rows; a shared "
                         "design needs X (n, p) and Y (n, T) with the same rows.")
    return Xv, Yv, names, feats


def _check_finite(Xs: Sequence[Any], ys: Sequence[Any], names: Sequence[Any]) -> None:
    for X, y, name in zip(Xs, ys, names, strict=True):
        vals = X.data if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"X: task {name!r} has NaN or infinite values; impute or drop "
                             "those rows first.")
        yv = np.asarray(y)
        if yv.dtype.kind in "fc" and not np.all(np.isfinite(yv)):
            raise ValueError(f"y: task {name!r} has NaN or infinite targets; drop those rows "
                             "(in a shared design Y, NaN marks a missing label).")


def _varies_within_tasks(Xs: Sequence[Any]) -> np.ndarray:
    """Features that take two values within at least one task."""
    out = np.zeros(Xs[0].shape[1], dtype=bool)
    for X in Xs:
        if X.shape[0] < 2:
            continue
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            hi = X.max(axis=0).toarray().ravel()
            lo = X.min(axis=0).toarray().ravel()
        else:
            X = np.asarray(X, dtype=np.float64)
            hi, lo = X.max(axis=0), X.min(axis=0)
        out |= hi > lo
    return out


def _columns(X: Any, keep: np.ndarray) -> Any:
    return sp.csr_matrix(X)[:, keep] if sp.issparse(X) else np.asarray(X, np.float64)[:, keep]


# ----------------------------------------------------------------------------- similarity
def _similarity(V: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(T x T similarity of the rows of ``V``, rows with no direction). An undefined
    similarity (a zero vector, or a constant one for the correlation) is 0."""
    V = np.asarray(V, dtype=np.float64)
    T = V.shape[0]
    scale = np.max(np.abs(V), axis=1) if V.shape[1] else np.zeros(T)
    if kind == "correlation":
        V = V - V.mean(axis=1, keepdims=True) if V.shape[1] else V
    norms = np.linalg.norm(V, axis=1)
    flat = norms <= 1e-12 * scale
    flat |= norms == 0.0
    U = np.zeros_like(V)
    U[~flat] = V[~flat] / norms[~flat, None]
    S = np.clip(U @ U.T, -1.0, 1.0)
    np.fill_diagonal(S, 1.0)
    return S, flat


def _masked_similarity(R: np.ndarray, observed: np.ndarray,
                       kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Cosine or Pearson correlation of the columns of ``R`` over the rows both columns
    observe, and the number of such rows. Pairs with fewer than 3 common rows, or no spread,
    get 0."""
    obs = observed.astype(np.float64)
    R0 = np.where(observed, R, 0.0)
    N = obs.T @ obs
    Sxx = (R0 * R0).T @ obs  # [s, t]: sum of R_s^2 over the rows both s and t observe
    Sxy = R0.T @ R0
    if kind == "correlation":
        Sx = R0.T @ obs
        cov = N * Sxy - Sx * Sx.T
        vx = N * Sxx - Sx**2
    else:
        cov, vx = Sxy, Sxx
    den = vx * vx.T
    ok = (N >= 3) & (den > 0)
    C = np.zeros_like(cov)
    C[ok] = cov[ok] / np.sqrt(den[ok])
    C = np.clip((C + C.T) / 2, -1.0, 1.0)
    np.fill_diagonal(C, 1.0)
    return C, N


# ----------------------------------------------------------------------------- the null
def _coefficient_null(V: np.ndarray, kind: str, B: int, rng: np.random.Generator,
                      pair_idx: np.ndarray):
    """Statistics of B draws of unrelated tasks (each row of ``V`` permuted across features,
    with random signs), and the |similarity| of the pairs ``pair_idx`` in every draw."""
    T, p = V.shape
    stats = np.empty(B)
    iu = np.triu_indices(T, 1)
    pairs = []
    base = np.broadcast_to(np.arange(p), (T, p))
    for b in range(B):
        if p:
            perm = rng.permuted(base, axis=1)
            signs = rng.integers(0, 2, size=(T, p)) * 2.0 - 1.0
            Vb = np.take_along_axis(V, perm, axis=1) * signs
        else:
            Vb = V
        vals = np.abs(_similarity(Vb, kind)[0][iu])
        stats[b] = vals.mean()
        pairs.append(vals[pair_idx])
    return stats, np.concatenate(pairs)


def _residual_null(R: np.ndarray, observed: np.ndarray, kind: str, B: int,
                   rng: np.random.Generator, pair_idx: np.ndarray):
    """As :func:`_coefficient_null`, each task's residuals permuted across its rows."""
    T = R.shape[1]
    stats = np.empty(B)
    iu = np.triu_indices(T, 1)
    rows = [np.flatnonzero(observed[:, t]) for t in range(T)]
    pairs = []
    Rb = R.copy()
    for b in range(B):
        for t, idx in enumerate(rows):
            Rb[idx, t] = R[rng.permutation(idx), t]
        vals = np.abs(_masked_similarity(Rb, observed, kind)[0][iu])
        stats[b] = vals.mean()
        pairs.append(vals[pair_idx])
    return stats, np.concatenate(pairs)


# ----------------------------------------------------------------------------- clusters
def _clusters(S: np.ndarray, threshold: float, n_clusters: int | None):
    """(labels 1..K, largest first; linkage; leaf order)."""
    from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
    from scipy.spatial.distance import squareform

    T = S.shape[0]
    D = np.clip(1.0 - (S + S.T) / 2, 0.0, 2.0)
    np.fill_diagonal(D, 0.0)
    Z = linkage(squareform(D, checks=False), method="average")
    order = leaves_list(Z)
    if n_clusters is None:
        raw = fcluster(Z, t=1.0 - threshold, criterion="distance")
    else:
        raw = fcluster(Z, t=n_clusters, criterion="maxclust")
    # renumber: largest cluster first, ties by position in the leaf order
    pos = np.empty(T, dtype=np.int64)
    pos[order] = np.arange(T)
    ids = np.unique(raw)
    key = sorted(ids, key=lambda k: (-np.sum(raw == k), pos[raw == k].min()))
    relabel = {int(k): i + 1 for i, k in enumerate(key)}
    labels = np.array([relabel[int(k)] for k in raw], dtype=np.int64)
    return labels, Z, order


# ----------------------------------------------------------------------------- verdict
def _p_text(p: float, B: int) -> str:
    text = f"{p:.3g}"
    if B > 0 and p <= 1.0 / (B + 1) + 1e-15:
        text += f" (the smallest possible with {B} permutations)"
    return text


def _names_text(names: Sequence[Any], k: int = 5) -> str:
    shown = ", ".join(str(n) for n in names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def _verdict(rel: Relatedness, n_clusters: int | None, model_note: str | None) -> str:
    what = rel._what()
    B = rel.n_permutations
    head = (f"{_LEVELS[rel.level]}: mean {what} {rel.statistic:.2f}, expected "
            f"{rel.null_mean:.2f} for unrelated tasks (95% quantile {rel.null_quantile:.2f}), "
            f"p = {_p_text(rel.p_value, B)}.")
    parts = [head]
    T = rel.n_tasks
    groups = rel.groups
    sizes = [len(g) for g in groups]
    alone = T - sum(sizes)
    # several groups: a second group of some size, not just a stray pair
    several = len(groups) >= 2 and sizes[1] >= max(2, 0.1 * T)
    if n_clusters is not None:
        parts.append(f"{rel.clusters.nunique()} clusters as asked (sizes "
                     f"{', '.join(str(int(v)) for v in rel.clusters.value_counts())}).")
    elif groups and rel.level == "none":
        S = rel.matrix.to_numpy()
        iu = np.triu_indices(T, 1)
        above = int(np.count_nonzero(np.abs(S[iu]) >= rel.pair_threshold))
        parts.append(f"{above} of {iu[0].size} pairs exceed the unrelated-pair threshold "
                     f"|{rel.similarity}| {rel.pair_threshold:.2f} "
                     f"({0.05 * iu[0].size:.1f} expected by chance).")
    elif groups:
        parts.append(
            f"{len(groups)} group{'s' if len(groups) > 1 else ''} of related tasks (average "
            f"|{rel.similarity}| within a group at least {rel.pair_threshold:.2f}, more than "
            f"95% of unrelated pairs): sizes {', '.join(map(str, sizes))}; {alone} of {T} "
            "tasks in no group.")
    elif rel.level != "none":
        parts.append(f"No group of tasks stands out (no cluster averages |{rel.similarity}| "
                     f"above {rel.pair_threshold:.2f}).")
    if rel.level == "none":
        parts.append("Expect little gain from multi-task learning; compare against "
                     "single-task ridge (regmtl compare) before using it.")
    elif rel.method == "residual":
        parts.append("The tasks share variation that the features do not explain (a common "
                     "latent factor): modelling the outputs jointly (e.g. a low-rank 'trace' "
                     "penalty, or a multi-output model) may help; check with regmtl compare.")
    elif groups and (sizes[0] >= 0.8 * T or (sizes[0] >= 0.5 * T and not several)):
        parts.append("Most tasks look alike: penalties that share across all tasks should "
                     "help (mean-regularized 'mean', joint feature selection 'l21', low-rank "
                     "'trace'); check with regmtl compare.")
    elif several:
        parts.append(f"The tasks fall into groups: try clustered multi-task learning "
                     f"(penalty='clustered', k about {len(groups)}) or a GraphLaplacian linking "
                     "the tasks of each group; check with regmtl compare.")
    else:
        parts.append("The sharing is spread thinly over many pairs: a low-rank ('trace') or "
                     "mean-regularized ('mean') penalty may still help; check with regmtl "
                     "compare.")
    floor = 1.0 / (B + 1)
    if floor >= 0.01 and rel.p_value <= floor + 1e-15:
        parts.append(f"With {B} permutations p cannot go below {floor:.3g}: use at least 100 "
                     "to reach the strong level.")
    parts += rel.notes
    if model_note:
        parts.append(model_note)
    return " ".join(parts)


# ----------------------------------------------------------------------------- main
def _check_int(name: str, value: Any, low: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name}={value!r} must be an integer >= {low}; {fix}")
    return int(value)


def task_relatedness(
    X: Any = None,
    y: Any = None,
    task: Any = None,
    *,
    method: str = "ridge",
    similarity: str = "cosine",
    model: Any = None,
    task_names: Sequence[Any] | None = None,
    n_clusters: int | None = None,
    n_permutations: int = 200,
    standardize: bool = True,
    cv: int = 3,
    n_alphas: int = 12,
    tol: float = 1e-6,
    random_state: int | None = 0,
    loss: Any = None,
) -> Relatedness:
    r"""How related are the tasks? Pairwise similarity, a permutation test and clusters.

    Parameters
    ----------
    X, y, task : the data, in any form regmtl takes
        A loader's Bunch (``regmtl.datasets.load_school()``), lists (or dicts) per task, a
        long table with ``task`` ids (or the name of a column of a DataFrame ``X``), or a
        shared design ``X`` (n, p) with ``Y`` (n, T) (NaN = no label). Regression or binary
        classification (two labels in every task), detected as :func:`regmtl.compare` does.
        ``X`` may also be a fitted model (then ``method="model"``).
    method : {"ridge", "model", "residual"}
        ``"ridge"``: per-task ridge coefficients (L2 logistic for binary tasks), one alpha by
        ``cv``-fold cross-validation inside every task, on features z-scored with the pooled
        rows (``standardize``); features constant within every task are left out.
        ``"model"``: the ``coef_`` of ``model`` (implied when a model is given); features
        with a zero coefficient in every task are left out, and a model fitted by
        :func:`regmtl.scaling.fit_standardized` is put back on its z-scored features.
        ``"residual"``: out-of-fold residuals of ridge fits (``cv`` folds of the rows,
        ``KFold(cv, shuffle=True, random_state=0)``, alpha as for ``"ridge"``),
        compared over the rows both tasks label; needs a shared design.
    similarity : {"cosine", "correlation"}
        Cosine of the two vectors, or their Pearson correlation (across features, or across
        rows for residuals, where both are the same up to centering).
    model : fitted estimator, optional
        A linear multi-task model (``MultiTaskRegressor``, ``MultiTaskClassifier``, their CV
        versions, anything with a 2-D ``coef_``). Unless its penalty is ``"l2"`` (independent
        fits), its penalty pulled the tasks together, so the similarity reflects the penalty
        as well as the data; the verdict says so.
    task_names : sequence, optional
        Names for the tasks (default: from the data or the model, else 0..T-1).
    n_clusters : int, optional
        Cut the dendrogram into this many clusters. Default: cut where the average
        similarity within a cluster drops below ``pair_threshold``, so a group holds tasks
        more alike than 95% of unrelated pairs.
    n_permutations : int, default=200
        Draws B of unrelated tasks. The smallest p-value is ``1 / (B + 1)``: the "strong"
        level (p < 0.01) needs B >= 100.
    standardize : bool, default=True
        z-score the features with the pooled rows of all tasks (sparse: scaled only).
    cv, n_alphas, tol : int, int, float
        Folds and grid size of the alpha search, solver tolerance (``"ridge"``,
        ``"residual"``). The folds are shuffled with a fixed seed (0), so the matrix does not
        depend on ``random_state``.
    random_state : int, Generator or None, default=0
        Seeds the permutations (the null); the result is a function of it.
    loss : str, Datafit or list of them, optional
        ``method="ridge"`` with a loss of :class:`~regmtl.MultiTaskRegressor` other than
        the squared one (``"poisson"``, ``"gamma"``, ``"huber"``, ``"quantile"``, a loss
        object, or one per task): every task's L2 fit with that loss, its coefficients on
        the scale of the linear predictor (log rates for the log links). The shuffled-target
        null is the closed-form ridge map, so it is drawn for the squared loss only; the
        permutation null is used alone otherwise. ``method="residual"`` takes the squared
        loss only (a ValueError names the loss). None: the squared loss (regression) or the
        logistic one (binary tasks).

    Returns
    -------
    Relatedness
        ``matrix``, ``clusters``, ``statistic``, ``p_value``, ``related``, ``verdict``, ...

    Notes
    -----
    Statistic: :math:`\bar s = \binom{T}{2}^{-1}\sum_{s<t} |S_{st}|`. Null: for coefficient
    methods every task's vector ``v_t`` becomes ``(e_t \odot v_t)[\pi_t]`` with a random
    permutation :math:`\pi_t` of the features and random signs :math:`e_t \in \{\pm 1\}^p`,
    independently per task; for residuals every task's residuals are permuted across the rows
    it labels. ``p = (1 + \#\{b: \bar s_b \ge \bar s\}) / (1 + B)``; the verdict is *strong*
    for p < 0.01, *some evidence* for p < 0.05 (``related``), *none* otherwise. Clusters:
    average linkage on ``1 - S``.

    With correlated features, estimation noise alone aligns the estimates of unrelated tasks
    along the features' leading directions, which the permutation null does not see. So for
    ``method="ridge"`` on regression tasks a second null refits every task on its targets
    shuffled within the task (alpha held fixed, the closed-form ridge map), and the verdict
    takes the larger p-value and pair threshold of the two. On School with shuffled targets
    (no signal) the statistic is 0.21: the permutation null alone (mean 0.17, 95% quantile
    0.18) called it strong, the shuffle null (mean 0.21) gives p = 0.90; the real targets
    give 0.71 (p = 0.005 against both).

    Examples
    --------
    >>> import regmtl as rm
    >>> from regmtl.datasets import make_multitask_regression
    >>> d = make_multitask_regression(6, 60, 8, n_informative=4, relatedness=0.95,
    ...                               random_state=0)
    >>> rel = rm.task_relatedness(d, n_permutations=100)
    >>> rel.level, round(rel.p_value, 4), rel.clusters.nunique()
    ('strong', 0.0099, 1)
    """
    if _is_estimator(X) and model is None:
        model, X = X, None
    if model is not None:
        if method == "residual":
            raise ValueError("method='residual' works on data (a shared design X, Y), not on "
                             "a model; drop model= or use method='model'.")
        method = "model"
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose from {', '.join(METHODS)}.")
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity={similarity!r} is unknown; choose 'cosine' or "
                         "'correlation'.")
    B = _check_int("n_permutations", n_permutations, 1,
                   "use about 200 (the smallest p-value is 1 / (n_permutations + 1)).")
    if n_clusters is not None:
        n_clusters = _check_int("n_clusters", n_clusters, 1,
                                "or None to cut at the unrelated-pair threshold.")
    if method == "model" and model is None:
        raise ValueError("method='model' needs a fitted model: task_relatedness(model=m) or "
                         "task_relatedness(m).")
    rng = np.random.default_rng(random_state)

    notes: list[str] = []
    model_note = None
    kind = "regression"
    alpha = residuals = coefficients = features = n_features = None
    noise_parts = (None, None)
    if method == "model":
        V, names, features, kind = _model_coefficients(model)
        n_features = V.shape[1]
        keep = np.any(V != 0.0, axis=0)
        if features is None:
            features = [f"x{j}" for j in range(n_features)]
        features = [f for f, k in zip(features, keep, strict=True) if k]
        V = V[:, keep]
        if not is_independent(model):
            pen = _penalty_name(model)
            model_note = (
                f"Caution: these coefficients come from a fit with the penalty {pen}, which "
                "pulls the tasks together, so their similarity reflects the penalty as well "
                "as the data" if pen is not None else
                f"Caution: these coefficients come from a {type(model).__name__} fit; if its "
                "penalty couples the tasks, their similarity reflects the penalty as well as "
                "the data")
            model_note += "; use method='ridge' (independent fits) to test relatedness."
    elif method == "ridge":
        V, names, features, n_features, kind, alpha, noise_parts = _ridge_coefficients(
            X, y, task, standardize, cv, n_alphas, tol, loss)
    else:
        from .datafits import make_loss

        if loss is not None and not make_loss(loss).quadratic:
            raise ValueError(f"method='residual' compares residuals of the squared loss; "
                             f"loss={loss!r} is not supported there: use method='ridge' "
                             "with that loss.")
        residuals, names, alpha, features, n_features = _residuals(
            X, y, task, standardize, cv, n_alphas, tol)

    if task_names is not None:
        names = list(task_names)
    T = residuals.shape[1] if method == "residual" else V.shape[0]
    if names is None:
        names = list(range(T))
    if len(names) != T:
        raise ValueError(f"task_names: {len(names)} names for {T} tasks.")
    if T < 2:
        raise ValueError(f"task_relatedness needs at least two tasks (got {T}): one task has "
                         "nothing to be related to.")
    if n_clusters is not None and n_clusters > T:
        raise ValueError(f"n_clusters={n_clusters} is more than the {T} tasks; ask for at "
                         f"most {T}, or None to cut at the unrelated-pair threshold.")

    iu = np.triu_indices(T, 1)
    n_pairs = iu[0].size
    per_draw = max(1, _MAX_NULL_PAIRS // B)
    pair_idx = (np.arange(n_pairs) if n_pairs <= per_draw
                else np.sort(rng.choice(n_pairs, per_draw, replace=False)))
    if method == "residual":
        observed = ~np.isnan(residuals)
        R = np.where(observed, residuals, 0.0)
        S, common = _masked_similarity(R, observed, similarity)
        few = [(names[i], names[j]) for i, j in zip(*iu, strict=True) if common[i, j] < 3]
        if few:
            notes.append(f"{len(few)} pair(s) of tasks share fewer than 3 labelled rows "
                         f"(e.g. {few[0][0]} and {few[0][1]}); their similarity is set to 0.")
        null, null_pairs = _residual_null(R, observed, similarity, B, rng, pair_idx)
    else:
        coefficients = V
        S, flat = _similarity(V, similarity)
        if np.any(flat):
            zero = [names[t] for t in np.flatnonzero(flat)]
            why = "all-zero" if similarity == "cosine" else "constant"
            notes.append(f"{len(zero)} task(s) have {why} coefficients ({_names_text(zero)}): "
                         f"their {similarity} is undefined and set to 0.")
        null, null_pairs = _coefficient_null(V, similarity, B, rng, pair_idx)

    stat = float(np.mean(np.abs(S[iu])))
    p_value = float((1 + np.count_nonzero(null >= stat)) / (1 + B))
    pair_threshold = float(np.quantile(null_pairs, 0.95))
    if noise_parts[0] is not None:
        # correlated features make even pure-noise coefficients alike: the verdict must beat
        # that too (the larger p-value and threshold of the two nulls)
        noise, noise_pairs = _noise_null(noise_parts[0], noise_parts[1], similarity, B, rng,
                                         pair_idx)
        p_noise = float((1 + np.count_nonzero(noise >= stat)) / (1 + B))
        if np.quantile(noise, 0.95) > np.quantile(null, 0.95):
            null = noise
        p_value = max(p_value, p_noise)
        pair_threshold = max(pair_threshold, float(np.quantile(noise_pairs, 0.95)))
    labels, Z, order = _clusters(S, pair_threshold, n_clusters)
    level = "strong" if p_value < 0.01 else "some" if p_value < 0.05 else "none"
    index = pd.Index(names, name="task")
    rel = Relatedness(
        matrix=pd.DataFrame(S, index=index, columns=index.copy()),
        method=method, similarity=similarity,
        clusters=pd.Series(labels, index=index.copy(), name="cluster"),
        linkage=Z, order=order, statistic=stat, null_mean=float(np.mean(null)),
        null_quantile=float(np.quantile(null, 0.95)), pair_threshold=pair_threshold,
        p_value=p_value, related=bool(p_value < 0.05), level=level, verdict="",
        coefficients=coefficients, features=features, residuals=residuals,
        null_statistics=null, alpha=alpha, kind=kind, n_features=n_features, notes=notes,
    )
    est = "logistic" if kind == "binary" else "ridge"
    if method == "residual":
        rel.source = "out-of-fold ridge residuals"
    elif method == "ridge" or model_note is None:
        rel.source = f"per-task {est} coefficients"
        if method == "model":
            rel.source += " (the model's independent fits)"
    else:
        rel.source = "model's coefficients"
    rel.verdict = _verdict(rel, n_clusters, model_note)
    return rel


def _fit_l2_cv(kind: str, Xs: Any, ys: Any, cv: Any, n_alphas: int, tol: float,
               loss: Any = None):
    from .selection import MultiTaskClassifierCV, MultiTaskRegressorCV

    if loss is not None:  # a regression loss other than the squared one
        return MultiTaskRegressorCV("l2", loss=loss, alphas=n_alphas, cv=cv, tol=tol,
                                    random_state=_FOLD_SEED).fit(Xs, ys)
    cls = MultiTaskRegressorCV if kind == "regression" else MultiTaskClassifierCV
    return cls("l2", alphas=n_alphas, cv=cv, tol=tol, random_state=_FOLD_SEED).fit(Xs, ys)


def _ridge_coefficients(X, y, task, standardize, cv, n_alphas, tol, loss=None):
    from .scaling import pooled_scaling
    from .scaling import standardize as zscore

    Xs, ys, names, bunch, features = _task_lists(X, y, task)
    if len(Xs) < 2:
        raise ValueError(f"task_relatedness needs at least two tasks (got {len(Xs)}): one "
                         "task has nothing to be related to.")
    _check_finite(Xs, ys, names)
    kind = task_kind(ys, getattr(bunch, "kind", None) or "auto")
    if loss is not None:
        from .datafits import make_loss

        datafit = make_loss(loss)
        kind = "binary" if datafit.kind == "binary" else "regression"
        if datafit.kind == "binary" or datafit.quadratic:
            loss = None  # the classifier's or the squared loss: as without it
    p = Xs[0].shape[1]
    keep = _varies_within_tasks(Xs)
    if not keep.any():
        raise ValueError("X: no feature varies within any task, so no task has coefficients "
                         "to compare.")
    Xs = [_columns(Xk, keep) for Xk in Xs]
    if standardize:
        mean, scale = pooled_scaling(Xs)
        Xs = zscore(Xs, mean, scale)
    est = _fit_l2_cv(kind, Xs, ys, cv, n_alphas, tol, loss)
    V = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    features = [f"x{j}" for j in range(p)] if features is None else list(features)
    features = [f for f, k in zip(features, keep, strict=True) if k]
    smoothers = (_ridge_smoothers(Xs, float(est.alpha_))
                 if kind == "regression" and loss is None else None)
    return V, names, features, p, kind, float(est.alpha_), (smoothers, ys)


def _ridge_smoothers(Xs: Sequence[Any], alpha: float) -> list[np.ndarray]:
    """Per task the p x n_t map ``y -> w`` of ridge with an intercept,
    ``(Xc^T Xc + n_t alpha I)^-1 Xc^T`` (Xc: the task's centered rows)."""
    out = []
    for X in Xs:
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
        Xc = X - X.mean(axis=0)
        n, p = Xc.shape
        out.append(np.linalg.solve(Xc.T @ Xc + n * alpha * np.eye(p), Xc.T))
    return out


def _noise_null(smoothers: list[np.ndarray], ys: Sequence[Any], kind: str, B: int,
                rng: np.random.Generator, pair_idx: np.ndarray):
    """Statistics of B refits on targets shuffled within every task (the alpha held fixed):
    the similarity that estimation noise alone produces with these designs."""
    T = len(smoothers)
    iu = np.triu_indices(T, 1)
    ys = [np.asarray(y, dtype=np.float64) for y in ys]
    stats, pairs = np.empty(B), []
    for b in range(B):
        Vb = np.stack([H @ rng.permutation(y) for H, y in zip(smoothers, ys, strict=True)])
        vals = np.abs(_similarity(Vb, kind)[0][iu])
        stats[b] = vals.mean()
        pairs.append(vals[pair_idx])
    return stats, np.concatenate(pairs)


def _residuals(X, y, task, standardize, cv, n_alphas, tol):
    from sklearn.model_selection import KFold

    from .estimators import MultiTaskRegressor
    from .scaling import pooled_scaling
    from .scaling import standardize as zscore

    Xv, Y, names, _ = _shared_design(X, y, task)
    T = Y.shape[1]
    if T < 2:
        raise ValueError(f"task_relatedness needs at least two tasks (got {T}): one task has "
                         "nothing to be related to.")
    if not np.all(np.isfinite(Xv.data if sp.issparse(Xv) else Xv)):
        raise ValueError("X: the shared design has NaN or infinite values; impute or drop "
                         "those rows first.")
    if np.any(np.isinf(Y)):
        raise ValueError("Y: infinite targets; drop them (NaN marks a missing label).")
    observed = ~np.isnan(Y)
    labelled = observed.sum(axis=0)
    if labelled.min() < cv:
        t = int(np.argmin(labelled))
        raise ValueError(f"cv={cv}: task {names[t]!r} labels {labelled[t]} rows, fewer than "
                         "the folds. Lower cv or drop the task.")
    for t in range(T):
        if len(np.unique(Y[observed[:, t], t])) <= 2:
            raise ValueError(f"method='residual' needs regression targets; task {names[t]!r} "
                             "has two values or fewer (binary?). Use method='ridge'.")
    if standardize:
        mean, scale = pooled_scaling([Xv])
        Z = zscore([Xv], mean, scale)[0]
    else:
        Z = Xv
    alpha = float(_fit_l2_cv("regression", Z, Y, cv, n_alphas, tol).alpha_)
    R = np.full(Y.shape, np.nan)
    folds = KFold(cv, shuffle=True, random_state=_FOLD_SEED)
    for tr, te in folds.split(np.zeros((Y.shape[0], 1))):
        m = MultiTaskRegressor("l2", alpha=alpha, tol=tol).fit(Z[tr], Y[tr])
        R[te] = Y[te] - np.asarray(m.predict(Z[te])).reshape(len(te), T)
    R[~observed] = np.nan
    return R, names, alpha, None, None
