import matplotlib

matplotlib.use("Agg")

import ast  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from regmtl.plotting import (  # noqa: E402
    figure_to_png,
    plot_coefficients,
    plot_comparison,
    plot_cv_curve,
    plot_path,
    plot_relatedness,
    plot_task_scores,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _vlines(ax):
    """x positions of the vertical lines drawn with axvline."""
    return [line.get_xdata()[0] for line in ax.lines
            if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]]


# --------------------------------------------------------------------- coefficients


def test_coefficients_image_is_coef_with_symmetric_limits():
    W = np.array([[1.0, 0.0, -3.0, 0.5], [2.0, 0.0, 0.25, -0.5], [0.0, 0.0, 1.0, 0.0]])
    ax = plot_coefficients(W, feature_names=list("abcd"), task_names=["t1", "t2", "t3"])
    (image,) = ax.images
    np.testing.assert_array_equal(np.asarray(image.get_array()), W)
    assert image.get_clim() == (-3.0, 3.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["t1", "t2", "t3"]
    # the all-zero feature "b": white (the middle of the diverging map) and a grey label
    rgba = image.to_rgba(np.asarray(image.get_array()))
    assert np.allclose(rgba[:, 1], rgba[0, 1]) and np.all(rgba[:, 1, :3] > 0.9)
    colors = [to_rgba(t.get_color()) for t in ax.get_xticklabels()]
    assert colors[1] != colors[0] and colors[0] == colors[2] == colors[3]
    assert "1 of 4 features zero in every task" in ax.get_title()
    assert len(ax.figure.axes) == 2  # the colorbar


def test_coefficients_subset_by_norm_in_original_order():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 12)) * 0.1
    W[3] *= 30  # tasks 1 and 3 largest
    W[1] *= 20
    W[:, [2, 7, 9]] += 5.0  # features 2, 7, 9 largest
    ax = plot_coefficients(SimpleNamespace(coef_=W), max_tasks=2, max_features=3)
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()),
                                  W[np.ix_([1, 3], [2, 7, 9])])
    vmax = np.abs(W[np.ix_([1, 3], [2, 7, 9])]).max()
    assert ax.images[0].get_clim() == (-vmax, vmax)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x2", "x7", "x9"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["task 1", "task 3"]
    assert "top 2 of 5 tasks" in ax.get_title() and "top 3 of 12 features" in ax.get_title()


def test_coefficients_edge_cases():
    ax = plot_coefficients(np.zeros(3))  # one task, all zero
    assert np.asarray(ax.images[0].get_array()).shape == (1, 3)
    assert ax.images[0].get_clim() == (-1.0, 1.0)
    with pytest.raises(ValueError, match="2 feature names given for 3"):
        plot_coefficients(np.ones((2, 3)), feature_names=["a", "b"])
    with pytest.raises(ValueError, match="2-D"):
        plot_coefficients(np.ones((2, 3, 4)))


def test_draws_on_given_axes():
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert plot_coefficients(np.eye(2), ax=ax) is ax
    assert plot_comparison(pd.DataFrame({"model": ["a"], "explained_variance_mean": [0.1],
                                         "explained_variance_sd": [0.01]}), ax=ax) is ax


# --------------------------------------------------------------------- path


def _toy_path():
    rng = np.random.default_rng(1)
    alphas = np.array([0.01, 1.0, 0.1, 0.5])  # deliberately not sorted
    coefs = rng.standard_normal((4, 3, 5))
    coefs[1] = 0.0  # alpha = 1: nothing active
    coefs[3, :, 1:] = 0.0  # alpha = 0.5: only feature 0
    coefs[:, :, 4] = 0.0  # feature 4 never enters
    return alphas, coefs


