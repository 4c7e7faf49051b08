r"""Projecting conflicting gradients, PCGrad (Yu et al., 2020).

Each task gradient loses its component along every other task gradient it conflicts with,
:math:`g_t' \leftarrow g_t' - \frac{g_t' \cdot g_j}{\|g_j\|_2^2} g_j` if
:math:`g_t' \cdot g_j < 0`, the others taken in a random order; the update is :math:`\sum_t g_t'`.
:func:`~regmtl.deep.weighting.project_conflicting` is the projection,
:class:`~regmtl.deep.PCGrad` the weighting.

Yu, Kumar, Gupta, Levine, Hausman & Finn (2020). Gradient surgery for multi-task learning.
NeurIPS.
"""

from __future__ import annotations

from .._torch import torch
from .base import F64, GradientWeighting, gram_matrix
from .gram import ZERO_GRAD

__all__ = ["PCGrad", "project_conflicting"]

Tensor = torch.Tensor


def _pcgrad_coefficients(A: Tensor, order: torch.Generator | None,
                         key: list[int] | None = None) -> Tensor:
    """C (T x T) with PCGrad's projected gradients ``C @ G``, from the Gram matrix ``A``.

    ``key`` lists the tasks in the order the draws are made (and the others listed), default
    ``range(T)``: the weighting passes the tasks sorted by name, so the draws belong to the
    tasks, not to their positions.
    """
    T = A.shape[0]
    key = list(range(T)) if key is None else list(key)
    C = torch.eye(T, dtype=F64)
    for t in key:
        others = [j for j in key if j != t]
        perm = (torch.randperm(T - 1, generator=order).tolist() if order is not None
                else range(T - 1))
        for k in perm:
            j = others[k]
            dot = float(C[t] @ A[:, j])  # g_t' . g_j
            if dot < 0 and A[j, j] > 0:
                C[t, j] -= dot / float(A[j, j])
    return C


def project_conflicting(G: Tensor, order: torch.Generator | None = None
                        ) -> tuple[Tensor, Tensor]:
    r"""PCGrad's projection of conflicting gradients, the rows of ``G``.

    Each task's gradient :math:`g_t` starts as :math:`g_t' = g_t`; then, for the other tasks j
    in a random order (task order if ``order`` is None), wherever the two conflict,

    .. math::

        g_t' \leftarrow g_t' - \frac{g_t' \cdot g_j}{\|g_j\|_2^2}\, g_j
        \quad \text{if } g_t' \cdot g_j < 0,

    always against the original :math:`g_j`. PCGrad updates along :math:`\sum_t g_t'`.

    Parameters
    ----------
    G : Tensor of shape (T, d)
        The per-task gradients, one per row.
    order : torch.Generator, optional
        Draws the order of the other tasks for each task; None: task order.

    Returns
    -------
    G_proj : Tensor of shape (T, d)
        The projected gradients :math:`g_t'`.
    C : Tensor of shape (T, T)
        Their coefficients on the original gradients, ``G_proj = C @ G``.

    See Also
    --------
    regmtl.deep.PCGrad : The weighting that applies it at every step.

    References
    ----------
    Yu, Kumar, Gupta, Levine, Hausman & Finn (2020). Gradient surgery for multi-task learning.
    NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import project_conflicting
    >>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # g_0 . g_1 = -1 < 0
    >>> G_proj, C = project_conflicting(G)
    >>> G_proj.tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    >>> C.tolist()
    [[1.0, 0.5], [1.0, 1.0]]
    """
    C = _pcgrad_coefficients(gram_matrix(G), order)
    if torch.equal(C, torch.eye(C.shape[0], dtype=F64)):
        return G.clone(), C.to(G)
    C = C.to(G)
    return C @ G, C


class PCGrad(GradientWeighting):
    r"""Projecting conflicting gradients (Yu et al., 2020).

    Each task's gradient :math:`b_t g_t` of the shared parameters loses its component along
    every other task's gradient it conflicts with (negative inner product), the others taken in
    a random order drawn from the seeded generator
    (:func:`~regmtl.deep.weighting.project_conflicting`):

    .. math::

        g_t' \leftarrow g_t' - \frac{g_t' \cdot g_j}{\|g_j\|_2^2}\, g_j
        \quad \text{if } g_t' \cdot g_j < 0 .

    The shared gradient is :math:`\sum_t g_t'`. The heads get the gradient of
    :math:`\sum_t b_t L_t`. The returned weights are the effective coefficients of the
    original task gradients. They keep no sum: a projection adds a positive multiple of the
    gradient it conflicts with, so each weight is at least :math:`b_t` (exactly :math:`b_t`
    when nothing conflicts) and their sum grows with the conflicts.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters, T times the
    shared parameters (not the heads, not activations); T backward passes through the trunk.

    Notes
    -----
    **Degenerate gradients.** At a Pareto-stationary point the projections do not vanish in
    general: two opposite gradients project each other to 0 (update 0), but three or more
    tasks of rank two can leave a nonzero update that harms a task; PCGrad promises no
    conflict-freeness. Dependent gradients need nothing special; a zero gradient (a task with
    no label in the batch) is never projected on and adds nothing: its weight is 0 (as is
    that of a task with a zero base weight). The order of the
    projections is random by design: it comes from the seeded generator, drawn task by task
    in the order of the task names (not of their positions), so the same seed gives the same
    update, and the same seed with a permuted task list gives the permuted weights and the
    same update. With two tasks there is no order to draw.

    **Differences from the paper.** The paper projects the gradients of all parameters; here,
    as in LibMTL, only the shared ones (the heads get :math:`\sum_t b_t L_t`). The paper and
    LibMTL sum the projected gradients (:math:`\sum_t g_t'`), as here; the base weights
    multiply the gradients before the projections. The paper, LibMTL and TorchJD shuffle the
    other tasks by position with a global generator; here each task's order is drawn from the
    weighting's seeded generator, task by task in the order of the names, so that it
    belongs to the tasks, not to their positions.

    References
    ----------
    Yu, Kumar, Gupta, Levine, Hausman & Finn (2020). Gradient surgery for multi-task learning.
    NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import PCGrad, TaskSpec
    >>> weighting = PCGrad()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")], seed=0)
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    >>> losses = torch.stack([theta[0], theta[1] - theta[0]])  # gradients (1, 0) and (-1, 1)
    >>> weighting.backward(losses, [theta], []).tolist()
    [2.0, 1.5]
    >>> theta.grad.tolist()  # (0.5, 0.5) + (0, 1), the projected gradients
    [0.5, 1.5]
    """

    #: The name users pass (``weighting="pcgrad"``) and saved models carry.
    name = "pcgrad"

    def _combine(self, G, losses, scale, reduce):
        base = self._base()
        A = gram_matrix(G) * base[:, None] * base[None, :]
        if not torch.isfinite(A).all():  # an overflowing AMP step: the scaler skips it
            return base, base
        key = sorted(range(len(self.task_names)), key=lambda i: self.task_names[i])
        C = _pcgrad_coefficients(A, self._generator, key if len(key) == len(base) else None)
        diag = torch.diagonal(A)
        taking_part = diag > ZERO_GRAD * max(float(diag.max()), 0.0)
        return torch.where(taking_part, C.sum(0) * base, torch.zeros_like(base)), base
