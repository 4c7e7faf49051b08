"""``regmtl fit --out-of-core``: the closing line (relative duality gap, alpha / alpha_max, R^2
on the training rows), the warning of a model worse than each task's mean, and ``--alpha auto``
chosen on held-out rows (:mod:`regmtl.selection.held_out`), against in-memory fits on the same
rows."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.cli import main
from regmtl.out_of_core import source_alpha_max
from regmtl.selection.held_out import held_out_alpha, held_out_counts, held_out_mask

pytest.importorskip("pyarrow")

FEATURES = ["f0", "f1", "f2", "f3"]
COLS = ["--task-col", "shop", "--target", "sales", "--features", ",".join(FEATURES)]
#: the out-of-core fit stores its Grams in float32 (about 1e-7 of the quadratic): a tolerance
#: just above that
OOC = [*COLS, "--penalty", "l21", "--tol", "1e-7", "--out-of-core"]
AUTO = [*OOC, "--alpha", "auto", "--n-alphas", "12", "--held-out", "0.25"]


def _table(seed: int = 0) -> pd.DataFrame:
    """6 shops of 25 to 45 rows, sorted by shop: two shared features, an unused one, features
    on different scales, an offset per shop."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(25, 45, 6)
    shop = np.repeat(np.arange(6), sizes)
    n = len(shop)
    X = rng.standard_normal((n, 4)) * [1.0, 10.0, 0.1, 1.0] + [0.0, 50.0, -3.0, 1.0]
    W = np.array([[1.0, 0.1, 0.0, 0.0]]).T + 0.3 * rng.standard_normal((4, 6))
    W[2] = 0.0
    y = np.einsum("ij,ji->i", X, W[:, shop]) + shop + 0.8 * rng.standard_normal(n)
    frame = pd.DataFrame(X, columns=FEATURES)
    frame["shop"] = [f"shop_{t}" for t in shop]
    frame["sales"] = y
    return frame


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("ooc_alpha")
    frame = _table()
    parts = root / "parts"
    parts.mkdir()
    for k, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):  # shops split too
        frame.iloc[rows].to_parquet(parts / f"part-{k}.parquet", index=False)
    whole = root / "whole.parquet"
    frame.to_parquet(whole, index=False)
    return {"root": root, "frame": frame, "parts": parts, "whole": whole}


def _standardized(path, **kwargs) -> rm.ParquetTasks:
    """The source the command fits: the features z-scored over all rows."""
    source = rm.ParquetTasks(path, target="sales", task="shop", features=FEATURES, **kwargs)
    return source.standardized(*source.feature_scaling())


def _closing(text: str) -> str:
    return re.search(r".*: \d+ tasks, \d+ rows; penalty .*", text).group(0)


def _close(a, b) -> float:
    return float(np.linalg.norm(np.ravel(a) - np.ravel(b)) / np.linalg.norm(np.ravel(b)))


def test_closing_line_shows_the_relative_gap_and_alpha_over_alpha_max(data, capsys):
    out = data["root"] / "fixed.npz"
    capsys.readouterr()
    assert main(["fit", str(data["parts"]), *OOC, "--alpha", "0.05", "--out", str(out)]) == 0
    line = _closing(capsys.readouterr().out)
    model = rm.load(out)
    # the relative gap: the model's duality gap over the objective at W = 0 (intercepts
    # fitted; equal task weights: half the mean of each task's squared deviations, summed)
    frame = data["frame"]
    y = frame.groupby("shop")["sales"]
    p0 = 0.5 * float(((frame["sales"] - y.transform("mean")) ** 2).groupby(frame["shop"])
                     .mean().sum())
    rel = float(re.search(r"duality gap [0-9.e+-]+ \(relative ([0-9.e+-]+)\)", line).group(1))
    assert f"{rel:.2e}" == f"{model.dual_gap_ / p0:.2e}"
    assert rel <= 1e-7  # what --tol bounds
    amax = source_alpha_max(_standardized(data["parts"]), "l21")
    ratio, shown = re.search(r"; alpha / alpha_max ([0-9.e+-]+) \(alpha_max ([0-9.e+-]+)\)$",
                             line).groups()
    assert ratio == f"{0.05 / amax:.4g}" and shown == f"{amax:.4g}"
    r2 = re.search(r"loss squared \(R\^2 ([0-9.-]+) on the training rows\)", line).group(1)
    task = frame["shop"].to_numpy()
    assert r2 == f"{model.score(frame[FEATURES], frame['sales'].to_numpy(), task=task):.4f}"


