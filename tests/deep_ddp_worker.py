"""Run by test_deep_distributed.py under torchrun: train on this rank's share of every global
batch and save the final parameters (rank 0)."""

import os
import sys

import numpy as np
import torch

from regmtl.deep import HardSharing, Trainer


def problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 6))
    Y = np.column_stack([X[:, 0] - X[:, 1], np.tanh(X[:, 2]) + X[:, 0]])
    return X, {"a": Y[:, 0], "b": Y[:, 1]}


def train(weighting: str, batch_size: int, distributed) -> HardSharing:
    torch.manual_seed(0)
    net = HardSharing(6, ["a", "b"], (16, 8))
    Trainer(net, weighting=weighting, lr=1e-2, batch_size=batch_size, max_epochs=3, seed=5,
            distributed=distributed, device="cpu").fit(problem())
    return net


def scales(rank: int = 0, world: int = 1, distributed="auto") -> dict:
    """Target maps and loss scales from a DataLoader over this rank's rows (every world-th):
    a regression with missing labels and the absolute loss (no closed form), a binary task."""
    from regmtl.deep import TaskSpec

    X, y = problem()
    a = 50.0 * y["a"] + 300.0
    a[::7] = np.nan
    b = (y["b"] > 0.3).astype(float)
    rows = [(torch.tensor(X[i], dtype=torch.float32),
             {"a": torch.tensor(a[i]), "b": torch.tensor(b[i])})
            for i in range(rank, len(X), world)]
    torch.manual_seed(0)
    net = HardSharing(6, [TaskSpec("a", loss="mae"), TaskSpec("b", kind="binary")], (8,))
    tr = Trainer(net, max_epochs=1, distributed=distributed, device="cpu", grad_balance=0)
    tr.fit(torch.utils.data.DataLoader(rows, batch_size=13))
    s = net.target_scales["a"]
    return {"mean": s.mean.clone(), "scale": s.scale.clone(),
            "c": torch.tensor([tr.loss_scale_["a"], tr.loss_scale_["b"]], dtype=torch.float64)}


if __name__ == "__main__":
    out, weighting = sys.argv[1], sys.argv[2]
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    net = train(weighting, 16, "auto")
    got = scales(rank, world)  # the same process group: one launch for both checks
    if torch.distributed.get_rank() == 0:
        torch.save({"state": {k: v.detach() for k, v in net.state_dict().items()},
                    "scales": got}, out)
    torch.distributed.destroy_process_group()
