"""A task whose test rows a constant fits (no flare in a Poisson task's test rows) has no
D^2 reference: its score is left out of the means with a warning naming the task and the
split, never averaged in (``regmtl compare solar_flare --loss poisson`` reported D^2 =
-4.9e18 for every model and a verdict of +7.8e16)."""

import warnings

import numpy as np
import pytest
from sklearn.utils import Bunch

import regmtl as rm
from regmtl.compare import DegenerateReferenceWarning, _loss_metrics
from regmtl.datasets import train_test_split_per_task


def test_a_degenerate_reference_gives_nan_not_a_huge_score():
    poisson, gamma = rm.Poisson(), rm.Gamma()
    rng = np.random.default_rng(0)
    y = rng.poisson(2.0, 50).astype(float)
    out = _loss_metrics([poisson, poisson, gamma, gamma],
                        [y, np.zeros(20), np.full(10, 3.0), rng.gamma(2.0, 1.0, 30)],
                        [np.log(y + 0.5), np.full(20, -3.0), np.full(10, 1.0),
                         np.zeros(30)])
    assert np.isnan(out["d2"][1]) and np.isnan(out["d2"][2])  # was -4.9e18-like and 0
    assert np.isfinite(out["d2"][[0, 3]]).all()
    # the kept tasks' D^2 is scikit-learn's
    from sklearn.metrics import d2_tweedie_score

    assert out["d2"][0] == pytest.approx(d2_tweedie_score(y, y + 0.5, power=1), rel=1e-7)


def test_compare_leaves_the_split_without_a_flare_out_of_the_means():
    """The X-class task of the 10th random split of solar_flare holds no flare among its test
    rows; two tasks and two splits (that one and the first) reproduce it."""
    data = rm.datasets.load_solar_flare()
    names = ["c-class", "x-class"]
    keep = [data.task_names.index(n) for n in names]
    Xs = [np.asarray(data.X[t]) for t in keep]
    ys = [np.asarray(data.y[t], dtype=np.float64) for t in keep]
    seeds = np.random.SeedSequence(0).generate_state(10)  # compare's random splits
    splits = []
    for s in (seeds[0], seeds[9]):
        tr, te, _, _ = train_test_split_per_task([np.arange(len(y)) for y in data.y], data.y,
                                                 test_size=0.25, random_state=int(s))
        splits.append(([tr[t] for t in keep], [te[t] for t in keep]))
    assert ys[1][splits[1][1][1]].sum() == 0  # the degenerate split
    two = Bunch(X=Xs, y=ys, task_names=names, feature_names=data.feature_names,
                kind="regression")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = rm.compare(two, loss="poisson", models=["independent", "l21"],
                         splits=splits, n_alphas=4, cv=2, progress=False)
    notes = [str(w.message) for w in caught
             if issubclass(w.category, DegenerateReferenceWarning)]
    assert notes == ["d2, split 1: task 'x-class': its test rows are fitted by a constant (the "
                     "reference deviance is ~0, e.g. no count in a Poisson task); its d2 is "
                     "left out of the means (NaN in scores)"]
    scores = res.scores.set_index(["model", "split", "task"])["d2"]
    assert scores.xs((1, "x-class"), level=("split", "task")).isna().all()
    assert scores.dropna().between(-1.0, 1.0).all()  # every kept score is a real D^2
    # the split's mean is its other task's score alone
    for model in res.summary["model"]:
        kept = scores.loc[model].dropna()
        assert res.summary.set_index("model").loc[model, "d2_mean"] == pytest.approx(
            np.mean([kept.loc[0].mean(), kept.loc[1].mean()]), rel=1e-12)
    assert res.tests["difference"].abs().max() < 0.5  # was 7.8e16
