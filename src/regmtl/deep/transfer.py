"""Knowledge transfer for deep nets: a new task head trained on the frozen shared layers.

The net is copied, the new task gets a head of the same architecture as the others (freshly
initialized; for MMoE a tower and a gate over the frozen experts that starts as the average of
the trained gates), every shared parameter (encoder included) and every old head stay frozen
(dropout and batch norm of the frozen part in evaluation mode, so their statistics do not
move), and only the new head is trained on the new task's samples. The new task's inputs are of
any kind the net reads (``regmtl.deep.inputs``: tables, images, token ids, sparse rows, named
inputs); a fitted estimator's own preparation of its inputs (categorical codes, standardized
columns) is applied to them first.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, d2_pinball_score, d2_tweedie_score, r2_score
from sklearn.utils import check_array
from torch import nn

from .._options import check_option
from ..serialization import Malformed, Refused, array_from_json, array_to_json, check_labels
from .checkpoint import (
    CONFIG,
    WEIGHTS,
    check_net_config,
    load_net,
    read_config,
    read_state,
    save_checkpoint,
)
from .divergence import ON_DIVERGENCE
from .inputs import Inputs, as_inputs, chunks, describe, n_rows, take, to_device
from .nets import PLE, HardSharing, MMoE, MultiTaskNet, build_module
from .saving import check_weights_bytes, load_estimator
from .tasks import LOG_MEAN_MAX, TaskSpec
from .trainer import Trainer, set_seed
from .wrapper_losses import TaskLoss, target_scale, task_losses

__all__ = ["transfer_head", "TransferredHead", "load_transferred_head"]

#: The kind a saved head's ``config.json`` declares (what :func:`regmtl.load` dispatches on).
HEAD_KIND = "TransferredHead"
#: The sub-folder holding the fitted estimator whose input preparation the head uses.
SOURCE = "source"
_KINDS = ("regression", "binary", "multiclass", "count")


class TransferredHead:
    """A new task on a frozen multi-task net, made by :func:`~regmtl.deep.transfer_head`.

    It predicts the new task from the net's frozen shared layers and its new head, like a
    fitted single-task estimator (``predict``, ``predict_proba``, ``score``).

    Attributes
    ----------
    net_ : MultiTaskNet
        The copied net with the new task (its old tasks predict as before).
    task_ : str
        The name of the new task in ``net_``.
    kind_ : {"regression", "binary", "multiclass", "count"}
        The kind of the new task.
    loss_ : str or tuple or None
        The new task's loss as the wrappers take it (``"squared"``, ``("huber", delta)``,
        ``("quantile", tau)``, ``"poisson"``, ...); None for a classification.
    history_ : DataFrame
        The trainer's history of the new head.
    n_trainable_ : int
        Parameters trained (those of the new head).
    strategy_ : str
        ``"frozen trunk"``.
    y_mean_, y_scale_ : float
        Mean and standard deviation of the new target (regression only): the head learns the
        standardized target and the net's map for the task
        (:class:`~regmtl.deep.scaling.TargetScale`) returns it to its units.
    classes_ : ndarray of shape (K,)
        The labels (binary and multiclass).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import MMoE, set_seed, transfer_head
    >>> set_seed(0)
    >>> net = MMoE(4, ["a", "b"], n_experts=2, expert_hidden=(8,), tower_hidden=(4,))
    >>> rng = np.random.default_rng(0)
    >>> X_new = rng.standard_normal((30, 4))
    >>> y_new = np.where(X_new[:, 0] > 0, "pos", "neg")
    >>> head = transfer_head(net, X_new, y_new, task="c", epochs=10)
    >>> head.kind_, head.classes_.tolist(), head.net_.task_names
    ('binary', ['neg', 'pos'], ['a', 'b', 'c'])
    >>> head.predict_proba(X_new[:3]).shape
    (3, 2)
    """

    def _outputs(self, X: Any) -> np.ndarray:
        x = _prepare(getattr(self, "_source", None), self.net_, X, "X")
        self.net_.eval()
        device = next(self.net_.parameters()).device
        with torch.no_grad():
            out = [self.net_(to_device(xb, device), tasks=[self.task_])[self.task_]
                   for xb in chunks(x, 8192)]
        f = torch.cat(out).double().cpu().numpy()
        return f if self.kind_ == "multiclass" else f[:, 0]

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the new task: values (regression; the tau-quantile of a quantile
        loss), mean counts (count) or labels (binary, multiclass).

        Parameters
        ----------
        X : array-like, tensor, sparse matrix, DataFrame, or dict of them
            The new task's inputs, of the kind of ``X_new``.

        Returns
        -------
        ndarray of shape (n_samples,)
            The predicted values, counts or labels.
        """
        f = self._outputs(X)
        if self.kind_ == "regression":
            return f
        if self.kind_ == "count":
            return np.exp(np.minimum(f, LOG_MEAN_MAX))
        if self.kind_ == "multiclass":
            return self.classes_[np.argmax(f, axis=1)]
        return self.classes_[(f > 0).astype(int)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of a binary or multiclass new task.

        Parameters
        ----------
        X : array-like, tensor, sparse matrix, DataFrame, or dict of them
            The new task's inputs, of the kind of ``X_new``.

        Returns
        -------
        ndarray of shape (n_samples, K)
            Probabilities of ``classes_[0]``, ..., ``classes_[K-1]``.

        Raises
        ------
        AttributeError
            If the new task is a regression or a count.
        """
        if self.kind_ not in ("binary", "multiclass"):
            raise AttributeError(f"predict_proba: the new task is a {self.kind_}.")
        f = self._outputs(X)
        if self.kind_ == "multiclass":
            e = np.exp(f - f.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        p = 1.0 / (1.0 + np.exp(-f))
        return np.column_stack([1.0 - p, p])

    def score(self, X: Any, y: Any) -> float:
        """R^2 (squared regression), D^2 of the loss's deviance (Huber: R^2; quantile: the
        pinball D^2 at its tau; count: the Poisson D^2) or accuracy (classification).

        Parameters
        ----------
        X : array-like, tensor, sparse matrix, DataFrame, or dict of them
            The new task's inputs, of the kind of ``X_new``.
        y : array-like of shape (n_samples,)
            The true values or labels.

        Returns
        -------
        float
            The score.
        """
        if self.kind_ == "count":
            return float(d2_tweedie_score(np.asarray(y, dtype=np.float64), self.predict(X),
                                          power=1))
        if self.kind_ == "regression":
            tau = _tau(self.loss_)
            y = np.asarray(y, dtype=np.float64)
            if tau is not None:
                return float(d2_pinball_score(y, self.predict(X), alpha=tau))
            return float(r2_score(y, self.predict(X)))
        return float(accuracy_score(np.asarray(y), self.predict(X)))

    def save(self, path: str | os.PathLike) -> None:
        """Write the head to the folder ``path``; :meth:`load` (or :func:`regmtl.load`) reads
        it back and predicts bit for bit as this one.

        The folder is a checkpoint (:func:`~regmtl.deep.save_checkpoint`): ``model.pt``, the
        ``state_dict`` of ``net_`` (the frozen source net with the new head), and
        ``config.json``, the net's config and the head's attributes. A head made from a fitted
        estimator keeps that estimator's input preparation in the sub-folder ``source`` (its
        own ``save``). No pickle.

        Parameters
        ----------
        path : str or path-like
            The folder (created if needed; its files are overwritten).

        Raises
        ------
        ValueError
            If the net cannot be described in JSON (a custom trunk, a callable loss).
        TypeError
            If the source estimator has a parameter that cannot be saved.

        Examples
        --------
        >>> import numpy as np
        >>> from regmtl.deep import HardSharing, TransferredHead, set_seed, transfer_head
        >>> set_seed(0)
        >>> net = HardSharing(3, ["a", "b"], hidden=(8,))
        >>> X = np.random.default_rng(0).standard_normal((20, 3))
        >>> head = transfer_head(net, X, X[:, 0], epochs=3)
        >>> head.save("head")
        >>> again = TransferredHead.load("head")
        >>> bool(np.array_equal(again.predict(X), head.predict(X)))
        True
        """
        try:
            self.net_.config()
        except ValueError as exc:
            raise ValueError(f"path: this head cannot be saved, its net has no JSON config "
                             f"({exc}).") from None
        path = Path(path)
        source = getattr(self, "_source", None)
        if source is not None:
            source.save(path / SOURCE)
        entry = {"class": HEAD_KIND, "source": source is not None,
                 "attributes": _head_attributes(self)}
        save_checkpoint(path, self.net_, {"estimator": entry})

    @classmethod
    def load(cls, path: str | os.PathLike, *, max_bytes: int | None = None
             ) -> TransferredHead:
        """The head saved with :meth:`save` in the folder ``path``, on the CPU.

        Read with the checks of :func:`~regmtl.deep.load_checkpoint` and of the wrappers'
        folders: no pickle, the config checked in full before any weight is read, the
        tensors compared with the net the config builds, the new task's spec, kind, classes,
        target map and parameter count with the head's attributes.

        Parameters
        ----------
        path : str or path-like
            A folder written by :meth:`save`.
        max_bytes : int, optional
            The most bytes the weights file (and the source estimator's) may hold.

        Returns
        -------
        TransferredHead
            The head (its frozen layers frozen again), predicting as the saved one.

        Raises
        ------
        ValueError
            If the folder is not a saved head or was modified (the message names the file).

        Examples
        --------
        >>> import numpy as np
        >>> import regmtl
        >>> from regmtl.deep import MMoE, set_seed, transfer_head
        >>> set_seed(0)
        >>> net = MMoE(3, ["a", "b"], n_experts=2, expert_hidden=(8,))
        >>> X = np.random.default_rng(0).standard_normal((20, 3))
        >>> transfer_head(net, X, X[:, 0] > 0, epochs=3).save("mmoe_head")
        >>> head = regmtl.load("mmoe_head")
        >>> type(head).__name__, head.kind_, head.classes_.tolist()
        ('TransferredHead', 'binary', [False, True])
        """
        return load_transferred_head(path, max_bytes=max_bytes)


def _head_attributes(head: TransferredHead) -> dict:
    """The head's fitted attributes as JSON."""
    loss = head.loss_
    out = {"task_": head.task_, "kind_": head.kind_,
           "loss_": list(loss) if isinstance(loss, tuple) else loss,
           "history_": {str(c): array_to_json(head.history_[c].to_numpy())
                        for c in head.history_.columns},
           "n_trainable_": int(head.n_trainable_), "strategy_": head.strategy_}
    if head.kind_ in ("binary", "multiclass"):
        out["classes_"] = array_to_json(np.asarray(head.classes_))
    if head.kind_ == "regression":
        out["y_mean_"], out["y_scale_"] = float(head.y_mean_), float(head.y_scale_)
    return out


def _head_from_json(entry: Any) -> dict:
    """The head's attributes from its config entry, checked (types, ranges, kind)."""
    if not isinstance(entry, dict) or set(entry) != {"class", "source", "attributes"} \
            or entry["class"] != HEAD_KIND or not isinstance(entry["source"], bool):
        raise ValueError("its 'estimator' entry is not a saved TransferredHead")
    a = entry["attributes"]
    kind = a.get("kind_") if isinstance(a, dict) else None
    if kind not in _KINDS:
        raise ValueError(f"attribute 'kind_' = {kind!r:.40} is not one of {_KINDS}")
    want = {"task_", "kind_", "loss_", "history_", "n_trainable_", "strategy_"} | (
        {"classes_"} if kind in ("binary", "multiclass") else
        {"y_mean_", "y_scale_"} if kind == "regression" else set())
    if set(a) != want:
        raise ValueError(f"the head's attributes are {sorted(a)[:10]}, a {kind} head saves "
                         f"{sorted(want)}")
    out = {"kind_": kind, "source": entry["source"]}
    if not isinstance(a["task_"], str) or not a["task_"] or a["strategy_"] != "frozen trunk":
        raise ValueError("attributes 'task_' and 'strategy_' must be the new task's name and "
                         "'frozen trunk'")
    out["task_"], out["strategy_"] = a["task_"], a["strategy_"]
    n = a["n_trainable_"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"attribute 'n_trainable_' = {n!r:.40} is not an integer >= 1")
    out["n_trainable_"] = n
    loss = a["loss_"]
    loss = tuple(loss) if isinstance(loss, list) else loss
    if loss is not None:
        task_loss = task_losses(loss, 1, default=None)[0]
        if task_loss is None or task_loss.kind != kind:
            raise ValueError(f"attribute 'loss_' = {loss!r:.60} is not the loss of a {kind}")
    out["loss_"] = loss
    if kind in ("binary", "multiclass"):
        classes = array_from_json(a["classes_"], "attribute 'classes_'")
        if classes.ndim != 1 or len(classes) < 2 or (kind == "binary" and len(classes) != 2):
            raise ValueError(f"attribute 'classes_' must hold the {kind} task's classes")
        check_labels("classes_", classes)
        out["classes_"] = classes
    if kind == "regression":
        for name in ("y_mean_", "y_scale_"):
            v = a[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) \
                    or (name == "y_scale_" and v <= 0):
                raise ValueError(f"attribute {name!r} must be a finite float"
                                 f"{' > 0' if name == 'y_scale_' else ''}")
            out[name] = float(v)
    hist = a["history_"]
    if not isinstance(hist, dict):
        raise ValueError("attribute 'history_' is not a table")
    cols = {c: array_from_json(v, f"history_ column {c!r:.40}") for c, v in hist.items()}
    if len({c.shape for c in cols.values()}) > 1 or any(
            c.ndim != 1 or c.dtype.kind not in "biuf" for c in cols.values()):
        raise ValueError("attribute 'history_' does not hold one number per epoch")
    out["history_"] = pd.DataFrame(cols)
    return out


def _source_net(cls: type, kw: dict) -> MultiTaskNet:
    """``cls(**kw)``, its encoder and trunk built from their config entries."""
    return cls(**{k: build_module(v, k) if k in ("encoder", "trunk") else v
                  for k, v in kw.items()})


def _head_net(cls: type, kw: dict, spec: TaskSpec, state: dict
              ) -> tuple[MultiTaskNet, list[nn.Parameter]]:
    """The source net of ``kw`` with the new task's head added as :func:`transfer_head`
    adds it (same modules, same state_dict names), checked against ``state``: the source
    net is sized on the meta device first (no memory), and built only when the weights hold
    at least as many numbers; then every tensor's name and shape is compared."""
    with torch.device("meta"):
        need = sum(v.numel() for v in _source_net(cls, kw).state_dict().values())
    have = sum(v.numel() for v in state.values())
    if need > have:
        raise ValueError(f"the config builds a net of {need} numbers, the weights hold {have}")
    net = _source_net(cls, kw)
    params = _add_task(net, spec)
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        odd = sorted(set(want) ^ set(got)) or [k for k in want if want[k] != got[k]]
        raise ValueError(f"the weights do not fit the net and its new head (tensor "
                         f"{odd[0]!r:.80})")
    return net, params


def load_transferred_head(path: str | os.PathLike, *, max_bytes: int | None = None
                          ) -> TransferredHead:
    """The head saved with :meth:`TransferredHead.save` (what :func:`regmtl.load` calls for
    such a folder); see :meth:`TransferredHead.load`."""
    path = Path(path)
    max_bytes = check_option("max_bytes", max_bytes, "int", low=0, none=True)
    config = read_config(path)
    check_weights_bytes(path, max_bytes)
    try:
        attrs = _head_from_json(config.get("estimator"))
        state = read_state(path / WEIGHTS)
        cls, kw = check_net_config(config.get("net"), config.get("net_config"), state, path)
        specs = kw["tasks"]
        spec = specs[-1]
        kind = attrs["kind_"]
        if spec.name != attrs["task_"] or spec.kind != kind or (
                kind == "multiclass" and spec.n_outputs != len(attrs["classes_"])):
            raise ValueError(f"the net's last task {spec.name!r:.40} ({spec.kind}) is not the "
                             f"head's {attrs['task_']!r:.40} ({kind})")
        net, params = _head_net(cls, {**kw, "tasks": specs[:-1]}, spec, state)
        if sum(p.numel() for p in params) != attrs["n_trainable_"]:
            raise ValueError("attribute 'n_trainable_' is not the size of the new head")
    except (ValueError, TypeError, KeyError, Malformed, Refused) as exc:
        raise ValueError(f"{path / CONFIG} was refused: {str(exc).rstrip('.')}.") from None
    load_net(path, config, net)
    if kind == "regression":
        scale = net.target_scales[spec.name]
        if (float(scale.mean[0]), float(scale.scale[0])) != (attrs["y_mean_"],
                                                             attrs["y_scale_"]):
            raise ValueError(f"{path / WEIGHTS} was refused: the new task's target map does "
                             f"not match y_mean_ and y_scale_ in {path / CONFIG}; the file "
                             "was modified.")
    _freeze_all_but(net, params)
    out = TransferredHead()
    for name in ("task_", "kind_", "loss_", "history_", "n_trainable_", "strategy_",
                 "classes_", "y_mean_", "y_scale_"):
        if name in attrs:
            setattr(out, name, attrs[name])
    out.net_ = net.eval()
    out._source = load_estimator(path / SOURCE, max_bytes=max_bytes) \
        if attrs["source"] else None
    if out._source is not None and not _holds(net, out._source.net_):
        raise ValueError(f"{path / SOURCE} was refused: its net is not the one the head in "
                         f"{path / WEIGHTS} was trained on; the folder was modified.")
    return out


def _holds(net: MultiTaskNet, source: MultiTaskNet) -> bool:
    """Whether ``net`` holds every tensor of ``source`` unchanged (the head's frozen copy)."""
    have, want = net.state_dict(), source.state_dict()
    return all(k in have and have[k].shape == v.shape
               and torch.equal(have[k], v.to(have[k].device)) for k, v in want.items())


def _freeze_all_but(net: MultiTaskNet, params: list[nn.Parameter]) -> None:
    """Only ``params`` (the new head) train; the encoder and shared layers stay in
    evaluation mode."""
    for p in net.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    for m in ([net.encoder] if net.encoder is not None else []) + net._shared_modules():
        _frozen_eval(m)


def _frozen_eval(module: nn.Module) -> None:
    """Keep ``module`` and its children in evaluation mode whatever ``train()`` asks."""
    for m in module.modules():
        m.eval()
        m.train = (lambda self_: lambda mode=True: nn.Module.train(self_, False))(m)


def _add_task(net: MultiTaskNet, spec: TaskSpec) -> list[nn.Parameter]:
    """Register a head for ``spec`` (for MMoE also a gate), in blocks of their own so the old
    heads can stay frozen; its parameters.

    The head (tower) is freshly initialized. An MMoE gate starts as the average of the trained
    gates (weights and biases averaged over the tasks): the new task begins with the mixture
    of experts the tasks share and learns its deviation from its few samples. A random gate
    weighs the experts arbitrarily and costs the transfer (test MSE over that of a fresh net,
    mean over the 12 problems of tests/deep/test_deep_transfer.py: 0.61 with the average, 0.69
    with a random gate).
    """
    if spec.name in net.task_names:
        raise ValueError(f"task={spec.name!r} is already a task of the net {net.task_names}; "
                         "choose another name.")
    if isinstance(net, HardSharing):
        params = net.heads.add_task(spec.name, spec.n_outputs)
    elif isinstance(net, MMoE):
        gates = net.gates
        K = gates.n_experts
        trained = [(blk.weight.reshape(-1, K, gates.in_features),
                    None if blk.bias is None else blk.bias.reshape(-1, K))
                   for blk in gates.blocks]
        params = gates.add_task(spec.name) + net.towers.add_task(spec.name, spec.n_outputs)
        with torch.no_grad():
            new = gates.blocks[-1]
            new.weight.copy_(torch.cat([w for w, _ in trained]).mean(0))
            if new.bias is not None:
                new.bias.copy_(torch.cat([c for _, c in trained]).mean(0))
    else:
        why = ("its task experts sit inside every level" if isinstance(net, PLE) else
               "its two outputs are one click -> conversion chain" if type(net).__name__ == "ESMM"
               else "it has no per-task head to copy")
        kind = "CGC/PLE" if isinstance(net, PLE) else type(net).__name__
        raise ValueError(f"model: adding a task to a {kind} net is not supported ({why}); use "
                         "a HardSharing or MMoE net (the wrappers' architecture='hard' or "
                         "'mmoe').")
    net.set_tasks([*net.tasks, spec])
    net._add_target_scale(spec)
    net.target_scales.to(next(net.parameters()).device)
    return params


def _prepare(source: Any, net: MultiTaskNet, X: Any, what: str) -> Inputs:
    """The net's inputs from ``X``: through the fitted estimator ``source``'s own preparation
    (checked features, categorical codes, standardized columns) when there is one, else as
    the data layer carries them (:func:`~regmtl.deep.inputs.as_inputs`); a plain table of the
    wrong width is refused naming both widths."""
    if source is not None:
        try:
            return source.net_inputs(X)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    x = as_inputs(X, what)
    reads_table = net.encoder is None and not getattr(net, "custom_trunk", False)
    if (reads_table and isinstance(x, torch.Tensor) and x.ndim == 2
            and x.is_floating_point() and x.shape[1] != net.n_features):
        raise ValueError(f"{what} has {x.shape[1]} features, but the net was trained on "
                         f"{net.n_features}; give the new task the same features.")
    return x


def _check_reads(net: MultiTaskNet, x: Inputs, what: str) -> None:
    """Run the net on the first rows of ``x`` (evaluation mode, no gradient): an input it
    cannot read is refused before any step, naming what was given."""
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(to_device(take(x, torch.arange(min(2, n_rows(x)))),
                          next(net.parameters()).device), tasks=net.task_names[:1])
    except (ValueError, RuntimeError, TypeError, IndexError, KeyError) as exc:
        raise ValueError(f"{what}: the net cannot read it ({describe(x)}): "
                         f"{str(exc)[:400]}") from None
    finally:
        net.train(was)


def transfer_head(model: Any, X_new: Any, y_new: Any, *, task: str = "new",
                  kind: str | None = None, loss: Any = None, epochs: int = 200, lr: float = 1e-2,
                  batch_size: int = 32, weight_decay: float = 0.0,
                  random_state: int = 0, device: str = "cpu",
                  on_divergence: str = "raise") -> TransferredHead:
    """Train a head for a new task on the frozen shared layers of a fitted multi-task net.

    The net is copied; the new task gets a head of the same architecture as the first task's
    (freshly initialized; for MMoE a tower and a gate over the frozen experts that starts as the
    average of the trained gates). Every shared parameter (the encoder's too) and every old head
    stay frozen (dropout and batch norm of the shared part in evaluation mode, so their
    statistics do not move), and only the new head is trained, with Adam and equal weighting,
    on the new task's samples: knowledge transfer when the new task has few samples.

    Parameters
    ----------
    model : DeepMultiTaskRegressor, DeepMultiTaskClassifier or MultiTaskNet
        A fitted estimator, or a net (HardSharing or MMoE). Never modified: the net is copied.
    X_new : array-like, tensor, sparse matrix, DataFrame, or dict of them
        The new task's inputs (at least 2 rows), of any kind the net reads (see
        ``regmtl.deep.inputs``): a table of the net's features, images for a
        :class:`~regmtl.deep.ConvTrunk`, token ids, sparse rows, or the named inputs of a
        :class:`~regmtl.deep.FeatureColumns` encoder. For a fitted estimator, what its
        ``predict`` takes (a DataFrame with its categorical columns, ...).
    y_new : array-like of shape (n_samples,)
        Values (standardized for training by the trainer, see
        ``regmtl.deep.scaling``), counts, or labels.
    task : str, default="new"
        Name of the new task in the returned net (not one of its tasks).
    kind : {"regression", "binary", "multiclass", "count"}, optional
        Default: from ``loss`` where it says (``"poisson"``: count), else the estimator's
        (a classifier: binary for two labels, multiclass for more); for a bare net, binary
        when y has two values, multiclass for more labels that are not numbers, else
        regression.
    loss : str or tuple, optional
        The new task's loss as the scikit-learn wrappers take it (see
        ``regmtl.deep.wrapper_losses``): ``"squared"``, ``"absolute"``, ``"huber"`` or
        ``("huber", delta)`` (delta in the target's units), ``"quantile"`` or
        ``("quantile", tau)``, ``"poisson"`` (a count task, its head starting at the log of
        the mean count). Default: the estimator's loss where it has one for every task, else
        the kind's default.
    epochs : int, default=200
        Passes over the new samples (no early stopping).
    lr : float, default=1e-2
        Learning rate of Adam.
    batch_size : int, default=32
        Rows per step.
    weight_decay : float, default=0.0
        Adam's weight decay on the new head.
    random_state : int, default=0
        Seeds the head's initialization and the batches.
    device : str, default="cpu"
        Where the head is trained (the returned net stays there).
    on_divergence : {"raise", "restore_best"}, default="raise"
        When the head's training loss or weights turn NaN or infinite: ``"raise"`` stops
        with :class:`~regmtl.deep.TrainingDiverged` (naming the task, epoch, step and
        learning rate); ``"restore_best"`` keeps the weights of the best training epoch (the
        initial head if none was finite) and warns, as the :class:`~regmtl.deep.Trainer`
        and the wrappers do.

    Returns
    -------
    TransferredHead
        The new task's predictor, with the extended net in ``net_``.

    Raises
    ------
    TypeError
        If ``model`` is neither a fitted deep estimator nor a net.
    ValueError
        If the net cannot read ``X_new`` (other features, another kind of input), ``y_new``
        does not fit (shape, two classes for binary, negative counts), ``kind`` and ``loss``
        disagree, the task name is taken, or the net is a CGC or PLE (task experts sit inside
        every level).

    See Also
    --------
    regmtl.deep.TransferredHead : The result.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import DeepMultiTaskRegressor, transfer_head
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 4))
    >>> Y = np.column_stack([X[:, 0] + X[:, 1], X[:, 0] - X[:, 1]])
    >>> model = DeepMultiTaskRegressor(hidden=(16,), max_epochs=10, batch_size=32).fit(X, Y)
    >>> X_new = rng.standard_normal((30, 4))
    >>> head = transfer_head(model, X_new, X_new[:, 0], task="new", epochs=10)
    >>> head.net_.task_names, head.n_trainable_, head.strategy_
    (['t0', 't1', 'new'], 17, 'frozen trunk')
    >>> head.predict(X_new).shape
    (30,)
    """
    net0 = getattr(model, "net_", model)
    if not isinstance(net0, MultiTaskNet):
        raise TypeError(f"model: expected a fitted regmtl.deep estimator or a MultiTaskNet, got "
                        f"{type(model).__name__} (fit it first).")
    source = None
    if model is not net0 and hasattr(model, "net_inputs"):
        source = copy.copy(model)  # its input preparation, kept if the model is fitted again
    X = _prepare(source, net0, X_new, "X_new")
    n = n_rows(X)
    y = np.asarray(y_new)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"y_new has shape {y.shape}; expected ({n},).")
    if n < 2:
        raise ValueError("X_new: a new head needs at least 2 samples.")
    task_loss = _new_task_loss(model if model is not net0 else None, loss, kind)
    kind = _new_task_kind(model if model is not net0 else None, y, kind, task_loss)
    out = TransferredHead()
    out.loss_ = None if task_loss is None else (
        task_loss.name if task_loss.param is None else (task_loss.name, task_loss.param))
    scale = None
    if kind in ("regression", "count"):
        target = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y_new")
        task_loss = task_loss or TaskLoss("poisson" if kind == "count" else "squared")
        if kind == "count" and (target < 0).any():
            raise ValueError(f"y_new has negative entries (min {target.min():g}); a count "
                             "task takes counts >= 0.")
        if task_loss.needs_scale:
            scale = target_scale(target)
        spec = task_loss.spec(task, 1.0 if scale is None else scale[1])
    else:
        classes = np.unique(y)
        if classes.size < 2 or (kind == "binary" and classes.size != 2):
            raise ValueError(f"y_new holds {classes.size} class(es); a {kind} new task needs "
                             f"{'both' if kind == 'binary' else 'at least two'}.")
        out.classes_ = classes
        index = np.searchsorted(classes, y)
        if kind == "binary":
            target = (index == 1).astype(np.float64)
            spec = TaskSpec(task, kind="binary")
        else:
            target = index.astype(np.float64)
            spec = TaskSpec(task, kind="multiclass", n_outputs=int(classes.size))
    epochs = check_option("epochs", epochs, "int", low=1)
    on_divergence = check_option("on_divergence", on_divergence, "str",
                                 choices=ON_DIVERGENCE)
    random_state = check_option("random_state", random_state, "int", low=0)
    # the task specs are immutable and shared, not copied: a copy of a spec's metrics is
    # no longer the registry's, and the net's config (its saving) would refuse them
    net = copy.deepcopy(net0, memo={id(t): t for t in net0.tasks}).to(device)
    _check_reads(net, X, "X_new")
    set_seed(random_state)
    old_tasks = net.tasks
    params = _add_task(net, spec)
    _freeze_all_but(net, params)
    if scale is not None:  # the deviation a Huber delta in the target's units was divided by
        net.target_scales[task].set(torch.tensor([scale[0]], dtype=torch.float64),
                                    torch.tensor([scale[1]], dtype=torch.float64))
    if kind == "count" and target.mean() > 0:  # the head starts at the constant mean count
        for heads in (getattr(net, "heads", None), getattr(net, "towers", None)):
            if heads is not None:
                heads.set_output_bias(task, float(np.log(target.mean())))
    # train on the new task alone: the net's task list is the new task while training
    net.set_tasks([spec])
    trainer = Trainer(net, lr=lr, batch_size=batch_size, max_epochs=epochs,
                      early_stopping=None, device=device, distributed=False,
                      seed=random_state, weight_decay=weight_decay,
                      on_divergence=on_divergence)
    trainer.fit((X, {task: target}))
    net.set_tasks([*old_tasks, spec])
    if kind == "regression":
        fitted_scale = net.target_scales[task]
        out.y_mean_ = float(fitted_scale.mean[0])
        out.y_scale_ = float(fitted_scale.scale[0])
    out.net_, out.task_, out.kind_, out._source = net, task, kind, source
    out.history_ = trainer.history
    out.n_trainable_ = int(sum(p.numel() for p in params))
    out.strategy_ = "frozen trunk"
    return out