def test_path_lines_are_row_norms():
    alphas, coefs = _toy_path()
    names = ["a", "b", "c", "d", "e"]
    ax = plot_path((alphas, coefs), feature_names=names, top=2)
    order = np.argsort(-alphas)
    assert len(ax.lines) == 5
    for j, line in enumerate(ax.lines):
        np.testing.assert_array_equal(line.get_xdata(), alphas[order])
        np.testing.assert_allclose(line.get_ydata(), np.linalg.norm(coefs[order, :, j], axis=1))
        assert line.get_label() == names[j]
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    # alpha decreases to the right; past the smallest one, a margin for the labels
    assert left == 1.0 and 1e-4 < right < 0.01
    (active,) = ax.right_ax.lines
    np.testing.assert_array_equal(active.get_ydata(), [0, 1, 4, 4])
    end = np.linalg.norm(coefs[0], axis=0)  # the smallest alpha
    expected = {names[j] for j in np.argsort(-end)[:2]}
    assert {t.get_text() for t in ax.texts} == expected


def _crowded_path(p=28, n_alphas=12, seed=0):
    """A path whose lines end bunched together: labels placed at the ends would collide."""
    rng = np.random.default_rng(seed)
    alphas = np.geomspace(10.0, 1e-3, n_alphas)
    ends = np.concatenate([[60.0, 38.0], 18.0 + 0.3 * rng.standard_normal(p - 2)])
    ramp = 1.0 - np.exp(-np.arange(n_alphas) / 3.0)
    coefs = (ramp[:, None] * ends[None, :])[:, None, :]  # one task
    return alphas, np.abs(coefs)


def test_path_labels_do_not_overlap_and_match_their_lines():
    alphas, coefs = _crowded_path()
    names = [f"feature_with_a_long_name_{j}" for j in range(coefs.shape[2])]
    ax = plot_path((alphas, coefs), feature_names=names, top=10)
    fig = ax.figure
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    # the text itself (an Annotation's own extent includes its leader)
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]
    assert len(boxes) == 10
    end = coefs[-1, 0]
    assert {t.get_text() for t in ax.texts} == {names[j] for j in np.argsort(-end)[:10]}
    for a in range(len(boxes)):  # no two labels overlap
        for b in range(a + 1, len(boxes)):
            assert not boxes[a].overlaps(boxes[b]), (ax.texts[a].get_text(),
                                                     ax.texts[b].get_text())
    frame = ax.get_window_extent(renderer)
    last = ax.transData.transform((alphas[-1], 0.0))[0]
    for box in boxes:  # inside the axes, right of the lines' ends
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 + 1.0
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1
        assert box.x0 > last
    # a label has its line's colour, distinct from the other labels'; the rest are grey
    by_name = {line.get_label(): line for line in ax.lines}
    colors = [to_rgba(t.get_color()) for t in ax.texts]
    assert len(set(colors)) == 10
    for text, color in zip(ax.texts, colors, strict=True):
        assert to_rgba(by_name[text.get_text()].get_color()) == color
    shown = {t.get_text() for t in ax.texts}
    for name, line in by_name.items():
        if name not in shown:
            assert to_rgba(line.get_color())[:3] == to_rgba("0.6")[:3]
    # labels keep the order of the line ends, top to bottom
    ys = [box.y0 for box in boxes]
    ends = [end[names.index(t.get_text())] for t in ax.texts]
    assert np.argsort(ys).tolist() == np.argsort(ends).tolist()


def test_spread_keeps_order_gap_and_bounds():
    from regmtl.plotting import _spread

    y = np.array([0.5, 0.1, 0.52, 0.51, 0.9])
    pos = _spread(y, 0.05, 0.0, 1.0)
    assert np.argsort(pos).tolist() == np.argsort(y, kind="stable").tolist()
    assert np.min(np.diff(np.sort(pos))) >= 0.05 - 1e-12
    # the bunch of three is centered on its own mean; the loners do not move
    np.testing.assert_allclose(pos[[0, 3, 2]], [0.46, 0.51, 0.56])
    np.testing.assert_allclose(pos[[1, 4]], [0.1, 0.9])
    np.testing.assert_allclose(_spread(np.array([0.99, 0.98]), 0.05, 0.0, 1.0), [1.0, 0.95])
    np.testing.assert_allclose(_spread(np.array([0.0, 0.01]), 0.05, 0.02, 1.0), [0.02, 0.07])


