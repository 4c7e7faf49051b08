r"""Expert use of the mixtures of experts (MMoE, CGC, PLE): what each gate gives each expert.

A gated net's ``expert_gates(x)`` gives, for every gate g (a task's, or PLE's shared gate
below the last level) and every row x, softmax weights :math:`\pi_g(x)` over the
:math:`K_g` experts it reads. Over a data set of n rows :func:`expert_usage` reports

.. math::

    \bar\pi_{gk} = \frac1n \sum_x \pi_{gk}(x), \qquad
    \bar H_g = \frac1n \sum_x -\sum_k \pi_{gk}(x) \log \pi_{gk}(x)
    \in [0, \log K_g],

each expert's mean share (the shares of a gate sum to 1) and the gate's mean entropy
(:math:`\log K_g` for a uniform gate, 0 for a gate that picks one expert on every row). An
expert is *unused* at its level when every gate that reads it gives it a mean share below
``unused`` / :math:`K_g` (a tenth of a uniform gate's share by default). The gates have
*collapsed* at a level when every task's gate puts at least ``collapse`` (0.9) of its mean
weight on one expert, or when more than half of the level's experts are unused: the mixture
is then one expert (a hard-shared trunk, or one net per task) and the experts it ignores learn
nothing. Gates over one expert (:math:`K_g = 1`) are reported, never judged.

The :class:`~regmtl.deep.Trainer` computes it at the end of ``fit`` for a net with gates, on
the validation data (else on up to :data:`MAX_ROWS` training rows), keeps it as
``expert_usage_`` and warns on a collapse;
:func:`~regmtl.report.training_report` shows it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._options import check_option
from ._torch import torch
from .conversion import find_stack_level
from .inputs import as_inputs, chunks, n_rows, take, to_device

__all__ = ["ExpertUsage", "expert_usage", "has_gates", "usage_after_fit", "MAX_ROWS"]

#: the most rows the usage is computed on (evenly spaced rows of a larger set)
MAX_ROWS = 10_000
#: an expert is unused when each gate reading it gives it less than this times 1/K
UNUSED = 0.1
#: a task's gate has collapsed onto one expert when it gives it at least this mean share
COLLAPSE = 0.9


def has_gates(net: Any) -> bool:
    """Whether ``net`` is a mixture of experts that reports its gates (``expert_gates``)."""
    return callable(getattr(net, "expert_gates", None))


@dataclass
class ExpertUsage:
    """The expert use of a gated net over a data set (see the module's docstring).

    Attributes
    ----------
    shares : DataFrame
        Index (level, gate), one column per expert: the gate's mean share of each expert
        (NaN where the gate does not read it); each row sums to 1.
    gates : DataFrame
        Index (level, gate): ``entropy`` (mean per-row entropy), ``max_entropy``
        (:math:`\\log K_g`), ``top_expert`` and ``top_share`` (its largest mean share),
        ``rows`` (the rows it is averaged over: all, or a task's own rows of per-row data).
    unused : list of (int, str)
        The (level, expert) pairs no gate uses.
    collapsed : list of int
        The levels whose gates have collapsed.
    warning : str or None
        What collapsed and why (None when nothing did).
    n_rows : int
        The rows the means are over.
    """

    shares: pd.DataFrame
    gates: pd.DataFrame
    unused: list
    collapsed: list
    warning: str | None
    n_rows: int

    def table(self, level: int) -> pd.DataFrame:
        """One level's gates as one table: a row per gate, the experts' shares, then the
        entropy, its maximum and the top expert."""
        shares = self.shares.xs(level, level="level").dropna(axis=1, how="all")
        return pd.concat([shares, self.gates.xs(level, level="level")], axis=1)

    @property
    def levels(self) -> list[int]:
        """The levels, in order (one for MMoE and CGC)."""
        return sorted({int(v) for v in self.shares.index.get_level_values("level")})


def _spaced(n: int, limit: int) -> torch.Tensor | None:
    """At most ``limit`` evenly spaced row positions of ``n`` (None: all of them)."""
    if n <= limit:
        return None
    return torch.from_numpy(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _rows(X: Any, limit: int) -> Any:
    """At most ``limit`` evenly spaced rows of ``X``."""
    idx = _spaced(n_rows(X), limit)
    return X if idx is None else take(X, idx)


def expert_usage(net: Any, X: Any, *, batch_size: int = 4096, unused: float = UNUSED,
                 collapse: float = COLLAPSE, max_rows: int = MAX_ROWS) -> ExpertUsage:
    """Each gate's mean share of each expert and its entropy over ``X``; unused experts and
    collapse (the rule of the module's docstring).

    Parameters
    ----------
    net : MMoE, CGC or PLE
        A net with ``expert_gates(x)``; it is run in evaluation mode (its mode is restored).
    X : array, tensor, sparse matrix or dict of them
        The rows (what the net reads); at most ``max_rows`` evenly spaced ones are used.
    batch_size : int, default=4096
        Rows per forward pass.
    unused : float, default=0.1
        An expert whose mean share is below ``unused / K`` in every gate reading it is unused.
    collapse : float, default=0.9
        A task's gate whose top mean share reaches this has collapsed onto that expert.
    max_rows : int, default=10000
        The most rows used.

    Returns
    -------
    ExpertUsage

    Raises
    ------
    ValueError
        If ``net`` has no gates, ``X`` has no row, or an option is out of range.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import MMoE
    >>> from regmtl.deep.expert_use import expert_usage
    >>> _ = torch.manual_seed(0)
    >>> net = MMoE(4, ["a", "b"], n_experts=3, expert_hidden=(8,))
    >>> usage = expert_usage(net, torch.randn(100, 4))
    >>> usage.shares.shape, bool(abs(usage.shares.sum(axis=1) - 1).max() < 1e-6)
    ((2, 3), True)
    >>> usage.warning is None
    True
    """
    if not has_gates(net):
        inner = getattr(getattr(net, "trainer_", net), "net", None)
        hint = (f" (the model's net: {'model.trainer_' if hasattr(net, 'trainer_') else 'trainer'}"
                ".net; a fit keeps its usage as trainer.expert_usage_)" if has_gates(inner)
                else "")
        raise ValueError(f"expert_usage: {type(net).__name__} has no gates; pass an MMoE, "
                         f"CGC or PLE net{hint}.")
    batch_size = check_option("batch_size", batch_size, "int", low=1)
    unused = check_option("unused", unused, "real", low=0, high=1)
    collapse = check_option("collapse", collapse, "real", low=0, low_open=True, high=1)
    max_rows = check_option("max_rows", max_rows, "int", low=1)
    X = _rows(as_inputs(X, "X"), max_rows)
    return _measure(net, X, batch_size, unused, collapse)


def _measure(net: Any, X: Any, batch_size: int, unused: float, collapse: float,
             owner: torch.Tensor | None = None) -> ExpertUsage:
    """The usage on the inputs ``X`` (as the data layer carries them); with ``owner`` (each
    row's task, positions in the net's task list: per-row data) a task's gate is averaged
    over its own rows only."""
    n = n_rows(X)
    device = next(iter(net.parameters())).device
    owner = None if owner is None else owner.cpu()  # (the gates' weights are read there)
    position = {t: i for i, t in enumerate(net.task_names)}
    sums: dict[tuple[int, str], list] = {}
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for i, x in enumerate(chunks(X, batch_size)):
                mine = None if owner is None else owner[i * batch_size:(i + 1) * batch_size]
                for g in net.expert_gates(to_device(x, device)):
                    w = g.weights.double().cpu()
                    if mine is not None and g.gate in position:
                        w = w[mine == position[g.gate]]
                    acc = sums.setdefault((g.level, g.gate), [g.experts, 0.0, 0.0, 0])
                    acc[1] = acc[1] + w.sum(0)
                    acc[2] += float(torch.special.entr(w).sum())
                    acc[3] += w.shape[0]
    finally:
        net.train(was_training)
    return _summarize({k: v for k, v in sums.items() if v[3]}, n, unused, collapse)


def _summarize(sums: Mapping, n: int, unused: float, collapse: float) -> ExpertUsage:
    share_rows, gate_rows, index = [], [], []
    for (level, gate), (experts, total, entropy, rows) in sums.items():
        mean = (total / rows).numpy()
        index.append((level, gate))
        share_rows.append(dict(zip(experts, mean, strict=True)))
        top = int(mean.argmax())
        gate_rows.append({"entropy": entropy / rows, "max_entropy": float(np.log(len(experts))),
                          "top_expert": experts[top], "top_share": float(mean[top]),
                          "rows": rows})
    idx = pd.MultiIndex.from_tuples(index, names=["level", "gate"])
    shares = pd.DataFrame(share_rows, index=idx)
    shares = shares[sorted(shares.columns, key=lambda e: str(e).startswith("shared["))]
    gates = pd.DataFrame(gate_rows, index=idx)
    found_unused, collapsed, said = [], [], []
    for level in sorted({lv for lv, _ in index}):
        at = shares.xs(level, level="level")
        k = at.notna().sum(axis=1)  # K of each gate
        judged = k > 1
        if not judged.any():
            continue
        low = (at.lt(unused / k, axis=0) | at.isna())[judged]
        dead = [str(e) for e in at.columns if low[e].all() and at.loc[judged, e].notna().any()]
        found_unused += [(level, e) for e in dead]
        info = gates.xs(level, level="level")
        tasks = [g for g in info.index if g != "shared" and judged[g]]
        if tasks and all(info.loc[g, "top_share"] >= collapse for g in tasks):
            collapsed.append(level)
            picks = ", ".join(f"{g}: {info.loc[g, 'top_expert']} "
                              f"{info.loc[g, 'top_share']:.0%}" for g in tasks)
            said.append(f"at level {level}, every task's gate puts at least {collapse:.0%} "
                        f"of its weight on one expert ({picks})")
        n_experts = int(at.columns[at.loc[judged].notna().any()].size)
        if 2 * len(dead) > n_experts:
            if level not in collapsed:
                collapsed.append(level)
            said.append(f"at level {level}, {len(dead)} of {n_experts} experts are used by no "
                        f"gate ({', '.join(dead)}: mean share below {unused:g}/K)")
    warning = None
    if said:
        warning = ("expert collapse: " + "; ".join(said) + f" (over {n} rows). The mixture "
                   "is then one expert and the experts it ignores learn nothing; try fewer "
                   "experts, another seed or a smaller learning rate.")
    return ExpertUsage(shares, gates, found_unused, collapsed, warning, n)


def _inputs_of(data: Any, limit: int) -> tuple[Any, torch.Tensor | None]:
    """(the inputs of a data set or loader, at most about ``limit`` rows of a loader, or
    None; each row's task for per-row data, else None). A loader is read under a forked
    random state, so that its sampler's draws leave the caller's random streams as they
    were."""
    for holder in (data, getattr(data, "dataset", None)):
        if getattr(holder, "X", None) is not None:
            owner = holder.task if getattr(holder, "per_row", False) else None
            return holder.X, owner
    from .validation import cat_inputs

    xs, seen = [], 0
    with torch.random.fork_rng(devices=[]):
        for batch in data:
            if not isinstance(batch, (tuple, list)) or not batch:
                return None, None
            xs.append(batch[0])
            seen += n_rows(batch[0])
            if seen >= limit:
                break
    return (cat_inputs(xs) if xs else None), None


def usage_after_fit(net: Any, val: Any, train: Mapping, warn: bool = True
                    ) -> ExpertUsage | None:
    """The usage of a fitted net (None without gates or rows): on ``val`` when given, else
    on the training data (``train``: the trainer's loaders, one for all tasks or one per
    task; the first that holds rows); a UserWarning on a collapse when ``warn``."""
    if not has_gates(net):
        return None
    X = owner = None
    for data in [val] if val is not None else list(train.values()):
        X, owner = _inputs_of(data, MAX_ROWS)
        if X is not None and n_rows(X):
            break
    if X is None or not n_rows(X):
        return None
    idx = _spaced(n_rows(X), MAX_ROWS)
    if idx is not None:
        X, owner = take(X, idx), None if owner is None else owner[idx]
    usage = _measure(net, X, 4096, UNUSED, COLLAPSE, owner)
    if warn and usage.warning is not None:
        warnings.warn(usage.warning, UserWarning, stacklevel=find_stack_level())
    return usage
