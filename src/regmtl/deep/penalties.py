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
from typing import Any

import numpy as np

from ._torch import torch

nn = torch.nn

__all__ = ["ParameterPenalty", "L1Penalty", "L2Penalty", "GroupL21", "make_penalties"]

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
GROUPS = ("shared", "task", "all", "input")


class ParameterPenalty:
    """Base class of the penalties on a group of a net's parameters.

    A penalty chooses the parameters it acts on (:meth:`parameters`), gives its value (a
    differentiable scalar the trainer adds to the training objective) and, for the non-smooth
    ones, a proximal step the trainer applies after each optimizer step when ``proximal=True``.
    A subclass implements :meth:`value` (and :meth:`prox`, with the class attribute
    ``smooth = False``).

    Parameters
    ----------
    alpha : float
        Strength of the penalty (finite, >= 0).
    params : {"shared", "task", "all", "input"} or callable, default="shared"
        The parameter group: the layers every task uses, the task-specific ones (heads, gates,
        task experts), all of them, the layers that read ``x``, or a callable
        ``net -> parameters``.
    include_bias : bool, default=False
        Penalize biases too.
    include_norm : bool, default=False
        Penalize the parameters of normalization layers (batch, layer, group norm) too.
    proximal : bool, default=False
        Apply the proximal step after each optimizer step instead of adding the value to the
        objective (non-smooth penalties only).

    Attributes
    ----------
    smooth : bool
        Whether the penalty is differentiable (then ``proximal`` must be False).

    Raises
    ------
    ValueError
        If ``alpha`` is negative or not finite, ``params`` is unknown, or ``proximal=True`` on
        a smooth penalty.

    See Also
    --------
    regmtl.deep.Trainer : Adds the penalties to the training objective.

    Examples
    --------
    A penalty of one's own, the squared L1 norm of the shared weights:

    >>> import torch
    >>> from regmtl.deep import HardSharing, ParameterPenalty, set_seed
    >>> class SquaredL1(ParameterPenalty):
    ...     def value(self, net):
    ...         return self.alpha * sum(p.abs().sum() for p in self.parameters(net)) ** 2
    >>> set_seed(0)
    >>> net = HardSharing(5, ["a", "b"], hidden=(4,))
    >>> pen = SquaredL1(0.1)
    >>> [tuple(p.shape) for p in pen.parameters(net)]  # the trunk's weight, not its bias
    [(4, 5)]
    >>> w = net.trunk[0].weight
    >>> bool(torch.isclose(pen.value(net), 0.1 * w.abs().sum() ** 2))
    True
    """

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
        """The penalized parameters of ``net``.

        Parameters
        ----------
        net : MultiTaskNet
            The net.

        Returns
        -------
        list of torch.nn.Parameter
            The parameters of the group ``params``, less biases and normalization layers
            unless ``include_bias`` / ``include_norm``, each once.
        """
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
                if (norm and not self.include_norm) or (  # batched heads: bias0, bias1, ...
                        name.startswith("bias") and not norm and not self.include_bias):
                    continue
                seen.add(id(p))
                out.append(p)
        return out

    def value(self, net: nn.Module) -> torch.Tensor:
        """The penalty's value.

        Parameters
        ----------
        net : MultiTaskNet
            The net.

        Returns
        -------
        Tensor
            A differentiable scalar on the device of ``net``.
        """
        raise NotImplementedError

    def prox(self, net: nn.Module, step: float) -> None:
        """In-place proximal step of ``step * alpha`` on the penalized parameters.

        Parameters
        ----------
        net : MultiTaskNet
            The net, modified in place.
        step : float
            The step size (the trainer passes the learning rate).
        """
        raise NotImplementedError


