"""compare on counts: each task's D^2 against its constant model fitted on the training rows,
checked against scikit-learn's Poisson deviance on the real Solar Flare data and on synthetic
tasks; the tasks scored per split; the row counts of ``regmtl datasets``.

``regmtl compare solar_flare --loss poisson`` once reported D^2 = -4.9e18: the X-class test
rows of the 10th random split hold no flare, the best constant on them ran off to
``e^-51`` and the reference deviance was 1.4e-22.
"""

import warnings

import numpy as np
import pytest
from sklearn.metrics import d2_tweedie_score, mean_poisson_deviance
from sklearn.utils import Bunch

import regmtl as rm
from regmtl.compare import DegenerateReferenceWarning, _best_constant, _loss_metrics
from regmtl.datasets import list_datasets, train_test_split_per_task

#: the agreement of compare's D^2 with the independent computation (both in float64; the
#: reference constant is solved to rounding, the predictions come by two routes)
RTOL = 1e-9


def _d2_train_reference(y_test, mu, y_train):
    """1 - D(model) / D(training mean), by scikit-learn's mean Poisson deviance."""
    null = mean_poisson_deviance(y_test, np.full(len(y_test), np.mean(y_train)))
    return 1.0 - mean_poisson_deviance(y_test, mu) / null


def _solar_flare_splits():
    """The 1st and 10th of compare's 10 random splits of solar_flare (seed 0): the 10th
    holds no X-class flare among its test rows."""
    data = rm.datasets.load_solar_flare()
    seeds = np.random.SeedSequence(0).generate_state(10)
    splits = []
    for s in (seeds[0], seeds[9]):
        tr, te, _, _ = train_test_split_per_task([np.arange(len(y)) for y in data.y], data.y,
                                                 test_size=0.25, random_state=int(s))
        splits.append((tr, te))
    return data, splits


@pytest.fixture(scope="module")
def solar():
    data, splits = _solar_flare_splits()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = rm.compare(data, loss="poisson", models=["independent", "l21"], splits=splits,
                         n_alphas=4, cv=2, n_jobs=1, progress=False)
    notes = [str(w.message) for w in caught
             if issubclass(w.category, DegenerateReferenceWarning)]
    return data, splits, res, notes


def test_solar_flare_d2_is_scikit_learns_deviance_against_the_training_mean(solar):
    data, splits, res, _ = solar
    # split 0: the models kept are those of the first split; their D^2 per task, by
    # scikit-learn, against the mean count of the task's training rows
    Xtr, Xte, ytr, yte = res.data_first_split
    for name, model in res.models.items():
        mu = model.predict(Xte)
        mine = res.scores[(res.scores["model"] == name) & (res.scores["split"] == 0)]
        for t, task in enumerate(data.task_names):
            row = mine[mine["task"] == task].iloc[0]
            assert row["d2"] == pytest.approx(_d2_train_reference(yte[t], mu[t], ytr[t]),
                                              rel=RTOL)
            assert row["deviance"] == pytest.approx(mean_poisson_deviance(yte[t], mu[t]),
                                                    rel=RTOL)
            # (not scikit-learn's d2_tweedie_score, whose reference is the test rows' mean)
            assert abs(row["d2"] - d2_tweedie_score(yte[t], mu[t], power=1)) > 1e-4
    # every split and task: D^2 from the deviance and the training mean's deviance
    for s, (tr, te) in enumerate(splits):
        for t, task in enumerate(data.task_names):
            y_train, y_test = data.y[t][tr[t]], data.y[t][te[t]]
            rows = res.scores[(res.scores["split"] == s) & (res.scores["task"] == task)]
            if s == 1 and task == "x-class":
                assert y_test.sum() == 0 and rows["d2"].isna().all()
                continue
            null = mean_poisson_deviance(y_test, np.full(len(y_test), y_train.mean()))
            np.testing.assert_allclose(rows["d2"], 1.0 - rows["deviance"] / null, rtol=RTOL)