def test_path_accepts_regularization_path():
    from regmtl import RegularizationPath

    alphas, coefs = _toy_path()
    n = len(alphas)
    path = RegularizationPath(alphas, coefs, np.zeros((n, 3)), np.zeros(n), "gap",
                              np.ones(n, dtype=int), np.ones(n, dtype=bool), np.arange(3))
    ax = plot_path(path)
    ref = plot_path((alphas, coefs))
    for a, b in zip(ax.lines, ref.lines, strict=True):
        np.testing.assert_array_equal(a.get_ydata(), b.get_ydata())
    np.testing.assert_array_equal(ax.right_ax.lines[0].get_ydata(),
                                  path.n_active[np.argsort(-alphas)])


def test_path_single_task_and_zero_alpha():
    alphas = np.array([1.0, 0.1, 0.0])
    coefs = np.array([[0.0, 0.0], [0.5, -1.0], [1.0, -2.0]])  # (n_alphas, p)
    ax = plot_path((alphas, coefs))
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[1].get_xdata(), [1.0, 0.1])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.0, 1.0])
    with pytest.raises(ValueError, match="do not match"):
        plot_path((alphas, np.zeros((2, 3, 4))))


# --------------------------------------------------------------------- CV curve


def test_cv_curve_line_and_best():
    df = pd.DataFrame({
        "param_alpha": np.array([0.1, 1.0, 0.01, 0.5], dtype=object),
        "mean_test_score": [0.6, 0.2, 0.5, 0.4],
        "std_test_score": [0.05, 0.1, 0.02, 0.04],
        "rank_test_score": [1, 4, 2, 3],
    })
    ax = plot_cv_curve(df, best=0.1, one_se=0.5, score_label="R2")
    curves = [line for line in ax.lines if len(line.get_xdata()) == 4]
    (curve,) = curves
    np.testing.assert_array_equal(curve.get_xdata(), [0.01, 0.1, 0.5, 1.0])
    np.testing.assert_array_equal(curve.get_ydata(), [0.5, 0.6, 0.4, 0.2])
    assert sorted(_vlines(ax)) == [0.1, 0.5]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "R2"
    (band,) = ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    assert np.isclose(ys.max(), 0.65) and np.isclose(ys.min(), 0.1)


def test_cv_curve_standard_error_band():
    df = pd.DataFrame({"param_alpha": [1.0, 0.1], "mean_test_score": [0.0, 1.0],
                       "std_test_score": [0.4, 0.2]})
    ax = plot_cv_curve(df, n_splits=5)  # the one-SE rule's se: std (ddof = 0) / sqrt(K - 1)
    ys = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert np.isclose(ys.max(), 1.1) and np.isclose(ys.min(), -0.2)
    assert _vlines(ax) == []


def test_cv_curve_one_curve_per_other_param():
    alphas = [1.0, 0.1, 0.01]
    rows = [{"param_alpha": a, "param_l1_ratio": r, "param_penalty": "l21",
             "mean_test_score": r + a, "std_test_score": 0.1}
            for r in (0.5, 1.0) for a in alphas]
    ax = plot_cv_curve(pd.DataFrame(rows), best=0.1)
    curves = [line for line in ax.lines if len(line.get_xdata()) == 3]
    assert [c.get_label() for c in curves] == ["l1_ratio=0.5", "l1_ratio=1"]
    for r, c in zip((0.5, 1.0), curves, strict=True):
        np.testing.assert_allclose(c.get_ydata(), [r + 0.01, r + 0.1, r + 1.0])
    assert _vlines(ax) == [0.1]
    with pytest.raises(ValueError, match="param_gamma"):
        plot_cv_curve(pd.DataFrame(rows), param="gamma")


