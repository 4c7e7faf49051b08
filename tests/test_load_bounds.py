"""What a refused load may allocate: a small multiple of the file, whatever the file declares.

A model file (``regmtl.load``) whose member inflates 1000-fold, a deep checkpoint whose tensors
declare more weights than the file holds (stride 0), a device or FIFO in place of a file, and
target scales that are not a standard deviation or disagree with the estimator's config.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import peak_bytes, refused

import regmtl as rm
from regmtl import MultiTaskRegressor

try:
    import torch
except ImportError:  # the linear part needs no torch
    torch = None

MB = 2**20
needs_torch = pytest.mark.skipif(torch is None, reason="needs PyTorch")


# ------------------------------------------------------------------ regmtl.load: .npz files
def _small_model(tmp_path):
    rng = np.random.default_rng(0)
    Xs = [rng.normal(size=(30, 3)) for _ in range(2)]
    ys = [x @ [1.0, -2.0, 0.5] + 3.0 + 0.1 * rng.normal(size=30) for x in Xs]
    model = MultiTaskRegressor(penalty="l21", alpha=0.01).fit(Xs, ys)
    model.save(tmp_path / "small.npz")
    return model, tmp_path / "small.npz"


def _npy_header(shape, dtype="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def _inflating(tmp_path, p, good_digest):
    """The small model's file with ``n_features_in_ = p`` and all-zero coefficients (T, p),
    written by streaming: the member declares 8 T p bytes, consistently in its .npy and zip
    headers, and deflates about 1000-fold. Its digest is right, or not."""
    model, small = _small_model(tmp_path)
    with zipfile.ZipFile(small) as zf:
        members = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    head = members["__header__.npy"]
    arr = np.lib.format.read_array(io.BytesIO(head))
    header = json.loads(arr.tobytes().decode())
    T = header["attributes"]["n_tasks_"]["value"]
    header["attributes"]["n_features_in_"]["value"] = p
    npy = _npy_header((T, p))
    zeros = bytes(MB)
    h = hashlib.sha256(b"<f8" + str((T, p)).encode())
    for _ in range(8 * T * p // MB):
        h.update(zeros)
    header["sha256"]["attr.coef_"] = h.hexdigest() if good_digest else "0" * 64
    blob = json.dumps(header).encode()
    out = tmp_path / "inflating.npz"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if name == "__header__.npy":
                data = _npy_header((len(blob),), "|u1") + blob
            if name != "attr.coef_.npy":
                zf.writestr(name, data)
                continue
            with zf.open(name, "w", force_zip64=True) as fh:
                fh.write(npy)
                for _ in range(8 * T * p // MB):
                    fh.write(zeros)
    return model, out, 8 * T * p


def test_inflating_member_with_a_wrong_digest_is_refused_allocating_little(tmp_path):
    """64 MiB of zeros in a 65 KB file, its digest wrong: refused after streaming it through
    the digest, allocating no more than a small multiple of the file (before: the 64 MiB
    twice, then the refusal)."""
    _, bad, nbytes = _inflating(tmp_path, 2**22, good_digest=False)
    size = bad.stat().st_size
    assert nbytes == 64 * MB and size < 100_000
    peak = peak_bytes(lambda: refused(lambda: rm.load(bad), str(bad), "integrity"))
    assert peak < 4 * size + 2 * MB, (peak, size)


def test_inflating_member_with_its_digest_loads_allocating_it_once(tmp_path):
    """The same file with the right digest is a model of 2^22 features with zero
    coefficients: it loads, its arrays allocated once (before: 2x, 2.35 GB for 1 GiB)."""
    model, good, nbytes = _inflating(tmp_path, 2**22, good_digest=True)
    got = {}
    peak = peak_bytes(lambda: got.setdefault("m", rm.load(good)))
    m = got["m"]
    assert m.coef_.shape == (2, 2**22) and not m.coef_.any()
    np.testing.assert_array_equal(m.intercept_, model.intercept_)
    assert m.n_features_in_ == 2**22
    assert peak < 1.1 * nbytes + 2 * MB, (peak, nbytes)
    X = np.ones((3, 2**22))
    np.testing.assert_array_equal(m.predict([X[:, :] * 0.0, X])[1],
                                  np.full(3, model.intercept_[1]))


def test_fortran_ordered_arrays_round_trip(tmp_path):
    """An F-ordered coefficient matrix is written as such; its digest (C order) is checked
    without a copy of the whole array and it loads equal."""
    model, _ = _small_model(tmp_path)
    model.coef_ = np.asfortranarray(model.coef_)
    model.save(tmp_path / "f.npz")
    with zipfile.ZipFile(tmp_path / "f.npz") as zf, zf.open("attr.coef_.npy") as fh:
        assert b"'fortran_order': True" in fh.read(128)
    again = rm.load(tmp_path / "f.npz")
    np.testing.assert_array_equal(again.coef_, model.coef_)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_symlink_to_dev_zero_is_refused(tmp_path):
    link = tmp_path / "zero.npz"
    link.symlink_to("/dev/zero")
    peak = peak_bytes(lambda: refused(lambda: rm.load(link), str(link), "character device",
                                  "regular file"))
    assert peak < MB


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    refused(lambda: rm.load(fifo), str(fifo), "FIFO")


def test_regular_file_still_loads_equal(tmp_path):
    model, path = _small_model(tmp_path)
    link = tmp_path / "link.npz"
    link.symlink_to(path)
    np.testing.assert_array_equal(rm.load(link).coef_, model.coef_)


# ------------------------------------------------------------------ deep checkpoints
def _net():
    from regmtl.deep import HardSharing

    return HardSharing(4, ["a", "b"], hidden=(8,))


def save_checkpoint(folder, net):
    from regmtl.deep import save_checkpoint as save

    return save(folder, net)


def load_checkpoint(folder):
    from regmtl.deep import load_checkpoint as load

    return load(folder)


def _strided_checkpoint(folder, n_features):
    """A HardSharing checkpoint whose config says ``n_features`` and whose first weight is
    ``torch.zeros(1).expand(8, n_features)``: one number in the file."""
    net = _net()
    save_checkpoint(folder, net)
    config = json.loads((folder / "config.json").read_text())
    config["net_config"]["n_features"] = n_features
    state = torch.load(folder / "model.pt", weights_only=True)
    state["trunk.0.weight"] = torch.zeros(1).expand(8, n_features)
    torch.save(state, folder / "model.pt")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@needs_torch
def test_stride_0_tensor_is_refused_naming_it(tmp_path):
    folder = _strided_checkpoint(tmp_path / "ck", 10**6)
    assert (folder / "model.pt").stat().st_size < 8000
    refused(lambda: load_checkpoint(folder), "model.pt", "'trunk.0.weight'", "(8, 1000000)",
             "strides (0, 0)")


@needs_torch
def test_stride_0_checkpoint_builds_no_net(tmp_path):
    """The 470 MB net of a 4 KB file (before: built, 470 MB allocated): refused, the
    process's peak memory growing by less than 40 MB (measured in a fresh process)."""
    folder = _strided_checkpoint(tmp_path / "ck", 15_000_000)
    code = (
        "import resource, sys\n"
        "from regmtl.deep import load_checkpoint\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    load_checkpoint(sys.argv[1])\n"
        "    print('loaded')\n"
        "except ValueError as exc:\n"
        "    print('refused', exc)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True,
                         text=True, timeout=120, env=env)
    lines = out.stdout.strip().splitlines()
    assert lines and lines[0].startswith("refused") and "trunk.0.weight" in lines[0], out
    assert int(lines[-1]) < 40 * 1024, lines  # KiB


