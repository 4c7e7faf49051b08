r"""Penalties on groups of a net's parameters.

==================  ==========================================  =============================
penalty             value                                       proximal step (``proximal``)
==================  ==========================================  =============================
:class:`L1Penalty`  α Σ_i |θ_i|                                 soft-thresholding by η α
:class:`L2Penalty`  (α/2) Σ_i θ_i²                              (smooth: always a gradient)
:class:`GroupL21`   α Σ_j ‖(W_1[:, j], …, W_m[:, j])‖₂ over     group soft-thresholding by η α
                    the input layers W_1..W_m (column j reads
                    feature j): features are kept or dropped
                    for every task at once
==================  ==========================================  =============================

``params`` picks the group: ``"shared"`` (default: the layers every task uses), ``"task"``
(heads, gates, task experts), ``"all"``, ``"input"`` (the layers that read x), or a callable
``net -> parameters``. Biases and normalization layers (batch/layer/group norm) are left out
unless ``include_bias`` / ``include_norm``. The trainer adds the value to the training
objective (its gradient reaches the parameters); with ``proximal=True`` (L1 and GroupL21) it
instead applies the proximal step after each optimizer step, with η the learning rate: the
proximal stochastic gradient method, for ``optimizer="sgd"`` (Adam rescales the gradient step
but not the proximal one, so the penalty in the objective works better with it). Stochastic
steps leave small nonzero weights either way: :meth:`GroupL21.selected_features` reads the
selection relative to the largest group.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real

from ._torch import torch

nn = torch.nn

__all__ = ["ParameterPenalty", "L1Penalty", "L2Penalty", "GroupL21", "make_penalties"]

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
GROUPS = ("shared", "task", "all", "input")


class ParameterPenalty:
    """Base: parameter selection and the trainer's hooks."""

    smooth = True

    def __init__(self, alpha: float, params: str | Callable = "shared", *,
                 include_bias: bool = False, include_norm: bool = False,
                 proximal: bool = False):
        if not isinstance(alpha, Real) or not alpha >= 0 or alpha == float("inf"):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}.")
        if not (callable(params) or params in GROUPS):
            raise ValueError(f"params must be one of {GROUPS} or a callable net -> parameters, "
                             f"got {params!r}.")
        if proximal and self.smooth:
            raise ValueError(f"{type(self).__name__} is smooth: proximal=True is for L1Penalty "
                             "and GroupL21.")
        self.alpha = float(alpha)
        self.params = params
        self.include_bias = include_bias
        self.include_norm = include_norm
        self.proximal = proximal

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(alpha={self.alpha!r}, params={self.params!r}"
                + (", proximal=True" if self.proximal else "") + ")")

    def parameters(self, net: nn.Module) -> list[nn.Parameter]:
        """The penalized parameters of ``net``."""
        if callable(self.params):
            chosen = list(self.params(net))
        elif self.params == "shared":
            chosen = net.shared_parameters()
        elif self.params == "task":
            chosen = net.task_parameters()
        elif self.params == "input":
            chosen = [p for m in net.input_layers() for p in m.parameters()]
        else:
            chosen = list(net.parameters())
        keep = {id(p) for p in chosen}
        out, seen = [], set()
        for module in net.modules():
            norm = isinstance(module, _NORMS)
            for name, p in module.named_parameters(recurse=False):
                if id(p) not in keep or id(p) in seen:
                    continue
                if (norm and not self.include_norm) or (
                        name == "bias" and not norm and not self.include_bias):
                    continue
                seen.add(id(p))
                out.append(p)
        return out

    def value(self, net: nn.Module) -> torch.Tensor:
        """The penalty's value (a differentiable scalar)."""
        raise NotImplementedError

    def prox(self, net: nn.Module, step: float) -> None:
        """In-place proximal step of ``step * alpha`` on the penalized parameters."""
        raise NotImplementedError


class L1Penalty(ParameterPenalty):
    """``alpha * sum |theta|`` over the chosen parameters (sparsity)."""

    smooth = False

    def value(self, net):
        ps = self.parameters(net)
        return self.alpha * sum(p.abs().sum() for p in ps) if ps else _zero(net)

    @torch.no_grad()
    def prox(self, net, step):
        t = step * self.alpha
        for p in self.parameters(net):
            p.copy_(torch.sign(p) * torch.clamp(p.abs() - t, min=0.0))


class L2Penalty(ParameterPenalty):
    """``alpha / 2 * sum theta^2`` over the chosen parameters (weight decay on a group)."""

    def value(self, net):
        ps = self.parameters(net)
        return 0.5 * self.alpha * sum((p * p).sum() for p in ps) if ps else _zero(net)


class GroupL21(ParameterPenalty):
    """``alpha * sum_j ||column j of every input layer||_2``: joint feature selection.

    Feature j's group is the j-th input column of every layer that reads x (the trunk's
    first layer, or every expert's and gate's first layer), so a zero group removes
    feature j from every task. ``selected_features(net)`` lists the features kept: those whose
    group norm exceeds ``tol`` times the largest.
    """

    smooth = False

    def __init__(self, alpha: float, *, proximal: bool = False, tol: float = 0.1):
        super().__init__(alpha, "input", proximal=proximal)
        if not 0.0 <= tol < 1.0:
            raise ValueError(f"tol must be in [0, 1) (relative to the largest group), got "
                             f"{tol!r}.")
        self.tol = float(tol)

    def _columns(self, net) -> torch.Tensor:
        layers = net.input_layers()
        if not layers:
            raise ValueError("GroupL21: the net has no linear layer reading the input.")
        return torch.cat([m.weight for m in layers], dim=0)

    def column_norms(self, net: nn.Module) -> torch.Tensor:
        """||group j||_2 for every input feature j, shape (n_features,)."""
        return torch.linalg.vector_norm(self._columns(net), dim=0)

    def selected_features(self, net: nn.Module, tol: float | None = None) -> torch.Tensor:
        """Indices of the features whose group norm exceeds ``tol`` (default: this penalty's)
        times the largest group norm."""
        tol = self.tol if tol is None else tol
        norms = self.column_norms(net).detach()
        return torch.nonzero(norms > tol * norms.max()).flatten()

    def value(self, net):
        return self.alpha * self.column_norms(net).sum()

    @torch.no_grad()
    def prox(self, net, step):
        norms = self.column_norms(net)
        shrink = torch.clamp(1.0 - step * self.alpha / norms.clamp(min=1e-30), min=0.0)
        for m in net.input_layers():
            m.weight.mul_(shrink)


def _zero(net: nn.Module) -> torch.Tensor:
    p = next(net.parameters())
    return torch.zeros((), dtype=p.dtype, device=p.device)


_BY_NAME = {"l1": L1Penalty, "l2": L2Penalty, "l21": GroupL21, "group": GroupL21}


def make_penalties(penalty, alpha: float = 0.0) -> list[ParameterPenalty]:
    """A list of penalties from None, a name (``"l1"``, ``"l2"``, ``"l21"``) with ``alpha``,
    a penalty, or a list of them."""
    if penalty is None:
        return []
    if isinstance(penalty, str):
        key = penalty.lower()
        if key not in _BY_NAME:
            raise ValueError(f"penalty must be one of {sorted(_BY_NAME)}, a ParameterPenalty or a "
                             f"list of them, got {penalty!r}.")
        return [_BY_NAME[key](alpha)]
    items = [penalty] if isinstance(penalty, ParameterPenalty) else list(penalty)
    for p in items:
        if not isinstance(p, ParameterPenalty):
            raise ValueError(f"penalty: expected ParameterPenalty objects, got "
                             f"{type(p).__name__}.")
    return items
