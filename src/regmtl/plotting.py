"""Plots of fitted models, regularization paths, CV curves and model comparisons.

Every function takes plain data (arrays, DataFrames, a :class:`~regmtl.RegularizationPath`),
draws on ``ax`` when one is given and otherwise on a new :class:`matplotlib.figure.Figure`
(no pyplot, so no GUI backend is needed), and returns the ``Axes``. Matplotlib is imported
only when a function is called. Show a new figure in a notebook with ``ax.figure``; save it
with ``ax.figure.savefig(...)`` or :func:`figure_to_png`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_coefficients",
    "plot_path",
    "plot_cv_curve",
    "plot_task_scores",
    "plot_comparison",
    "plot_relatedness",
    "plot_transfer_curve",
    "plot_stability",
    "plot_gradient_balance",
    "plot_training_history",
    "plot_coef_intervals",
    "figure_to_png",
]

_DIVERGING = "RdBu_r"
_ZERO_COLOR = "0.6"


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax`` itself, or the axes of a new pyplot-free figure."""
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _names(names: Sequence[Any] | None, n: int, prefix: str, what: str) -> list[str]:
    if names is None:
        return [f"{prefix}{i}" for i in range(n)]
    names = [str(s) for s in names]
    if len(names) != n:
        raise ValueError(f"{len(names)} {what} names given for {n} {what}s.")
    return names


def _epochs(history: pd.DataFrame) -> np.ndarray:
    """The epoch of each row of a deep training history (1, 2, ... without the column)."""
    return (history["epoch"].to_numpy() if "epoch" in history.columns
            else np.arange(1, len(history) + 1))


def _words(name: str) -> str:
    """A column name as axis-label words: ``explained_variance`` -> ``explained variance``."""
    return str(name).replace("_", " ")


