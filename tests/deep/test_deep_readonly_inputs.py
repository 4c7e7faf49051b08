"""Read-only inputs (``setflags(write=False)``, memory maps opened read-only, the matrices of
pandas' copy-on-write frames) train and predict without torch's "The given NumPy array is
not writable" warning, in every input form the deep trainer and estimators take; the
arrays are left as they were."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from regmtl.deep import (  # noqa: E402
    DeepESMMClassifier,
    DeepMultiTaskClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
    FeatureColumns,
    HardSharing,
    MultiTaskDataset,
    Numeric,
    TaskSpec,
    TextTrunk,
    Trainer,
    transfer_head,
)
from regmtl.deep.inputs import as_inputs  # noqa: E402

RNG = np.random.default_rng(0)
TINY = dict(hidden=(4,), max_epochs=2, batch_size=16, device="cpu")


def _ro(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


X = _ro(RNG.standard_normal((40, 3)))
Y = _ro(np.column_stack([X[:, 0], X[:, 1] - X[:, 2]]))
LABELS = _ro((X[:, :2] > 0).astype(int))


@pytest.fixture(autouse=True)
def every_warning():
    """torch says it once per process: said every time here, and any warning an error."""
    torch.set_warn_always(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            yield
    finally:
        torch.set_warn_always(False)


def test_the_warning_is_seen_here():
    # the check is live: torch warns on a read-only array shared as it is
    with pytest.raises(UserWarning, match="not writable"):
        torch.from_numpy(X)


def test_a_read_only_array_is_copied_once_and_a_writable_one_shared():
    from regmtl.deep.inputs import tensor_of

    w = np.ones((3, 2))
    assert np.shares_memory(tensor_of(w).numpy(), w)
    t = tensor_of(X, np.float32)
    assert t.dtype == torch.float32 and not np.shares_memory(t.numpy(), X)
    assert as_inputs(X).dtype == torch.float32 and as_inputs(_ro([[1, 2]])).dtype == torch.int64
    assert not X.flags.writeable  # left as it was


def _memmap(tmp_path, a):
    np.save(tmp_path / "x.npy", a)
    return np.load(tmp_path / "x.npy", mmap_mode="r")


def test_trainer_forms(tmp_path):
    net = HardSharing(3, ["a", "b"], hidden=(4,))
    targets = {"a": Y[:, 0], "b": Y[:, 1]}
    kw = dict(max_epochs=2, batch_size=16, device="cpu")
    frame = pd.DataFrame(np.array(X), columns=["u", "v", "w"])  # a read-only matrix (pandas 3)
    mm = _memmap(tmp_path, np.array(X))
    for data in [(X, targets), (X, Y), (frame, targets), (mm, targets),
                 MultiTaskDataset(X, _ro(np.r_[Y[:20, 0], Y[20:, 1]]), ["a", "b"],
                                  task=_ro(np.repeat([0, 1], 20)))]:
        trainer = Trainer(net, **kw).fit(data, val=(X, targets))
        trainer.predict(X)
        trainer.predict(mm)
    Trainer(net, **kw).fit({"a": (X[:20], Y[:20, 0]), "b": (X[20:], Y[20:, 1])})
    # named inputs and sparse rows
    named = HardSharing(None, ["a"], hidden=(4,),
                        encoder=FeatureColumns([Numeric("x", width=3), Numeric("z", width=2)]))
    Trainer(named, **kw).fit(({"x": X, "z": _ro(X[:, :2])}, {"a": Y[:, 0]})).predict(
        {"x": X, "z": _ro(X[:, :2])})
    S = sp.random(40, 7, density=0.3, format="csr", random_state=0, dtype=np.float32)
    S.data.setflags(write=False)
    bag = HardSharing(None, ["a"], hidden=(4,), encoder=TextTrunk(7, dim=4))
    Trainer(bag, **kw).fit((S, {"a": Y[:, 0]})).predict(S)


@pytest.mark.parametrize("form", ["shared", "lists", "dict", "long", "frame", "memmap"])
def test_estimators_on_read_only_tables(tmp_path, form):
    if form == "shared":
        X_, y_, kw = X, Y, {}
    elif form == "lists":
        X_, y_, kw = [X[:20], X[20:]], [Y[:20, 0], Y[20:, 1]], {}
    elif form == "dict":
        X_, y_, kw = {"p": X[:20], "q": X[20:]}, {"p": Y[:20, 0], "q": Y[20:, 1]}, {}
    elif form == "long":
        X_, y_, kw = X, Y[:, 0], dict(task=_ro(np.repeat(["p", "q"], 20)))
    elif form == "frame":
        X_, y_, kw = pd.DataFrame(np.array(X), columns=["u", "v", "w"]), Y, {}
    else:
        X_, y_, kw = _memmap(tmp_path, np.array(X)), Y, {}
    reg = DeepMultiTaskRegressor(**TINY).fit(X_, y_, **kw)
    reg.predict(X_, **kw)
    reg.score(X_, y_, **kw)
    labels = LABELS if form in ("shared", "frame", "memmap") else (
        [LABELS[:20, 0], LABELS[20:, 1]] if form == "lists" else
        {"p": LABELS[:20, 0], "q": LABELS[20:, 1]} if form == "dict" else LABELS[:, 0])
    DeepMultiTaskClassifier(**TINY).fit(X_, labels, **kw).predict_proba(X_, **kw)
    DeepMultiTaskModel(**TINY).fit(X_, labels, **kw).predict(X_, **kw)
    new = X_[:10] if form in ("shared", "long", "frame", "memmap") else X[:10]
    transfer_head(reg, new, Y[:10, 0], epochs=2).predict(new)


def test_estimators_on_read_only_trunk_inputs():
    images = _ro(RNG.standard_normal((20, 1, 6, 6)).astype(np.float32))
    y = _ro(RNG.standard_normal(20))
    DeepMultiTaskRegressor(**TINY).fit(images, y).predict(images)
    ids = _ro(RNG.integers(1, 30, size=(20, 5)))
    DeepMultiTaskRegressor(input_kind="tokens", **TINY).fit(ids, y).predict(ids)
    S = sp.random(20, 30, density=0.2, format="csr", random_state=0, dtype=np.float32)
    S.data.setflags(write=False)
    DeepMultiTaskRegressor(**TINY).fit(S, y).predict(S)
    images2 = [images[:10], images[10:]]  # a list of per-task images
    DeepMultiTaskRegressor(**TINY).fit(images2, [y[:10], y[10:]]).predict(images2)
    ESMM_Y = _ro(np.column_stack([LABELS[:, 0], LABELS[:, 0] * LABELS[:, 1]]))
    DeepESMMClassifier(hidden=(4,), tower_hidden=(2,), max_epochs=2, batch_size=16,
                       device="cpu").fit(X, ESMM_Y).predict(X)


def test_targets_are_carried_as_given():
    ds = MultiTaskDataset(X, {"a": Y[:, 0], "b": Y[:, 1]}, [TaskSpec("a"), TaskSpec("b")])
    assert torch.equal(ds.targets["a"], torch.from_numpy(np.array(Y[:, 0])))
    assert not Y.flags.writeable