class L1Penalty(ParameterPenalty):
    r"""L1 penalty on a group of parameters: sparse weights.

    .. math:: \Omega(\theta) = \alpha \sum_i |\theta_i|

    over the chosen parameters :math:`\theta`. With ``proximal=True`` the trainer applies the
    soft-thresholding :math:`\theta_i \leftarrow \mathrm{sign}(\theta_i)
    \max(|\theta_i| - \eta\alpha, 0)` after each optimizer step of learning rate
    :math:`\eta` (exact zeros with ``optimizer="sgd"``).

    Parameters
    ----------
    alpha : float
        Strength (finite, >= 0).
    params : {"shared", "task", "all", "input"} or callable, default="shared"
        The parameter group (see :class:`~regmtl.deep.ParameterPenalty`).
    include_bias : bool, default=False
        Penalize biases too.
    include_norm : bool, default=False
        Penalize the parameters of normalization layers too.
    proximal : bool, default=False
        Apply the soft-thresholding step instead of adding the value to the objective.

    See Also
    --------
    regmtl.deep.GroupL21 : Selects input features for all tasks at once.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import HardSharing, L1Penalty, set_seed
    >>> set_seed(0)
    >>> net = HardSharing(5, ["a", "b"], hidden=(4,))
    >>> pen = L1Penalty(0.1)
    >>> w = net.trunk[0].weight
    >>> bool(torch.isclose(pen.value(net), 0.1 * w.abs().sum()))
    True
    >>> before = w.detach().clone()
    >>> pen.prox(net, step=1.0)  # soft-thresholding by 1.0 * alpha
    >>> bool(torch.equal(w == 0, before.abs() <= 0.1))
    True
    """

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
    r"""Squared L2 penalty on a group of parameters: weight decay on that group only.

    .. math:: \Omega(\theta) = \frac{\alpha}{2} \sum_i \theta_i^2

    over the chosen parameters :math:`\theta`. It is smooth: always added to the objective
    (``proximal=True`` is an error).

    Parameters
    ----------
    alpha : float
        Strength (finite, >= 0).
    params : {"shared", "task", "all", "input"} or callable, default="shared"
        The parameter group (see :class:`~regmtl.deep.ParameterPenalty`).
    include_bias : bool, default=False
        Penalize biases too.
    include_norm : bool, default=False
        Penalize the parameters of normalization layers too.

    Examples
    --------
    >>> from regmtl.deep import HardSharing, L2Penalty
    >>> net = HardSharing(5, ["a", "b"], hidden=(4,))
    >>> pen = L2Penalty(0.01, params="task")  # the heads' weights
    >>> pen
    L2Penalty(alpha=0.01, params='task')
    >>> [tuple(p.shape) for p in pen.parameters(net)]  # both heads' weights, one block
    [(2, 4, 1)]
    """

    def value(self, net):
        ps = self.parameters(net)
        return 0.5 * self.alpha * sum((p * p).sum() for p in ps) if ps else _zero(net)