def _top(norms: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``norms`` (ties to the lower index), in increasing order."""
    if norms.size <= k:
        return np.arange(norms.size)
    order = np.argsort(-norms, kind="stable")
    return np.sort(order[:k])


def plot_coefficients(
    coef: Any,
    *,
    feature_names: Sequence[Any] | None = None,
    task_names: Sequence[Any] | None = None,
    ax: Axes | None = None,
    max_tasks: int = 60,
    max_features: int = 60,
) -> Axes:
    """Heat map of the coefficients, tasks x features.

    The colour scale is symmetric around 0 (white), so the features a joint-sparsity penalty
    such as :class:`~regmtl.L21` removes show as white columns (with grey tick labels), and
    the title counts them.

    Parameters
    ----------
    coef : array-like of shape (n_tasks, n_features) or (n_features,), or a fitted estimator
        ``W`` as ``coef_`` stores it (an estimator's ``coef_`` is used).
    feature_names : sequence, default=None
        Tick labels of the features; default ``x0, x1, ...``.
    task_names : sequence, default=None
        Tick labels of the tasks; default ``task 0, task 1, ...``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.
    max_tasks : int, default=60
        With more tasks, only the ``max_tasks`` with the largest Euclidean norm are shown, in
        their original order, and the title says so.
    max_features : int, default=60
        The same for the features (columns).

    Returns
    -------
    matplotlib Axes
        The heat map, with a colour bar.

    Raises
    ------
    ValueError
        If ``coef`` is not 1-D or 2-D, a limit is below 1, or a names list has the wrong
        length.

    See Also
    --------
    plot_path : How the coefficients enter along a regularization path.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.plotting import plot_coefficients
    >>> W = np.array([[1.0, 0.0, -0.5], [0.8, 0.0, 0.2]])
    >>> ax = plot_coefficients(W, feature_names=["a", "b", "c"])
    >>> type(ax).__name__
    'Axes'
    >>> print(ax.get_title())
    Coefficients
    1 of 3 features zero in every task

    A fitted estimator works too: ``plot_coefficients(model)`` draws ``model.coef_``.
    """
    W = np.asarray(getattr(coef, "coef_", coef), dtype=np.float64)
    if W.ndim == 1:
        W = W[None, :]
    if W.ndim != 2:
        raise ValueError(f"coef must be 2-D (tasks x features), got shape {W.shape}.")
    if max_tasks < 1 or max_features < 1:
        raise ValueError("max_tasks and max_features must be at least 1.")
    T, p = W.shape
    fnames = _names(feature_names, p, "x", "feature")
    tnames = _names(task_names, T, "task ", "task")
    rows = _top(np.linalg.norm(W, axis=1), max_tasks)
    cols = _top(np.linalg.norm(W, axis=0), max_features)
    shown = W[np.ix_(rows, cols)]

    ax = _new_axes(ax, (min(2.5 + 0.22 * cols.size, 16.0), min(1.8 + 0.2 * rows.size, 14.0)))
    vmax = float(np.max(np.abs(shown))) if shown.size else 0.0
    vmax = vmax if vmax > 0 else 1.0
    image = ax.imshow(shown, cmap=_DIVERGING, vmin=-vmax, vmax=vmax, aspect="auto",
                      interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label="coefficient")
    small = 8 if max(rows.size, cols.size) <= 30 else 6
    ax.set_xticks(np.arange(cols.size), [fnames[j] for j in cols], rotation=90, fontsize=small)
    ax.set_yticks(np.arange(rows.size), [tnames[t] for t in rows], fontsize=small)
    zero = ~np.any(W != 0.0, axis=0)
    for label, j in zip(ax.get_xticklabels(), cols, strict=True):
        if zero[j]:
            label.set_color(_ZERO_COLOR)
    ax.set_xlabel("feature")
    ax.set_ylabel("task")

    title = "Coefficients"
    notes = []
    if rows.size < T:
        notes.append(f"top {rows.size} of {T} tasks")
    if cols.size < p:
        notes.append(f"top {cols.size} of {p} features")
    if notes:
        title += f" ({', '.join(notes)} by norm)"
    n_zero = int(np.count_nonzero(zero))
    title += f"\n{n_zero} of {p} features zero in every task"
    ax.set_title(title)
    return ax


def _path_arrays(path: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(path, "alphas") and hasattr(path, "coefs"):
        alphas, coefs = path.alphas, path.coefs
    else:
        try:
            alphas, coefs = path
        except (TypeError, ValueError):
            raise TypeError(
                "path must be a RegularizationPath or an (alphas, coefs) pair."
            ) from None
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    coefs = np.asarray(coefs, dtype=np.float64)
    if coefs.ndim == 2:  # one task: (n_alphas, p)
        coefs = coefs[:, None, :]
    if coefs.ndim != 3 or coefs.shape[0] != alphas.size:
        raise ValueError(f"coefs of shape {coefs.shape} do not match {alphas.size} alphas; "
                         "expected (n_alphas, T, p).")
    return alphas, coefs


def _isotonic(z: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``z`` in least squares (pool adjacent
    violators)."""
    means: list[float] = []
    sizes: list[int] = []
    for v in z:
        means.append(float(v))
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            n = sizes[-2] + sizes[-1]
            means[-2] = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / n
            sizes[-2] = n
            del means[-1], sizes[-1]
    return np.repeat(means, sizes)


def _spread(y: np.ndarray, gap: float, lo: float = -np.inf, hi: float = np.inf) -> np.ndarray:
    """Positions in the order of ``y``, at least ``gap`` apart and as close to ``y`` as can be
    (least squares), then moved inside ``[lo, hi]`` when they fit there."""
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(y, kind="stable")
    steps = gap * np.arange(y.size)
    pos = _isotonic(y[order] - steps) + steps
    if pos.size and pos[0] < lo:
        pos = np.maximum(pos, lo + steps)
    if pos.size and pos[-1] > hi:
        pos = np.minimum(pos, hi - steps[::-1])
    out = np.empty_like(pos)
    out[order] = pos
    return out


def _axes_inches(ax: Axes) -> tuple[float, float]:
    """Width and height of ``ax`` in inches, from its current position in the figure."""
    fig = root_figure(ax)
    box = ax.get_position()
    w, h = fig.get_size_inches()
    return max(box.width * w, 1e-3), max(box.height * h, 1e-3)


_PATH_FONT = 8.0  # points, the size of the feature labels of plot_path


def _path_colors(labelled: list[int]) -> dict[int, Any]:
    """Distinct colours for the labelled features (tab10, tab20 past ten), in that order."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labelled) <= 10 else "tab20"]
    return {j: cmap(k % cmap.N) for k, j in enumerate(labelled)}


def _text_inches(text: str) -> float:
    """Width of ``text`` at the label font size, in inches."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    width, _, _ = TextToPath().get_text_width_height_descent(
        text, FontProperties(size=_PATH_FONT), ismath=False)
    return width / 72.0


def _label_room(alphas: np.ndarray, names: list[str], ax: Axes) -> float:
    """The smallest alpha shown: the path's last alpha moved right, leaving room beside the
    line ends for the longest of ``names``."""
    first, last = float(alphas[0]), float(alphas[-1])
    if not names or first <= last:
        return last
    width = max(_text_inches(n) for n in names) + 0.35  # the leader's gap and a margin
    share = min(width / _axes_inches(ax)[0], 0.45)
    return last * (last / first) ** (share / (1.0 - share))


def _label_path_ends(ax: Axes, alphas: np.ndarray, end: np.ndarray, labelled: list[int],
                     names: list[str], colors: dict[int, Any]) -> None:
    """Name the ``labelled`` lines beside their right ends, one text line apart, joined to
    them by a thin leader when moved."""
    lo, hi = ax.get_ylim()
    frac = (end[labelled] - lo) / (hi - lo)
    gap = 1.35 * _PATH_FONT / 72.0 / _axes_inches(ax)[1]
    ys = _spread(frac, gap, 0.5 * gap, 1.0 - 0.5 * gap)
    x_text = alphas[-1] * (alphas[-1] / alphas[0]) ** 0.05  # a little past the line ends
    for j, y in zip(labelled, ys, strict=True):
        ax.annotate(names[j], xy=(alphas[-1], end[j]), xytext=(x_text, y),
                    textcoords=("data", "axes fraction"), ha="left", va="center",
                    fontsize=_PATH_FONT, color=colors[j],
                    arrowprops={"arrowstyle": "-", "color": colors[j], "lw": 0.6,
                                "relpos": (0.0, 0.5), "shrinkA": 1.0, "shrinkB": 0.0})


def plot_path(
    path: Any,
    *,
    ax: Axes | None = None,
    feature_names: Sequence[Any] | None = None,
    top: int = 10,
) -> Axes:
    r"""Regularization path: the norm of each feature's coefficients across tasks against alpha.

    One line per feature :math:`j`, :math:`\|W_{:,j}\|_2` over the tasks, with alpha on a log
    scale decreasing to the right (``alpha = 0`` is left out); a secondary y axis
    (``ax.right_ax``) shows the number of active features as a dashed step line.

    Parameters
    ----------
    path : RegularizationPath or tuple of (alphas, coefs)
        What :func:`~regmtl.regularization_path` returned, or ``alphas`` of shape
        (n_alphas,) with ``coefs`` of shape (n_alphas, n_tasks, n_features) (or
        (n_alphas, n_features) for one task).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.
    feature_names : sequence, default=None
        Names for the labels; default ``x0, x1, ...``.
    top : int, default=10
        Colour and name this many features, those with the largest norm at the smallest
        alpha: their names sit beside the lines' right ends, one text line apart (a thin
        leader joins a name moved off its line), in a margin past the smallest alpha; the
        other features are thin grey lines.

    Returns
    -------
    matplotlib Axes
        The path; ``ax.right_ax`` holds the twin axes of the active-feature count.

    Raises
    ------
    TypeError
        If ``path`` is neither a path nor an ``(alphas, coefs)`` pair.
    ValueError
        If ``coefs`` does not have one entry per alpha.

    See Also
    --------
    regmtl.regularization_path : Computes the path.
    plot_cv_curve : The cross-validated score along the same grid.

    Examples
    --------
    >>> from regmtl import regularization_path
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.plotting import plot_path
    >>> data = make_multitask_regression(3, 30, 6, n_informative=2, random_state=0)
    >>> path = regularization_path(data.X, data.y, penalty="l21", alphas=8)
    >>> ax = plot_path(path, feature_names=data.feature_names, top=3)
    >>> type(ax).__name__, type(ax.right_ax).__name__
    ('Axes', 'Axes')
    """
    alphas, coefs = _path_arrays(path)
    p = coefs.shape[2]
    names = _names(feature_names, p, "x", "feature")
    order = np.argsort(-alphas, kind="stable")
    order = order[alphas[order] > 0]  # a log axis cannot show alpha = 0
    alphas, coefs = alphas[order], coefs[order]
    norms = np.linalg.norm(coefs, axis=1)  # (n_alphas, p)
    n_active = np.count_nonzero(np.any(coefs != 0.0, axis=1), axis=1)

    ax = _new_axes(ax, (7.0, 4.5))
    ax.set_xscale("log")
    end = norms[-1] if alphas.size else np.zeros(p)
    labelled = [j for j in _top(end, max(int(top), 0)) if end[j] > 0]
    labelled.sort(key=lambda j: -end[j])
    colors = _path_colors(labelled)
    for j in range(p):
        mine = j in colors
        ax.plot(alphas, norms[:, j], lw=1.4 if mine else 0.9, label=names[j],
                color=colors.get(j, _ZERO_COLOR), zorder=3 if mine else 2,
                alpha=1.0 if mine else 0.6)
    top_y = float(norms.max()) if norms.size else 0.0
    ax.set_ylim(0.0, 1.05 * top_y if top_y > 0 else 1.0)  # norms are >= 0
    if alphas.size > 1 and alphas[0] != alphas[-1]:
        ax.set_xlim(alphas[0], _label_room(alphas, [names[j] for j in labelled], ax))
    elif not ax.xaxis_inverted():
        ax.invert_xaxis()
    if labelled:
        _label_path_ends(ax, alphas, end, labelled, names, colors)
    ax.set_xlabel("alpha")
    ax.set_ylabel(r"$\|W_j\|_2$ across tasks")
    ax.set_title("Regularization path")

    right = ax.twinx()
    right.step(alphas, n_active, where="post", color="0.45", ls="--", lw=1.0)
    right.set_ylabel("active features (dashed)", color="0.45")
    right.set_ylim(0, max(p, 1) * 1.05)
    right.tick_params(axis="y", colors="0.45")
    ax.right_ax = right
    return ax


def _param_label(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def plot_cv_curve(
    cv_results: Any,
    *,
    param: str = "alpha",
    best: float | None = None,
    one_se: float | None = None,
    ax: Axes | None = None,
    score_label: str | None = None,
    n_splits: int | None = None,
) -> Axes:
    """Cross-validated score against a parameter (log scale), with an error band.

    Parameters
    ----------
    cv_results : DataFrame or dict
        As scikit-learn's ``cv_results_`` (and the ``cv_results_`` of
        :class:`~regmtl.MultiTaskRegressorCV`): columns ``param_<param>``,
        ``mean_test_score``, ``std_test_score``. Other ``param_*`` columns that vary (e.g.
        ``param_l1_ratio``) give one curve per combination of their values.
    param : str, default="alpha"
        The parameter on the x axis.
    best : float, default=None
        Draw a dashed vertical line at the best value.
    one_se : float, default=None
        Draw a dotted vertical line at the one-standard-error value.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.
    score_label : str, default=None
        y-axis label; default ``"mean test score"``.
    n_splits : int, default=None
        When given, the band is the standard error that the one-standard-error rule uses:
        the sample standard deviation over the K folds (ddof = 1) over ``sqrt(K)``, i.e.
        ``std_test_score / sqrt(K - 1)`` (``std_test_score`` is ddof = 0, as scikit-learn's);
        otherwise ±1 sd.

    Returns
    -------
    matplotlib Axes
        One line per curve whose data are ``(param, mean_test_score)`` sorted by ``param``.

    Raises
    ------
    ValueError
        If a needed column is missing or ``n_splits`` is below 1.

    See Also
    --------
    plot_path : The coefficients along the same grid of alpha.

    Examples
    --------
    >>> from regmtl.plotting import plot_cv_curve
    >>> cv_results = {"param_alpha": [1.0, 0.1, 0.01],
    ...               "mean_test_score": [0.2, 0.6, 0.5],
    ...               "std_test_score": [0.05, 0.04, 0.06]}
    >>> ax = plot_cv_curve(cv_results, best=0.1, n_splits=5)
    >>> type(ax).__name__
    'Axes'
    >>> ax.get_title(), [t.get_text() for t in ax.get_legend().get_texts()]
    ('Cross-validation (band: ±1 standard error)', ['best alpha = 0.1'])

    With a fitted :class:`~regmtl.MultiTaskRegressorCV` ``cv``:
    ``plot_cv_curve(cv.cv_results_, best=cv.alpha_)``.
    """
    import pandas as pd

    df = pd.DataFrame(cv_results)
    col = f"param_{param}"
    missing = [c for c in (col, "mean_test_score", "std_test_score") if c not in df.columns]
    if missing:
        raise ValueError(f"cv_results lacks the columns {missing}.")
    if n_splits is not None and n_splits < 1:
        raise ValueError(f"n_splits={n_splits!r} must be at least 1.")
    x = pd.to_numeric(df[col], errors="raise").to_numpy(dtype=np.float64)
    mean = df["mean_test_score"].to_numpy(dtype=np.float64)
    sd = df["std_test_score"].to_numpy(dtype=np.float64)
    if n_splits is not None:  # the one-SE rule's standard error: ddof = 1 sd over sqrt(K)
        sd = sd / np.sqrt(n_splits - 1.0) if n_splits > 1 else 0.0 * sd
    others = [c for c in df.columns
              if c.startswith("param_") and c != col and df[c].astype(str).nunique() > 1]
    keys = [tuple(_param_label(v) for v in row) for row in df[others].itertuples(index=False)]

    ax = _new_axes(ax, (6.5, 4.2))
    ax.set_xscale("log")
    for key in dict.fromkeys(keys):
        idx = np.array([i for i, k in enumerate(keys) if k == key], dtype=np.int64)
        idx = idx[np.argsort(x[idx], kind="stable")]
        label = ", ".join(f"{c[len('param_'):]}={v}" for c, v in zip(others, key, strict=True))
        (line,) = ax.plot(x[idx], mean[idx], marker="o", ms=3, label=label or "_curve")
        ax.fill_between(x[idx], mean[idx] - sd[idx], mean[idx] + sd[idx],
                        color=line.get_color(), alpha=0.2, lw=0)
    if best is not None:
        ax.axvline(best, color="k", ls="--", lw=1, label=f"best {param} = {best:.3g}")
    if one_se is not None:
        ax.axvline(one_se, color="k", ls=":", lw=1, label=f"one-SE {param} = {one_se:.3g}")
    if others or best is not None or one_se is not None:
        ax.legend(fontsize=8)
    ax.set_xlabel(param)
    ax.set_ylabel(score_label or "mean test score")
    band = "1 standard error" if n_splits is not None else "1 sd"
    ax.set_title(f"Cross-validation (band: ±{band})")
    return ax


def plot_task_scores(
    scores: pd.DataFrame,
    *,
    baseline: str,
    model: str,
    metric: str = "explained_variance",
    ax: Axes | None = None,
    size: str | None = "n",
) -> Axes:
    """Per-task score of one model against a baseline's, one point per task.

    Parameters
    ----------
    scores : pandas.DataFrame
        Tidy, as the ``scores`` of a :class:`~regmtl.Comparison`: columns ``model``,
        ``task``, ``<metric>``; rows of several splits are averaged per task first.
    baseline : str
        The value of ``model`` drawn on the x axis.
    model : str
        The value of ``model`` drawn on the y axis.
    metric : str, default="explained_variance"
        The score column.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.
    size : str or None, default="n"
        Column scaling the point area (e.g. the task's sample count), used when present.

    Returns
    -------
    matplotlib Axes
        Points ordered by task (sorted), the diagonal ``y = x``, and a title counting the
        tasks strictly above it.

    Raises
    ------
    ValueError
        If a column is missing, a model is not in ``scores``, or the two share no task.

    See Also
    --------
    plot_comparison : The averages over tasks.
    regmtl.compare : Produces such scores.

    Examples
    --------
    >>> import pandas as pd
    >>> from regmtl.plotting import plot_task_scores
    >>> scores = pd.DataFrame({
    ...     "model": ["single"] * 3 + ["l21"] * 3, "task": [0, 1, 2] * 2,
    ...     "explained_variance": [0.3, 0.5, 0.4, 0.45, 0.55, 0.35], "n": [20, 30, 40] * 2})
    >>> ax = plot_task_scores(scores, baseline="single", model="l21")
    >>> ax.get_title()
    'l21 above single in 2 of 3 tasks'
    """
    missing = [c for c in ("model", "task", metric) if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lacks the columns {missing}.")
    known = list(dict.fromkeys(scores["model"]))
    for name in (baseline, model):
        if name not in known:
            raise ValueError(f"model {name!r} not in scores; it has {known}.")
    use_size = size is not None and size in scores.columns
    cols = [metric, size] if use_size else [metric]
    per_task = {name: scores.loc[scores["model"] == name].groupby("task")[cols].mean()
                for name in (baseline, model)}
    both = per_task[baseline].merge(per_task[model], how="inner", left_index=True,
                                    right_index=True, suffixes=("_base", ""))
    if both.empty:
        raise ValueError(f"{baseline!r} and {model!r} share no task.")
    x = both[f"{metric}_base"].to_numpy(dtype=np.float64)
    y = both[metric].to_numpy(dtype=np.float64)
    s = 20.0
    if use_size:
        n = both[size].to_numpy(dtype=np.float64)
        s = 40.0 * n / np.nanmax(n) + 5.0 if np.nanmax(n) > 0 else 20.0

    ax = _new_axes(ax, (5.0, 5.0))
    ax.scatter(x, y, s=s, alpha=0.7, edgecolors="none")
    xy = np.concatenate([x, y])
    lo, hi = float(np.nanmin(xy)), float(np.nanmax(xy))
    pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], color="0.4", lw=1, ls="--")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"{baseline}: {_words(metric)}")
    ax.set_ylabel(f"{model}: {_words(metric)}")
    above = int(np.count_nonzero(y > x))
    ax.set_title(f"{model} above {baseline} in {above} of {len(x)} tasks")
    return ax