def _constant_worse(recorded) -> list[str]:
    return [str(w.message) for w in recorded if "worse than each task's mean" in str(w.message)
            or "better than each task's mean" in str(w.message)]


def test_warns_when_the_model_is_worse_than_each_tasks_mean(tmp_path, capsys):
    rng = np.random.default_rng(0)
    shop = np.repeat(np.arange(4), 30)
    X = rng.standard_normal((120, 4))
    slope = np.array([5.0, -0.5, -0.5, -0.5])  # one shop against three: pooled, all wrong
    frame = pd.DataFrame(X, columns=FEATURES).assign(
        shop=shop, sales=slope[shop] * X[:, 0] + 0.1 * rng.standard_normal(120))
    frame.to_parquet(tmp_path / "pooled.parquet", index=False)
    argv = ["fit", str(tmp_path / "pooled.parquet"), *COLS, "--penalty", "mean",
            "--out-of-core", "--out", str(tmp_path / "m.npz")]
    with pytest.warns(UserWarning, match=r"worse than each task's mean does: R\^2 -\d"):
        assert main([*argv, "--alpha", "100"]) == 0
    assert "(R^2 -" in capsys.readouterr().out
    with warnings.catch_warnings(record=True) as recorded:  # a good fit: silent
        warnings.simplefilter("always")
        assert main([*argv, "--alpha", "0.01"]) == 0
    assert _constant_worse(recorded) == []
    # pure noise, 6 rows per shop: on the held-out rows no fit beats each shop's mean
    noise = pd.DataFrame(rng.standard_normal((120, 4)), columns=FEATURES).assign(
        shop=np.repeat(np.arange(20), 6), sales=rng.standard_normal(120))
    noise.to_parquet(tmp_path / "noise.parquet", index=False)
    with pytest.warns(UserWarning, match="no fit of the path predicts better than each "
                                         "task's mean"):
        assert main(["fit", str(tmp_path / "noise.parquet"), *COLS, "--out-of-core",
                     "--alpha", "auto", "--n-alphas", "8", "--out", str(tmp_path / "n.npz")]) == 0


def test_alpha_auto_out_of_core_is_the_held_out_choice_refitted(data, capsys):
    out = data["root"] / "auto.npz"
    capsys.readouterr()
    texts, models = [], []
    for _ in range(2):
        assert main(["fit", str(data["parts"]), *AUTO, "--chunk-rows", "40",
                     "--out", str(out)]) == 0
        texts.append(capsys.readouterr().out)
        models.append(rm.load(out))
    # deterministic: the same rows held out, the same choice, the same model
    assert texts[0] == texts[1]
    np.testing.assert_array_equal(models[0].coef_, models[1].coef_)
    text, model = texts[0], models[0]
    assert "alpha by held-out rows (" in text
    assert re.search(rf"alpha {model.alpha:.4g} \(by held-out rows\);", _closing(text))
    # the same choice from Python, whatever the chunks
    choice = held_out_alpha(_standardized(data["parts"]), "l21", alphas=12, fraction=0.25,
                            seed=0, tol=1e-7)
    assert model.alpha == choice.alpha
    assert choice.alphas[0] == source_alpha_max(_standardized(data["whole"]), "l21")
    np.testing.assert_allclose(choice.alphas, choice.alphas[0] * np.logspace(0, -3, 12))
    assert 0 < choice.best_index < 11 and choice.alpha in choice.alphas
    assert choice.better_than_constant
    other = held_out_alpha(_standardized(data["whole"], chunk_rows=40), "l21", alphas=12,
                           fraction=0.25, seed=0, tol=1e-7)
    assert other.alpha == choice.alpha
    np.testing.assert_allclose(other.scores, choice.scores, rtol=1e-9)
    # the refit is the in-memory fit of all rows at that alpha (both certified: the
    # out-of-core one to a relative gap of 1e-7, measured 1e-7 apart here)
    memory = data["root"] / "memory.npz"
    assert main(["fit", str(data["whole"]), *COLS, "--penalty", "l21", "--tol", "1e-10",
                 "--alpha", repr(model.alpha), "--out", str(memory)]) == 0
    ref = rm.load(memory)
    assert _close(model.coef_, ref.coef_) < 1e-6
    assert _close(model.intercept_, ref.intercept_) < 1e-6


