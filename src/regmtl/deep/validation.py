r"""Validation and prediction of a multi-task net: outputs by chunks, losses and metrics.

:func:`validate` gives the columns ``val_loss/TASK`` (the task's loss on standardized outputs
and targets, divided by its constant predictor's loss :math:`c_t`), ``val/TASK/METRIC`` (in
the target's units) and ``val_loss`` :math:`= \sum_t b_t L_t` that the
:class:`~regmtl.deep.Trainer` logs after every epoch; per-row data (each row for its own task)
are reduced by segment sums over the families of tasks sharing a loss. :func:`predict` is what
:meth:`~regmtl.deep.Trainer.predict` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from ._torch import torch
from .data import MultiTaskDataset, row_tasks
from .inputs import SparseRows, as_inputs, chunks, n_rows, to_device

__all__ = ["outputs", "validate", "validate_rows", "predict", "wide", "cat_inputs"]


@torch.no_grad()
def outputs(net: Any, X: Any, device: Any, batch_size: int = 4096,
            standardized: bool = False, rows: torch.Tensor | None = None) -> Any:
    """The net's outputs on X (regression: the heads' h when ``standardized``); with
    ``rows``, each row's own task's output (B, max n_outputs), brought to the CPU where the
    per-row losses, metrics and predictions are formed."""
    net.eval()
    outs = []
    with net.standardized_outputs() if standardized else nullcontext():
        for i, x in enumerate(chunks(X, batch_size)):
            r = None if rows is None else rows[i * batch_size:(i + 1) * batch_size]
            outs.append(net(to_device(x, device)) if r is None
                        else net(to_device(x, device), rows=r.to(device)))
    if rows is not None:
        return wide(torch.cat(outs)).cpu()
    return {k: wide(torch.cat([o[k] for o in outs])) for k in outs[0]}


def validate(net: Any, tasks: list, ds: Any, device: Any, loss_scale: torch.Tensor,
             families: list) -> dict:
    """The validation losses and metrics of ``net`` on ``ds`` (a data set or a loader):
    ``val_loss/TASK`` (each divided by its :math:`c_t` in ``loss_scale``), ``val/TASK/METRIC``
    and ``val_loss``, the spec-weighted sum; ``families``: the per-row loss families (CPU
    masks)."""
    if isinstance(ds, MultiTaskDataset) and ds.per_row:
        return validate_rows(net, tasks, ds.X, ds.task, ds.y, device, loss_scale, families)
    if isinstance(ds, MultiTaskDataset):
        X, Y = ds.X, ds.targets
    else:  # a loader: gather it
        xs, ys, rows = [], {}, []
        for x, y in ds:
            xs.append(x)
            if not isinstance(y, Mapping):  # per row: (task index, y)
                rows.append(y)
                continue
            for k, v in y.items():
                ys.setdefault(k, []).append(v)
        if rows:
            return validate_rows(net, tasks, cat_inputs(xs),
                                 torch.cat([r[0] for r in rows]),
                                 torch.cat([r[1] for r in rows]), device, loss_scale,
                                 families)
        X, Y = cat_inputs(xs), {k: torch.cat(v) for k, v in ys.items()}
    out = outputs(net, X, device, standardized=True)
    scales = net.target_scales
    row, total = {}, 0.0
    for j, t in enumerate(tasks):
        if t.name not in Y:
            continue
        y = Y[t.name].to(device)
        h = out[t.name]
        if t.name in scales:  # the loss of training (standardized), metrics in units
            loss = t.task_loss(h.double(), scales[t.name].standardize(y.double()))
            f = scales[t.name](h)
        else:
            loss, f = t.task_loss(h, y), h
        loss = float(loss) / float(loss_scale[j])
        row[f"val_loss/{t.name}"] = loss
        total += t.weight * loss
        pred = t.transform(f).cpu().numpy()
        for m, v in t.scores(Y[t.name].cpu().numpy(), pred).items():
            row[f"val/{t.name}/{m}"] = v
    row["val_loss"] = total
    return row

def validate_rows(net: Any, tasks: list, X: Any, task: torch.Tensor, y: torch.Tensor,
                  device: Any, loss_scale: torch.Tensor, families: list) -> dict:
    """Validation on per-row data: losses by segment sums, metrics task by task."""
    h = outputs(net, X, device, standardized=True, rows=task.cpu())
    task = task.cpu()
    y = y.cpu()
    y2 = y[:, None] if y.ndim == 1 else y
    W = y2.shape[1]
    mean, scale = (v.cpu() for v in net.stacked_scales())
    ys = (y2.double() - mean[task, :W]) / scale[task, :W]
    units = h.double() * scale[task, :h.shape[1]] + mean[task, :h.shape[1]]
    T = len(tasks)
    total_t = torch.zeros(T, dtype=torch.float64)
    count_t = torch.zeros(T, dtype=torch.float64)
    for spec, mask in families:
        rows = torch.nonzero(mask[task])[:, 0]
        loss, n = spec.row_losses(h[rows].double(), ys[rows])
        total_t.index_add_(0, task[rows], loss.double())
        count_t.index_add_(0, task[rows], n.double())
    row, total = {}, 0.0
    order = torch.argsort(task, stable=True)
    bounds = torch.searchsorted(task[order], torch.arange(T + 1))
    for j, t in enumerate(tasks):
        a, b = int(bounds[j]), int(bounds[j + 1])
        if a == b:
            continue
        idx = order[a:b]
        loss = float(total_t[j] / count_t[j].clamp(min=1)) / float(loss_scale[j])
        row[f"val_loss/{t.name}"] = loss
        total += t.weight * loss
        f = units[idx] if t.kind == "regression" else h[idx]
        pred = t.transform(f[:, :t.n_outputs].float() if t.kind != "regression"
                           else f[:, :t.n_outputs]).cpu().numpy()
        yt = y2[idx, :t.target_width].numpy()
        yt = yt[:, 0] if t.target_width == 1 else yt
        for m, v in t.scores(yt, pred).items():
            row[f"val/{t.name}/{m}"] = v
    row["val_loss"] = total
    return row


def predict(net: Any, specs: list, X: Any, families: list, tasks: list[str] | None = None,
            batch_size: int = 4096, task: Any = None) -> Any:
    """The predictions of ``net`` (tasks ``specs``) on ``X``: what
    :meth:`~regmtl.deep.Trainer.predict` returns, whose parameters ``X``, ``tasks``,
    ``batch_size`` and ``task`` are these; ``families``: the per-row loss families,
    ``(spec, CPU mask of its tasks)``."""
    x = as_inputs(X)
    device = next(net.parameters()).device
    if task is not None:
        pos = torch.from_numpy(row_tasks(task, specs, n_rows(x)))
        out = outputs(net, x, device, batch_size, rows=pos)
        width = max(t.n_outputs if t.kind == "multiclass" else t.target_width
                    for t in specs)
        res = torch.full((len(pos), width), float("nan"), dtype=torch.float64)
        for spec, mask in families:
            rows = torch.nonzero(mask[pos])[:, 0]
            p = spec.transform(out[rows, :spec.n_outputs].to(
                torch.float64 if spec.kind == "regression" else torch.float32))
            p = p[:, None] if p.ndim == 1 else p
            for k in torch.unique(pos[rows]).tolist():
                check_finite_predictions(specs[k].name, p[pos[rows] == k], net)
            res[rows, :p.shape[1]] = p.double()
        return (res[:, 0] if width == 1 else res).numpy()
    out = outputs(net, x, device, batch_size)
    by_name = {t.name: t for t in specs}
    names = net._selected(tasks)
    preds = {k: by_name[k].transform(out[k]).cpu() for k in names}
    for k, p in preds.items():
        check_finite_predictions(k, p, net)
    return {k: p.numpy() for k, p in preds.items()}


def check_finite_predictions(task: str, pred: torch.Tensor, net: Any) -> None:
    """Refuse to return non-finite predictions: a ``FloatingPointError`` naming the task, the
    rows and the net's largest weight (a diverged fit, or inputs far outside the training
    data, overflow the outputs)."""
    bad = ~torch.isfinite(pred)
    if not bool(bad.any()):
        return
    rows = int(bad.reshape(len(pred), -1).any(dim=1).sum()) if pred.ndim else 1
    big = max((float(q.detach().abs().max()) for q in net.parameters() if q.numel()),
              default=0.0)
    raise FloatingPointError(
        f"The predictions of task {task!r} are not finite on {rows} of {len(pred)} rows: the "
        f"net's outputs overflow at these inputs (its largest weight is {big:.3g}). The fit "
        f"diverged or the inputs lie far outside the training data: refit with a lower lr or "
        f"grad_clip, standardize the inputs, or fit with on_divergence='restore_best'.")


def wide(t: torch.Tensor) -> torch.Tensor:
    """Outputs at least in float32 (float64 where the target map made them so)."""
    return t if t.dtype == torch.float64 else t.float()


def cat_inputs(xs: list) -> Any:
    """Concatenate input batches (tensors, sparse CSR tensors or dicts of them)."""
    first = xs[0]
    if isinstance(first, dict):
        return {k: cat_inputs([x[k] for x in xs]) for k in first}
    if isinstance(first, torch.Tensor) and first.layout == torch.sparse_csr:
        import scipy.sparse as sp

        mats = [sp.csr_matrix((x.values().cpu().numpy(), x.col_indices().cpu().numpy(),
                               x.crow_indices().cpu().numpy()), shape=tuple(x.shape))
                for x in xs]
        return SparseRows(sp.vstack(mats).tocsr())
    return torch.cat(xs)