def _padded(values: np.ndarray, pad: float = 0.08) -> tuple[float, float] | None:
    """Limits around the finite ``values`` with ``pad`` of their range each side."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo if hi > lo else 0.05 * max(abs(hi), 1e-3)
    return lo - pad * span, hi + pad * span


def _score_intervals(models: list[str], mean: np.ndarray, sd: np.ndarray, tests: Any,
                     n_splits: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Each model's interval ``(low, high)`` and its name for the axis label: the tests'
    corrected 95% intervals, else Student t intervals from the sd over ``n_splits``, else
    ± sd."""
    if n_splits is not None and n_splits >= 2:
        from scipy import stats

        half = stats.t.ppf(0.975, n_splits - 1) * sd / np.sqrt(n_splits)
        low, high, band = mean - half, mean + half, "95% interval"
    elif n_splits == 1:
        low, high, band = mean.copy(), mean.copy(), "one split"
    else:
        low, high, band = mean - sd, mean + sd, "± sd"
    if tests is not None and {"model", "score_low", "score_high"} <= set(tests.columns):
        rows = tests.set_index("model")
        t_low = rows["score_low"].reindex(models).to_numpy(dtype=np.float64)
        t_high = rows["score_high"].reindex(models).to_numpy(dtype=np.float64)
        have = np.isfinite(t_low) & np.isfinite(t_high)
        if have.any():
            low, high, band = np.where(have, t_low, low), np.where(have, t_high, high), \
                "95% interval"
    return low, high, band


