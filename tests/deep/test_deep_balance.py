"""Gradient balance (``regmtl.deep.diagnostics``): each task's share of the shared layers'
gradient norm and the pairwise cosines, logged by the trainer, the warning when one task
dominates, and their plot."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import HardSharing, TaskSpec, Trainer  # noqa: E402
from regmtl.deep.diagnostics import (  # noqa: E402
    GradientBalance,
    dominant_task,
    warn_if_dominated,
)


def _problem(scale_b: float, n: int = 256, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6))
    ya = X @ rng.standard_normal(6) + 0.1 * rng.standard_normal(n)
    yb = X @ rng.standard_normal(6) + 0.1 * rng.standard_normal(n)
    return X, {"a": ya, "b": scale_b * yb}


def test_shares_and_cosines_equal_a_hand_computation():
    """Two steps of known gradients: the logged means equal the norms and cosines computed
    from torch.autograd directly (float64, 1e-12)."""
    torch.manual_seed(0)
    W = torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64))
    x = torch.randn(5, 3, dtype=torch.float64)
    balance = GradientBalance(["a", "b", "c"])
    expected_share, expected_cos = np.zeros(3), np.zeros(3)
    for step in range(2):
        z = x @ W
        losses = torch.stack([((z[:, 0] - step) ** 2).sum(), z[:, 1:].sum() ** 2 / 10,
                              (z * z).mean()])
        balance.add(losses, [W])
        g = [torch.autograd.grad(L, W, retain_graph=True)[0].reshape(-1).numpy()
             for L in losses]
        norms = np.array([np.linalg.norm(v) for v in g])
        expected_share += norms / norms.sum() / 2
        expected_cos += np.array([g[s] @ g[t] / (norms[s] * norms[t])
                                  for s, t in ((0, 1), (0, 2), (1, 2))]) / 2
        losses.sum().backward()  # the graph is still there for the step's own pass
    cols = balance.columns()
    np.testing.assert_allclose([cols[f"grad_share/{k}"] for k in "abc"], expected_share,
                               rtol=1e-12)
    np.testing.assert_allclose([cols["grad_cos/a/b"], cols["grad_cos/a/c"],
                                cols["grad_cos/b/c"]], expected_cos, rtol=1e-12)
    assert sum(cols[f"grad_share/{k}"] for k in "abc") == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(balance.columns()["grad_share/a"])  # reset: no step since


def test_a_task_without_labels_takes_no_part():
    W = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    balance = GradientBalance(["a", "b"])
    balance.add(torch.stack([(W ** 2).sum(), (W * 0.0).sum()]), [W])
    cols = balance.columns()
    assert cols["grad_share/a"] == 1.0 and np.isnan(cols["grad_share/b"])
    assert np.isnan(cols["grad_cos/a/b"])


def test_trainer_logs_the_balance_and_warns_when_one_task_dominates():
    """Task b's target 100 times task a's. Left in its units (no standardization, no loss
    scales), b writes over 99% of the trunk's gradient. a's training loss still falls to
    its best of the run (1.02), but trained alone from the same start for as many epochs it
    falls to 0.77: a is suppressed and the warning names both, with those numbers (before,
    judged against its best of the run alone, nothing was said). With the trainer's
    defaults the same data leave neither dominant and nothing is said. (The CPU's
    arithmetic: the message's figures are read to four digits.)"""
    tasks = [TaskSpec("a"), TaskSpec("b")]
    X, y = _problem(100.0)
    torch.manual_seed(0)
    tr = Trainer(HardSharing(6, tasks, (16,)), lr=1e-2, batch_size=64, max_epochs=4, seed=0,
                 standardize=False, normalize_losses=False, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tr.fit((X, y))
    (said,) = [str(w.message) for w in caught if "shared layers" in str(w.message)]
    (a,) = tr.dominance_.suppressed
    # measured: share 0.0054, loss 1.020 against 0.770 alone (4 epochs), its best 1.020
    assert a.task == "a" and a.share < 0.01 < a.floor == pytest.approx(0.05)
    assert a.recent == a.best == pytest.approx(1.02, abs=0.01)
    assert a.source == "reference" and a.measured == pytest.approx(0.77, abs=0.01)
    assert "suppressed 'a': a wrote 0.5% of it (under 5.0%" in said
    assert "a's loss reached 1.02 against its best 1.02 and 0.7701 trained alone (4 epochs" \
        in said
    h = tr.history
    assert {"grad_share/a", "grad_share/b", "grad_cos/a/b"} <= set(h.columns)
    np.testing.assert_allclose(h["grad_share/a"] + h["grad_share/b"], 1.0, atol=1e-12)
    assert (h["grad_share/b"] > 0.9).all()
    assert dominant_task(h, 0.9, 3)[0] == "b"
    with pytest.warns(UserWarning, match=r"task 'b' wrote .* of the shared layers' gradient "
                                         r"norm .* and suppressed 'a': a's loss reached"):
        warn_if_dominated(h, 0.9, 3, levels={"loss/a": h["loss/a"].min() / 2})
    for scale in (100.0, 1.0):
        X, y = _problem(scale)
        torch.manual_seed(0)
        tr = Trainer(HardSharing(6, tasks, (16,)), lr=1e-2, batch_size=64, max_epochs=4, seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            tr.fit((X, y))
        assert (tr.history["grad_share/b"] < 0.9).all()


def test_balance_off_and_with_one_task():
    X, y = _problem(1.0, n=64)
    torch.manual_seed(0)
    tr = Trainer(HardSharing(6, [TaskSpec("a"), TaskSpec("b")], (8,)), max_epochs=1,
                 grad_balance=0).fit((X, y))
    assert not [c for c in tr.history.columns if c.startswith("grad_")]
    tr = Trainer(HardSharing(6, [TaskSpec("a")], (8,)), max_epochs=1).fit((X, {"a": y["a"]}))
    assert not [c for c in tr.history.columns if c.startswith("grad_")]
    with pytest.raises(ValueError, match="grad_balance"):
        Trainer(HardSharing(6, [TaskSpec("a")], (8,)), grad_balance=-1)
    with pytest.raises(ValueError, match="dominance"):
        Trainer(HardSharing(6, [TaskSpec("a")], (8,)), dominance=1.5)


def test_plot_gradient_balance_draws_every_share_and_cosine():
    pytest.importorskip("matplotlib")
    from regmtl.plotting import plot_gradient_balance

    X, y = _problem(1.0, n=64)
    tasks = [TaskSpec("a"), TaskSpec("b"), TaskSpec("c")]
    y["c"] = y["a"] - y["b"]
    torch.manual_seed(0)
    tr = Trainer(HardSharing(6, tasks, (8,)), max_epochs=2, seed=0).fit((X, y))
    ax = plot_gradient_balance(tr.history)
    assert len(ax.get_lines()) == 3 + 3 + 2  # shares, cosines, the 0 and 0.9 guides
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), tr.history["grad_share/a"])
    with pytest.raises(ValueError, match="grad_share"):
        plot_gradient_balance(tr.history.drop(columns=[c for c in tr.history.columns
                                                       if c.startswith("grad_")]))


def test_many_tasks_log_shares_only_and_auto_turns_the_measure_off():
    """20 tasks: "auto" measures nothing (each measured step costs T backward passes);
    asked for, the 20 shares are logged and sum to 1, without the 190 pairwise cosines."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 6))
    names = [f"t{k}" for k in range(20)]
    y = {k: X @ rng.standard_normal(6) for k in names}
    torch.manual_seed(0)
    auto = Trainer(HardSharing(6, names, (8,)), max_epochs=1, batch_size=32).fit((X, y))
    assert not [c for c in auto.history.columns if c.startswith("grad_")]
    torch.manual_seed(0)
    asked = Trainer(HardSharing(6, names, (8,)), max_epochs=2, batch_size=32,
                    grad_balance=1).fit((X, y))
    shares = asked.history[[f"grad_share/{k}" for k in names]].to_numpy()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-12)
    assert not [c for c in asked.history.columns if c.startswith("grad_cos/")]
    with pytest.raises(ValueError, match="grad_balance must be 'auto' or an int"):
        Trainer(HardSharing(6, names, (8,)), grad_balance="always")
