r"""Multiple-gradient descent, MGDA (Sener & Koltun, 2018), and its upper bound MGDA-UB.

The update is the min-norm point of the convex hull of the (normalized) task gradients,
:math:`\alpha = \arg\min_{\alpha \in \Delta} \alpha^\top A \alpha`, solved exactly
(``min_norm``); with ``upper_bound`` :math:`\alpha` comes from the gradients with respect to
the shared representation. :func:`~regmtl.deep.conflict.mgda_weights` gives :math:`\alpha`,
:class:`~regmtl.deep.MGDA` is the weighting.

Sener & Koltun (2018). Multi-task learning as multi-objective optimization. NeurIPS.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._torch import torch
from .base import F64
from .gram import GramWeighting, as_gram, is_stationary, nonneg_qp

__all__ = ["MGDA", "mgda_weights"]

Tensor = torch.Tensor


def min_norm(A: np.ndarray) -> np.ndarray:
    """The weights on the simplex of the min-norm point of the hull of the rows of G (A = GG^T).

    The nearest point to (0, k) in the cone of the lifted rows (g_t, k) is t (p, k) with p the
    min-norm point, for any k > 0: a non-negative least-squares problem, solved in the unit
    rows' coordinates (Gram ``C + k^2 v v^T``, C the cosine matrix, ``v_t = 1 / |g_t|``,
    ``k`` the smallest norm, so that the diagonal lies in [1, 2] whatever the rows' scales);
    its solution divided by the norms and normalized to sum 1 is the answer. A zero row is
    the min-norm point itself (the zero rows share the weight).
    """
    T = A.shape[0]
    n = np.sqrt(np.clip(np.diag(A), 0.0, None)) if T else np.zeros(0)
    if T == 1 or not n.any():
        return np.full(T, 1.0 / max(T, 1))
    zero = n <= 1e-12 * n.max()
    if zero.any():
        return zero / float(zero.sum())
    C = A / np.outer(n, n)
    v = 1.0 / n
    k2 = float(n.min()) ** 2
    mu = nonneg_qp(C + k2 * np.outer(v, v), k2 * v, tol=1e-14 * T)
    alpha = mu / n
    total = alpha.sum()
    if not (total > 0 and np.isfinite(total)):
        return np.full(T, 1.0 / T)
    return alpha / total


def mgda_weights(gram: Any) -> Tensor:
    r"""MGDA's weights: the min-norm point of the convex hull of the task gradients.

    .. math::

        \alpha = \operatorname*{arg\,min}_{\alpha \ge 0,\ \sum_t \alpha_t = 1}
        \Bigl\|\sum_t \alpha_t g_t\Bigr\|_2^2
        = \operatorname*{arg\,min}_{\alpha \in \Delta} \alpha^\top A \alpha ,

    solved exactly (an active-set non-negative least-squares method on the Gram matrix, not
    Frank-Wolfe). At the solution the KKT conditions hold: :math:`(A\alpha)_t \ge
    \alpha^\top A \alpha` for every t, with equality where :math:`\alpha_t > 0`. The point
    :math:`\sum_t \alpha_t g_t` is zero exactly when the tasks are Pareto-stationary (0 in the
    hull); otherwise its negative decreases every task.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`, the Gram matrix of the task gradients (finite, symmetric PSD).

    Returns
    -------
    Tensor of shape (T,)
        :math:`\alpha` on the simplex (float64).

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix.

    See Also
    --------
    regmtl.deep.MGDA : The weighting that applies it at every step.

    References
    ----------
    Sener & Koltun (2018). Multi-task learning as multi-objective optimization. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.conflict import mgda_weights
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> alpha = mgda_weights(G @ G.T)
    >>> [round(a, 6) for a in alpha.tolist()]
    [0.8, 0.2]
    >>> [round(x, 6) for x in (alpha @ G).tolist()]  # the point of the segment nearest to 0
    [0.8, 0.4]
    """
    return torch.as_tensor(min_norm(as_gram(gram)), dtype=F64)


_NORMALIZATIONS = ("none", "l2", "loss", "loss+")


class MGDA(GramWeighting):
    r"""Multiple-gradient descent (Sener & Koltun, 2018), optionally its upper bound MGDA-UB.

    The shared update is the min-norm point of the convex hull of the (normalized) task
    gradients :math:`\hat g_t = b_t g_t / n_t`:

    .. math::

        d = \sum_t \alpha_t \hat g_t, \qquad
        \alpha = \operatorname*{arg\,min}_{\alpha \in \Delta}
        \Bigl\|\sum_t \alpha_t \hat g_t\Bigr\|_2^2

    (:func:`~regmtl.deep.conflict.mgda_weights`, solved exactly), times T (the tasks taking part;
    the base weights are already in the hull); :math:`-d` decreases every task, and :math:`d = 0`
    (returned as is) when the tasks are Pareto-stationary, 0 in the hull. The normalizers
    :math:`n_t` are those of the authors' code: 1 (``"none"``), :math:`\|g_t\|_2` (``"l2"``),
    :math:`L_t` (``"loss"``) or :math:`L_t \|g_t\|_2` (``"loss+"``). The default ``"none"`` is the
    paper's algorithm (the min-norm point of the gradients themselves, with its guarantees); the
    released configuration of the authors uses ``"loss+"``. Unlike the authors' code, which applies
    :math:`\alpha` to the raw losses, the update here is the min-norm point of the normalized
    gradients: it stays a descent direction for every task, and its length follows the normalization
    (unit-free with ``"l2"``, growing like :math:`1/L` with ``"loss+"``). The returned weights are
    its coefficients on the original gradients, :math:`w_t = T \alpha_t b_t / n_t`: :math:`\sum_t
    w_t n_t / b_t = T`, so they sum to T with unit base weights and ``"none"``, and they are all 0
    at a Pareto-stationary point.

    With ``upper_bound=True`` (MGDA-UB) :math:`\alpha` comes instead from the gradients of
    the losses with respect to the shared representation Z (the trunk's output, T backward
    passes through the heads only), and the shared parameters get the gradient of
    :math:`\sum_t c_t L_t` in one backward pass. The representation is given to
    :meth:`backward` as ``representation=`` or captured by a forward hook of
    :meth:`~regmtl.deep.weighting.GramWeighting.watch` (e.g.
    ``MGDA(upper_bound=True).watch(net.trunk)``); :class:`~regmtl.deep.Trainer` watches a
    hard-sharing net's trunk by itself and refuses nets without a single shared
    representation. This needs one forward pass per step (one training set for all tasks).
    Across distributed ranks the T x T Gram matrices are averaged. ``upper_bound`` is the
    paper's name of the :class:`~regmtl.deep.weighting.GramWeighting` option
    ``on_representation`` (either switches it on).

    The heads get the gradient of :math:`\sum_t b_t L_t`; with a single task the update is
    the plain gradient.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters (of the
    representation's entries with ``upper_bound``); T backward passes through the trunk
    (through the heads with ``upper_bound``).

    Parameters
    ----------
    normalization : {"none", "l2", "loss", "loss+"}, default="none"
        The gradient normalizers :math:`n_t` (``"loss"`` and ``"loss+"`` need positive
        losses).
    upper_bound : bool, default=False
        MGDA-UB: decide from the gradients with respect to the shared representation.
    on_representation : bool, default=False
        The same switch under the name every Gram method uses.

    Notes
    -----
    **Degenerate gradients.** All weights 0 (update 0) at a Pareto-stationary point (the
    squared min-norm point below ``STATIONARY`` = 1e-12 of :math:`(\sum_t \alpha_t
    \|\hat g_t\|)^2`, the size of what it combines, so that orthogonal gradients of scales
    1 and 1e6 are not taken for a stationary point);
    dependent gradients need nothing special (the min-norm point is unique, its weights the
    exact QP's); a zero gradient (no label in the batch) takes no part (weight 0), which a
    zero in the hull would otherwise make stationary. The result does not depend on the
    order of the tasks.

    **Differences from the paper.** The paper and the authors' code solve the min-norm
    problem by Frank-Wolfe to a tolerance (TorchJD stops at 1e-3); regmtl solves it exactly
    (an active-set QP). The update is multiplied by T (the tasks taking part), so that equal
    gradients give equal weighting's update. The normalizations are the authors' code's.

    References
    ----------
    Sener & Koltun (2018). Multi-task learning as multi-objective optimization. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import MGDA, TaskSpec
    >>> weighting = MGDA()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 2 * theta[1]])  # gradients (1, 0) and (0, 2)
    >>> [round(w, 6) for w in weighting.backward(losses, [theta], []).tolist()]  # 2 (0.8, 0.2)
    [1.6, 0.4]
    >>> [round(g, 6) for g in theta.grad.tolist()]  # 2 x the min-norm point (0.8, 0.4)
    [1.6, 0.8]

    MGDA-UB on a trunk's output:

    >>> trunk, head = torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)
    >>> weighting = MGDA(upper_bound=True).watch(trunk)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> out = head(trunk(torch.ones(4, 3)))
    >>> losses = torch.stack([out[:, 0].mean(), -out[:, 1].mean()])
    >>> w = weighting.backward(losses, list(trunk.parameters()), list(head.parameters()))
    >>> w.shape, trunk.weight.grad is not None
    (torch.Size([2]), True)
    """

    #: The name users pass (``weighting="mgda"``) and saved models carry.
    name = "mgda"

    def __init__(self, normalization: str = "none", upper_bound: bool = False,
                 on_representation: bool = False) -> None:
        if normalization not in _NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(_NORMALIZATIONS)}, got "
                             f"{normalization!r}.")
        if not isinstance(upper_bound, (bool, np.bool_)):
            raise ValueError(f"upper_bound must be True or False, got {upper_bound!r}.")
        if not isinstance(on_representation, (bool, np.bool_)):
            raise ValueError(f"on_representation must be True or False, got "
                             f"{on_representation!r}.")
        super().__init__(on_representation=bool(upper_bound) or bool(on_representation))
        self.normalization = normalization

    @property
    def upper_bound(self) -> bool:
        """MGDA-UB: the name of ``on_representation`` in the paper (the same switch)."""
        return self.on_representation

    @upper_bound.setter
    def upper_bound(self, value: bool) -> None:
        self.on_representation = bool(value)

    # ------------------------------------------------------------------ solve
    def _solve(self, A, b, idx, losses, reduce):
        d = np.sqrt(np.diag(A))
        if self.normalization in ("loss", "loss+"):
            L = losses.detach()
            if reduce is not None:
                L = reduce(L)
            L = L.to("cpu", F64).numpy()[idx]
            if not np.all(np.isfinite(L) & (L > 0)):
                bad = [self.task_names[i] for i, v in zip(idx, L, strict=True)
                       if not (np.isfinite(v) and v > 0)]
                raise ValueError(f"MGDA(normalization={self.normalization!r}) needs positive "
                                 f"finite losses; task(s) {bad} have {L.tolist()}. Use "
                                 "normalization='l2' or 'none'.")
            n = L * d if self.normalization == "loss+" else L
        elif self.normalization == "l2":
            n = d
        else:
            n = np.ones(len(b))
        r = b / n  # rows r_t g_t
        An = A * np.outer(r, r)
        alpha = min_norm(An)
        if is_stationary(An, alpha):
            return np.zeros(len(b))  # Pareto-stationary: 0 is in the hull
        return len(b) * alpha * r  # T (taking part): the hull already holds the b_t

    def extra_repr(self) -> str:
        return f"normalization={self.normalization!r}, upper_bound={self.upper_bound!r}"