def test_solar_flare_figures_are_sane_and_scored_tasks_are_counted(solar):
    data, _, res, notes = solar
    assert notes == ["d2, split 1: task 'x-class': its test rows are fitted by a constant (the "
                     "reference deviance is ~0, e.g. no count in a Poisson task); its d2 is "
                     "left out of the means (NaN in scores)"]
    scored = res.tasks_scored
    assert scored.columns.tolist() == ["split", "n_tasks", "n_scored", "left_out"]
    assert scored["n_scored"].tolist() == [3, 2] and scored["n_tasks"].tolist() == [3, 3]
    assert scored["left_out"].tolist() == [[], ["x-class"]]
    d2 = res.scores["d2"].dropna()
    assert len(d2) == 2 * 5 and d2.between(0.0, 1.0).all()  # 2 models x (3 + 2) tasks
    # the summary's mean: per split over the scored tasks, then over the splits
    for model in res.summary["model"]:
        mine = res.scores[res.scores["model"] == model].set_index(["split", "task"])["d2"]
        expect = np.mean([mine.loc[0].mean(), mine.loc[1].dropna().mean()])
        assert res.summary.set_index("model").loc[model, "d2_mean"] == pytest.approx(
            expect, rel=1e-12)
        # by_task: each task's mean over the splits that scored it
        for task in data.task_names:
            assert res.by_task.loc[task, model] == pytest.approx(
                mine.xs(task, level="task").dropna().mean(), rel=1e-12)
    assert res.by_task.index.tolist() == data.task_names
    assert res.by_task.columns.tolist() == res.summary["model"].tolist()
    assert np.isfinite(res.by_task.to_numpy()).all()


def test_solar_flare_rows_are_counted_as_the_datasets_listing_counts(solar):
    data, _, res, _ = solar
    listed = list_datasets().set_index("name").loc["solar_flare", "samples"]
    assert res.n_rows == listed == 1389 == data.X_shared.shape[0]
    assert res.n_obs == 3 * 1389 == sum(len(y) for y in data.y)


def _poisson_tasks(rng, n=60, p=3):
    Xs = [rng.standard_normal((n, p)) for _ in range(3)]
    rates = [np.exp(0.4 * Xs[0][:, 0] + 0.3), np.exp(0.5 * Xs[1][:, 1]),
             np.exp(0.6 * Xs[2][:, 2] - 0.5)]
    return Xs, [rng.poisson(r).astype(float) for r in rates]


def test_a_held_out_part_without_counts_is_not_scored_and_the_rest_match_scikit_learn():
    """Task 2's test rows of split 0 hold no count (its null deviance is 0); task 1's
    training rows of split 1 hold none (no finite constant model): those two are left out,
    every other D^2 is scikit-learn's against the training mean."""
    rng = np.random.default_rng(3)
    Xs, ys = _poisson_tasks(rng)
    zero2 = np.flatnonzero(ys[2] == 0)[:15]
    rest2 = np.setdiff1d(np.arange(60), zero2)
    zero1 = np.flatnonzero(ys[1] == 0)[:20]
    rest1 = np.setdiff1d(np.arange(60), zero1)
    split0 = ([np.arange(15, 60), np.arange(15, 60), rest2], [np.arange(15), np.arange(15),
                                                               zero2])
    split1 = ([np.arange(45), zero1, np.arange(45)], [np.arange(45, 60), rest1[:15],
                                                      np.arange(45, 60)])
    data = Bunch(X=Xs, y=ys, task_names=["a", "b", "c"], feature_names=["x0", "x1", "x2"],
                 kind="regression")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = rm.compare(data, loss="poisson", models=["independent", "l21"],
                         splits=[split0, split1], n_alphas=4, cv=3, n_jobs=1, progress=False)
    notes = sorted(str(w.message) for w in caught
                   if issubclass(w.category, DegenerateReferenceWarning))
    assert len(notes) == 2
    assert notes[0].startswith("d2, split 0: task 'c': its test rows are fitted by a constant")
    assert notes[1].startswith("d2, split 1: task 'b': its training rows have no finite best "
                               "constant")
    assert res.tasks_scored["n_scored"].tolist() == [2, 2]
    assert res.tasks_scored["left_out"].tolist() == [["c"], ["b"]]
    scores = res.scores.set_index(["model", "split", "task"])["d2"].sort_index()
    assert scores.xs((0, "c"), level=("split", "task")).isna().all()
    assert scores.xs((1, "b"), level=("split", "task")).isna().all()
    assert np.isfinite(scores.dropna()).all() and scores.notna().sum() == 2 * 4
    # the first split's models against scikit-learn, task by task
    Xtr, Xte, ytr, yte = res.data_first_split
    for name, model in res.models.items():
        mu = model.predict(Xte)
        for t, task in enumerate(("a", "b")):
            assert scores.loc[(name, 0, task)] == pytest.approx(
                _d2_train_reference(yte[t], mu[t], ytr[t]), rel=RTOL)
    # the means are over the scored tasks; no number is -inf, 0 for nothing, or huge
    summary = res.summary.set_index("model")
    for name in res.summary["model"]:
        per_split = [scores.loc[(name, s)].dropna().mean() for s in (0, 1)]
        assert summary.loc[name, "d2_mean"] == pytest.approx(np.mean(per_split), rel=1e-12)
        assert -1.0 < summary.loc[name, "d2_mean"] < 1.0
    assert res.by_task.notna().all().all()  # every task is scored in one of the splits