def test_held_out_scores_are_those_of_in_memory_fits(data):
    frame = data["frame"]
    source = _standardized(data["parts"], chunk_rows=50)
    choice = held_out_alpha(source, "l21", alphas=8, fraction=0.25, seed=3, tol=1e-9,
                            solver_options={"gram_dtype": "float64"})
    sizes = source.task_rows
    held = held_out_mask(sizes, 0.25, seed=3)
    assert held.sum() == held_out_counts(sizes, 0.25).sum() == choice.held_out_rows.sum()
    mean, scale = rm.ParquetTasks(data["whole"], target="sales", task="shop",
                                  features=FEATURES).feature_scaling()
    Z = (frame[FEATURES].to_numpy() - mean) / scale
    y, task = frame["sales"].to_numpy(), frame["shop"].to_numpy()
    scores = []
    for alpha in choice.alphas:
        fit = rm.MultiTaskRegressor("l21", alpha=alpha, tol=1e-12).fit(
            Z[~held], y[~held], task=task[~held])
        err = (y[held] - fit.predict(Z[held], task=task[held])) ** 2
        scores.append(-pd.Series(err).groupby(task[held]).mean().mean())
    np.testing.assert_allclose(choice.scores, scores, rtol=1e-6)
    assert choice.best_index == int(np.argmax(scores))


def test_held_out_options_are_refused_where_they_do_not_apply(data, capsys):
    base = ["fit", str(data["parts"]), *COLS, "--out", "m.npz"]
    assert main([*base, "--alpha", "0.1", "--held-out", "0.3"]) == 2
    assert "--held-out is an option of --out-of-core" in capsys.readouterr().err
    assert main([*base, "--out-of-core", "--alpha", "0.1", "--held-out", "0.3"]) == 2
    assert "--held-out chooses alpha on held-out rows" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--out-of-core", "--held-out", "1.5"])
    with pytest.raises(ValueError, match="fraction=0.01: no task has enough rows"):
        held_out_alpha(_standardized(data["parts"]), fraction=0.01)


def _counting(source: rm.ParquetTasks) -> list[int]:
    """The source's passes over its rows, counted: each ``chunks()`` call reads them once."""
    reads: list[int] = []
    chunks = source.chunks

    def counted(*args, **kwargs):
        reads.append(1)
        return chunks(*args, **kwargs)

    source.chunks = counted
    return reads


def test_the_held_out_path_reads_the_rows_once_and_the_refit_once_more(data):
    source = _standardized(data["parts"], chunk_rows=50)
    reads = _counting(source)
    choice = held_out_alpha(source, "l21", alphas=12, fraction=0.25, tol=1e-7,
                            patience=None, progress=False)
    # one pass: the statistics of all the rows, of the rows fitted and of those held out
    assert len(reads) == 1 and len(choice.alphas) == 12 and not choice.stopped_early
    model = rm.MultiTaskRegressor("l21", alpha=choice.alpha, tol=1e-7, warm_start=True)
    model.coef_ = choice.coef.copy()
    model.fit(source)
    assert len(reads) == 2  # the refit: only the pass that certifies it on the rows
    fresh = rm.MultiTaskRegressor("l21", alpha=choice.alpha, tol=1e-7).fit(
        _standardized(data["parts"], chunk_rows=50))
    assert _close(model.coef_, fresh.coef_) < 1e-6


