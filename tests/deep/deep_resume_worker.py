"""Run by test_deep_resume.py under torchrun: a fit of 4 epochs, and one stopped after 2 then
resumed from its training state to 4, with dropout, the random weighting and an uneven last
global batch; rank 0 saves both nets and histories, each rank whether its own two nets agree."""

import sys

import numpy as np
import torch

from regmtl.deep import HardSharing, Trainer


def fit(epochs: int, folder=None, resume=None) -> Trainer:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((75, 5))  # 75 rows in global batches of 2 x 16: an uneven last
    y = {"a": X[:, 0] - X[:, 1], "b": np.tanh(X[:, 2]) + X[:, 0]}
    torch.manual_seed(0)
    net = HardSharing(5, ["a", "b"], (8,), dropout=0.2)
    tr = Trainer(net, weighting="random", lr=1e-2, batch_size=16, max_epochs=epochs, seed=3,
                 device="cpu", checkpoint_dir=folder, save_state=folder is not None)
    return tr.fit((X, y), val=(X[:20], {k: v[:20] for k, v in y.items()}), resume=resume)


if __name__ == "__main__":
    out, folder = sys.argv[1], sys.argv[2]
    full = fit(4)
    fit(2, folder)
    resumed = fit(4, folder, resume=True)
    same = all(torch.equal(a, b) for a, b in zip(full.net.state_dict().values(),
                                                  resumed.net.state_dict().values(), strict=True))
    flags = [torch.zeros(1) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(flags, torch.tensor([float(same)]))
    if torch.distributed.get_rank() == 0:
        cols = [c for c in full.history.columns if c != "time"]
        torch.save({"full": full.net.state_dict(), "resumed": resumed.net.state_dict(),
                    "ranks_equal": torch.cat(flags),
                    "history": [torch.tensor(t.history[cols].to_numpy()) for t in
                                (full, resumed)]}, out)
    # every process leaves together: one that tears the group down while rank 0 still
    # writes can abort the other's gloo threads ("terminate called without an active
    # exception", seen once under load)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