def _p_label(p: float, level: float) -> str:
    """``p = 0.31``, ``p < 0.001``: two significant digits, three where two would round
    onto ``level``."""
    if p < 0.001:
        return "p < 0.001"
    text = f"{p:.2g}"
    return f"p = {p:.3g}" if float(text) == level else f"p = {text}"


def _plot_differences(tests: pd.DataFrame, models: list[str], ax: Axes,
                      level: float = 0.05) -> None:
    """Each model's mean paired difference to the tests' baseline with its 95% interval, a
    line at 0 and the p-value at the right; filled markers where p < ``level``."""
    missing = [c for c in ("model", "baseline", "difference", "ci_low", "ci_high", "p_value")
               if c not in tests.columns]
    if missing:
        raise ValueError(f"tests lacks the columns {missing}.")
    rows = tests.set_index("model")
    rows.index = [str(m) for m in rows.index]
    base = str(tests["baseline"].iloc[0])
    ends = [0.0]
    for k, model in enumerate(models):
        if model not in rows.index:
            continue
        row = rows.loc[model]
        d, lo, hi, p = (float(row[c]) for c in ("difference", "ci_low", "ci_high", "p_value"))
        if model == base:
            ax.plot([0.0], [k], marker="D", color="0.3", ms=5, ls="none")
            ax.text(1.02, k, "baseline", transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color="0.3")
            continue
        if not np.isfinite(d):
            continue
        beyond = np.isfinite(p) and p < level
        color = ("C2" if d > 0 else "C3") if beyond else "0.45"
        err = ([[d - lo], [hi - d]] if np.isfinite(lo) and np.isfinite(hi) else None)
        ax.errorbar([d], [k], xerr=err, fmt="o", color=color, ecolor=color, capsize=3,
                    mfc=color if beyond else "white", mec=color)
        ends += [d, lo, hi]
        note = "no test" if not np.isfinite(p) else _p_label(p, level)
        ax.text(1.02, k, note, transform=ax.get_yaxis_transform(), va="center", fontsize=8,
                color=color)
    ax.axvline(0.0, color="0.3", lw=0.8)
    limits = _padded(np.asarray(ends, dtype=np.float64))
    if limits is not None:
        ax.set_xlim(*limits)
    ax.set_title(f"Difference to {base}", fontsize=10)


