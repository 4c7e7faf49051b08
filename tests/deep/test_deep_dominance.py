"""The dominance warning judges a dominated task by its own results, not by gradient shares
alone: no warning when the other task is at its best (0.999 accuracy) or was restored by
IMTL, a warning when a task is really suppressed (its metric below its best or its
single-task level)."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from regmtl.deep import HardSharing, TaskSpec, Trainer, set_seed  # noqa: E402
from regmtl.deep.diagnostics import (  # noqa: E402
    SUPPRESSION_GAP,
    DominanceRule,
    check_levels,
    dominance,
    dominant_task,
    judged_column,
    warn_if_dominated,
)

RNG = np.random.default_rng(0)
X = RNG.standard_normal((600, 6))
NOISE = RNG.standard_normal(600)


def _fit(tasks, y, **kw):
    train = (X[:400], {k: v[:400] for k, v in y.items()})
    val = (X[400:], {k: v[400:] for k, v in y.items()})
    set_seed(0)
    net = HardSharing(6, tasks, hidden=(32, 16))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Trainer(net, batch_size=32, device="cpu", **kw).fit(train, val)
    said = [str(w.message) for w in caught if "shared layers' gradient norm" in str(w.message)]
    return trainer, said


def _scaled():  # a price in thousands beside a small regression: the price writes the trunk
    return [TaskSpec("a"), TaskSpec("b")], {
        "a": 1000 * (X[:, 0] + 0.5 * np.sin(X[:, 3])), "b": X[:, 1] * X[:, 2] + 0.1 * NOISE}


def test_no_warning_when_the_other_task_is_at_0999_accuracy():
    # b is separable with a margin (no label near the boundary): it is learned to the end,
    # its loss and gradient go to 0, and the noisy a writes the trunk alone
    tasks = [TaskSpec("a"), TaskSpec("b", kind="binary")]
    b = np.where(np.abs(X[:, 1]) < 0.5, np.nan, (X[:, 1] > 0).astype(float))
    trainer, said = _fit(tasks, {"a": X[:, 0] + 2 * NOISE, "b": b}, lr=1e-2, max_epochs=20)
    h = trainer.history
    assert dominant_task(h, 0.9, 3)[0] == "a"  # the shares alone would call b suppressed
    assert h["val/b/accuracy"].iloc[-3:].min() >= 0.999
    assert said == []


def test_no_warning_when_imtl_restores_the_task():
    tasks, y = _scaled()
    kw = dict(lr=3e-3, max_epochs=40, standardize=False, normalize_losses=False)
    imtl, said = _fit(tasks, y, weighting="imtl", **kw)
    equal, said_equal = _fit(tasks, y, **kw)
    assert dominant_task(imtl.history, 0.9, 3)[0] == "a"  # shares measured before IMTL
    restored, starved = imtl.history["val/b/r2"], equal.history["val/b/r2"]
    assert restored.iloc[-3:].max() > 0.75 > 0 > starved.max()
    assert said == []
    # under equal weighting b really is suppressed: its r2 fell below its best of the run
    assert len(said_equal) == 1
    assert "suppressed 'b'" in said_equal[0] and "b's r2 reached" in said_equal[0]
    assert "against its best" in said_equal[0]


def test_a_single_task_level_reveals_a_task_that_never_learned():
    tasks, y = _scaled()
    kw = dict(lr=3e-3, max_epochs=40, standardize=False, normalize_losses=False)
    # with IMTL b reaches r2 ~0.8; a single-task level of 0.99 says it is still suppressed
    _, said = _fit(tasks, y, weighting="imtl", dominance=DominanceRule(levels={"b": 0.99}),
                   **kw)
    assert len(said) == 1 and "against its single-task level 0.99" in said[0]
    _, said = _fit(tasks, y, weighting="imtl",
                   dominance=DominanceRule(levels={"val/b/r2": 0.5}), **kw)
    assert said == []  # a level below what it reached: judged against its own best


def _history(b_r2, share=0.95, **extra):
    n = len(b_r2)
    return pd.DataFrame({"epoch": np.arange(1, n + 1), "loss/a": np.ones(n),
                         "loss/b": np.ones(n), "grad_share/a": np.full(n, share),
                         "grad_share/b": np.full(n, 1 - share), "val/b/mse": np.ones(n),
                         "val/b/r2": b_r2, **extra})


def test_the_rule_on_histories():
    # the best of the last 3 epochs against the best of the run, relative to its size
    ok = dominance(_history([0.2, 0.8, 0.5, 0.73, 0.6]), 0.9, 3)  # 0.73 vs 0.8: 8.75 %
    (b,) = ok.others
    assert (b.column, b.recent, b.reference, b.source) == ("val/b/r2", 0.73, 0.8, "best")
    assert b.gap == pytest.approx(0.0875) and not b.suppressed and ok.suppressed == []
    bad = dominance(_history([0.2, 0.8, 0.5, 0.7, 0.6]), 0.9, 3)  # 12.5 % below
    assert bad.suppressed[0].gap == pytest.approx(0.125) and 0.125 > SUPPRESSION_GAP
    assert dominance(_history([0.2, 0.8, 0.5, 0.7, 0.6], share=0.8), 0.9, 3) is None
    # a level better than its best becomes the reference; a loss is lower-is-better
    lvl = dominance(_history([0.2, 0.8, 0.8, 0.8, 0.8]), 0.9, 3, levels={"b": 0.95})
    assert lvl.others[0].source == "level" and lvl.others[0].suppressed
    by_mse = dominance(_history([0.8] * 5), 0.9, 3, levels={"val/b/mse": 0.5})  # mse 1
    assert (by_mse.others[0].column, by_mse.others[0].gap) == ("val/b/mse", 1.0)
    no_val = _history([0.2] * 5).drop(columns=["val/b/r2", "val/b/mse"])
    no_val["loss/b"] = [1.0, 0.5, 0.8, 0.9, 0.7]
    (b,) = dominance(no_val, 0.9, 3).others
    assert b.column == "loss/b" and b.recent == 0.7 and b.gap == pytest.approx(0.4)
    with pytest.warns(UserWarning, match=r"suppressed 'b': b's loss reached 0\.7 against "
                                         r"its best 0\.5"):
        warn_if_dominated(no_val, 0.9, 3)
    # a custom metric of unknown direction is skipped for the next one
    h = _history([0.5] * 5, **{"val/b/medae": np.ones(5)})[
        ["grad_share/a", "grad_share/b", "val/b/medae", "val/b/mse"]]
    assert judged_column(h, "b") == ("val/b/mse", False)
    assert judged_column(h, "b", {"medae": True, "mse": False}) == ("val/b/medae", True)


def test_single_task_levels_are_checked_by_name():
    assert check_levels({"a": 1, "val/b/r2": 0.5}, ["a", "b"]) == {"a": 1.0, "val/b/r2": 0.5}
    for bad, text in [({"c": 0.5}, "unknown key 'c'"), ({"val/c/r2": 0.5}, "unknown key"),
                      ({"a": float("nan")}, r"levels\['a'\] must be a finite"),
                      ({"a": "0.5"}, "must be a finite number"), ([0.5], "must be a dict")]:
        with pytest.raises(ValueError, match=text):
            check_levels(bad, ["a", "b"])
    with pytest.raises(ValueError, match=r"DominanceRule.levels\['a'\] must be a finite"):
        DominanceRule(levels={"a": math.inf})
    with pytest.raises(ValueError, match=r"DominanceRule.share must be in \(0, 1\]"):
        DominanceRule(share=0)
    with pytest.raises(ValueError, match="DominanceRule.tol"):
        DominanceRule(tol=-1)
    net = HardSharing(6, ["a", "b"], hidden=(4,))
    with pytest.raises(ValueError, match="dominance.levels: unknown key 'z'; name a task"):
        Trainer(net, dominance=DominanceRule(levels={"z": 0.5}))
    with pytest.raises(ValueError, match=r"dominance must be in \(0, 1\] or None"):
        Trainer(net, dominance=1.5)


def test_the_report_says_whether_the_dominant_task_suppressed_another():
    from regmtl.report import training_report

    h = _history([0.2, 0.8, 0.5, 0.73, 0.6], share=0.97)  # b under its floor, 5 %
    h["weight/a"] = h["weight/b"] = 1.0
    page = training_report(h, created="2024-01-01").to_html()
    assert "Task a dominated the shared layers" in page and "but suppressed no task" in page
    assert "b's r2 reached 0.73 against its best 0.8" in page
    page = training_report(h, dominance=DominanceRule(levels={"b": 0.9}),
                           created="2024-01-01").to_html()
    assert "suppressed b</strong>" in page and "its single-task level 0.9" in page
