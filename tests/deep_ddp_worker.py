"""Run by test_deep_distributed.py under torchrun: train on this rank's share of every global
batch and save the final parameters (rank 0)."""

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


if __name__ == "__main__":
    out, weighting = sys.argv[1], sys.argv[2]
    net = train(weighting, 16, "auto")
    if torch.distributed.get_rank() == 0:
        torch.save({k: v.detach() for k, v in net.state_dict().items()}, out)
    torch.distributed.destroy_process_group()
