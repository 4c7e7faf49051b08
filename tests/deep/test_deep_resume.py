"""Exact resume: a fit stopped after epoch k and resumed from its training state equals the
uninterrupted fit bit for bit on the CPU (every weighting, lazy heads, early stopping across
the stop, the dict-of-tasks form, DDP, the wrappers' warm_start), and the state's files are
refused when modified, too large, or saved for another net, optimizer or weighting."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import (  # noqa: E402
    CGC,
    DeepMultiTaskClassifier,
    DeepMultiTaskRegressor,
    EarlyStopping,
    HardSharing,
    TaskSpec,
    Trainer,
    Weighting,
    make_weighting,
    set_seed,
)
from regmtl.deep.training_state import (  # noqa: E402
    STATE_FILE,
    STATE_META,
    TrainingState,
    state_bytes_limit,
)
from regmtl.deep.weighting import WEIGHTINGS  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
HERE = Path(__file__).parent

_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((40, 4)).astype(np.float32)
Y = {"a": X[:, 0] + 0.1 * _RNG.standard_normal(40), "b": X[:, 1] - X[:, 2]}
Y["b"][:8] = np.nan  # missing labels
DATA = (X, Y)
VAL = (X[:16], {k: v[:16] for k, v in Y.items()})


def _net(**kw):
    set_seed(1)
    return HardSharing(4, ["a", "b"], hidden=(6,), dropout=0.1, **kw)


def _fit(epochs, folder=None, resume=None, net=None, data=DATA, val=VAL, **kw):
    kw = {"weighting": "equal", "batch_size": 16, "lr": 1e-2, "device": "cpu", **kw}
    tr = Trainer(_net() if net is None else net, max_epochs=epochs, checkpoint_dir=folder,
                 save_state=folder is not None, **kw)
    return tr.fit(data, val=val, resume=resume)


def _assert_same(full, resumed):
    """Every parameter and buffer, and the history but its time column, are equal."""
    a, b = full.net.state_dict(), resumed.net.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    h1, h2 = (t.history.drop(columns="time") for t in (full, resumed))
    assert list(h1.columns) == list(h2.columns)
    assert h1.equals(h2)
    assert full.best_epoch_ == resumed.best_epoch_


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_resumed_fit_equals_the_uninterrupted_one_for_every_weighting(tmp_path, name):
    def weighting():
        return make_weighting("fixed", weights=[1.0, 0.5]) if name == "fixed" else name

    full = _fit(4, weighting=weighting())
    _fit(2, tmp_path, weighting=weighting())
    resumed = _fit(4, tmp_path, resume=True, weighting=weighting())
    _assert_same(full, resumed)
    assert resumed.state_.epoch == 4  # the state written after the last epoch


def test_the_net_and_losses_change_without_the_state(tmp_path):
    """The test above is not vacuous: continuing with a new fit (today's only way) does not
    give the uninterrupted run."""
    full = _fit(4, weighting="uncertainty")
    net = _fit(2, weighting="uncertainty").net
    again = _fit(2, net=net, weighting="uncertainty")
    assert not all(torch.equal(a, b) for a, b in zip(full.net.parameters(),
                                                     again.net.parameters(), strict=True))


def test_resume_with_lazy_heads_and_per_row_tasks(tmp_path):
    rng = np.random.default_rng(1)
    n, T = 48, 4
    Xr = rng.standard_normal((n, 4)).astype(np.float32)
    task = np.tile(np.arange(T), n // T)
    y = Xr[:, 0] * (task + 1) + 0.3 * rng.standard_normal(n)
    specs = [TaskSpec(f"t{k}") for k in range(T)]

    def fit(epochs, folder=None, resume=None):
        set_seed(0)
        net = CGC(4, specs, n_shared_experts=2, n_task_experts=1, expert_hidden=(6,))
        tr = Trainer(net, lazy_heads=True, max_epochs=epochs, batch_size=10, lr=1e-2,
                     checkpoint_dir=folder, save_state=folder is not None, device="cpu")
        return tr.fit((Xr, (task, y)), resume=resume)

    full = fit(4)
    fit(2, tmp_path)
    _assert_same(full, fit(4, tmp_path, resume=True))


def test_early_stopping_state_crosses_the_stop_point(tmp_path):
    """Patience 3 and a min_delta no epoch reaches: the fit stops after epoch 4 with the
    weights of epoch 1. Stopped after 2 and resumed with max_epochs=10, it stops at the same
    epoch with the same best weights; resumed from the stopped state, it trains no more."""
    stop = EarlyStopping(patience=3, min_delta=10.0)
    full = _fit(10, early_stopping=stop)
    assert len(full.history) == 4 and full.best_epoch_ == 1
    _fit(2, tmp_path, early_stopping=stop)
    resumed = _fit(10, tmp_path, resume=True, early_stopping=stop)
    _assert_same(full, resumed)
    assert resumed.state_.stopped
    with pytest.warns(UserWarning, match="stopped early after epoch 4"):
        again = _fit(10, tmp_path, resume=True, early_stopping=stop)
    _assert_same(full, again)


def test_resume_of_the_dict_of_tasks_form(tmp_path):
    """Each task's own data set, the smaller one cycled across epochs: each stream resumes at
    its own pass and batch."""
    rng = np.random.default_rng(2)
    Xa, Xb = rng.standard_normal((40, 4)), rng.standard_normal((23, 4))
    data = {"a": (Xa, Xa[:, 0]), "b": (Xb, Xb[:, 1] - Xb[:, 2])}
    full = _fit(5, data=data, val=None, weighting="dwa")
    _fit(3, tmp_path, data=data, val=None, weighting="dwa")
    resumed = _fit(5, tmp_path, resume=True, data=data, val=None, weighting="dwa")
    _assert_same(full, resumed)
    assert resumed.state_.meta["streams"]["b"][0] >= 2  # the smaller set was cycled


def test_a_custom_weighting_declares_its_state_once(tmp_path):
    class Counting(Weighting):
        """Weights that change with the number of steps taken, kept in an attribute."""

        state_attributes = ("count",)

        def _setup(self, tasks):
            self.count = 0

        def _loss_weights(self, losses):
            self.count += 1
            return torch.tensor([1.0, 1.0 / self.count]).to(losses)

    full = _fit(4, weighting=Counting())
    _fit(2, tmp_path, weighting=Counting())
    resumed = _fit(4, tmp_path, resume=True, weighting=Counting())
    _assert_same(full, resumed)
    assert resumed.weighting.count == full.weighting.count == 12


def test_resume_under_ddp_two_processes(tmp_path):
    out = tmp_path / "resume.pt"
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(HERE / "deep_resume_worker.py"), str(out), str(tmp_path / "state")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = torch.load(out, weights_only=True)
    assert saved["ranks_equal"].tolist() == [1.0, 1.0]
    for k in saved["full"]:
        assert torch.equal(saved["full"][k], saved["resumed"][k]), k
    assert torch.equal(*saved["history"])


@pytest.mark.parametrize("cls", [DeepMultiTaskRegressor, DeepMultiTaskClassifier])
def test_warm_start_continues_the_last_fit(cls):
    rng = np.random.default_rng(3)
    Xw = rng.standard_normal((60, 3))
    Yw = np.column_stack([Xw[:, 0], Xw[:, 1] - Xw[:, 2]])
    if cls is DeepMultiTaskClassifier:
        Yw = (Yw > 0).astype(int)
    kw = dict(hidden=(6,), batch_size=16, lr=1e-2, dropout=0.1, patience=50, device="cpu")
    full = cls(max_epochs=4, **kw).fit(Xw, Yw)
    warm = cls(max_epochs=2, warm_start=True, **kw).fit(Xw, Yw)
    assert warm.n_iter_ == 2
    warm.set_params(max_epochs=4).fit(Xw, Yw)
    assert warm.n_iter_ == 4
    for a, b in zip(full.net_.state_dict().values(), warm.net_.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    assert full.history_.drop(columns="time").equals(warm.history_.drop(columns="time"))
    # without warm_start a second fit starts anew
    cold = cls(max_epochs=2, **kw).fit(Xw, Yw)
    cold.set_params(max_epochs=4).fit(Xw, Yw)
    assert cold.n_iter_ == 4 and len(cold.history_) == 4
    assert cold.get_params()["warm_start"] is False


# ---------------------------------------------------------------------- safety
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("state")
    _fit(2, folder)
    return folder


def _copy(saved, tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for f in (STATE_FILE, STATE_META):
        (tmp_path / f).write_bytes((saved / f).read_bytes())
    return tmp_path


def test_a_modified_state_file_is_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    raw = bytearray((folder / STATE_FILE).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (folder / STATE_FILE).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=f"{STATE_FILE} does not have the SHA-256 digest"):
        _fit(4, folder, resume=True)


def test_a_pickle_with_its_digest_recorded_is_refused(saved, tmp_path):
    """Even with the digest rewritten, a file holding more than named tensors is never
    unpickled: torch.load(weights_only=True) refuses it."""
    import hashlib

    folder = _copy(saved, tmp_path)
    torch.save({"net.x": torch.zeros(1), "evil": {"a": (1, 2)}, "fn": print},
               folder / STATE_FILE)
    meta = json.loads((folder / STATE_META).read_text())
    meta["digest"] = hashlib.sha256((folder / STATE_FILE).read_bytes()).hexdigest()
    (folder / STATE_META).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=STATE_FILE):
        _fit(4, folder, resume=True)


def test_a_state_of_another_net_is_refused_naming_the_difference(saved, tmp_path):
    set_seed(1)
    wider = HardSharing(4, ["a", "b"], hidden=(7,), dropout=0.1)
    with pytest.raises(ValueError, match=r"saved for another net: tensor 'trunk.*' has shape"):
        _fit(4, resume=saved, net=wider)
    set_seed(1)
    other_tasks = HardSharing(4, ["a", "c"], hidden=(6,))
    with pytest.raises(ValueError, match=r"saved for another net: .* tasks \['a', 'b'\]"):
        _fit(4, resume=saved, net=other_tasks, data=(X, {"a": Y["a"], "c": Y["b"]}),
             val=None)


def test_a_state_of_another_optimizer_or_weighting_is_refused(saved):
    with pytest.raises(ValueError, match="saved for another optimizer: a 'Adam'"):
        _fit(4, resume=saved, optimizer="sgd")
    with pytest.raises(ValueError, match="saved for another weighting .*'EqualWeighting'"):
        _fit(4, resume=saved, weighting="uncertainty")
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(ValueError, match="another weighting"):
        _fit(4, resume=saved, weighting="dwa", net=net)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_an_oversized_state_file_is_refused_before_it_is_read(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    meta = json.loads((folder / STATE_META).read_text())
    limit = state_bytes_limit(_net(), make_weighting("equal"), meta)
    with open(folder / STATE_FILE, "r+b") as fh:
        fh.truncate(limit + 1)  # sparse: nothing written
    with pytest.raises(ValueError, match=r"more than a training state of this net"):
        _fit(4, folder, resume=True)


def test_a_modified_json_and_missing_files_are_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    meta = json.loads((folder / STATE_META).read_text())
    meta["world_size"] = 3
    (folder / STATE_META).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="saved by 3 processes; this fit runs 1"):
        _fit(4, folder, resume=True)
    with pytest.raises(FileNotFoundError, match="holds no training state"):
        _fit(4, tmp_path / "nothing", resume=True)


@pytest.mark.parametrize("key, value", [("streams", None), ("monitor", 5),
                                        ("optimizer_values", {"0": 5}), ("scaler", [1]),
                                        ("weighting_values", {"attributes": 5})])
def test_a_json_edited_past_its_checks_is_refused_naming_the_folder(saved, tmp_path, key,
                                                                    value):
    """The digest covers the tensor file only: each record of the JSON is checked for its
    shape before it is read (a ValueError naming the folder, never a KeyError or
    TypeError), and a missing record likewise."""
    for edit in ("change", "drop"):
        folder = _copy(saved, tmp_path / edit)
        meta = json.loads((folder / STATE_META).read_text())
        if edit == "change":
            meta[key] = value
        else:
            del meta[key]
        (folder / STATE_META).write_text(json.dumps(meta))
        with pytest.raises(ValueError, match=f"{folder}: the state's JSON (has malformed|lacks)"):
            _fit(4, folder, resume=True)


def test_an_optimizer_value_edited_in_the_json_is_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    meta = json.loads((folder / STATE_META).read_text())
    meta["optimizer_values"] = {"0": {"step": "x"}}
    (folder / STATE_META).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="the optimizer's state cannot be loaded"):
        _fit(4, folder, resume=True)


def test_a_history_edited_with_its_digest_recorded_is_refused(saved, tmp_path):
    """The epoch column of the history (an integer column) set to NaN, the digest rewritten."""
    import hashlib

    folder = _copy(saved, tmp_path)
    tensors = torch.load(folder / STATE_FILE, weights_only=True)
    meta = json.loads((folder / STATE_META).read_text())
    tensors["history"][0, meta["history_columns"].index("epoch")] = float("nan")
    torch.save(tensors, folder / STATE_FILE)
    meta["digest"] = hashlib.sha256((folder / STATE_FILE).read_bytes()).hexdigest()
    (folder / STATE_META).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"{folder}: the history's integer columns .*'epoch'"):
        _fit(4, folder, resume=True)


def test_the_options_of_resume_and_save_state_are_checked():
    with pytest.raises(ValueError, match="save_state=True writes .* pass checkpoint_dir"):
        Trainer(_net(), save_state=True)
    with pytest.raises(ValueError, match="save_state must be"):
        Trainer(_net(), save_state="disk")
    with pytest.raises(ValueError, match="resume=True reads .* checkpoint_dir, which is not set"):
        Trainer(_net(), max_epochs=1).fit(DATA, resume=True)
    with pytest.raises(ValueError, match="resume must be None, True, a folder or a "
                                         "TrainingState, got int"):
        Trainer(_net(), max_epochs=1).fit(DATA, resume=3)
    with pytest.raises(ValueError, match="resume is a TrainingState without its dicts"):
        Trainer(_net(), max_epochs=1).fit(DATA, resume=TrainingState(None, None))


def test_a_fit_resumed_without_save_state_keeps_no_state(saved):
    """state_ is None without save_state (as documented), not the state it resumed from."""
    resumed = _fit(3, resume=saved)
    assert resumed.state_ is None
    assert len(resumed.history) == 3


def test_a_resume_with_other_options_warns(saved):
    with pytest.warns(UserWarning, match=r"other options: lr=0.05 \(saved: 0.01\)"):
        _fit(3, resume=saved, lr=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("weighting", ["random", "famo", "upgrad"])
def test_resume_on_cuda(tmp_path, weighting):
    """On a GPU (mixed precision on, fused Adam's step counts on the device, the CUDA
    generator of dropout): the resumed fit ends where the uninterrupted one does, up to the
    GPU kernels' own nondeterminism."""
    kw = {"device": "cuda", "weighting": weighting}
    full = _fit(4, **kw)
    _fit(2, tmp_path, **kw)
    resumed = _fit(4, tmp_path, resume=True, **kw)
    assert next(resumed.net.parameters()).device.type == "cuda"
    for a, b in zip(full.net.parameters(), resumed.net.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    h1, h2 = (t.history.drop(columns="time") for t in (full, resumed))
    np.testing.assert_allclose(h1.to_numpy(float), h2.to_numpy(float), rtol=1e-3, atol=1e-4)
