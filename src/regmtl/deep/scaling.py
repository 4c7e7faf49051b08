r"""Target standardization and loss scales: no task dominates by its units.

A regression task whose targets are in the thousands has squared losses a million times those
of a task in units; a rare binary event has a log loss far below that of a balanced one. The
:class:`~regmtl.deep.Trainer` removes both effects before it weights the tasks:

- **Targets.** Each regression output :math:`j` of task :math:`t` is standardized with the
  mean :math:`\mu_{tj}` and standard deviation :math:`\sigma_{tj}` of its observed training
  labels. The net learns :math:`h` with :math:`y \approx \sigma h + \mu`; the affine map is held
  by the net (:class:`TargetScale`, buffers saved in its ``state_dict``), so ``net(x)`` and
  every prediction are in the target's own units.
- **Loss scales.** Each task's loss is divided by :math:`c_t`, the loss of the best constant
  prediction on the training labels: the mean (regression), the base rate (binary), the class
  frequencies (multiclass). For the default losses :math:`c_t` is :math:`\tfrac12` (squared
  loss on standardized targets), the entropy :math:`H(p)` of the base rate, or that of the class
  frequencies. A normalized loss of 1 is the constant predictor; below 1 the task has learned
  something (1 - R² for the squared loss).

Both come from one pass over the training labels (:class:`TargetMoments`, exact and
mergeable: Chan et al.'s pairwise update), made again only for losses without a closed form
(``"mae"``, ``"huber"``, callables).

References
----------
Chan, Golub & LeVeque (1983). Algorithms for computing the sample variance: analysis and
recommendations. The American Statistician 37, 242-247.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Mapping

from ._torch import torch
from .tasks import TaskSpec

nn = torch.nn
_F64 = torch.float64

__all__ = ["TargetScale", "TargetMoments", "constant_losses"]


class TargetScale(nn.Module):
    r"""The affine map :math:`y = \sigma \odot h + \mu` from a regression head to its units.

    Buffers ``mean`` and ``scale`` (one entry per output; identity until set; float64, so a
    target far from zero, 1.7e9 + O(10), keeps its variation: the mean is taken out before the
    net's float32) live in the net's ``state_dict``, so a saved net predicts in the target's
    units. A ``state_dict``
    written before nets held them loads as the identity.

    Parameters
    ----------
    n_outputs : int
        Outputs of the task's head.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.scaling import TargetScale
    >>> s = TargetScale(1)
    >>> s.set(torch.tensor([10.0]), torch.tensor([2.0]))
    >>> s(torch.tensor([[0.5]])).tolist(), s.standardize(torch.tensor([12.0])).tolist()
    ([[11.0]], [1.0])
    """

    def __init__(self, n_outputs: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(int(n_outputs), dtype=_F64))
        self.register_buffer("scale", torch.ones(int(n_outputs), dtype=_F64))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # at least the buffers' precision: a mean of 4e4 in bfloat16 keeps 3 digits
        dtype = torch.promote_types(h.dtype, self.scale.dtype)
        return h.to(dtype) * self.scale.to(dtype) + self.mean.to(dtype)

    def standardize(self, y: torch.Tensor) -> torch.Tensor:
        """``(y - mean) / scale`` for a target batch of shape (B,) or (B, n_outputs), in
        ``y``'s dtype and on its device."""
        mean, scale = self.mean.to(y), self.scale.to(y)
        if y.ndim == 1:
            mean, scale = mean[0], scale[0]
        return (y - mean) / scale

    def set(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Set the map (``scale`` > 0, both finite, one entry per output)."""
        self.mean.copy_(mean.to(self.mean))
        self.scale.copy_(scale.to(self.scale))

    def is_identity(self) -> bool:
        """Whether the map is still the identity (never set)."""
        return bool((self.mean == 0).all() and (self.scale == 1).all())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name, fill in (("mean", 0.0), ("scale", 1.0)):  # saved before nets held the map
            state_dict.setdefault(prefix + name, torch.full_like(getattr(self, name), fill))
            if state_dict[prefix + name].dtype != _F64:  # saved in float32 before
                state_dict[prefix + name] = state_dict[prefix + name].to(_F64)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class TargetMoments:
    r"""Observed label statistics per task, accumulated over batches and merged over ranks.

    Regression: per output, the count :math:`n`, mean :math:`m` and sum of squared deviations
    :math:`M_2` (Chan et al.'s update: exact in any batch order). Classification: the count of
    each class. NaN labels are skipped.

    Parameters
    ----------
    tasks : list of TaskSpec
        The tasks.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import TaskSpec
    >>> from regmtl.deep.scaling import TargetMoments
    >>> m = TargetMoments([TaskSpec("y"), TaskSpec("c", kind="binary")])
    >>> m.update("y", torch.tensor([1.0, 2.0, float("nan")]))
    >>> m.update("y", torch.tensor([3.0, 6.0]))
    >>> m.update("c", torch.tensor([0.0, 1.0, 1.0, 1.0]))
    >>> m.mean("y").tolist(), m.std("y").tolist(), m.counts["c"].tolist()
    ([3.0], [1.8708286933869707], [1.0, 3.0])
    """

    def __init__(self, tasks: list[TaskSpec]):
        self.tasks = {t.name: t for t in tasks}
        self.n: dict[str, torch.Tensor] = {}
        self.m: dict[str, torch.Tensor] = {}
        self.m2: dict[str, torch.Tensor] = {}
        self.counts: dict[str, torch.Tensor] = {}
        for t in tasks:
            if t.kind == "regression":
                k = t.target_width
                self.n[t.name] = torch.zeros(k, dtype=_F64)
                self.m[t.name] = torch.zeros(k, dtype=_F64)
                self.m2[t.name] = torch.zeros(k, dtype=_F64)
            else:
                self.counts[t.name] = torch.zeros(t.n_outputs if t.kind == "multiclass" else 2,
                                                  dtype=_F64)

    def update(self, name: str, y: torch.Tensor) -> None:
        """Add a batch of task ``name``'s labels (NaN = missing)."""
        y = y.detach().to("cpu", _F64)
        if name in self.counts:
            obs = y[~torch.isnan(y)].long()
            self.counts[name] += torch.bincount(obs, minlength=len(self.counts[name])).to(_F64)
            return
        y = y.reshape(len(y), len(self.n[name]))
        mask = ~torch.isnan(y)
        nb = mask.sum(0).to(_F64)
        mb = torch.where(mask, y, 0.0).sum(0) / nb.clamp(min=1)
        m2b = torch.where(mask, (y - mb) ** 2, 0.0).sum(0)
        self._merge(name, nb, mb, m2b)

    def update_rows(self, task: torch.Tensor, y: torch.Tensor) -> None:
        """Add a batch of per-row labels (row i labels its own task ``task[i]``), every task at
        once by segment sums; :meth:`flush` merges them into the per-task statistics."""
        if not hasattr(self, "_names"):
            self._names = list(self.tasks)
            T = len(self._names)
            W = max(t.target_width for t in self.tasks.values())
            K = max((len(c) for c in self.counts.values()), default=1)
            self._rn = torch.zeros(T, W, dtype=_F64)
            self._rm = torch.zeros(T, W, dtype=_F64)
            self._rm2 = torch.zeros(T, W, dtype=_F64)
            self._rc = torch.zeros(T, K, dtype=_F64)
            self._is_reg = torch.tensor([self.tasks[n].kind == "regression"
                                         for n in self._names])
        task = task.detach().to("cpu", torch.int64)
        y = y.detach().to("cpu", _F64)
        y = y[:, None] if y.ndim == 1 else y
        reg = self._is_reg[task]
        yr = y[reg]
        tr = task[reg]
        W = self._rn.shape[1]
        yr = torch.nn.functional.pad(yr, (0, W - yr.shape[1]), value=float("nan"))
        mask = ~torch.isnan(yr)
        nb = torch.zeros_like(self._rn).index_add_(0, tr, mask.to(_F64))
        sb = torch.zeros_like(self._rn).index_add_(0, tr, torch.where(mask, yr, 0.0))
        mb = sb / nb.clamp(min=1)
        dev = torch.where(mask, yr - mb[tr], 0.0)
        m2b = torch.zeros_like(self._rn).index_add_(0, tr, dev**2)
        n = self._rn + nb
        delta = mb - self._rm
        frac = torch.where(n > 0, nb / n.clamp(min=1), 0.0)
        self._rm = self._rm + delta * frac
        self._rm2 = self._rm2 + m2b + delta**2 * self._rn * frac
        self._rn = n
        yc, tc = y[~reg][:, 0], task[~reg]
        ok = ~torch.isnan(yc)
        if ok.any():
            self._rc.index_put_((tc[ok], yc[ok].long()), torch.ones(int(ok.sum()), dtype=_F64),
                                accumulate=True)

    def flush(self) -> None:
        """Merge the per-row statistics of :meth:`update_rows` into the per-task ones."""
        if not hasattr(self, "_names"):
            return
        for i, name in enumerate(self._names):
            if name in self.n:
                w = len(self.n[name])
                self._merge(name, self._rn[i, :w], self._rm[i, :w], self._rm2[i, :w])
            else:
                self.counts[name] = self.counts[name] + self._rc[i, :len(self.counts[name])]
        del self._names

    def _merge(self, name: str, nb: torch.Tensor, mb: torch.Tensor, m2b: torch.Tensor) -> None:
        na, ma = self.n[name], self.m[name]
        n = na + nb
        delta = mb - ma
        frac = torch.where(n > 0, nb / n.clamp(min=1), 0.0)
        self.m[name] = ma + delta * frac
        self.m2[name] = self.m2[name] + m2b + delta**2 * na * frac
        self.n[name] = n

    def _flat(self) -> torch.Tensor:
        parts = [torch.cat([self.n[k], self.m[k], self.m2[k]]) for k in self.n]
        return torch.cat(parts + [self.counts[k] for k in self.counts])

    def _load_flat(self, flat: torch.Tensor) -> TargetMoments:
        i = 0
        for k in self.n:
            w = len(self.n[k])
            self.n[k], self.m[k], self.m2[k] = (flat[i:i + w], flat[i + w:i + 2 * w],
                                                flat[i + 2 * w:i + 3 * w])
            i += 3 * w
        for k in self.counts:
            self.counts[k] = flat[i:i + len(self.counts[k])]
            i += len(self.counts[k])
        return self

    def merge_ranks(self, gather) -> None:
        """Merge the statistics of every rank, in rank order (the same result on each).

        Parameters
        ----------
        gather : callable
            ``gather(tensor) -> list of tensors``, one per rank
            (:meth:`~regmtl.deep.distributed.Context.gather`).
        """
        parts = gather(self._flat())
        merged = TargetMoments(list(self.tasks.values()))
        for flat in parts:
            other = TargetMoments(list(self.tasks.values()))._load_flat(flat.to("cpu", _F64))
            for k in merged.n:
                merged._merge(k, other.n[k], other.m[k], other.m2[k])
            for k in merged.counts:
                merged.counts[k] = merged.counts[k] + other.counts[k]
        self.n, self.m, self.m2, self.counts = merged.n, merged.m, merged.m2, merged.counts

    def mean(self, name: str) -> torch.Tensor:
        """Mean of each output of a regression task (0 where nothing is observed)."""
        return self.m[name]

    def std(self, name: str) -> torch.Tensor:
        """Standard deviation (population) of each output of a regression task."""
        return torch.sqrt(self.m2[name] / self.n[name].clamp(min=1))

    def observed(self, name: str) -> float:
        """Observed labels of the task."""
        return float((self.n[name] if name in self.n else self.counts[name]).sum())


def scale_of(moments: TargetMoments, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The map of task ``name`` from its moments: mean and standard deviation per output (an
    output without observed labels or with a constant one keeps scale 1), in float64: the
    mean is taken out of the labels before the net's float32, so a target far from zero keeps
    its variation. A ValueError where the spread itself is beyond float32 (the standardized
    outputs are float32, but so would be the errors on the labels' own scale)."""
    mean, sd = moments.mean(name), moments.std(name)
    tiny = 1e-12 * mean.abs().clamp(min=1.0)
    ok = (moments.n[name] > 1) & (sd > tiny)
    sd = torch.where(ok, sd, torch.ones_like(sd))
    if not bool((torch.isfinite(mean) & torch.isfinite(sd)).all()):
        raise ValueError(f"the regression targets of task {name!r} (mean {mean.tolist()}, "
                         f"standard deviation {sd.tolist()}) overflow float64: divide them by "
                         "a power of ten.")
    return mean, sd


def _constant_output(spec: TaskSpec, moments: TargetMoments, scale: TargetScale | None
                     ) -> torch.Tensor:
    """The head output (1, n_outputs) of the best constant prediction of the labels."""
    if spec.kind == "regression":
        mean = moments.mean(spec.name)
        if scale is not None:
            mean = (mean - scale.mean.to(_F64).cpu()) / scale.scale.to(_F64).cpu()
        return mean[None, :]
    freq = moments.counts[spec.name] / moments.counts[spec.name].sum().clamp(min=1)
    logit = torch.log(freq.clamp(min=1e-12))
    if spec.kind == "binary":
        logit = (logit[1] - logit[0]).clamp(-30.0, 30.0).reshape(1, 1)
    return logit.reshape(1, -1)


def _closed_form(spec: TaskSpec, moments: TargetMoments, scale: TargetScale | None
                 ) -> float | None:
    """The constant predictor's mean loss for the default losses, else None."""
    if spec.loss == "mse":
        s2 = (torch.ones_like(moments.m2[spec.name]) if scale is None
              else scale.scale.to(_F64).cpu() ** 2)
        n = moments.n[spec.name].sum()
        return float(0.5 * (moments.m2[spec.name] / s2).sum() / n) if n > 0 else None
    if spec.loss in ("bce", "ce"):
        c = moments.counts[spec.name]
        f = c[c > 0] / c.sum().clamp(min=1)
        return float(-(f * torch.log(f)).sum())
    return None


def constant_losses(tasks: list[TaskSpec], moments: TargetMoments,
                    scales: dict[str, TargetScale], batches: Iterable | None = None,
                    reduce_sum=None) -> dict[str, float]:
    r"""Each task's loss :math:`c_t` of the best constant prediction on its training labels.

    Closed forms for ``"mse"`` (in the units of ``scales``), ``"bce"`` and ``"ce"``; the other
    losses are evaluated on ``batches`` at the constant.

    Parameters
    ----------
    tasks : list of TaskSpec
        The tasks.
    moments : TargetMoments
        Their label statistics.
    scales : dict of str to TargetScale
        The regression tasks' maps (their targets are standardized before the loss).
    batches : callable, optional
        ``batches() -> iterator of (task, labels)`` over the training labels, for losses
        without a closed form.
    reduce_sum : callable, optional
        Sums a tensor over ranks (data split over ranks); None in one process.

    Returns
    -------
    dict of str to float
        :math:`c_t` per task; NaN for a task without observed labels.
    """
    out: dict[str, float] = {}
    pending = []
    for t in tasks:
        if moments.observed(t.name) == 0:
            out[t.name] = math.nan
            continue
        value = _closed_form(t, moments, scales.get(t.name))
        if value is None:
            pending.append(t)
        else:
            out[t.name] = value
    if pending:
        if batches is None:
            raise ValueError("constant_losses: losses without a closed form need batches.")
        specs = {t.name: t for t in pending}
        const = {t.name: _constant_output(t, moments, scales.get(t.name)) for t in pending}
        sums = torch.zeros(len(pending), 2, dtype=_F64)
        index = {t.name: i for i, t in enumerate(pending)}
        with torch.no_grad():
            for name, y in batches():
                if name not in specs:
                    continue
                spec = specs[name]
                y = y.detach().to("cpu", _F64)
                if name in scales:
                    y = scales[name].standardize(y)
                n_obs = float((~torch.isnan(y)).sum())
                if n_obs == 0:
                    continue
                f = const[name].expand(len(y), -1)
                sums[index[name]] += torch.tensor(
                    [float(spec.task_loss(f, y)) * n_obs, n_obs], dtype=_F64)
        if reduce_sum is not None:
            sums = reduce_sum(sums)
        for t in pending:
            total, n = sums[index[t.name]]
            out[t.name] = float(total / n) if n > 0 else math.nan
    return out


def loss_scales(tasks: list[TaskSpec], constant: dict[str, float]) -> torch.Tensor:
    """The divisors :math:`c_t` (T,) from :func:`constant_losses`: 1 for a task whose labels
    are all alike or absent (its loss cannot be compared with a constant; a UserWarning names
    it)."""
    out = []
    for t in tasks:
        c = constant[t.name]
        if not (math.isfinite(c) and c > 1e-12):
            if math.isfinite(c):
                warnings.warn(f"task {t.name!r}: every training label is the same, so its loss "
                              "is not normalized (a constant predicts it exactly).",
                              UserWarning, stacklevel=3)
            c = 1.0
        out.append(c)
    return torch.tensor(out, dtype=torch.float32)


def label_batches(sources: dict, tasks: list[TaskSpec]) -> Iterator:
    """``(task, labels)`` over the training data: whole targets of a dataset, or every batch
    of a loader (a source keyed by a task name gives that task's labels only)."""
    from .data import MultiTaskDataset

    names = {t.name for t in tasks}
    order = [t.name for t in tasks]
    for key, src in sources.items():
        if isinstance(src, MultiTaskDataset):
            chunks = [src.targets if src.targets is not None else (src.task, src.y)]
        else:
            chunks = (ys for _, ys in src)
        for ys in chunks:
            if not isinstance(ys, Mapping):  # per row: (task index, y), grouped by task
                task, y = ys
                task = task.detach().cpu()
                for i in torch.unique(task).tolist():
                    yield order[i], y.detach().cpu()[task == i]
                continue
            for name, y in ys.items():
                if name in names and (key is None or key == name):
                    yield name, y


def moments_of(sources: dict, tasks: list[TaskSpec]) -> TargetMoments:
    """The label statistics of the training data: per-row sources by segment sums (every
    task at once), per-task ones task by task."""
    from .data import MultiTaskDataset

    moments = TargetMoments(tasks)
    names = {t.name for t in tasks}
    for key, src in sources.items():
        chunks = ([src.targets if src.targets is not None else (src.task, src.y)]
                  if isinstance(src, MultiTaskDataset) else (ys for _, ys in src))
        for ys in chunks:
            if not isinstance(ys, Mapping):
                moments.update_rows(*ys)
                continue
            for name, y in ys.items():
                if name in names and (key is None or key == name):
                    moments.update(name, y)
    moments.flush()
    return moments