# --------------------------------------------------------------------- task scores


def _scores():
    rng = np.random.default_rng(2)
    rows = []
    for split in range(3):
        for t in range(6):
            for model in ("single", "l21", "pooled"):
                rows.append({"model": model, "task": f"s{t}", "split": split,
                             "explained_variance": rng.random(), "n": 10 + 5 * t})
    return pd.DataFrame(rows)


def test_task_scores_points_are_split_means():
    scores = _scores()
    ax = plot_task_scores(scores, baseline="single", model="l21")
    mean = scores.groupby(["model", "task"])["explained_variance"].mean()
    x, y = mean["single"].to_numpy(), mean["l21"].to_numpy()
    (points,) = ax.collections
    np.testing.assert_allclose(points.get_offsets(), np.column_stack([x, y]))
    above = int(np.sum(y > x))
    assert ax.get_title() == f"l21 above single in {above} of 6 tasks"
    sizes = points.get_sizes()
    assert sizes.shape == (6,) and np.all(np.diff(sizes) > 0)  # n grows with the task
    (diag,) = ax.lines
    np.testing.assert_array_equal(diag.get_xdata(), diag.get_ydata())


def test_task_scores_without_splits_and_errors():
    df = pd.DataFrame({"model": ["a", "a", "b", "b"], "task": [1, 2, 1, 2],
                       "nmse": [0.5, 0.4, 0.3, 0.6]})
    ax = plot_task_scores(df, baseline="a", model="b", metric="nmse")
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[0.5, 0.3], [0.4, 0.6]])
    assert ax.get_title() == "b above a in 1 of 2 tasks"
    with pytest.raises(ValueError, match="'c' not in scores"):
        plot_task_scores(df, baseline="a", model="c", metric="nmse")


# --------------------------------------------------------------------- comparison, PNG


def test_comparison_points_with_intervals_on_a_zoomed_axis():
    """Points, not bars from 0: the means, with Student t 95% intervals from the sd over the
    splits (± sd without the number of splits), on an axis zoomed to them."""
    from scipy import stats

    summary = pd.DataFrame({"model": ["single", "pooled", "l21"],
                            "nmse_mean": [0.8, 0.9, 0.7], "nmse_sd": [0.05, 0.02, 0.03]})
    ax = plot_comparison(summary, metric="nmse")
    assert not [c for c in ax.containers if isinstance(c, BarContainer)]
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose(bars.lines[0].get_xdata(), [0.8, 0.9, 0.7])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["single", "pooled", "l21"]
    assert ax.yaxis_inverted()  # first model on top
    segments = bars.lines[2][0].get_segments()
    np.testing.assert_allclose([s[:, 0] for s in segments],
                               [[0.75, 0.85], [0.88, 0.92], [0.67, 0.73]])
    assert ax.get_xlabel() == "nmse (mean, ± sd over splits)"
    ax = plot_comparison(summary, metric="nmse", n_splits=5)
    (bars,) = ax.containers
    half = stats.t.ppf(0.975, 4) * np.array([0.05, 0.02, 0.03]) / np.sqrt(5)
    np.testing.assert_allclose([s[:, 0] for s in bars.lines[2][0].get_segments()],
                               np.c_[summary["nmse_mean"] - half, summary["nmse_mean"] + half])
    lo, hi = ax.get_xlim()
    ends = np.r_[summary["nmse_mean"] - half, summary["nmse_mean"] + half]
    assert lo < ends.min() and hi > ends.max()
    assert lo > 0.5 and hi - lo < 1.2 * (ends.max() - ends.min())  # zoomed: 0 far outside
    with pytest.raises(ValueError, match="nmse_sd"):
        plot_comparison(summary.drop(columns="nmse_sd"), metric="nmse")


