"""DistributedDataParallel under torchrun (2 CPU processes, gloo) = one process on the same
global batches, to 1e-6, however unevenly rows and labels fall on the ranks, and ranks with
their own loaders share one target map; GPU checks that skip without CUDA. One torchrun launch
trains every case (the worker's CASES)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from deep_ddp_worker import CASES, fit_case, problem, scales, train  # noqa: E402

import regmtl  # noqa: E402
from regmtl.deep import HardSharing, Trainer  # noqa: E402


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """Every case of the worker trained by 2 ranks under torchrun, in one launch."""
    out = tmp_path_factory.mktemp("ddp") / "ddp.pt"
    src = Path(regmtl.__file__).parents[1]  # the ranks import the regmtl this test imports
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE),
                                                                                str(src)])}
    names = ["basic", "scales", *CASES]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(HERE / "deep_ddp_worker.py"), str(out), ",".join(names)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out, weights_only=True)


def test_ddp_two_processes_equal_one_process(ddp_runs):
    ddp = ddp_runs["basic"]["state"]
    single = train("equal", 32, False).state_dict()  # one process, global batch 2 x 16
    assert ddp.keys() == single.keys()
    for k in ddp:
        torch.testing.assert_close(ddp[k], single[k], rtol=0, atol=1e-6)
    # and the parameters moved: training happened
    torch.manual_seed(0)
    init = HardSharing(6, ["a", "b"], (16, 8)).state_dict()
    assert max((ddp[k] - init[k]).abs().max().item() for k in ddp) > 1e-2
    # ranks reading only their own rows through their own loaders merge the label moments
    # and the constant losses (the absolute loss needs a second pass) into those of all rows
    one = scales(distributed=False)
    for k in ("mean", "scale", "c"):
        torch.testing.assert_close(ddp_runs["scales"][k], one[k], rtol=1e-6, atol=0)
    X, y = problem()
    a = 50.0 * y["a"] + 300.0
    a[::7] = np.nan
    assert float(one["mean"]) == pytest.approx(np.nanmean(a), rel=1e-6)
    z = (a - np.nanmean(a)) / np.float32(np.nanstd(a))
    assert float(one["c"][0]) == pytest.approx(np.nanmean(np.abs(z)), rel=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_uneven_shares_and_missing_labels_train_as_one_process(ddp_runs, case):
    """Each task's loss is the global batch's (summed losses and label counts reduced over the
    ranks), so a last global batch split 2/1 or 6/5, labels missing unevenly, a penalty, every
    weighting family (loss weightings, gradient surgery, the Gram methods on the parameters
    and on the shared representation, FAMO's extra pass), per-task batches, per-row data and a
    user's loader give one process's parameters and history to 1e-6 (before: 5e-3 to 7e-2)."""
    one = fit_case(case, 2, False)  # one process, global batches of 2 x the rank's rows
    ddp = ddp_runs[case]
    assert ddp["state"].keys() == one["state"].keys()
    for k in one["state"]:
        torch.testing.assert_close(ddp["state"][k], one["state"][k], rtol=0, atol=1e-6)
    torch.testing.assert_close(ddp["history"], one["history"], rtol=0, atol=1e-6)


def test_global_mean_of_one_process_is_the_mean_and_its_gram_the_sum():
    """One process: the task means of the summed losses (0 without a label); the Gram
    reduction of one rank is the matrix itself."""
    from regmtl.deep.distributed import Context, RankMean

    ctx = Context(torch.device("cpu"))
    total = torch.tensor([3.0, 0.0, 5.0], requires_grad=True)
    got = ctx.global_mean(total, torch.tensor([2, 0, 4]))
    assert got.tolist() == [1.5, 0.0, 1.25]
    got.sum().backward()
    assert total.grad.tolist() == [0.5, 1.0, 0.25]
    A = torch.eye(2)
    assert torch.equal(RankMean(ctx).gram(A), A) and torch.equal(RankMean(ctx)(A), A)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_with_amp_matches_cpu_quality():
    X, targets = problem()
    res = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        net = HardSharing(6, ["a", "b"], (32,))
        tr = Trainer(net, lr=1e-2, batch_size=32, max_epochs=30, seed=0, device=device)
        tr.fit((X, targets))
        assert next(net.parameters()).device.type == device
        pred = tr.predict(X)
        res[device] = np.mean([(pred[k] - targets[k]) ** 2 for k in targets])
    assert res["cuda"] < 0.05 and res["cpu"] < 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_device_is_cuda_and_amp_on():
    net = HardSharing(6, ["a", "b"], (8,))
    tr = Trainer(net, max_epochs=1)
    tr.fit(problem())
    assert tr.context_.device.type == "cuda"


def test_a_rank_given_cuda_without_an_index_trains_on_its_own_gpu():
    """``device="cuda"`` under torchrun: NCCL needs the rank's GPU by index (set_device refused
    a bare "cuda"), so it becomes cuda:LOCAL_RANK modulo the GPUs, as "auto" does."""
    from regmtl.deep.distributed import rank_device

    assert rank_device(torch.device("cuda"), 0, 1) == torch.device("cuda", 0)
    assert rank_device(torch.device("cuda"), 5, 4) == torch.device("cuda", 1)
    assert rank_device(torch.device("cuda", 2), 5, 4) == torch.device("cuda", 2)
    assert rank_device(torch.device("cpu"), 5, 4) == torch.device("cpu")
