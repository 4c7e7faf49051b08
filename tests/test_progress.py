"""The progress bar of the long runs (regmtl.progress): one switch, ``progress="auto"`` /
``True`` / ``False``, for the searches, paths, compare and the reads of a ParquetTasks. Forced
on, a bar on stderr counts the right steps and ends at 100 %; off, or "auto" off a terminal
(as in tests), nothing is written; the results are the same either way."""

import re
import sys
import threading

import numpy as np
import pytest

import regmtl as rm
from regmtl import progress as progress_module
from regmtl.progress import check_progress, progress_bar, progress_enabled


def _tasks(T=3, n=30, p=5, seed=0):
    rng = np.random.default_rng(seed)
    w = np.array([1.0, -1.0, 0.0, 0.5, 0.0])[:p]
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    return Xs, [X @ w + 0.5 * rng.standard_normal(n) for X in Xs]


def _final_count(err: str) -> tuple[str, str]:
    """The last ``n/total`` a bar wrote, and its percentage."""
    counts = re.findall(r"(\d+)%\|[^|]*\|\s*(\d+/\d+)", err)
    assert counts, err
    return counts[-1][1], counts[-1][0]


def _phase_count(err: str, phase: str) -> tuple[str, str]:
    """The last ``n/total`` and percentage of the out-of-core fit's bar of ``phase``."""
    counts = re.findall(rf"out-of-core fit: {phase}:\s+(\d+)%\|[^|]*\|\s*(\d+/\d+)", err)
    assert counts, err
    return counts[-1][1], counts[-1][0]


@pytest.mark.parametrize(("loss", "cv", "alphas", "grid"), [
    ("squared", 3, 5, None),
    ("huber", 2, 4, None),
    ("quantile", 3, 3, None),
    ("squared", 2, 4, {"l1_ratio": [0.5, 1.0]}),
])
def test_a_search_counts_folds_times_alphas_and_ends_at_100_percent(capsys, loss, cv, alphas,
                                                                    grid):
    Xs, ys = _tasks()
    penalty = "elasticnet" if grid else "l21"
    kw = dict(loss=loss, alphas=alphas, cv=cv, penalty_grid=grid, tol=1e-6)
    on = rm.MultiTaskRegressorCV(penalty, progress=True, **kw).fit(Xs, ys)
    err = capsys.readouterr().err
    steps = cv * alphas * (len(grid["l1_ratio"]) if grid else 1)
    assert err.startswith("\rcross-validation:   0%")
    assert _final_count(err) == (f"{steps}/{steps}", "100")
    off = rm.MultiTaskRegressorCV(penalty, progress=False, **kw).fit(Xs, ys)
    assert capsys.readouterr().err == ""
    auto = rm.MultiTaskRegressorCV(penalty, **kw).fit(Xs, ys)  # "auto": not a terminal
    assert auto.progress == "auto" and capsys.readouterr().err == ""
    for other in (off, auto):  # the bar changes no result
        assert other.alpha_ == on.alpha_
        np.testing.assert_array_equal(other.cv_results_["mean_test_score"],
                                      on.cv_results_["mean_test_score"])
        np.testing.assert_array_equal(other.coef_, on.coef_)
        np.testing.assert_array_equal(other.intercept_, on.intercept_)


def test_the_classifier_aic_and_leave_one_out_count_their_fits(capsys):
    Xs, ys = _tasks()
    labels = [np.where(y > 0, 1, 0) for y in ys]
    rm.MultiTaskClassifierCV("l21", alphas=4, cv=3, progress=True).fit(Xs, labels)
    assert _final_count(capsys.readouterr().err) == ("12/12", "100")
    rm.MultiTaskRegressorCV("l21", alphas=6, criterion="bic", progress=True).fit(Xs, ys)
    err = capsys.readouterr().err
    assert "BIC" in err and _final_count(err) == ("6/6", "100")
    rm.MultiTaskRegressorCV("l2", alphas=7, cv="loo", progress=True).fit(Xs, ys)
    err = capsys.readouterr().err
    assert "leave-one-out" in err and _final_count(err) == ("7/7", "100")


def test_a_path_counts_its_alphas(capsys):
    Xs, ys = _tasks()
    on = rm.regularization_path(Xs, ys, penalty="l21", alphas=8, progress=True)
    err = capsys.readouterr().err
    assert "regularization path" in err and _final_count(err) == ("8/8", "100")
    off = rm.regularization_path(Xs, ys, penalty="l21", alphas=8, progress=False)
    auto = rm.regularization_path(Xs, ys, penalty="l21", alphas=8)
    assert capsys.readouterr().err == ""
    for other in (off, auto):
        np.testing.assert_array_equal(other.coefs, on.coefs)
        np.testing.assert_array_equal(other.intercepts, on.intercepts)