@needs_torch
def test_tensors_sharing_their_bytes_are_refused(tmp_path):
    net = _net()
    folder = save_checkpoint(tmp_path / "ck", net)
    state = torch.load(folder / "model.pt", weights_only=True)
    state["trunk.0.bias"] = state["trunk.0.weight"].view(-1)[:8]
    torch.save(state, folder / "model.pt")
    refused(lambda: load_checkpoint(folder), "model.pt", "share the same bytes")


@needs_torch
def test_transposed_tensor_still_loads_exactly(tmp_path):
    net = _net()
    folder = save_checkpoint(tmp_path / "ck", net)
    state = torch.load(folder / "model.pt", weights_only=True)
    state["trunk.0.weight"] = state["trunk.0.weight"].t().contiguous().t()  # strides (1, 8)
    torch.save(state, folder / "model.pt")
    loaded = load_checkpoint(folder)
    assert torch.equal(loaded.trunk[0].weight, net.trunk[0].weight)


@needs_torch
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("member", ["model.pt", "config.json"])
def test_checkpoint_member_that_is_a_device_or_fifo_is_refused(tmp_path, member):
    net = _net()
    folder = save_checkpoint(tmp_path / "ck", net)
    (folder / member).unlink()
    (folder / member).symlink_to("/dev/zero")
    refused(lambda: load_checkpoint(folder), member, "not a regular file")
    refused(lambda: rm.load(folder), member, "not a regular file")
    (folder / member).unlink()
    os.mkfifo(folder / member)
    refused(lambda: load_checkpoint(folder), member, "not a regular file")


@pytest.fixture(scope="module")
def saved_regressor(tmp_path_factory):
    rng = np.random.default_rng(0)
    Xs = [rng.normal(size=(40, 3)) for _ in range(2)]
    ys = [x @ [1.0, 2.0, 3.0] * 5 + 10 for x in Xs]
    from regmtl.deep import DeepMultiTaskRegressor

    est = DeepMultiTaskRegressor(hidden=(8,), max_epochs=3, random_state=0).fit(Xs, ys)
    folder = tmp_path_factory.mktemp("est") / "est"
    est.save(folder)
    return est, folder, Xs


