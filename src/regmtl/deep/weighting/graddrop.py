r"""Gradient sign dropout, GradDrop (Chen, Ngiam, Huang, Luong, Kretzschmar, Chai &
Anguelov, 2020).

In every coordinate, the positive or the negative task gradients are dropped at random, the
positive ones kept with probability the sign purity
:math:`P = \tfrac12 (1 + \sum_t g_t / \sum_t |g_t|)`.
:func:`~regmtl.deep.weighting.graddrop_direction` is the update,
:class:`~regmtl.deep.GradDrop` the weighting.

Chen et al. (2020). Just pick a sign: optimizing deep multitask models with gradient sign
dropout. NeurIPS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .._torch import torch
from .base import (
    F64,
    GradientWeighting,
    accumulate,
    check_number,
    finish_step,
    identity,
    task_gradients,
)
from .helpers import non_finite

__all__ = ["GradDrop", "graddrop_direction"]

Tensor = torch.Tensor


def _graddrop(G: Tensor, generator: torch.Generator | None, leak: float) -> Tensor:
    """The (T, d) kept gradients ``M_t * g_t`` (one uniform draw per coordinate)."""
    total = G.sum(0)
    mass = G.abs().sum(0)
    P = torch.where(mass > 0, 0.5 * (1.0 + total / torch.where(mass > 0, mass, 1.0)),
                    torch.full_like(mass, 0.5))
    U = torch.rand(G.shape[1], generator=generator, dtype=F64).to(G)
    keep_pos = (P > U).to(G)
    keep_neg = (P < U).to(G)
    M = keep_pos * (G > 0).to(G) + keep_neg * (G < 0).to(G)
    if leak > 0:
        M = leak + (1.0 - leak) * M
    return M * G


def graddrop_direction(G: Tensor, generator: torch.Generator | None = None,
                       leak: float = 0.0) -> Tensor:
    r"""GradDrop's update from the per-task gradients, the rows of ``G``.

    In every coordinate k, with the sign purity
    :math:`P_k = \tfrac12 \bigl(1 + \sum_t g_{tk} / \sum_t |g_{tk}|\bigr)` (:math:`\tfrac12`
    where all are 0) and one uniform draw :math:`U_k`, the mask keeps the positive entries if
    :math:`P_k > U_k`, the negative ones if :math:`P_k < U_k`:

    .. math::

        M_{tk} = \mathbb 1[P_k > U_k]\, \mathbb 1[g_{tk} > 0]
        + \mathbb 1[P_k < U_k]\, \mathbb 1[g_{tk} < 0], \qquad
        d = \sum_t \bigl(\ell + (1 - \ell) M_t\bigr) \odot g_t ,

    :math:`\ell` the leak. Coordinates where all gradients agree in sign are kept whole; the
    update is linear in a common positive scaling of the gradients and does not depend on the
    order of the tasks (one draw per coordinate, shared by the tasks). At a Pareto-stationary
    point it is not 0 in general (two opposite gradients: one of the two is kept in each
    coordinate, at random); a zero gradient changes nothing.

    Parameters
    ----------
    G : Tensor of shape (T, d)
        The per-task gradients, one per row.
    generator : torch.Generator, optional
        Source of the d uniform draws (torch's global generator if None).
    leak : float, default=0.0
        The leak :math:`\ell` in [0, 1]: the fraction of every gradient always kept
        (1 gives the sum of the gradients).

    Returns
    -------
    Tensor of shape (d,)
        The update :math:`d`.

    Raises
    ------
    ValueError
        If ``leak`` is outside [0, 1].

    See Also
    --------
    regmtl.deep.GradDrop : The weighting that applies it at every step.

    References
    ----------
    Chen et al. (2020). Just pick a sign: optimizing deep multitask models with gradient sign
    dropout. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import graddrop_direction
    >>> G = torch.tensor([[1.0, 2.0], [3.0, -2.0]])  # agree in 0, disagree in 1 (P = 1/2)
    >>> d = graddrop_direction(G, torch.Generator().manual_seed(0))
    >>> d[0].item(), d[1].item() in (2.0, -2.0)
    (4.0, True)
    """
    leak = _check_leak(leak)
    return _graddrop(G, generator, leak).sum(0)


def _check_leak(leak: float) -> float:
    leak = check_number("leak", leak)
    if leak > 1:
        raise ValueError(f"leak must be in [0, 1], got {leak!r}.")
    return leak


class GradDrop(GradientWeighting):
    r"""Gradient sign dropout, GradDrop (Chen et al., 2020).

    The shared gradient is :func:`~regmtl.deep.weighting.graddrop_direction` of the
    :math:`b_t g_t`: in every coordinate either the positive or the negative task gradients
    are dropped, the positive kept with probability the sign purity
    :math:`P = \tfrac12 (1 + \sum_t g_t / \sum_t |g_t|)`; the draws come from the
    weighting's seeded generator (the same seed gives the same update). The update is not a
    combination of whole task gradients: the returned weights are the fraction of each
    gradient the update keeps, :math:`w_t = b_t\, (M_t \odot g_t) \cdot g_t / \|g_t\|^2`
    (in [0, :math:`b_t`]; :math:`b_t` when nothing conflicts; 0 for a zero gradient). The
    heads get the gradient of :math:`\sum_t b_t L_t`.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters and one draw
    per shared parameter; T backward passes through the trunk.

    Parameters
    ----------
    leak : float, default=0.0
        The fraction :math:`\ell` in [0, 1] of every gradient always kept (the paper's leak,
        one value for all tasks; 0 in the paper's main experiments).

    Notes
    -----
    **Degenerate gradients.** GradDrop is random by design and promises no
    conflict-freeness: at a Pareto-stationary point it does not stop (two opposite gradients:
    in each coordinate one is kept at random). Dependent gradients need nothing special; a
    zero gradient (no label in the batch) changes neither the purity nor the update (weight
    0). The update does not depend on the order of the tasks: one draw per coordinate,
    shared by the tasks. Under mixed precision the mask is that of the unscaled gradients
    (the purity is scale-free) and an overflow is left to the gradient scaler.

    **Differences from the paper.** The paper applies the mask to the gradients of a shared
    activation layer, summed over the batch (LibMTL likewise, on the representation,
    ``rep_grad=True``); regmtl, as TorchJD's ``GradDrop``, applies it to the gradients of the
    shared parameters, one draw per parameter and step.

    References
    ----------
    Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov (2020). Just pick a sign:
    optimizing deep multitask models with gradient sign dropout. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import GradDrop, TaskSpec
    >>> weighting = GradDrop()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")], seed=0)
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    >>> losses = torch.stack([theta[0] + theta[1], 2 * theta[0]])  # (1, 1), (2, 0): agree
    >>> weighting.backward(losses, [theta], []).tolist()
    [1.0, 1.0]
    >>> theta.grad.tolist()
    [3.0, 1.0]
    """

    #: The name users pass (``weighting="graddrop"``) and saved models carry.
    name = "graddrop"

    def __init__(self, leak: float = 0.0) -> None:
        super().__init__()
        self.leak = _check_leak(leak)

    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """As :meth:`~regmtl.deep.Weighting.backward`; the weights are the fractions of the
        task gradients kept."""
        self._check_losses(losses)
        scale = identity if scale is None else scale
        shared = [p for p in shared if p.requires_grad]
        specific = [p for p in specific if p.requires_grad]
        base = self._base()
        G = task_gradients(losses, shared, scale)
        if reduce is not None:
            G = reduce(G)
        G = G * base.to(G)[:, None]
        weights = base.clone()
        if shared and G.numel():
            if not torch.isfinite(G).all():
                if scale is identity:
                    bad = (~torch.isfinite(G).all(1)).cpu()
                    raise non_finite("GradDrop", "gradient", self.task_names, bad.numpy())
                accumulate(shared, G.sum(0))  # the scaler sees the overflow and skips
            else:
                kept = _graddrop(G, self._generator, self.leak)
                norms = (G * G).sum(1).to("cpu", F64)
                frac = ((kept * G).sum(1).to("cpu", F64)
                        / torch.where(norms > 0, norms, torch.ones_like(norms)))
                weights = torch.where(norms > 0, base * frac, torch.zeros_like(frac))
                accumulate(shared, kept.sum(0))
                del kept
        del G
        return finish_step(losses, specific, base, weights, extra, scale)

    def extra_repr(self) -> str:
        return f"leak={self.leak!r}"