def plot_comparison(
    summary: Any,
    *,
    metric: str | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    tests: pd.DataFrame | None = None,
    n_splits: int | None = None,
) -> Axes:
    """Each model's mean score with its 95% interval and, beside it, its paired difference
    to the strongest independent baseline: which gains are beyond noise.

    The scores are points with intervals on an axis zoomed to their range (not bars from
    0, which make close models look alike). With ``tests`` (:attr:`Comparison.tests
    <regmtl.Comparison>`) a second panel shows each model's mean paired difference over
    splits to the tests' baseline with its 95% interval (Nadeau & Bengio's corrected
    resampled t, see :func:`regmtl.compare`), a vertical line at 0 and the p-value at the
    right; markers are filled where p < 0.05 (green a gain, red a loss), hollow and grey
    where the difference is within split-to-split noise.

    Parameters
    ----------
    summary : pandas.DataFrame or Comparison
        As the ``summary`` of a :class:`~regmtl.Comparison`: columns ``model`` (or the
        index), ``<metric>_mean``, ``<metric>_sd``; one row per model, drawn top to bottom in
        the given order. A :class:`~regmtl.Comparison` gives its summary, ``metric``,
        ``tests`` and ``n_splits`` (where those are not passed).
    metric : str, default=None
        The score whose columns are used; None: the comparison's, else
        ``"explained_variance"``.
    ax : matplotlib Axes or a pair of them, default=None
        Where to draw: one Axes for the scores only, two for both panels; a new figure
        (two panels side by side, sharing the model axis, when there are ``tests``) when
        omitted.
    tests : pandas.DataFrame, default=None
        :attr:`Comparison.tests <regmtl.Comparison>`: its ``score_low`` and
        ``score_high`` are the scores' intervals, and its ``difference``, ``ci_low``,
        ``ci_high``, ``p_value`` and ``baseline`` the second panel. None or empty: the
        scores only.
    n_splits : int, default=None
        The splits the summary averages, for Student t 95% intervals
        :math:`\\bar s \\pm t_{0.975, J-1}\\, \\mathrm{sd} / \\sqrt{J}` where ``tests`` has
        none (these treat the splits as independent; the tests' intervals allow for their
        overlap). Without either, the intervals are ± 1 sd.

    Returns
    -------
    matplotlib Axes
        The scores' axes (the differences' axes is ``ax.figure.axes[1]`` of a new figure).

    Raises
    ------
    ValueError
        If ``<metric>_mean`` or ``<metric>_sd`` is missing, or ``tests`` lacks a column the
        second panel needs.

    See Also
    --------
    plot_task_scores : The per-task scores of two models.
    regmtl.compare : Produces such a summary and its tests.
    regmtl.report.comparison_verdict : The tests in words.

    Examples
    --------
    >>> import pandas as pd
    >>> from regmtl.plotting import plot_comparison
    >>> summary = pd.DataFrame({"model": ["single", "l21"],
    ...                         "explained_variance_mean": [0.40, 0.45],
    ...                         "explained_variance_sd": [0.05, 0.04]})
    >>> ax = plot_comparison(summary, n_splits=10)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['single', 'l21']
    >>> bool(ax.get_xlim()[0] > 0)  # zoomed to the scores, not drawn from 0
    True

    With a comparison's tests, the differences panel comes beside it:

    >>> tests = pd.DataFrame({"model": ["single", "l21"], "baseline": "single",
    ...                       "difference": [0.0, 0.05], "ci_low": [0.0, 0.02],
    ...                       "ci_high": [0.0, 0.08], "p_value": [1.0, 0.004]})
    >>> ax = plot_comparison(summary, tests=tests, n_splits=10)
    >>> ax.figure.axes[1].get_title()
    'Difference to single'
    """
    if hasattr(summary, "summary") and hasattr(summary, "metric"):  # a Comparison
        comp = summary
        summary = comp.summary
        metric = metric or comp.metric
        tests = getattr(comp, "tests", None) if tests is None else tests
        n_splits = comp.n_splits if n_splits is None else n_splits
    metric = metric or "explained_variance"
    if tests is not None and len(tests) == 0:
        tests = None
    mean_col, sd_col = f"{metric}_mean", f"{metric}_sd"
    missing = [c for c in (mean_col, sd_col) if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks the columns {missing}.")
    models = summary["model"] if "model" in summary.columns else summary.index
    models = [str(m) for m in models]
    mean = summary[mean_col].to_numpy(dtype=np.float64)
    sd = summary[sd_col].to_numpy(dtype=np.float64)
    low, high, band = _score_intervals(models, mean, sd, tests, n_splits)

    height = 1.4 + 0.4 * len(models)
    if ax is None and tests is not None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10.5, height), layout="constrained")
        ax_score, ax_diff = fig.subplots(1, 2, sharey=True)
    elif ax is not None and not hasattr(ax, "plot"):  # a pair of Axes
        ax_score, ax_diff = ax
    else:
        ax_score, ax_diff = _new_axes(ax, (6.0, height)), None
    pos = np.arange(len(models))
    ax_score.errorbar(mean, pos, xerr=[mean - low, high - mean], fmt="o", color="C0",
                      ecolor="C0", capsize=3)
    ax_score.set_yticks(pos, models)
    if not ax_score.yaxis_inverted():
        ax_score.invert_yaxis()
    limits = _padded(np.concatenate([mean, low, high]))
    if limits is not None:
        ax_score.set_xlim(*limits)
    ax_score.grid(axis="x", color="0.9", lw=0.6)
    ax_score.set_axisbelow(True)
    ax_score.set_xlabel(f"{_words(metric)} (mean, {band} over splits)")
    ax_score.set_title("Model comparison", fontsize=10)
    if ax_diff is not None and tests is not None:
        if not ax_diff.get_shared_y_axes().joined(ax_diff, ax_score):
            ax_diff.set_yticks(pos, [""] * len(models))
            if not ax_diff.yaxis_inverted():
                ax_diff.invert_yaxis()
        _plot_differences(tests, models, ax_diff)
        ax_diff.grid(axis="x", color="0.9", lw=0.6)
        ax_diff.set_axisbelow(True)
        ax_diff.set_xlabel("paired difference (mean, 95% interval over splits)")
    return ax_score


