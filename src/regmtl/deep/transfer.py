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
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_array
from torch import nn

from .._options import check_option
from .inputs import Inputs, as_inputs, chunks, describe, n_rows, take, to_device
from .nets import PLE, HardSharing, MMoE, MultiTaskNet
from .tasks import TaskSpec
from .trainer import Trainer, set_seed

__all__ = ["transfer_head", "TransferredHead"]


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
    kind_ : {"regression", "binary"}
        The kind of the new task.
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
    classes_ : ndarray of shape (2,)
        The two labels (binary only).

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
        return torch.cat(out)[:, 0].double().cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the new task: values (regression) or labels (binary).

        Parameters
        ----------
        X : array-like, tensor, sparse matrix, DataFrame, or dict of them
            The new task's inputs, of the kind of ``X_new``.

        Returns
        -------
        ndarray of shape (n_samples,)
            The predicted values or labels.
        """
        f = self._outputs(X)
        if self.kind_ == "regression":
            return f
        return self.classes_[(f > 0).astype(int)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of a binary new task.

        Parameters
        ----------
        X : array-like, tensor, sparse matrix, DataFrame, or dict of them
            The new task's inputs, of the kind of ``X_new``.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            Probabilities of ``classes_[0]`` and ``classes_[1]``.

        Raises
        ------
        AttributeError
            If the new task is a regression.
        """
        if self.kind_ != "binary":
            raise AttributeError("predict_proba: the new task is a regression.")
        p = 1.0 / (1.0 + np.exp(-self._outputs(X)))
        return np.column_stack([1.0 - p, p])

    def score(self, X: Any, y: Any) -> float:
        """R^2 (regression) or accuracy (binary) of the new task.

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
        if self.kind_ == "regression":
            return float(r2_score(np.asarray(y, dtype=np.float64), self.predict(X)))
        return float(accuracy_score(np.asarray(y), self.predict(X)))


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
    mean over the 12 problems of tests/test_deep_transfer.py: 0.61 with the average, 0.69
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
                         "architecture='hard' or 'mmoe'.")
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
                  kind: str | None = None, epochs: int = 200, lr: float = 1e-2,
                  batch_size: int = 32, weight_decay: float = 0.0,
                  random_state: int = 0, device: str = "cpu") -> TransferredHead:
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
        ``regmtl.deep.scaling``) or two labels.
    task : str, default="new"
        Name of the new task in the returned net (not one of its tasks).
    kind : {"regression", "binary"}, optional
        Default: the estimator's; for a bare net, binary when y has two values.
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
        does not fit (shape, two classes for binary), the task name is taken, or the net is a
        CGC or PLE (task experts sit inside every level).

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
    est_kind = getattr(model, "_kind", None) if model is not net0 else None
    est_kind = {"classification": "binary"}.get(est_kind, est_kind)
    kind = kind or est_kind or ("binary" if len(np.unique(y)) == 2 else "regression")
    if kind not in ("regression", "binary"):
        raise ValueError(f"kind={kind!r}: a new head is 'regression' or 'binary'.")
    out = TransferredHead()
    if kind == "regression":
        target = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y_new")
    else:
        classes = np.unique(y)
        if classes.size != 2:
            raise ValueError(f"y_new holds {classes.size} class(es); a binary new task needs "
                             "both.")
        out.classes_ = classes
        target = (y == classes[1]).astype(np.float64)
    epochs = check_option("epochs", epochs, "int", low=1)
    random_state = check_option("random_state", random_state, "int", low=0)
    net = copy.deepcopy(net0).to(device)
    _check_reads(net, X, "X_new")
    spec = TaskSpec(task, kind=kind)
    set_seed(random_state)
    for p in net.parameters():
        p.requires_grad_(False)
    old_tasks = net.tasks
    params = _add_task(net, spec)
    for p in params:
        p.requires_grad_(True)
    for m in ([net.encoder] if net.encoder is not None else []) + net._shared_modules():
        _frozen_eval(m)
    # train on the new task alone: the net's task list is the new task while training
    net.set_tasks([spec])
    trainer = Trainer(net, lr=lr, batch_size=batch_size, max_epochs=epochs,
                      early_stopping=None, device=device, distributed=False,
                      seed=random_state, weight_decay=weight_decay)
    trainer.fit((X, {task: target}))
    net.set_tasks([*old_tasks, spec])
    if kind == "regression":
        scale = net.target_scales[task]
        out.y_mean_, out.y_scale_ = float(scale.mean[0]), float(scale.scale[0])
    out.net_, out.task_, out.kind_, out._source = net, task, kind, source
    out.history_ = trainer.history
    out.n_trainable_ = int(sum(p.numel() for p in params))
    out.strategy_ = "frozen trunk"
    return out
