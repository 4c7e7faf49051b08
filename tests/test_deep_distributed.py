"""DistributedDataParallel under torchrun (2 CPU processes, gloo) = one process on the same
global batches, and ranks with their own loaders share one target map; GPU checks that skip
without CUDA."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from deep_ddp_worker import problem, scales, train  # noqa: E402

from regmtl.deep import HardSharing, Trainer  # noqa: E402


@pytest.mark.parametrize("weighting", ["equal", "pcgrad"])
def test_ddp_two_processes_equal_one_process(tmp_path, weighting):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(HERE / "deep_ddp_worker.py"), str(out), weighting]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = torch.load(out, weights_only=True)
    ddp = saved["state"]
    single = train(weighting, 32, False).state_dict()  # one process, global batch 2 x 16
    assert ddp.keys() == single.keys()
    for k in ddp:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-5, atol=1e-6)
    # and the parameters moved: training happened
    torch.manual_seed(0)
    init = HardSharing(6, ["a", "b"], (16, 8)).state_dict()
    assert max((ddp[k] - init[k]).abs().max().item() for k in ddp) > 1e-2
    # ranks reading only their own rows through their own loaders merge the label moments
    # and the constant losses (the absolute loss needs a second pass) into those of all rows
    one = scales(distributed=False)
    for k in ("mean", "scale", "c"):
        torch.testing.assert_close(saved["scales"][k], one[k], rtol=1e-6, atol=0)
    X, y = problem()
    a = 50.0 * y["a"] + 300.0
    a[::7] = np.nan
    assert float(one["mean"]) == pytest.approx(np.nanmean(a), rel=1e-6)
    z = (a - np.nanmean(a)) / np.float32(np.nanstd(a))
    assert float(one["c"][0]) == pytest.approx(np.nanmean(np.abs(z)), rel=1e-6)


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
