"""Which modality each task leans on: masking a modality raises the loss of the tasks that read
it, and of no other; the fitted table, the report's section, save and load, refusals."""

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from sklearn.metrics import log_loss  # noqa: E402

import regmtl  # noqa: E402
from regmtl.deep import (  # noqa: E402
    DeepMultiTaskClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
    Modalities,
    modality_importance,
)
from regmtl.report import training_report  # noqa: E402


def _problem(n=1500, seed=0):
    """Task A reads only the table, B only the text block, C both; "noise" feeds no task."""
    rng = np.random.default_rng(seed)
    table, text, noise = (rng.standard_normal((n, k)) for k in (3, 3, 2))
    y = np.column_stack([table[:, 0] + table[:, 1], text[:, 0] - text[:, 2],
                         table[:, 2] + text[:, 1]]) + 0.3 * rng.standard_normal((n, 3))
    return Modalities(table=table, text=text, noise=noise), pd.DataFrame(y, columns=list("ABC"))


@pytest.fixture(scope="module")
def fitted():
    X, y = _problem()
    # modality dropout: the net learns what each missing vector means
    model = DeepMultiTaskRegressor(hidden=(32,), max_epochs=60, lr=3e-3, batch_size=64,
                                   modality_dropout=0.2, validation_fraction=0.2)
    return model.fit(X[:1200], y[:1200]), X[1200:], y[1200:]


def _increase(table):
    return table.set_index(["task", "modality"])["increase"]


def test_masking_a_modality_hurts_the_tasks_that_read_it(fitted):
    model, X, y = fitted
    table = modality_importance(model, X, y)
    assert list(table.columns) == ["task", "modality", "loss", "masked_loss", "increase",
                                   "relative_increase", "rows"]
    assert len(table) == 9 and (table["rows"] == 300).all()
    inc = _increase(table)
    # measured (held-out, 300 rows; losses near the noise variance 0.09): table masked:
    # A +2.03, B -0.005; text masked: B +2.09, A -0.007; C +0.92 and +1.01
    assert inc["A", "table"] >= 1.0 and abs(inc["B", "table"]) <= 0.1
    assert inc["B", "text"] >= 1.0 and abs(inc["A", "text"]) <= 0.1
    assert inc["A", "table"] > 10 * abs(inc["B", "table"])
    assert inc["B", "text"] > 10 * abs(inc["A", "text"])
    assert inc["C", "table"] >= 0.5 and inc["C", "text"] >= 0.5
    # an irrelevant modality: |increase| <= 0.05 (measured <= 0.005) for every task
    assert np.abs(inc.xs("noise", level="modality")).max() <= 0.05
    # the loss is the task's squared error
    base = table.drop_duplicates("task").set_index("task")["loss"]
    pred = model.predict(X)
    for k, t in enumerate("ABC"):
        assert base[t] == pytest.approx(np.mean((y[t].to_numpy() - pred[:, k]) ** 2), rel=1e-6)
    assert np.allclose(table["relative_increase"], table["increase"] / table["loss"])
    model.net_.train()  # run in evaluation mode whatever the mode; the mode restored
    pd.testing.assert_frame_equal(modality_importance(model, X, y), table)  # deterministic
    assert model.net_.training
    model.net_.eval()


def test_the_fit_keeps_it_on_the_validation_rows(fitted):
    model = fitted[0]
    table = model.modality_importance_
    assert (table["rows"] == 240).all() and len(table) == 9
    inc = _increase(table)
    # measured on the 240 validation rows: A/table +2.04, B/text +2.03, noise at most 0.006
    assert inc["A", "table"] >= 1.0 and inc["B", "text"] >= 1.0
    assert abs(inc["B", "table"]) <= 0.1 and abs(inc["A", "text"]) <= 0.1
    assert np.abs(inc.xs("noise", level="modality")).max() <= 0.05


def test_the_report_shows_a_table_per_task(fitted):
    html = training_report(fitted[0], created="2024-01-01").to_html()
    assert "Modality importance" in html
    for t in "ABC":
        assert f"Modality importance: {t}" in html
    assert "masked loss" in html and "relative increase" in html
    assert html.index("Modality importance: A") < html.index("Modality importance: B")


def test_save_and_load_keep_it(fitted, tmp_path):
    model = fitted[0]
    model.save(tmp_path / "m")
    again = regmtl.load(tmp_path / "m")
    pd.testing.assert_frame_equal(again.modality_importance_, model.modality_importance_)
    pd.testing.assert_frame_equal(modality_importance(again, fitted[1], fitted[2]),
                                  modality_importance(model, fitted[1], fitted[2]))
    config = tmp_path / "m" / "config.json"
    text = config.read_text()
    saved = json.loads(text)

    def attributes(d):
        if isinstance(d, dict):
            if "modality_importance_" in d:
                return d
            for v in d.values():
                found = attributes(v)
                if found is not None:
                    return found
        return None

    attributes(saved)["modality_importance_"]["rows"][0] = -1  # a tampered table is refused
    config.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="modality_importance_"):
        regmtl.load(tmp_path / "m")


def test_classification_uses_log_loss_and_no_split_keeps_nothing():
    X, y = _problem(400, seed=1)
    labels = (y > 0).astype(int)
    model = DeepMultiTaskClassifier(hidden=(16,), max_epochs=5).fit(X, labels)
    table = modality_importance(model, X, labels)
    proba = model.predict_proba(X)
    for k, t in enumerate("ABC"):
        want = log_loss(labels[t], proba[k][:, 1])
        assert table.loc[table["task"] == t, "loss"].iloc[0] == pytest.approx(want, rel=1e-5)
    assert hasattr(model, "modality_importance_")
    off = DeepMultiTaskClassifier(hidden=(16,), max_epochs=2, early_stopping=False)
    assert not hasattr(off.fit(X, labels), "modality_importance_")


def test_refuses_a_model_not_fitted_on_modalities():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    model = DeepMultiTaskRegressor(hidden=(8,), max_epochs=2).fit(X, X[:, :2])
    with pytest.raises(ValueError, match="DeepMultiTaskRegressor was not fitted on a "
                                         "regmtl.deep.Modalities"):
        modality_importance(model, X, X[:, :2])
    assert not hasattr(model, "modality_importance_")


def test_the_long_form_scores_each_row_for_its_own_task():
    X, y = _problem(300, seed=2)
    task = np.tile(["A", "B", "C"], 100)
    value = y.to_numpy()[np.arange(300), np.tile([0, 1, 2], 100)]
    target = np.where(task == "C", (value > 0).astype(int), value).astype(object)
    model = DeepMultiTaskModel(kinds={"A": "regression", "B": "regression",
                                      "C": "classification"}, hidden=(16,), max_epochs=5)
    model.fit(X, target, task=task)
    table = modality_importance(model, X, target, task=task)
    assert (table["rows"] == 100).all() and len(table) == 9
    base = table.drop_duplicates("task").set_index("task")["loss"]
    pred = model.predict(X, task=task)
    for t in "AB":
        s = task == t
        assert base[t] == pytest.approx(np.mean((value[s] - pred[s].astype(float)) ** 2),
                                        rel=1e-6)
    s = task == "C"
    proba = model.predict_proba(X[s], task=task[s])
    assert base["C"] == pytest.approx(log_loss(target[s].astype(int), proba[:, 1]), rel=1e-5)