def _with_scale(tmp_path, folder, task, value):
    import shutil

    out = tmp_path / "edited"
    shutil.copytree(folder, out)
    state = torch.load(out / "model.pt", weights_only=True)
    state[f"target_scales.{task}.scale"] = torch.full_like(
        state[f"target_scales.{task}.scale"], value)
    torch.save(state, out / "model.pt")
    return out


@needs_torch
@pytest.mark.parametrize("value", [-15.0, 0.0, float("inf"), float("nan")])
def test_target_scale_that_is_not_positive_and_finite_is_refused(tmp_path, saved_regressor,
                                                                 value):
    est, folder, _ = saved_regressor
    bad = _with_scale(tmp_path, folder, "t0", value)
    msg = refused(lambda: rm.load(bad), "model.pt", "target_scales.t0.scale")
    assert "> 0" in msg or "NaN or infinite" in msg, msg
    refused(lambda: load_checkpoint(bad), "target_scales.t0.scale")


@needs_torch
def test_target_scale_disagreeing_with_y_scale_is_refused(tmp_path, saved_regressor):
    est, folder, Xs = saved_regressor
    bad = _with_scale(tmp_path, folder, "t0", 1.5 * float(est.y_scale_[0]))
    refused(lambda: rm.load(bad), "target_scales.t0.scale", "y_scale_",
             repr(float(est.y_scale_[0])))
    # the unmodified folder loads and predicts exactly what was saved
    again = rm.load(folder)
    for a, b in zip(again.predict(Xs), est.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.y_scale_, est.y_scale_)


@needs_torch
def test_load_state_dict_refuses_a_negative_target_scale(saved_regressor):
    est, _, _ = saved_regressor
    import copy

    net = copy.deepcopy(est.net_)
    state = {k: v.clone() for k, v in est.net_.state_dict().items()}
    state["target_scales.t1.scale"] = -state["target_scales.t1.scale"]
    with pytest.raises(RuntimeError, match=r"target_scales\.t1\.scale must be finite and > 0"):
        net.load_state_dict(state)
    assert torch.equal(net.target_scales["t1"].scale, est.net_.target_scales["t1"].scale)


def test_cli_dask_inputs_refuse_devices_and_fifos(tmp_path):
    """The CLI's Dask reader names a device or FIFO given as --data (a symbolic link to
    /dev/zero, a FIFO in a glob) instead of handing it to read_parquet, which never ends."""
    from regmtl.cli import UsageError, _local_inputs

    zero = tmp_path / "zero.parquet"
    zero.symlink_to("/dev/zero")
    with pytest.raises(UsageError, match="not a regular file or a directory"):
        _local_inputs(str(zero))
    os.mkfifo(tmp_path / "part-1.parquet")
    with pytest.raises(UsageError, match="part-1.parquet: not a regular file"):
        _local_inputs(str(tmp_path / "part-*.parquet"))
    (tmp_path / "ok").mkdir()
    assert _local_inputs(str(tmp_path / "ok")) == [tmp_path / "ok"]


def test_max_bytes_refuses_a_consistent_inflating_file_before_reading_it(tmp_path):
    """The consistent 64 MiB model of a 65 KB file loads by default (its own dimensions are
    the bound); with ``max_bytes`` below its arrays it is refused naming the option,
    allocating about nothing; at or above them it loads."""
    _, good, nbytes = _inflating(tmp_path, 2**22, good_digest=True)
    peak = peak_bytes(lambda: refused(lambda: rm.load(good, max_bytes=MB), str(good),
                                      "max_bytes=1048576", "raise max_bytes"))
    assert peak < 2 * MB, peak
    m = rm.load(good, max_bytes=nbytes + 64)
    assert m.coef_.shape == (2, 2**22)
    for bad in (-1, 2.5, "1G", True):
        refused(lambda b=bad: rm.load(good, max_bytes=b), "max_bytes")


def test_max_bytes_bounds_a_deep_folder_by_its_weights_file(tmp_path):
    pytest.importorskip("torch")
    from regmtl.deep import DeepMultiTaskRegressor

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    est = DeepMultiTaskRegressor(hidden=(4,), max_epochs=1, random_state=0).fit(
        [X, X], [y, y])
    est.save(tmp_path / "deep")
    size = (tmp_path / "deep" / "model.pt").stat().st_size
    refused(lambda: rm.load(tmp_path / "deep", max_bytes=size - 1), "model.pt", "max_bytes")
    again = rm.load(tmp_path / "deep", max_bytes=size)
    np.testing.assert_allclose(again.predict([X, X])[0], est.predict([X, X])[0])
