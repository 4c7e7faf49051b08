"""Run by test_deep_distributed.py under torchrun: train every case of ``CASES`` on this rank's
share of every global batch and save the final parameters and the history's losses (rank 0);
the test trains the same cases in one process with the global batch size."""

import os
import sys

import numpy as np
import torch

from regmtl.deep import HardSharing, L2Penalty, Trainer, make_weighting

#: case name -> (rows, batch size per rank, weighting, options): "missing" drops labels of
#: each task (a different pattern per task), "penalty" adds a smooth L2 penalty, "per_task"
#: trains each task on its own rows, "per_row" gives each row its own task, "loader" reads
#: batches of (x, {task: y}) (each rank its share of every global batch)
CASES = {
    "rows3": (3, 2, "equal", ()),
    "rows171": (171, 16, "equal", ()),
    "missing": (171, 16, "equal", ("missing", "penalty")),
    "uncertainty": (171, 16, "uncertainty", ("missing",)),
    "dwa": (171, 16, "dwa", ("missing",)),
    "pcgrad": (171, 16, "pcgrad", ("missing", "penalty")),
    "upgrad": (171, 16, "upgrad", ("missing",)),
    "mgda_z": (171, 16, "mgda_z", ("missing",)),
    "nash_z": (171, 16, "nash_mtl_z", ()),
    "famo": (171, 16, "famo", ("missing",)),
    "per_task": (171, 16, "equal", ("per_task",)),
    "per_row": (171, 16, "equal", ("per_row",)),
    "loader": (171, 16, "equal", ("missing", "loader")),
}


def problem(n: int = 256):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 6))
    Y = np.column_stack([X[:, 0] - X[:, 1], np.tanh(X[:, 2]) + X[:, 0]])
    return X, {"a": Y[:, 0], "b": Y[:, 1]}


def weighting_of(name: str):
    if name.endswith("_z"):  # the Gram methods' shared-representation route
        return make_weighting(name[:-2], on_representation=True)
    return name


def train(weighting: str, batch_size: int, distributed) -> HardSharing:
    torch.manual_seed(0)
    net = HardSharing(6, ["a", "b"], (16, 8))
    Trainer(net, weighting=weighting, lr=1e-2, batch_size=batch_size, max_epochs=3, seed=5,
            distributed=distributed, device="cpu").fit(problem())
    return net


def loader(X, y: dict, batch: int, rank: int, world: int) -> list:
    """Global batches of ``batch x world`` rows in the row order, rank's share of each."""
    out = []
    for start in range(0, len(X), batch * world):
        idx = np.arange(start, min(start + batch * world, len(X)))[rank::world]
        out.append((torch.tensor(X[idx], dtype=torch.float32),
                    {k: torch.tensor(v[idx]) for k, v in y.items()}))
    return out


def case_data(n: int, options: tuple, batch: int = 0, ranks: int = 1):
    """The case's training data (``batch``, ``ranks``: the loader's rows per batch and rank,
    and the ranks)."""
    X, y = problem(n)
    if "missing" in options:
        y = {"a": y["a"].copy(), "b": y["b"].copy()}
        y["a"][::3] = np.nan
        y["b"][1::4] = np.nan
        y["b"][:5] = np.nan
    if "loader" in options:
        return loader(X, y, batch, int(os.environ["RANK"]) if ranks > 1 else 0, ranks)
    if "per_task" in options:
        return {"a": (X[:n], y["a"][:n]), "b": (X[: n - 40], y["b"][: n - 40])}
    if "per_row" in options:
        from regmtl.deep import MultiTaskDataset, TaskSpec

        task = np.arange(n) % 3 == 0
        target = np.where(task, y["b"], y["a"])
        return MultiTaskDataset(X, target, [TaskSpec("a"), TaskSpec("b")],
                                task=np.where(task, "b", "a"))
    return X, y


def fit_case(name: str, world: int, distributed) -> dict:
    """The case trained with ``batch size x world`` rows per global batch."""
    n, batch, weighting, options = CASES[name]
    torch.manual_seed(0)
    net = HardSharing(6, ["a", "b"], (16, 8))
    penalty = L2Penalty(1e-2, params="all") if "penalty" in options else None
    tr = Trainer(net, weighting=weighting_of(weighting), lr=1e-2, batch_size=batch * world,
                 max_epochs=3, seed=5, distributed=distributed, device="cpu", penalty=penalty,
                 grad_balance=0)
    ranks = int(os.environ.get("WORLD_SIZE", "1")) if distributed == "auto" else 1
    tr.fit(case_data(n, options, batch * world, ranks))
    cols = [c for c in tr.history.columns if c.startswith("loss")]
    return {"state": {k: v.detach().clone() for k, v in net.state_dict().items()},
            "history": torch.tensor(tr.history[cols].to_numpy())}


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
    out, names = sys.argv[1], sys.argv[2].split(",")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    saved = {}
    for name in names:
        if name == "basic":  # the two-rank run of test_deep_distributed's first test
            net = train("equal", 16, "auto")
            saved[name] = {"state": {k: v.detach() for k, v in net.state_dict().items()}}
        elif name == "scales":  # the same process group: one launch for all checks
            saved[name] = scales(rank, world)
        else:
            saved[name] = fit_case(name, 1, "auto")
    if torch.distributed.get_rank() == 0:
        torch.save(saved, out)
    # every process leaves together: one that tears the group down while rank 0 still
    # writes can abort the other's gloo threads ("terminate called without an active
    # exception", seen once under load)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