class GroupL21(ParameterPenalty):
    r"""Group L2,1 penalty over the input columns: features selected for all tasks at once.

    With :math:`W_1, \dots, W_m` the weights of the layers that read ``x`` (the trunk's first
    layer, or every expert's and gate's first layer:
    :meth:`~regmtl.deep.MultiTaskNet.input_layers`), feature j's group is the j-th column of
    all of them:

    .. math::

        \Omega(W) = \alpha \sum_{j=1}^{p} d_j \big\|(W_1[:, j], \dots, W_m[:, j])\big\|_2 ,

    :math:`d_j = 1` unless ``penalty_factor`` gives them (0: the feature is never shrunk, as
    the linear models' ``penalty_factor``). A zero group removes feature j from every task.
    With ``proximal=True`` the trainer applies the group soft-thresholding
    :math:`w_j \leftarrow \max(0, 1 - \eta\alpha d_j / \|w_j\|_2) \, w_j` after each
    optimizer step of learning rate :math:`\eta`. Stochastic steps leave
    small nonzero groups: :meth:`selected_features` keeps the features whose group norm
    exceeds ``tol`` times the largest.

    Parameters
    ----------
    alpha : float
        Strength (finite, >= 0).
    proximal : bool, default=False
        Apply the group soft-thresholding step instead of adding the value to the objective.
    tol : float, default=0.1
        Threshold of :meth:`selected_features`, relative to the largest group norm, in [0, 1).
    penalty_factor : array-like of shape (n_features,), optional
        A finite factor ``d_j >= 0`` per input feature (of the columns the input layers
        read); 0 leaves a feature unpenalized. To exclude a feature, leave it out of the
        input.

    See Also
    --------
    regmtl.deep.L1Penalty : Sparsity of individual weights.
    regmtl.L21 : The same penalty on linear multi-task models.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import GroupL21, HardSharing, set_seed
    >>> set_seed(0)
    >>> net = HardSharing(5, ["a", "b"], hidden=(4,))
    >>> pen = GroupL21(0.1)
    >>> norms = pen.column_norms(net)
    >>> tuple(norms.shape), bool(torch.isclose(pen.value(net), 0.1 * norms.sum()))
    ((5,), True)
    >>> with torch.no_grad():
    ...     _ = net.trunk[0].weight[:, 3:].zero_()  # drop features 3 and 4
    >>> pen.selected_features(net, tol=0.0).tolist()
    [0, 1, 2]
    """

    smooth = False

    def __init__(self, alpha: float, *, proximal: bool = False, tol: float = 0.1,
                 penalty_factor: Any = None):
        super().__init__(alpha, "input", proximal=proximal)
        if not 0.0 <= tol < 1.0:
            raise ValueError(f"tol must be in [0, 1) (relative to the largest group), got "
                             f"{tol!r}.")
        self.tol = float(tol)
        self.penalty_factor = None
        if penalty_factor is not None:
            d = np.asarray(penalty_factor, dtype=np.float64)
            if d.ndim != 1 or not np.all(np.isfinite(d)) or np.any(d < 0):
                raise ValueError("penalty_factor must be one finite factor >= 0 per input "
                                 "feature (to exclude a feature, leave it out of the input); "
                                 f"got {penalty_factor!r}.")
            self.penalty_factor = d

    def __repr__(self) -> str:
        base = super().__repr__()
        if self.penalty_factor is None:
            return base
        return base[:-1] + f", penalty_factor=<{self.penalty_factor.size} factors>)"

    def _factors(self, norms: torch.Tensor) -> torch.Tensor | float:
        """The factors as a tensor beside ``norms`` (1 without them)."""
        if self.penalty_factor is None:
            return 1.0
        if self.penalty_factor.size != norms.numel():
            raise ValueError(f"GroupL21: penalty_factor has {self.penalty_factor.size} "
                             f"factors for {norms.numel()} input features.")
        return torch.as_tensor(self.penalty_factor, dtype=norms.dtype, device=norms.device)

    def _columns(self, net) -> torch.Tensor:
        layers = net.input_layers()
        if not layers:
            raise ValueError("GroupL21: the net has no linear layer reading the input.")
        return torch.cat([m.weight for m in layers], dim=0)

    def column_norms(self, net: nn.Module) -> torch.Tensor:
        r"""The group norm of every input feature.

        Parameters
        ----------
        net : MultiTaskNet
            The net.

        Returns
        -------
        Tensor of shape (n_features,)
            :math:`\|w_j\|_2` for every feature j (differentiable).

        Raises
        ------
        ValueError
            If the net has no linear layer reading the input.
        """
        return torch.linalg.vector_norm(self._columns(net), dim=0)

    def selected_features(self, net: nn.Module, tol: float | None = None) -> torch.Tensor:
        """The features kept: those whose group norm exceeds ``tol`` times the largest.

        Parameters
        ----------
        net : MultiTaskNet
            The net.
        tol : float, optional
            Relative threshold (default: this penalty's ``tol``).

        Returns
        -------
        Tensor of shape (n_selected,)
            The feature indices, in increasing order (int64).
        """
        tol = self.tol if tol is None else tol
        norms = self.column_norms(net).detach()
        return torch.nonzero(norms > tol * norms.max()).flatten()

    def value(self, net):
        norms = self.column_norms(net)
        return self.alpha * (self._factors(norms) * norms).sum()

    @torch.no_grad()
    def prox(self, net, step):
        norms = self.column_norms(net)
        thr = step * self.alpha * self._factors(norms)
        shrink = torch.clamp(1.0 - thr / norms.clamp(min=1e-30), min=0.0)
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