def test_compare_counts_its_fits_and_keeps_the_searches_quiet(capsys):
    Xs, ys = _tasks(T=3, n=24)
    on = rm.compare(Xs, ys, models=["ridge", "l21"], splits=2, n_alphas=3, cv=2, n_jobs=1,
                    progress=True)
    err = capsys.readouterr().err
    assert "compare" in err and "cross-validation" not in err
    assert _final_count(err) == ("4/4", "100")
    off = rm.compare(Xs, ys, models=["ridge", "l21"], splits=2, n_alphas=3, cv=2, n_jobs=1)
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(on.scores["explained_variance"],
                                  off.scores["explained_variance"])


def test_auto_waits_two_seconds_on_a_terminal_and_never_shows_in_a_worker(monkeypatch):
    class Tty:
        def __init__(self):
            self.text = []

        def isatty(self):
            return True

        def write(self, s):
            self.text.append(s)

        def flush(self):
            pass

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert progress_enabled("auto") is True
    # a run shorter than AUTO_DELAY prints nothing, even on a terminal
    with progress_bar(3, "auto", "short") as bar:
        bar.update(3)
    assert tty.text == []
    # past the delay it shows (and shows the final count before it clears)
    monkeypatch.setattr(progress_module, "AUTO_DELAY", 0.0)
    with progress_bar(3, "auto", "long") as bar:
        bar.update(3)
    assert "long: 100%" in "".join(tty.text)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(progress_enabled("auto")))
    worker.start()
    worker.join()
    assert seen == [False]  # not the main thread


def test_the_switch_is_checked():
    assert check_progress(np.bool_(True)) is True and check_progress("auto") == "auto"
    for bad in ("yes", None, 1):
        with pytest.raises(ValueError, match=r"progress=.* must be 'auto', True or False"):
            check_progress(bad)
    Xs, ys = _tasks()
    with pytest.raises(ValueError, match="progress"):
        rm.MultiTaskRegressorCV(progress="yes").fit(Xs, ys)
    with pytest.raises(ValueError, match="must be 'auto', True or False"):
        rm.regularization_path(Xs, ys, progress="yes")


def test_an_out_of_core_fit_predict_and_score_count_the_chunks(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    from regmtl.datasets import make_parquet_tasks

    make_parquet_tasks(tmp_path / "tasks", 12, n_rows=20, n_features=4, n_informative=2,
                       row_group_tasks=3)
    on = rm.ParquetTasks(tmp_path / "tasks", chunk_rows=60, progress=True)
    off = rm.ParquetTasks(tmp_path / "tasks", chunk_rows=60, progress=False)
    assert on.n_chunks == 4 and capsys.readouterr().err == ""
    fit_on = rm.MultiTaskRegressor("l21", alpha=0.05).fit(on)
    err = capsys.readouterr().err
    # each phase its bar and its total: the statistics pass and the certifying pass count
    # the chunks, the iterations on the Grams count up to max_iter, the certificate beside
    assert _phase_count(err, "statistics") == ("4/4", "100")
    assert _phase_count(err, "iterations") == (f"{fit_on.n_iter_}/1000",
                                               str(fit_on.n_iter_ // 10))
    assert re.search(r"certificate \d\.\d\de-\d\d \(tol 1\.00e-04\)", err)
    assert _phase_count(err, "certificate on the rows") == ("4/4", "100")
    assert on.on_chunk is None  # (the hook is gone after the fit)
    labels = rm.ParquetTasks(tmp_path / "tasks", target="label", chunk_rows=60, progress=True)
    clf = rm.MultiTaskClassifier("l21", alpha=0.01).fit(labels)
    err = capsys.readouterr().err
    # the logistic fit: its first pass in chunks, then its Newton steps up to max_iter
    assert _phase_count(err, "first pass") == ("4/4", "100")
    steps = _phase_count(err, "Newton steps")
    assert steps[0] == f"{clf.n_iter_}/{clf.max_iter}"
    fit_off = rm.MultiTaskRegressor("l21", alpha=0.05).fit(off)
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(fit_on.coef_, fit_off.coef_)
    np.testing.assert_array_equal(fit_on.intercept_, fit_off.intercept_)
    pred_on, pred_off = fit_on.predict(on), fit_off.predict(off)
    err = capsys.readouterr().err
    assert "predict" in err and _final_count(err) == ("4/4", "100")
    np.testing.assert_array_equal(pred_on, pred_off)
    assert fit_on.score(on) == fit_off.score(off)
    err = capsys.readouterr().err
    assert "score" in err and _final_count(err) == ("4/4", "100")
