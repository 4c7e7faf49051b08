r"""Gradient vaccine, GradVac (Wang, Tsvetkov, Firat & Cao, 2021).

Each task gradient is pushed toward every other task gradient whose cosine similarity falls
below an exponential moving average (EMA) of the past similarities of the pair, so that the
pair reaches that target; the others are taken in a random order, as in PCGrad.
:func:`~regmtl.deep.weighting.vaccinate` is one step, :class:`~regmtl.deep.GradVac` the
weighting.

Wang, Tsvetkov, Firat & Cao (2021). Gradient vaccine: investigating and improving multi-task
optimization in massively multilingual models. ICLR.
"""

from __future__ import annotations

import math

from .._torch import torch
from .base import F64, GradientWeighting, check_number, gram_matrix, identity
from .helpers import non_finite

__all__ = ["GradVac", "vaccinate"]

Tensor = torch.Tensor

#: Targets are capped below 1, where the paper's coefficient divides by zero.
_TARGET_MAX = 1.0 - 1e-8


def _gradvac_coefficients(A: Tensor, targets: Tensor, beta: float,
                          order: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """(C with the vaccinated gradients ``C @ G``, the updated targets) from ``A = G G^T``.

    Tasks with a zero gradient take no part (their rows and targets unchanged)."""
    T = A.shape[0]
    C = torch.eye(T, dtype=F64)
    new = targets.clone()
    diag = torch.diagonal(A)
    active = diag > 1e-24 * max(float(diag.max()), 0.0)
    for i in range(T):
        others = [j for j in range(T) if j != i]
        perm = (torch.randperm(T - 1, generator=order).tolist() if order is not None
                else range(T - 1))
        if not active[i]:
            continue
        for k in perm:
            j = others[k]
            if not active[j]:
                continue
            n_i = math.sqrt(max(float(C[i] @ A @ C[i]), 0.0))
            n_j = math.sqrt(float(A[j, j]))
            if not n_i > 0:
                break
            rho = max(-1.0, min(1.0, float(C[i] @ A[:, j]) / (n_i * n_j)))
            phi = min(float(targets[i, j]), _TARGET_MAX)
            if rho < phi:
                w = n_i * (phi * math.sqrt(1.0 - rho * rho) - rho * math.sqrt(1.0 - phi * phi)) \
                    / (n_j * math.sqrt(1.0 - phi * phi))
                C[i, j] += w
            new[i, j] = (1.0 - beta) * float(targets[i, j]) + beta * rho
    C[~active, ~active] = 0.0  # a zero gradient adds nothing: weight 0
    return C, new


def vaccinate(G: Tensor, targets: Tensor, beta: float = 0.5,
              order: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""One GradVac step on the gradients, the rows of ``G``.

    Each :math:`g_i' = g_i` is, for the other tasks j in a random order (task order if
    ``order`` is None), moved toward the original :math:`g_j` where their cosine
    :math:`\phi_{ij} = \cos(g_i', g_j)` is below the target :math:`\hat\phi_{ij}`:

    .. math::

        g_i' \leftarrow g_i' + \frac{\|g_i'\| \bigl(\hat\phi_{ij} \sqrt{1 - \phi_{ij}^2}
        - \phi_{ij} \sqrt{1 - \hat\phi_{ij}^2}\bigr)}{\|g_j\| \sqrt{1 - \hat\phi_{ij}^2}}\,
        g_j ,

    after which :math:`\cos(g_i', g_j) = \hat\phi_{ij}`; then
    :math:`\hat\phi_{ij} \leftarrow (1 - \beta)\hat\phi_{ij} + \beta \phi_{ij}` for every
    pair. The update is :math:`\sum_i g_i'`. Targets are capped at :math:`1 - 10^{-8}`
    in the formula. A zero gradient takes no part (its targets are unchanged).

    Parameters
    ----------
    G : Tensor of shape (T, d)
        The per-task gradients, one per row.
    targets : Tensor of shape (T, T)
        The EMA targets :math:`\hat\phi` (zeros at the start).
    beta : float, default=0.5
        EMA rate :math:`\beta` in [0, 1].
    order : torch.Generator, optional
        Draws the order of the other tasks for each task; None: task order.

    Returns
    -------
    G_vac : Tensor of shape (T, d)
        The vaccinated gradients :math:`g_i'`.
    C : Tensor of shape (T, T)
        Their coefficients on the original gradients, ``G_vac = C @ G``.
    targets : Tensor of shape (T, T)
        The updated targets (float64).

    Raises
    ------
    ValueError
        If ``beta`` is outside [0, 1] or ``targets`` has the wrong shape.

    See Also
    --------
    regmtl.deep.GradVac : The weighting that applies it at every step.

    References
    ----------
    Wang, Tsvetkov, Firat & Cao (2021). Gradient vaccine: investigating and improving
    multi-task optimization in massively multilingual models. ICLR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import vaccinate
    >>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    >>> G_vac, C, targets = vaccinate(G, torch.zeros(2, 2, dtype=torch.float64))
    >>> [[round(v, 6) for v in row] for row in G_vac.tolist()]  # target 0: PCGrad's step
    [[0.5, 0.5], [0.0, 1.0]]
    >>> [round(v, 4) for v in targets.flatten().tolist()]
    [0.0, -0.3536, -0.3536, 0.0]
    """
    beta = check_number("beta", beta)
    if beta > 1:
        raise ValueError(f"beta must be in [0, 1], got {beta!r}.")
    T = G.shape[0]
    if not isinstance(targets, torch.Tensor) or targets.shape != (T, T):
        raise ValueError(f"targets must be a ({T}, {T}) tensor, got "
                         f"{getattr(targets, 'shape', targets)!r}.")
    C, new = _gradvac_coefficients(gram_matrix(G), targets.detach().to("cpu", F64), beta,
                                   order)
    C = C.to(G)
    return C @ G, C, new


class GradVac(GradientWeighting):
    r"""Gradient vaccine, GradVac (Wang, Tsvetkov, Firat & Cao, 2021).

    Each task's gradient :math:`b_t g_t` of the shared parameters is moved toward every other
    task's gradient whose cosine similarity with it is below the EMA target
    :math:`\hat\phi_{ij}` of that pair (:func:`~regmtl.deep.weighting.vaccinate`), the other
    tasks taken in a random order drawn from the seeded generator:

    .. math::

        g_i' \leftarrow g_i' + \frac{\|g_i'\| \bigl(\hat\phi_{ij} \sqrt{1 - \phi_{ij}^2}
        - \phi_{ij} \sqrt{1 - \hat\phi_{ij}^2}\bigr)}{\|g_j\| \sqrt{1 - \hat\phi_{ij}^2}}\,
        g_j \quad \text{if } \phi_{ij} < \hat\phi_{ij},
        \qquad \hat\phi_{ij} \leftarrow (1 - \beta)\hat\phi_{ij} + \beta \phi_{ij} .

    The shared gradient is :math:`\sum_t g_t'`; with targets 0 (the start) this is PCGrad.
    The returned weights are the effective coefficients of the original gradients (no fixed
    sum). The heads get the gradient of :math:`\sum_t b_t L_t`. The decision uses cosines
    and norm ratios only: it does not depend on the AMP loss scale.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    Parameters
    ----------
    beta : float, default=0.5
        EMA rate :math:`\beta` in [0, 1] of the targets (LibMTL's default).

    Attributes
    ----------
    targets : Tensor of shape (T, T)
        The EMA targets :math:`\hat\phi` (float64 buffer, zeros at the start, saved in
        ``state_dict``).

    Notes
    -----
    **Degenerate gradients.** GradVac promises no conflict-freeness: at a Pareto-stationary
    point two opposite gradients are each moved onto the other's normal (update 0 while the
    targets are <= 0), but three or more tasks can leave a nonzero update that harms a task.
    Dependent gradients need nothing special (a cosine of 1 or -1 is used as is); a zero
    gradient (no label in the batch) is neither moved nor moved toward, and its targets keep
    their values. The order is random by design: it comes from the seeded generator.

    **Differences from the paper.** The paper applies GradVac per parameter group (layer)
    of a multilingual model; regmtl treats the shared parameters as one vector (LibMTL's
    default ``GradVac_group_type=0``; per-layer granularity is not offered). The paper
    updates each target with the observed cosine at every step, as here and as LibMTL since
    February 2024 (before, LibMTL updated a target only when the vaccine fired, that is
    toward a lower cosine, so a target could only fall). Targets are capped at
    :math:`1 - 10^{-8}` in the formula (LibMTL adds 1e-8 to the denominator).

    References
    ----------
    Wang, Tsvetkov, Firat & Cao (2021). Gradient vaccine: investigating and improving
    multi-task optimization in massively multilingual models. ICLR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import GradVac, TaskSpec
    >>> weighting = GradVac(beta=0.5)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")], seed=0)
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], theta[1] - theta[0]])  # gradients (1, 0), (-1, 1)
    >>> weighting.backward(losses, [theta], []).tolist()  # the first step is PCGrad's
    [2.0, 1.5]
    >>> [round(v, 4) for v in weighting.targets[0].tolist()]
    [0.0, -0.3536]
    """

    #: The name users pass (``weighting="gradvac"``) and saved models carry.
    name = "gradvac"

    targets: Tensor

    def __init__(self, beta: float = 0.5) -> None:
        super().__init__()
        self.beta = check_number("beta", beta)
        if self.beta > 1:
            raise ValueError(f"beta must be in [0, 1], got {beta!r}.")
        self.register_buffer("targets", torch.zeros(0, 0, dtype=F64))

    def _setup(self, tasks):
        self.targets = torch.zeros(len(tasks), len(tasks), dtype=F64)

    def _combine(self, G, losses, scale, reduce):
        base = self._base()
        A = gram_matrix(G) * base[:, None] * base[None, :]
        if not torch.isfinite(A).all():
            if scale is not identity:
                return base.clone(), base  # an overflowing AMP step: the scaler skips it
            bad = ~torch.isfinite(torch.diagonal(A))
            raise non_finite("GradVac", "gradient", self.task_names, bad.numpy())
        C, new = _gradvac_coefficients(A, self.targets.detach().to("cpu", F64), self.beta,
                                       self._generator)
        self.targets.copy_(new.to(self.targets))
        return C.sum(0) * base, base

    def extra_repr(self) -> str:
        return f"beta={self.beta!r}"