@pytest.mark.parametrize(("loss", "y", "expect"), [
    (rm.Poisson(), np.array([0.0, 1.0, 3.0, 2.0, 0.0]), np.log(1.2)),
    (rm.Gamma(), np.array([0.5, 1.5, 2.0, 4.0]), np.log(2.0)),
    ("squared", np.array([1.0, -2.0, 4.5]), 3.5 / 3),
])
def test_the_constant_model_is_the_closed_form_one(loss, y, expect):
    from regmtl.datafits import make_loss

    assert _best_constant(make_loss(loss), y) == pytest.approx(expect, rel=1e-13)


def test_the_constant_model_runs_off_without_counts_and_the_test_rows_reference_is_sklearns():
    poisson = rm.Poisson()
    assert np.isnan(_best_constant(poisson, np.zeros(10)))
    rng = np.random.default_rng(0)
    y_train, y_test = rng.poisson(2.0, 40).astype(float), rng.poisson(2.0, 30).astype(float)
    mu = y_test + 0.5
    with_train = _loss_metrics([poisson], [y_test], [np.log(mu)], [y_train])["d2"][0]
    assert with_train == pytest.approx(_d2_train_reference(y_test, mu, y_train), rel=1e-12)
    own = _loss_metrics([poisson], [y_test], [np.log(mu)])["d2"][0]
    assert own == pytest.approx(d2_tweedie_score(y_test, mu, power=1), rel=1e-12)


def test_row_counts_of_lists_and_of_a_shared_design():
    rng = np.random.default_rng(1)
    Xs = [rng.standard_normal((n, 3)) for n in (20, 30, 25)]
    ys = [X[:, 0] + rng.standard_normal(len(X)) for X in Xs]
    res = rm.compare(Xs, ys, models=["ridge"], splits=1, n_alphas=3, progress=False)
    assert (res.n_rows, res.n_obs) == (75, 75)
    X = rng.standard_normal((40, 3))
    Y = X[:, :2] + rng.standard_normal((40, 2))
    Y[:5, 1] = np.nan  # 5 missing labels of task 1
    res = rm.compare(X, Y, models=["ridge"], splits=1, n_alphas=3, progress=False)
    assert (res.n_rows, res.n_obs) == (40, 75)
    assert res.tasks_scored["n_scored"].tolist() == [2]
    assert res.by_task.shape == (2, 1)


def test_the_command_line_prints_rows_per_task_d2_and_tasks_scored(capsys):
    from regmtl.cli import main

    warnings.simplefilter("ignore")
    assert main(["compare", "solar_flare", "--loss", "poisson", "--models", "l21",
                 "--splits", "10", "--no-report", "--n-jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("solar_flare: 3 tasks, 1389 rows (4167 task labels), 34 features")
    per_task = out.split("D2 per task")[1].splitlines()
    assert per_task[1].split() == ["model", "c-class", "m-class", "x-class"]
    rows = per_task[3:per_task.index("")]
    values = {line.split()[0]: [float(v) for v in line.split()[-3:]] for line in rows}
    assert len(values) == 1
    assert all(-1.0 < v < 1.0 for row in values.values() for v in row)  # sane: no -4.9e18
    assert "tasks scored per split: 3 3 3 3 3 3 3 3 3 2 of 3" in out