def _tau(loss: Any) -> float | None:
    """The level of a quantile loss (as ``TransferredHead.loss_`` holds it), else None."""
    if loss == "quantile":
        return 0.5
    if isinstance(loss, tuple) and loss[0] == "quantile":
        return float(loss[1])
    return None


def _new_task_loss(est: Any, loss: Any, kind: str | None) -> TaskLoss | None:
    """The new task's loss: ``loss`` checked, else the estimator's where it has one loss
    for every task and the new task is of that loss's kind."""
    if loss is not None:
        return task_losses(loss, 1, default=None)[0]
    own = getattr(est, "loss", None)
    if own is None or isinstance(own, list) or kind in ("binary", "multiclass"):
        return None
    if getattr(est, "_kind", None) == "classification":
        return None
    inherited = task_losses(own, 1, default=None)[0]
    return inherited if kind is None or inherited.kind == kind else None


def _new_task_kind(est: Any, y: np.ndarray, kind: str | None,
                   task_loss: TaskLoss | None) -> str:
    """The new task's kind from ``kind``, its loss, the estimator, or its labels."""
    if kind is not None and kind not in ("regression", "binary", "multiclass", "count"):
        raise ValueError(f"kind={kind!r}: a new head is 'regression', 'binary', "
                         "'multiclass' or 'count'.")
    if task_loss is not None:
        if kind is not None and kind != task_loss.kind:
            raise ValueError(f"kind={kind!r} and loss={task_loss.name!r} disagree: the loss "
                             f"{task_loss.name!r} makes a {task_loss.kind} task; give one of "
                             "them.")
        return task_loss.kind
    if kind is not None:
        return kind
    n_labels = len(np.unique(y))
    est_kind = getattr(est, "_kind", None)
    if est_kind == "classification":
        return "binary" if n_labels == 2 else "multiclass"
    if est_kind == "regression":
        return "regression"
    if n_labels == 2:
        return "binary"
    return "multiclass" if y.dtype.kind in "OUSb" else "regression"