def plot_stability(
    alphas: np.ndarray,
    probabilities: np.ndarray,
    *,
    threshold: float,
    selected: np.ndarray | None = None,
    names: Sequence[Any] | None = None,
    alpha_min: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    r"""Stability paths: each unit's selection probability :math:`\hat\pi(\alpha)` against
    alpha (log scale, decreasing to the right).

    One line per unit (a feature, or a (feature, task) entry): the selected ones in colour
    and named in the legend, the others thin grey lines; the threshold is a dashed
    horizontal line, and the alphas below the range used (``alpha < alpha_min``) are shaded.

    Parameters
    ----------
    alphas : ndarray of shape (n_alphas,)
        The grid (values > 0).
    probabilities : ndarray of shape (n_alphas, n_units)
        The selection probabilities.
    threshold : float
        :math:`\pi_{thr}`.
    selected : ndarray of bool of shape (n_units,), optional
        The stable set; default: the units whose largest probability reaches ``threshold``.
    names : sequence, optional
        The units' names; default ``x0, x1, ...``.
    alpha_min : float, optional
        The smallest alpha of the range used.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib Axes
        ``n_units`` lines of probabilities, then the threshold's line.

    Raises
    ------
    ValueError
        If ``probabilities`` does not have one row per alpha.

    See Also
    --------
    regmtl.stability_selection : Computes the probabilities (its result's ``plot``).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.plotting import plot_stability
    >>> alphas = np.array([1.0, 0.5, 0.25])
    >>> probs = np.array([[0.0, 0.0], [0.9, 0.1], [1.0, 0.3]])
    >>> ax = plot_stability(alphas, probs, threshold=0.75)
    >>> len(ax.lines)
    3
    """
    alphas = np.asarray(alphas, dtype=float)
    probs = np.asarray(probabilities, dtype=float)
    if probs.ndim != 2 or probs.shape[0] != alphas.size:
        raise ValueError(f"probabilities has shape {probs.shape}: give one row per alpha "
                         f"({alphas.size}).")
    n = probs.shape[1]
    labels = _names(names, n, "x", "unit")
    chosen = (probs.max(axis=0, initial=0.0) >= threshold if selected is None
              else np.asarray(selected, dtype=bool).ravel())
    ax = _new_axes(ax, (7.0, 4.5))
    ax.set_xscale("log")
    colors = _path_colors(list(np.flatnonzero(chosen)))
    for j in range(n):
        mine = j in colors
        ax.plot(alphas, probs[:, j], lw=1.6 if mine else 0.8, color=colors.get(j, _ZERO_COLOR),
                alpha=1.0 if mine else 0.5, zorder=3 if mine else 2,
                label=labels[j] if mine else "_nolegend_")
    ax.axhline(threshold, color="k", ls="--", lw=1.0, label=f"threshold {threshold:g}")
    if alphas.size > 1:
        ax.set_xlim(alphas.max(), alphas.min())
        if alpha_min is not None and alpha_min > alphas.min():
            ax.axvspan(alphas.min(), alpha_min, color="0.9", zorder=0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("alpha")
    ax.set_ylabel("selection probability")
    ax.set_title("Stability selection")
    if colors:
        ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_transfer_curve(curve: Any, *, ax: Axes | None = None) -> Axes:
    """A new task's mean test error against its training size, one line per method.

    Parameters
    ----------
    curve : TransferCurve or pandas.DataFrame
        :func:`regmtl.transfer_curve.transfer_curve`'s result, or its ``summary`` (columns
        ``n_new``, ``method``, ``<metric>_mean``, ``<metric>_sd``).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib Axes
        Means with ±1 sd over new tasks as bands, n_new on a log axis.

    Raises
    ------
    ValueError
        If the summary lacks a needed column.

    See Also
    --------
    regmtl.transfer_curve.transfer_curve : Computes the curve.

    Examples
    --------
    >>> import pandas as pd
    >>> from regmtl.plotting import plot_transfer_curve
    >>> summary = pd.DataFrame({"n_new": [5, 10, 20] * 2,
    ...                         "method": ["single"] * 3 + ["transfer"] * 3,
    ...                         "mse_mean": [2.0, 1.2, 0.8, 1.0, 0.8, 0.7],
    ...                         "mse_sd": [0.3, 0.2, 0.1, 0.2, 0.1, 0.1]})
    >>> ax = plot_transfer_curve(summary)
    >>> ax.get_ylabel(), [t.get_text() for t in ax.get_legend().get_texts()]
    ('test mse (mean ± sd over new tasks)', ['single', 'transfer'])
    """
    summary = getattr(curve, "summary", curve)
    metric = getattr(curve, "metric", None) or next(
        c[:-5] for c in summary.columns if c.endswith("_mean"))
    mean_col, sd_col = f"{metric}_mean", f"{metric}_sd"
    missing = [c for c in ("n_new", "method", mean_col, sd_col) if c not in summary.columns]
    if missing:
        raise ValueError(f"the curve's summary lacks the columns {missing}.")
    ax = _new_axes(ax, (6.0, 4.0))
    for k, (method, part) in enumerate(summary.groupby("method", sort=False)):
        part = part.sort_values("n_new")
        n = part["n_new"].to_numpy(dtype=np.float64)
        m = part[mean_col].to_numpy(dtype=np.float64)
        sd = part[sd_col].to_numpy(dtype=np.float64)
        ax.plot(n, m, marker="o", color=f"C{k}", label=str(method))
        ax.fill_between(n, m - sd, m + sd, color=f"C{k}", alpha=0.12, lw=0)
    ax.set_xscale("log")
    ns = np.unique(summary["n_new"].to_numpy())
    ax.set_xticks(ns, [str(int(v)) for v in ns])
    ax.minorticks_off()
    ax.set_xlabel("training samples of the new task")
    ax.set_ylabel(f"test {metric} (mean ± sd over new tasks)")
    ax.set_title("Knowledge transfer to new tasks")
    ax.legend(frameon=False)
    return ax


def plot_gradient_balance(history: pd.DataFrame, *, dominance: float | None = 0.9,
                          ax: Axes | None = None) -> Axes:
    """Each task's share of the shared layers' gradient norm and the pairwise gradient
    cosines over the epochs of a deep training (see
    :class:`~regmtl.deep.diagnostics.GradientBalance`).

    Parameters
    ----------
    history : pandas.DataFrame
        :attr:`regmtl.deep.Trainer.history` (or a wrapper's ``history_``): ``epoch``,
        ``grad_share/TASK`` and ``grad_cos/A/B`` columns.
    dominance : float or None, default=0.9
        Draws the share above which the trainer warns that one task dominates.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib Axes
        Shares as solid lines (in [0, 1]), cosines as dashed lines (in [-1, 1]; below 0 the
        two tasks pull the shared layers apart).

    Raises
    ------
    ValueError
        If the history has no ``grad_share/`` column (one task, or ``grad_balance=0``).

    Examples
    --------
    >>> import pandas as pd
    >>> from regmtl.plotting import plot_gradient_balance
    >>> history = pd.DataFrame({"epoch": [1, 2, 3], "grad_share/click": [0.9, 0.7, 0.6],
    ...                         "grad_share/rating": [0.1, 0.3, 0.4],
    ...                         "grad_cos/click/rating": [-0.2, 0.1, 0.3]})
    >>> ax = plot_gradient_balance(history)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['share: click', 'share: rating', 'cos: click / rating']
    """
    shares = [c for c in history.columns if str(c).startswith("grad_share/")]
    cosines = [c for c in history.columns if str(c).startswith("grad_cos/")]
    if not shares:
        raise ValueError("history has no grad_share/ columns: the trainer logs them with two "
                         "tasks or more and grad_balance > 0.")
    epochs = _epochs(history)
    ax = _new_axes(ax, (6.0, 4.0))
    for k, c in enumerate(shares):
        ax.plot(epochs, history[c].to_numpy(dtype=np.float64), color=f"C{k}", marker="o",
                ms=3, label=f"share: {c.split('/', 1)[1]}")
    for k, c in enumerate(cosines):
        a, b = c.split("/")[1:3]
        ax.plot(epochs, history[c].to_numpy(dtype=np.float64), color=f"C{len(shares) + k}",
                ls="--", label=f"cos: {a} / {b}")
    ax.axhline(0.0, color=_ZERO_COLOR, lw=0.8)
    if dominance is not None:
        ax.axhline(dominance, color=_ZERO_COLOR, lw=0.8, ls=":")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("epoch")
    ax.set_ylabel("gradient share / cosine")
    ax.set_title("Gradient balance on the shared layers")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_training_history(history: pd.DataFrame, *, what: str = "loss",
                          normalized: bool = True, ax: Axes | None = None) -> Axes:
    """Each task's loss (training and validation) or weight over the epochs of a deep training.

    Parameters
    ----------
    history : pandas.DataFrame
        :attr:`regmtl.deep.Trainer.history` (or a wrapper's ``history_``).
    what : {"loss", "weight"}, default="loss"
        ``"loss"``: ``loss/TASK`` (solid) and ``val_loss/TASK`` (dashed); ``"weight"``:
        ``weight/TASK``, the mean effective weight of each epoch.
    normalized : bool, default=True
        The losses are the trainer's normalized ones (its default ``normalize_losses``): a
        line at 1 marks the constant predictor.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib Axes
        One color per task.

    Raises
    ------
    ValueError
        If ``what`` is unknown or the history has no such column.

    Examples
    --------
    >>> import pandas as pd
    >>> from regmtl.plotting import plot_training_history
    >>> history = pd.DataFrame({"epoch": [1, 2], "loss/click": [0.9, 0.7],
    ...                         "val_loss/click": [0.95, 0.8], "loss/rating": [0.8, 0.5]})
    >>> ax = plot_training_history(history)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['click', 'click (validation)', 'rating']
    """
    if what not in ("loss", "weight"):
        raise ValueError(f"what must be 'loss' or 'weight', got {what!r}.")
    cols = [c for c in history.columns if str(c).startswith(f"{what}/")]
    if not cols:
        raise ValueError(f"history has no {what}/TASK column: pass a deep trainer's history.")
    epochs = _epochs(history)
    ax = _new_axes(ax, (6.0, 4.0))
    for k, c in enumerate(cols):
        task = str(c).split("/", 1)[1]
        ax.plot(epochs, history[c].to_numpy(dtype=np.float64), color=f"C{k}", marker="o",
                ms=3, label=task)
        val = f"val_loss/{task}"
        if what == "loss" and val in history.columns:
            ax.plot(epochs, history[val].to_numpy(dtype=np.float64), color=f"C{k}", ls="--",
                    label=f"{task} (validation)")
    if what == "loss" and normalized:
        ax.axhline(1.0, color=_ZERO_COLOR, lw=0.8, ls=":")
        ax.set_ylabel("loss / constant predictor's loss")
        ax.set_title("Task losses (1: the constant predictor)")
    elif what == "loss":
        ax.set_ylabel("loss")
        ax.set_title("Task losses")
    else:
        ax.set_ylabel("weight")
        ax.set_title("Task weights")
    ax.set_xlabel("epoch")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_relatedness(
    rel_or_matrix: Any,
    *,
    order: Sequence[int] | None = None,
    clusters: Sequence[Any] | None = None,
    ax: Axes | None = None,
    max_labels: int = 40,
) -> Axes:
    """Heat map of a task similarity matrix, tasks ordered by cluster, clusters boxed.

    Parameters
    ----------
    rel_or_matrix : Relatedness, pandas.DataFrame or array-like of shape (n_tasks, n_tasks)
        What :func:`regmtl.task_relatedness` returned (its matrix, leaf order and clusters are
        used), or a similarity matrix (a DataFrame's index names the tasks).
    order : sequence of int, default=None
        Positions of the tasks along both axes; default the Relatedness' dendrogram order,
        else the given order.
    clusters : sequence, default=None
        A cluster label per task (in the matrix's order); default the Relatedness' clusters.
        Every run of two or more consecutive tasks (in ``order``) of one cluster is boxed.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.
    max_labels : int, default=40
        Task names label the axes when there are at most this many tasks.

    Returns
    -------
    matplotlib Axes
        ``imshow`` of ``S[order][:, order]`` with a diverging colour map centered at 0 and
        limits -1, 1; one ``Rectangle`` patch per boxed cluster.

    Raises
    ------
    ValueError
        If the matrix is not square, ``order`` is not a permutation, or ``clusters`` has the
        wrong length.

    See Also
    --------
    regmtl.task_relatedness : Measures the similarity and clusters the tasks.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.plotting import plot_relatedness
    >>> S = np.array([[1.0, 0.9, -0.2], [0.9, 1.0, -0.1], [-0.2, -0.1, 1.0]])
    >>> ax = plot_relatedness(S, clusters=[0, 0, 1])
    >>> type(ax).__name__, len(ax.patches)  # one box: tasks 0 and 1
    ('Axes', 1)

    ``plot_relatedness(task_relatedness(X, y))`` draws a measured relatedness, with its
    verdict in the title.
    """
    import pandas as pd
    from matplotlib.patches import Rectangle

    title = "Task similarity"
    if hasattr(rel_or_matrix, "matrix") and hasattr(rel_or_matrix, "clusters"):
        rel = rel_or_matrix
        frame = rel.matrix
        order = rel.order if order is None else order
        clusters = rel.clusters.to_numpy() if clusters is None else clusters
        what = {"residual": "residuals", "model": "model coefficients"}.get(
            rel.method, "logistic coefficients" if getattr(rel, "kind", "") == "binary"
            else "ridge coefficients")
        title = (f"Task similarity: {rel.similarity} of {what}\n"
                 f"p = {rel.p_value:.3g}, {len(rel.groups)} group(s) of related tasks")
    elif isinstance(rel_or_matrix, pd.DataFrame):
        frame = rel_or_matrix
    else:
        frame = pd.DataFrame(np.asarray(rel_or_matrix, dtype=np.float64))
    S = frame.to_numpy(dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"the similarity matrix must be square (T x T), got shape {S.shape}.")
    T = S.shape[0]
    names = [str(n) for n in frame.index]
    order = np.arange(T) if order is None else np.asarray(order, dtype=np.int64)
    if sorted(order.tolist()) != list(range(T)):
        raise ValueError(f"order must be a permutation of 0..{T - 1}.")
    labels = None
    if clusters is not None:
        labels = np.asarray(clusters)
        if labels.shape != (T,):
            raise ValueError(f"clusters: {labels.size} labels for {T} tasks.")
        labels = labels[order]
    shown = S[np.ix_(order, order)]

    size = min(3.0 + 0.18 * T, 12.0)
    ax = _new_axes(ax, (size + 1.2, size))
    image = ax.imshow(shown, cmap=_DIVERGING, vmin=-1.0, vmax=1.0, interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label="similarity", shrink=0.8)
    if labels is not None:
        start = 0
        for k in range(1, T + 1):
            if k == T or labels[k] != labels[start]:
                if k - start > 1:
                    ax.add_patch(Rectangle((start - 0.5, start - 0.5), k - start, k - start,
                                           fill=False, edgecolor="k", lw=1.2))
                start = k
    if T <= max_labels:
        small = 8 if T <= 20 else 6
        ax.set_xticks(np.arange(T), [names[i] for i in order], rotation=90, fontsize=small)
        ax.set_yticks(np.arange(T), [names[i] for i in order], fontsize=small)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{T} tasks (dendrogram order)")
    ax.set_title(title)
    return ax


def plot_coef_intervals(table: pd.DataFrame, *, top: int = 25, ax: Axes | None = None) -> Axes:
    """Coefficients with their confidence intervals (a forest plot), the ``top`` of largest
    :math:`|z|`.

    Parameters
    ----------
    table : pandas.DataFrame
        A coefficient table (:meth:`~regmtl.MultiTaskRegressor.coef_table`): columns
        ``task``, ``feature``, ``coef``, ``ci_lower``, ``ci_upper``, ``z``; intercept rows
        are left out.
    top : int, default=25
        How many coefficients to draw (those of the largest :math:`|z|`).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib Axes
        One row per coefficient ("task: feature"), its interval as a bar, filled where the
        interval leaves out 0, a line at 0.

    Raises
    ------
    ValueError
        If the table lacks a needed column or ``top`` is below 1.

    Examples
    --------
    >>> import pandas as pd
    >>> from regmtl.plotting import plot_coef_intervals
    >>> table = pd.DataFrame({"task": ["a", "a", "b"], "feature": ["x0", "x1", "x0"],
    ...                       "coef": [1.0, 0.1, -0.5], "ci_lower": [0.6, -0.2, -0.9],
    ...                       "ci_upper": [1.4, 0.4, -0.1], "z": [5.0, 0.6, -2.4]})
    >>> ax = plot_coef_intervals(table)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['a: x1', 'b: x0', 'a: x0']
    """
    missing = [c for c in ("task", "feature", "coef", "ci_lower", "ci_upper", "z")
               if c not in table.columns]
    if missing:
        raise ValueError(f"the coefficient table lacks the columns {missing}.")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top={top!r} must be an int >= 1.")
    rows = table[table["feature"].astype(str) != "intercept"]
    z = np.abs(rows["z"].to_numpy(dtype=np.float64))
    rows = rows.iloc[np.argsort(-np.nan_to_num(z, nan=-1.0), kind="stable")[:top]][::-1]
    coef = rows["coef"].to_numpy(dtype=np.float64)
    lo, hi = (rows[c].to_numpy(dtype=np.float64) for c in ("ci_lower", "ci_upper"))
    ax = _new_axes(ax, (6.0, 1.2 + 0.28 * max(len(rows), 1)))
    y = np.arange(len(rows))
    away = (lo > 0) | (hi < 0)
    ax.hlines(y, lo, hi, color="C0", lw=2)
    ax.scatter(coef[away], y[away], color="C0", zorder=3, label="interval leaves out 0")
    ax.scatter(coef[~away], y[~away], facecolor="white", edgecolor="C0", zorder=3,
               label="interval holds 0")
    ax.axvline(0.0, color=_ZERO_COLOR, lw=1)
    ax.set_yticks(y, [f"{t}: {f}" for t, f in zip(rows["task"], rows["feature"], strict=True)])
    ax.set_xlabel("coefficient and its confidence interval")
    ax.set_title(f"The {len(rows)} coefficients of largest |z|")
    if len(rows):
        ax.legend(frameon=False, loc="best")
    return ax


def root_figure(fig_or_ax: Any) -> Figure:
    """The top-level Figure of a Figure, SubFigure or Axes."""
    from matplotlib.figure import Figure

    fig = getattr(fig_or_ax, "figure", None)
    if fig is None:
        raise TypeError(f"expected a matplotlib Figure or Axes, got {type(fig_or_ax).__name__}.")
    while not isinstance(fig, Figure):  # a SubFigure's .figure is its root figure
        fig = fig.figure
    return fig


def figure_to_png(fig_or_ax: Any, dpi: int = 100) -> bytes:
    """PNG bytes of a Figure (or of the figure holding an Axes), cropped to its content.

    Parameters
    ----------
    fig_or_ax : matplotlib Figure, SubFigure or Axes
        The figure, or an axes of it (its root figure is saved).
    dpi : int, default=100
        Resolution in dots per inch.

    Returns
    -------
    bytes
        The PNG file's content (e.g. to embed in a report or write to disk).

    Raises
    ------
    TypeError
        If ``fig_or_ax`` is neither a figure nor an axes.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.plotting import figure_to_png, plot_coefficients
    >>> ax = plot_coefficients(np.eye(3))
    >>> png = figure_to_png(ax, dpi=50)
    >>> png[:4]
    b'\\x89PNG'
    """
    buf = io.BytesIO()
    root_figure(fig_or_ax).savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()