def test_relatedness_heat_map_ordered_with_cluster_boxes():
    from matplotlib.patches import Rectangle

    rng = np.random.default_rng(0)
    A = rng.uniform(-1, 1, (5, 5))
    S = (A + A.T) / 2
    np.fill_diagonal(S, 1.0)
    names = ["a", "b", "c", "d", "e"]
    order = [3, 0, 4, 1, 2]
    clusters = [1, 2, 3, 1, 1]  # in order: d, a, e (cluster 1), b (2), c (3)
    ax = plot_relatedness(pd.DataFrame(S, index=names, columns=names), order=order,
                          clusters=clusters)
    (image,) = ax.images
    np.testing.assert_array_equal(image.get_array(), S[np.ix_(order, order)])
    assert image.get_clim() == (-1.0, 1.0) and image.get_cmap().name == "RdBu_r"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["d", "a", "e", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["d", "a", "e", "b", "c"]
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [(b.get_xy(), b.get_width()) for b in boxes] == [((-0.5, -0.5), 3)]
    # many tasks: no labels; a plain array; errors
    big = plot_relatedness(np.eye(41))
    assert big.get_xticklabels() == [] and "41 tasks" in big.get_xlabel()
    with pytest.raises(ValueError, match="square"):
        plot_relatedness(np.ones((2, 3)))
    with pytest.raises(ValueError, match="permutation"):
        plot_relatedness(S, order=[0, 0, 1, 2, 3])


def test_relatedness_plot_of_a_result():
    from regmtl import task_relatedness

    W = np.array([[1.0, 2.0, 0.0, 1.0], [1.1, 1.9, 0.1, 1.0], [-1.0, 0.5, 2.0, 0.0]])
    rel = task_relatedness(model=SimpleNamespace(coef_=W, penalty="l2"), n_permutations=20,
                           n_clusters=2, task_names=["p", "q", "r"])
    ax = plot_relatedness(rel)
    np.testing.assert_array_equal(ax.images[0].get_array(),
                                  rel.matrix.to_numpy()[np.ix_(rel.order, rel.order)])
    assert len(ax.patches) == 1 and ax.patches[0].get_width() == 2  # p and q together
    assert "p = " in ax.get_title()
    fig = Figure()
    assert rel.plot(ax=fig.add_subplot()).figure is fig


def test_figure_to_png():
    fig = Figure(figsize=(2, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 0])
    png = figure_to_png(ax, dpi=50)
    assert png.startswith(PNG) and png == figure_to_png(fig, dpi=50)
    sub_ax = Figure().subfigures(1, 2)[1].add_subplot()
    assert figure_to_png(sub_ax).startswith(PNG)
    with pytest.raises(TypeError, match="Figure or Axes"):
        figure_to_png(np.zeros(3))


def _top_level_imports(module):
    """Modules imported when ``module`` is imported (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


def test_matplotlib_imported_lazily_and_pyplot_never(monkeypatch):
    import regmtl.plotting
    import regmtl.report

    for module in (regmtl.plotting, regmtl.report):
        assert not any(n.split(".")[0] == "matplotlib" for n in _top_level_imports(module))
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # importing it now fails
    alphas, coefs = _toy_path()
    axes = [
        plot_coefficients(np.eye(3)),
        plot_path((alphas, coefs)),
        plot_cv_curve({"param_alpha": [1.0, 0.1], "mean_test_score": [0.0, 1.0],
                       "std_test_score": [0.1, 0.1]}, best=0.1),
        plot_task_scores(_scores(), baseline="single", model="l21"),
        plot_comparison(pd.DataFrame({"model": ["a"], "explained_variance_mean": [0.1],
                                      "explained_variance_sd": [0.01]})),
        plot_relatedness(np.eye(3), clusters=[1, 1, 2]),
    ]
    for ax in axes:
        assert figure_to_png(ax, dpi=20).startswith(PNG)