def test_the_path_stops_patience_alphas_past_its_best(data):
    source = _standardized(data["parts"])
    whole = held_out_alpha(source, "l21", alphas=30, fraction=0.25, tol=1e-7, patience=None,
                           progress=False)
    k = whole.best_index
    assert k < 25 and not whole.stopped_early and np.array_equal(whole.grid, whole.alphas)
    for patience in (1, 3, 5):
        short = held_out_alpha(source, "l21", alphas=30, fraction=0.25, tol=1e-7,
                               patience=patience, progress=False)
        # no better score in `patience` alphas past the best: the path stops there, with
        # the choice, its score and its coefficients of the whole path's
        assert short.alpha == whole.alpha and short.stopped_early
        assert len(short.alphas) == min(k + patience + 1, 30)
        np.testing.assert_array_equal(short.grid, whole.grid)
        np.testing.assert_array_equal(short.alphas, whole.grid[:len(short.alphas)])
        np.testing.assert_allclose(short.scores, whole.scores[:len(short.alphas)], rtol=1e-12)
        np.testing.assert_array_equal(short.coef, whole.coef)
        assert np.all(short.scores[k + 1:] < short.scores[k])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"patience=.* must be an integer >= 1"):
            held_out_alpha(source, "l21", alphas=5, patience=bad)


def test_an_out_of_core_fit_at_a_tiny_alpha_on_short_tasks_warns(tmp_path):
    from regmtl.datasets import make_parquet_tasks
    from regmtl.out_of_core import NearLeastSquaresWarning

    make_parquet_tasks(tmp_path / "short", 40, n_rows=12, n_features=6, n_informative=2)
    source = rm.ParquetTasks(tmp_path / "short", progress=False)
    amax = rm.alpha_max(source, penalty="l21")
    message = r"is 0\.0005 of alpha_max on tasks of a median 12 rows for 6 features"
    with warnings.catch_warnings(), pytest.warns(NearLeastSquaresWarning, match=message):
        warnings.simplefilter("ignore", ConvergenceWarning)  # (max_iter: a short test)
        rm.MultiTaskRegressor("l21", alpha=5e-4 * amax, max_iter=50).fit(source)
    with warnings.catch_warnings():  # at 1e-2 alpha_max, or on long tasks: silent
        warnings.simplefilter("error", NearLeastSquaresWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        rm.MultiTaskRegressor("l21", alpha=1e-2 * amax).fit(source)
        make_parquet_tasks(tmp_path / "long", 10, n_rows=60, n_features=6, n_informative=2)
        long = rm.ParquetTasks(tmp_path / "long", progress=False)
        rm.MultiTaskRegressor("l21", alpha=5e-4 * rm.alpha_max(long, penalty="l21"),
                              max_iter=50).fit(long)


def test_a_choice_at_the_end_of_the_grid_warns(tmp_path, data):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 4))
    task = np.repeat(np.arange(4), 100)
    W = rng.standard_normal((4, 4))  # four unrelated tasks, almost no noise
    y = np.einsum("ij,ji->i", X, W[:, task]) + 1e-3 * rng.standard_normal(400)
    pd.DataFrame(X, columns=FEATURES).assign(y=y, task=task).to_parquet(tmp_path / "t.pq")
    source = rm.ParquetTasks(tmp_path / "t.pq", features=FEATURES, progress=False)
    with pytest.warns(UserWarning, match=r"the smallest of the grid, scores best on the "
                                         r"held-out rows: .* extend the grid downwards"):
        choice = held_out_alpha(source, "l21", alphas=6, eps=0.1)
    assert choice.best_index == 5 and not choice.stopped_early
    with warnings.catch_warnings():  # noisy shops: an inner choice, silent
        warnings.simplefilter("error")
        inner = held_out_alpha(_standardized(data["parts"]), "l21", alphas=12,
                               fraction=0.25, tol=1e-7)
    assert 0 < inner.best_index < 11


def test_bad_solver_options_are_refused_by_name(data):
    source = _standardized(data["parts"])
    for options, match in (({"check_every": 0}, r"check_every'\]=0 must be an integer >= 1"),
                           ({"check_every": 2.5}, r"check_every'\]=2.5"),
                           ({"gram_dtype": "float16"}, r"gram_dtype'\]='float16'"),
                           ({"gram_dtype": "nope"}, r"gram_dtype'\]='nope'"),
                           ({"tol": 1}, r"solver_options \['tol'\] are not options")):
        with pytest.raises(ValueError, match=match):
            held_out_alpha(source, "l21", alphas=3, solver_options=options)
        with pytest.raises(ValueError, match=match):
            rm.MultiTaskRegressor("l21", alpha=0.1, solver_options=options).fit(source)
