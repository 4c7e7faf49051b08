r"""Multiple-gradient descent, MGDA (Sener & Koltun, 2018), and its upper bound MGDA-UB.

The update is the min-norm point of the convex hull of the (normalized) task gradients,
:math:`\alpha = \arg\min_{\alpha \in \Delta} \alpha^\top A \alpha`, solved exactly
(``min_norm``); with ``upper_bound`` :math:`\alpha` comes from the gradients with respect to
the shared representation. :func:`~regmtl.deep.conflict.mgda_weights` gives :math:`\alpha`,
:class:`~regmtl.deep.MGDA` is the weighting.

Sener & Koltun (2018). Multi-task learning as multi-objective optimization. NeurIPS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._torch import torch
from .base import F64, identity, task_gradients
from .gram import STATIONARY, GramWeighting, as_gram, nonneg_qp

__all__ = ["MGDA", "mgda_weights", "min_norm"]

Tensor = torch.Tensor


def min_norm(A: np.ndarray) -> np.ndarray:
    """The weights on the simplex of the min-norm point of the hull of the rows of G (A = GG^T).

    The nearest point to (0, 1) in the cone of the lifted rows (g_t, 1) is t (p, 1) with p the
    min-norm point: a non-negative least-squares problem (Gram ``A + s 11^T``, ``s`` the
    largest squared norm for conditioning) whose solution, normalized to sum 1, is the answer.
    """
    T = A.shape[0]
    s = float(np.max(np.diag(A))) if T else 0.0
    if T == 1 or s <= 0:
        return np.full(T, 1.0 / max(T, 1))
    An = A / s
    beta = nonneg_qp(An + 1.0, np.ones(T), tol=1e-14 * T)
    total = beta.sum()
    if not (total > 0 and np.isfinite(total)):
        return np.full(T, 1.0 / T)
    return beta / total


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
    :meth:`backward` as ``representation=`` or captured by a forward hook: call
    :meth:`watch` with the trunk (e.g. ``MGDA(upper_bound=True).watch(net.trunk)``) before
    training with :class:`~regmtl.deep.Trainer`; this needs one forward pass per step (one
    training set for all tasks). Across distributed ranks the T x T Gram matrices are
    averaged.

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

    Notes
    -----
    **Degenerate gradients.** All weights 0 (update 0) at a Pareto-stationary point (the
    squared min-norm point below ``STATIONARY`` = 1e-12 of the largest squared gradient);
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

    def __init__(self, normalization: str = "none", upper_bound: bool = False) -> None:
        super().__init__()
        if normalization not in _NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(_NORMALIZATIONS)}, got "
                             f"{normalization!r}.")
        if not isinstance(upper_bound, (bool, np.bool_)):
            raise ValueError(f"upper_bound must be True or False, got {upper_bound!r}.")
        self.normalization = normalization
        self.upper_bound = bool(upper_bound)
        self._hook: Any = None
        self._representation: Tensor | None = None
        self._n_captured = 0

    # ------------------------------------------------------------------ representation
    def watch(self, module: torch.nn.Module) -> MGDA:
        """Capture the output of ``module`` (the shared representation) at every forward pass.

        Parameters
        ----------
        module : torch.nn.Module
            The module whose output is the representation Z, e.g. ``net.trunk`` of a
            :class:`~regmtl.deep.HardSharing` net. Replaces a previously watched module.

        Returns
        -------
        MGDA
            The weighting itself.
        """
        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"watch needs a torch.nn.Module, got {type(module).__name__}.")
        self.unwatch()
        self._hook = module.register_forward_hook(self._capture)
        return self

    def unwatch(self) -> None:
        """Remove the hook of :meth:`watch` (if any) and drop the captured representation."""
        if self._hook is not None:
            self._hook.remove()
        self._hook, self._representation, self._n_captured = None, None, 0

    def _capture(self, module: torch.nn.Module, inputs: Any, output: Any) -> None:
        if self.upper_bound and isinstance(output, torch.Tensor) and output.requires_grad:
            self._representation = output
            self._n_captured += 1

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
        if float(alpha @ An @ alpha) <= STATIONARY * float(np.max(np.diag(An))):
            return np.zeros(len(b))  # Pareto-stationary: 0 is in the hull
        return len(b) * alpha * r  # T (taking part): the hull already holds the b_t

    # ------------------------------------------------------------------ backward
    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None,
                 representation: Tensor | None = None) -> Tensor:
        """As :meth:`Weighting.backward`; with ``upper_bound`` the weights come from the
        gradients with respect to ``representation`` (default: the one captured by
        :meth:`watch`)."""
        if not self.upper_bound:
            return super().backward(losses, shared, specific, extra=extra, scale=scale,
                                    reduce=reduce)
        self._check_losses(losses)
        captured, n_captured = self._representation, self._n_captured
        self._representation, self._n_captured = None, 0
        Z = representation if representation is not None else captured
        scale = identity if scale is None else scale
        shared = [p for p in shared if p.requires_grad]
        specific = [p for p in specific if p.requires_grad]
        with_extra = extra is not None and extra.requires_grad
        if not losses.requires_grad:
            coeffs = torch.zeros(self.n_tasks, dtype=F64)
        else:
            if Z is None or not Z.requires_grad:
                raise RuntimeError("MGDA(upper_bound=True) needs the shared representation: "
                                   "call weighting.watch(net.trunk) before training, or pass "
                                   "backward(..., representation=Z).")
            if representation is None and n_captured > 1:
                raise RuntimeError(f"MGDA(upper_bound=True): {n_captured} forward passes of the "
                                   "watched module since the last step; the upper bound needs "
                                   "one forward pass per step (one training set for all tasks).")
            GZ = task_gradients(losses, [Z], scale)
            A = GZ @ GZ.T
            del GZ
            if reduce is not None:
                A = reduce(A)
            coeffs = self._coefficients(A.to("cpu", F64), losses, scale, reduce)
            if shared:
                objective = scale((coeffs.to(losses) * losses).sum())
                torch.autograd.backward(objective, inputs=shared, retain_graph=True)
        if specific and losses.requires_grad:
            head_objective = scale((self._base().to(losses) * losses).sum())
            torch.autograd.backward(head_objective, inputs=specific, retain_graph=with_extra)
        if with_extra:
            scale(extra).backward()
        return coeffs.to(device=losses.device, dtype=losses.dtype).clone()

    def extra_repr(self) -> str:
        return f"normalization={self.normalization!r}, upper_bound={self.upper_bound!r}"
