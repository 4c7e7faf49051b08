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
  prediction on the training labels: the mean (regression, count: :math:`f = \log \bar y`),
  the base rate (binary), the class frequencies (multiclass). For the default losses
  :math:`c_t` is :math:`\tfrac12` (squared loss on standardized targets), the entropy
  :math:`H(p)` of the base rate, or that of the class frequencies. A normalized loss of 1 is
  the constant predictor; below 1 the task has learned something (1 - R² for the squared
  loss, :math:`1 - D^2` for the Poisson loss).

Both come from one pass over the training labels (:class:`TargetMoments`, exact and
mergeable: Chan et al.'s pairwise update), made again only for losses without a closed form
(``"mae"``, ``"huber"``, ``"quantile"``, ``"poisson"``, callables: for ``"poisson"``,
half the mean Poisson deviance of the mean, so its normalized loss is :math:`1 - D^2`).
Count targets are not standardized (the net's log mean needs the counts themselves).

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
from .conversion import find_stack_level
from .tasks import TaskSpec

nn = torch.nn
_F64 = torch.float64

__all__ = ["TargetScale", "TargetMoments", "constant_losses"]

#: the kinds whose labels are summarized by moments (the others by class counts)
_MOMENT_KINDS = ("regression", "count")


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

    #: counts every change of any map made through :meth:`set` or ``load_state_dict`` (the
    #: nets' stacked per-row form is rebuilt when it moves)
    changes: int = 0

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
        TargetScale.changes += 1

    @staticmethod
    def set_many(scales: list[TargetScale], maps: list[tuple[torch.Tensor, torch.Tensor]]
                 ) -> None:
        """:meth:`set` of several maps (the buffers written in place, one change counted)."""
        for s, (mean, scale) in zip(scales, maps, strict=True):
            b = s._buffers
            b["mean"].copy_(mean)
            b["scale"].copy_(scale)
        TargetScale.changes += 1

    def is_identity(self) -> bool:
        """Whether the map is still the identity (never set)."""
        return bool((self.mean == 0).all() and (self.scale == 1).all())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        for name, fill in (("mean", 0.0), ("scale", 1.0)):  # saved before nets held the map
            state_dict.setdefault(prefix + name, torch.full_like(getattr(self, name), fill))
            if state_dict[prefix + name].dtype != _F64:  # saved in float32 before
                state_dict[prefix + name] = state_dict[prefix + name].to(_F64)
        mean, scale = state_dict[prefix + "mean"], state_dict[prefix + "scale"]
        if "meta" not in (mean.device.type, scale.device.type) and not (
                bool(torch.isfinite(mean).all()) and bool(torch.isfinite(scale).all())
                and bool((scale > 0).all())):
            # a map with scale <= 0 (or not finite) predicts the targets mirrored or not at
            # all: refused, as load_state_dict refuses a tensor of the wrong shape
            error_msgs.append(f"{prefix}scale must be finite and > 0 and {prefix}mean finite, "
                              f"got scale {scale.flatten().tolist()[:5]} and mean "
                              f"{mean.flatten().tolist()[:5]}")
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        TargetScale.changes += 1


class TargetMoments:
    r"""Observed label statistics per task, accumulated over batches and merged over ranks.

    Regression and count tasks: per output, the count :math:`n`, mean :math:`m` and sum of
    squared deviations :math:`M_2` (Chan et al.'s update: exact in any batch order).
    Classification: the count of each class. NaN labels are skipped.

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
        self._fresh = True  # nothing added yet
        self._stack: tuple | None = None  # (names, n, m, m2) stacked by flush
        groups: dict[tuple[bool, int], list[str]] = {}
        for t in tasks:
            reg = t.kind in _MOMENT_KINDS
            width = t.target_width if reg else t.n_outputs if t.kind == "multiclass" else 2
            groups.setdefault((reg, width), []).append(t.name)
        for (reg, width), names in groups.items():  # zeros, as views of one tensor per group
            for d in (self.n, self.m, self.m2) if reg else (self.counts,):
                d.update(zip(names, torch.zeros(len(names), width, dtype=_F64).unbind(0),
                             strict=True))

    def update(self, name: str, y: torch.Tensor) -> None:
        """Add a batch of task ``name``'s labels (NaN = missing)."""
        y = y.detach().to("cpu", _F64)
        if name in self.counts:
            self._fresh = False
            obs = y[~torch.isnan(y)].long()
            self.counts[name] += torch.bincount(obs, minlength=len(self.counts[name])).to(_F64)
            return
        self._fresh, self._stack = False, None
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
            self._is_reg = torch.tensor([self.tasks[n].kind in _MOMENT_KINDS
                                         for n in self._names])
        from .data import check_rows

        check_rows(task, len(self._names))  # a loader's batch: refused before it is counted
        task = task.detach().to("cpu", torch.int64)
        y = y.detach().to("cpu", _F64)
        y = y[:, None] if y.ndim == 1 else y
        every = bool(self._is_reg.all())  # all regression: no row to leave out
        reg = None if every else self._is_reg[task]
        if reg is not None and not bool(self._is_reg.any()):
            self._count_rows(task, y, reg)  # no regression task
            return
        yr, tr = (y, task) if every else (y[reg], task[reg])
        W = self._rn.shape[1]
        if yr.shape[1] != W:
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
        if not every:
            self._count_rows(task, y, reg)

    def _count_rows(self, task: torch.Tensor, y: torch.Tensor, reg: torch.Tensor) -> None:
        """The class counts of the classification rows (``~reg``) of a per-row batch."""
        yc, tc = y[~reg][:, 0], task[~reg]
        ok = ~torch.isnan(yc)
        if ok.any():
            self._rc.index_put_((tc[ok], yc[ok].long()), torch.ones(int(ok.sum()), dtype=_F64),
                                accumulate=True)

    def flush(self) -> None:
        """Merge the per-row statistics of :meth:`update_rows` into the per-task ones (every
        task at once)."""
        if not hasattr(self, "_names"):
            return
        names = self._names
        del self._names
        reg = [i for i, k in enumerate(names) if k in self.n]
        if reg:
            W = self._rn.shape[1]
            keys = [names[i] for i in reg]
            widths = [len(self.n[k]) for k in keys]
            rows = torch.tensor(reg, dtype=torch.int64)
            nb, mb, m2b = self._rn[rows], self._rm[rows], self._rm2[rows]
            if self._fresh:  # merged into zeros: the batch's statistics themselves
                n, m, m2 = nb, mb, m2b
            else:
                na, ma, m2a = (torch.stack([_pad(d[k], W) for k in keys])
                               for d in (self.n, self.m, self.m2))
                n = na + nb
                delta = mb - ma
                frac = torch.where(n > 0, nb / n.clamp(min=1), 0.0)
                m = ma + delta * frac
                m2 = m2a + m2b + delta**2 * na * frac
            if all(w == W for w in widths):
                for d, v in ((self.n, n), (self.m, m), (self.m2, m2)):
                    d.update(zip(keys, v.unbind(0), strict=True))
            else:
                for j, (k, w) in enumerate(zip(keys, widths, strict=True)):
                    self.n[k], self.m[k], self.m2[k] = n[j, :w], m[j, :w], m2[j, :w]
            self._stack = (tuple(keys), n, m, m2)
        for i, k in enumerate(names):
            if k in self.counts:
                self.counts[k] = self.counts[k] + self._rc[i, :len(self.counts[k])]
        self._fresh = False

    def observed_all(self, names: list[str]) -> dict[str, float]:
        """:meth:`observed` of every task in ``names`` at once."""
        reg = [k for k in names if k in self.n]
        out = dict(zip(reg, self.stacked(reg)[0].sum(1).tolist(), strict=True)) if reg else {}
        cls = [k for k in names if k in self.counts]
        if cls:
            K = max(len(self.counts[k]) for k in cls)
            totals = torch.stack([_pad(self.counts[k], K) for k in cls]).sum(1)
            out.update(zip(cls, totals.tolist(), strict=True))
        return out

    def stacked(self, names: list[str]) -> tuple[torch.Tensor, ...]:
        """``(n, m, m2)`` of the regression tasks ``names``, each (len(names), max width),
        zero beyond a task's width (read them, do not modify them in place)."""
        if self._stack is not None and self._stack[0] == tuple(names):
            return self._stack[1:]
        W = max(len(self.n[k]) for k in names)
        return tuple(torch.stack([_pad(d[k], W) for k in names])
                     for d in (self.n, self.m, self.m2))

    def _merge(self, name: str, nb: torch.Tensor, mb: torch.Tensor, m2b: torch.Tensor) -> None:
        self._fresh, self._stack = False, None
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
        self._fresh, self._stack = False, None
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
        self._fresh, self._stack = False, None

    def mean(self, name: str) -> torch.Tensor:
        """Mean of each output of a regression task (0 where nothing is observed)."""
        return self.m[name]

    def std(self, name: str) -> torch.Tensor:
        """Standard deviation (population) of each output of a regression task."""
        return torch.sqrt(self.m2[name] / self.n[name].clamp(min=1))

    def observed(self, name: str) -> float:
        """Observed labels of the task."""
        return float((self.n[name] if name in self.n else self.counts[name]).sum())


def _pad(v: torch.Tensor, width: int) -> torch.Tensor:
    """A 1-D tensor padded with zeros to ``width``."""
    return v if len(v) == width else torch.nn.functional.pad(v, (0, width - len(v)))


def scales_of(moments: TargetMoments, names: list[str]
              ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """:func:`scale_of` of every regression task in ``names`` at once (the same checks and
    values, without a loop of tensor operations over the tasks)."""
    if not names:
        return {}
    n, m, m2 = moments.stacked(names)
    sd = torch.sqrt(m2 / n.clamp(min=1))
    tiny = 1e-12 * m.abs().clamp(min=1.0)
    sd = torch.where((n > 1) & (sd > tiny), sd, torch.ones_like(sd))
    bad = ~(torch.isfinite(m) & torch.isfinite(sd)).all(1)
    if bool(bad.any()):
        scale_of(moments, names[int(torch.nonzero(bad)[0, 0])])  # raises, naming the task
    widths = [len(moments.n[k]) for k in names]
    if all(w == m.shape[1] for w in widths):  # rows as views at once, not slice by slice
        return dict(zip(names, zip(m.unbind(0), sd.unbind(0), strict=True), strict=True))
    return {k: (m[j, :w], sd[j, :w])
            for j, (k, w) in enumerate(zip(names, widths, strict=True))}


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
    if spec.kind == "count":
        return torch.log(moments.mean(spec.name).clamp(min=1e-12))[None, :]
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


def _closed_forms(tasks: list[TaskSpec], moments: TargetMoments,
                  scales: dict[str, TargetScale]) -> dict[str, float]:
    """:func:`_closed_form` of the tasks with the default losses, every task at once (the
    others are left out)."""
    out: dict[str, float] = {}
    mse = [t.name for t in tasks if t.loss == "mse" and t.name in moments.n]
    if mse:
        n, _, m2 = moments.stacked(mse)
        W = n.shape[1]
        s2 = torch.stack([_pad(scales[k]._buffers["scale"].detach().to("cpu", _F64), W)
                          if k in scales else torch.ones(W, dtype=_F64) for k in mse]) ** 2
        s2 = torch.where(s2 > 0, s2, 1.0)  # (padding: m2 is 0 there)
        total = n.sum(1)
        val = 0.5 * (m2 / s2).sum(1) / total.clamp(min=1)
        out.update((k, v if c > 0 else None)
                   for k, v, c in zip(mse, val.tolist(), total.tolist(), strict=True))
    cls = [t.name for t in tasks if t.loss in ("bce", "ce") and t.name in moments.counts]
    if cls:
        K = max(len(moments.counts[k]) for k in cls)
        c = torch.stack([_pad(moments.counts[k], K) for k in cls])
        f = c / c.sum(1, keepdim=True).clamp(min=1)
        ent = -torch.where(c > 0, f * torch.log(torch.where(c > 0, f, 1.0)), 0.0).sum(1)
        out.update(zip(cls, ent.tolist(), strict=True))
    return {k: v for k, v in out.items() if v is not None}


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
    closed = _closed_forms(tasks, moments, scales)
    observed = moments.observed_all([t.name for t in tasks])
    for t in tasks:
        if observed[t.name] == 0:
            out[t.name] = math.nan
            continue
        value = closed[t.name] if t.name in closed else _closed_form(
            t, moments, scales.get(t.name))
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
                              UserWarning, stacklevel=find_stack_level())
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
