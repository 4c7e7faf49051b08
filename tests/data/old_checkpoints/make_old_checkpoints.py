"""Writes the checkpoints of this folder with the per-task heads of earlier releases.

Run once with the release before the batched heads (commit b6a744b) first on the path, e.g.::

    git worktree add --detach /tmp/old b6a744b
    PYTHONPATH=/tmp/old/src python tests/data/old_checkpoints/make_old_checkpoints.py
    git worktree remove /tmp/old

Each net gets seeded random weights (and non-identity target maps, and batch-norm statistics
from a few batches in training mode); ``outputs.npz`` holds the input ``x`` and every net's
outputs in evaluation mode (``<net>.<task>``), and the estimator's predictions
(``estimator.<k>``), for tests/deep/test_deep_checkpoint_compat.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

import regmtl
from regmtl.deep import (
    CGC,
    ESMM,
    PLE,
    DeepMultiTaskRegressor,
    HardSharing,
    MMoE,
    TaskSpec,
    save_checkpoint,
    set_seed,
)

HERE = Path(__file__).parent
P = 5


def _tasks():
    return [TaskSpec("a"), TaskSpec("b", kind="binary"),
            TaskSpec("c", kind="multiclass", n_outputs=3), TaskSpec("d", n_outputs=2)]


def _nets() -> dict:
    set_seed(0)
    return {
        "hard_head_hidden": HardSharing(P, _tasks(), hidden=(8,), head_hidden=(6, 4),
                                        dropout=0.1),
        "hard_batch_norm": HardSharing(P, _tasks()[:3], hidden=(8,), head_hidden=(6,),
                                       batch_norm=True),
        "mmoe": MMoE(P, _tasks(), n_experts=3, expert_hidden=(6,), tower_hidden=(4,)),
        "cgc": CGC(P, _tasks()[:3], n_shared_experts=2, n_task_experts=1, expert_hidden=(6,),
                   tower_hidden=()),
        "ple": PLE(P, _tasks()[:3], n_levels=2, expert_hidden=(6,), tower_hidden=(4,)),
        "esmm": ESMM(P, hidden=(6,), tower_hidden=(4,)),
        "mmoe_batch_norm": MMoE(P, _tasks()[:2], n_experts=2, expert_hidden=(6,),
                                tower_hidden=(4,), batch_norm=True, dropout=0.2),
    }


def main() -> None:
    print("regmtl from", regmtl.__file__)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, P, generator=g)
    outputs = {"x": x.numpy()}
    for name, net in _nets().items():
        for t in net.tasks:
            if t.name in net.target_scales:
                net.target_scales[t.name].set(torch.randn(t.n_outputs, generator=g),
                                              1.0 + torch.rand(t.n_outputs, generator=g))
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm1d):
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.bias.normal_(0.0, 0.3, generator=g)
        net.train()
        with torch.no_grad():  # batch-norm statistics
            for _ in range(3):
                net(2.0 * torch.randn(16, P, generator=g) + 0.5)
        net.eval()
        with torch.no_grad():
            out = net(x)
        for task, v in out.items():
            outputs[f"{name}.{task}"] = v.numpy()
        folder = HERE / name
        shutil.rmtree(folder, ignore_errors=True)
        save_checkpoint(folder, net, extra={"made_by": "make_old_checkpoints.py"})
    # an estimator folder (DeepMultiTaskRegressor.save): MMoE with a tower per task
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, P))
    Y = np.column_stack([X[:, 0] + X[:, 1] ** 2, 10.0 + 3.0 * X[:, 2]])
    est = DeepMultiTaskRegressor("mmoe", hidden=(6,), n_experts=2, head_hidden=(4,),
                                 max_epochs=3, batch_size=32, random_state=0).fit(X, Y)
    folder = HERE / "estimator_mmoe"
    shutil.rmtree(folder, ignore_errors=True)
    est.save(folder)
    pred = est.predict(x.double().numpy())
    outputs["estimator"] = np.asarray(pred)
    np.savez(HERE / "outputs.npz", **outputs)
    sizes = {p.parent.name: p.stat().st_size for p in HERE.glob("*/model.pt")}
    print(json.dumps(sizes, indent=1))


if __name__ == "__main__":
    main()
