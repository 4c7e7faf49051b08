r"""The base of the gradient methods that decide from the Gram matrix, and their solvers.

Notation: :math:`g_t` is task t's gradient of the shared parameters, :math:`G` the (T, d)
matrix of these rows, :math:`A = G G^\top` its Gram matrix, :math:`b_t` the task's
``TaskSpec.weight`` and :math:`L_t` its loss. Nash-MTL, IMTL-G, MGDA, Aligned-MTL and UPGrad
(:class:`~regmtl.deep.weighting.GramWeighting`) solve a T-dimensional problem on :math:`A` in
float64 on the CPU (T backward passes through the trunk, memory T x d for :math:`G` and T x T
for the rest). The heads get the gradient of :math:`\sum_t b_t L_t`; the returned weights are
the effective coefficients of the original task gradients in the shared update.

Conventions shared by these methods:

- A task whose gradient is zero (no label in the batch) or whose base weight is zero takes no
  part in the step (coefficient 0); when a single task is left (or T = 1) every method takes
  its plain gradient :math:`b_t g_t`.
- Where a paper's combination has weights summing to 1 (IMTL-G, UPGrad's average), it is
  multiplied by :math:`\sum_t b_t` (over the tasks taking part), so that T equal task gradients
  give exactly the update of equal weighting, as for :class:`~regmtl.deep.CAGrad`: learning
  rates carry over. MGDA's hull is that of the :math:`b_t g_t`, so it is multiplied by T:
  base weights all k give k times the unit update, as under equal weighting. The functions
  (``mgda_weights``, ``imtl_weights``, ``upgrad_weights``, ...) return the papers' weights.
- A non-finite gradient raises a ValueError naming the task, except under loss scaling
  (``scale`` given: mixed precision), where the step falls back to the base weights so that the
  gradient scaler sees the overflow and skips the step.

- With ``on_representation=True`` the Gram matrix is that of the gradients with respect to the
  shared representation :math:`Z` (the trunk's output, B x width per task) instead of the
  shared parameters (see :class:`~regmtl.deep.weighting.GramWeighting`).

``nonneg_qp`` (an exact active-set solver of
:math:`\min_{x \ge 0} \frac12 x^\top Q x - c^\top x`) serves MGDA's min-norm point
and UPGrad's projections.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._torch import torch
from .base import (
    F64,
    GradientWeighting,
    finish_step,
    gram_matrix,
    identity,
    task_gradients,
)
from .helpers import non_finite

__all__ = ["GramWeighting", "STATIONARY", "as_gram", "as_weights", "is_stationary",
           "nonneg_qp", "shared_representation"]

Tensor = torch.Tensor


#: A gradient whose squared norm is below this fraction of the largest one counts as zero.
ZERO_GRAD = 1e-24
#: Pareto stationarity: the squared min-norm point below this fraction of the squared size
#: of what it combines, (sum_t alpha_t |g_t|)^2 (see ``is_stationary``; the unit gradients
#: for IMTL-G and Nash-MTL).
STATIONARY = 1e-12


def is_stationary(A: np.ndarray, alpha: np.ndarray) -> bool:
    r"""Whether the hull point ``alpha @ G`` (``alpha`` on the simplex, ``A = G G^T``) is zero:
    its squared norm below ``STATIONARY`` times that of :math:`\sum_t \alpha_t \|g_t\|`,
    the size of what it combines (rounding leaves about 1e-16 of it), so that gradients of
    very different scales are not taken for cancelling ones."""
    size = float(alpha @ np.sqrt(np.clip(np.diag(A), 0.0, None)))
    return float(alpha @ A @ alpha) <= STATIONARY * size * size


def as_gram(gram: Any, name: str = "gram") -> np.ndarray:
    """A finite, symmetric (T, T) float64 array."""
    if isinstance(gram, torch.Tensor):
        A = gram.detach().to("cpu", F64).numpy()
    else:
        A = np.asarray(gram, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"{name} must be a square (T, T) matrix with T >= 1, got shape "
                         f"{A.shape}.")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} must be finite.")
    if np.any(np.diag(A) < 0):
        raise ValueError(f"{name} must be a Gram matrix G G^T (squared gradient norms on its "
                         f"diagonal); entries {np.flatnonzero(np.diag(A) < 0).tolist()} of "
                         "its diagonal are negative.")
    return 0.5 * (A + A.T)


def as_weights(weights: Any, T: int, name: str = "weights") -> np.ndarray:
    """Finite weights >= 0, one per task (ones if None)."""
    if weights is None:
        return np.ones(T)
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().to("cpu", F64).numpy()
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (T,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be {T} finite numbers >= 0, got {weights!r}.")
    return w


def nonneg_qp(Q: np.ndarray, c: np.ndarray, tol: float) -> np.ndarray:
    """argmin over x >= 0 of ``x.Q.x / 2 - c.x`` for a symmetric PSD Q.

    An active-set method in the manner of Lawson & Hanson's NNLS, on the normal equations: a
    variable whose partial derivative is below ``-tol`` enters the free set; the free
    variables solve their block of ``Q x = c`` (least squares when it is singular) and
    variables that would turn negative leave it. Exact up to rounding once the free set is
    right; T is small.
    """
    n = c.shape[0]
    x = np.zeros(n)
    free = np.zeros(n, dtype=bool)
    blocked = np.zeros(n, dtype=bool)  # entered without becoming positive; retried later
    for _ in range(10 * n + 20):
        descent = c - Q @ x  # minus the gradient
        candidates = ~free & ~blocked & (descent > tol)
        if not candidates.any():
            break
        j = int(np.argmax(np.where(candidates, descent, -np.inf)))
        free[j] = True
        for _ in range(10 * n + 20):
            idx = np.flatnonzero(free)
            z = np.zeros(n)
            z[idx] = np.linalg.lstsq(Q[np.ix_(idx, idx)], c[idx], rcond=None)[0]
            if np.all(z[idx] > 0):
                x = z
                blocked[:] = False
                break
            out = idx[z[idx] <= 0]
            gap = x[out] - z[out]
            ratio = np.where(gap > 0, x[out] / np.where(gap > 0, gap, 1.0), 0.0)
            k = int(np.argmin(ratio))
            x = x + ratio[k] * (z - x)
            x[out[k]] = 0.0
            free &= x > 0
            x[~free] = 0.0
            if not free.any():
                break
        if not free[j]:
            blocked[j] = True
    return x


def shared_representation(net: torch.nn.Module, weighting: Any = None) -> torch.nn.Module:
    """The module whose output is ``net``'s single shared representation (its trunk), as the
    net declares it (``net.shared_representation()``), or an error naming the weighting.

    Only a hard-sharing net has one: every task's head reads the trunk's output :math:`Z` and
    nothing else that is shared. MMoE, CGC and PLE mix their experts per task by gates (each
    task sees its own mixture, so no single tensor carries every shared gradient), and ESMM's
    CTCVR output depends on the CTR tower, which is shared too: these are refused.

    Parameters
    ----------
    net : MultiTaskNet
        The multi-task net.
    weighting : object, optional
        The weighting asking (named in the error).

    Returns
    -------
    torch.nn.Module
        ``net.trunk``.

    Raises
    ------
    ValueError
        If ``net`` has no single shared representation.

    Examples
    --------
    >>> from regmtl.deep import MMoE, HardSharing
    >>> from regmtl.deep.weighting import shared_representation
    >>> net = HardSharing(4, ["a", "b"], hidden=(8,))
    >>> shared_representation(net) is net.trunk
    True
    >>> shared_representation(MMoE(4, ["a", "b"]))
    Traceback (most recent call last):
    ...
    ValueError: this weighting with on_representation=True needs a net with a single shared ...
    """
    module = net.shared_representation()
    if module is not None:
        return module
    who = "this weighting" if weighting is None else f"{type(weighting).__name__}"
    raise ValueError(f"{who} with on_representation=True needs a net with a single shared "
                     f"representation (HardSharing: every head reads the trunk's output); "
                     f"{type(net).__name__} has none (its shared parts are mixed per task by "
                     "gates, or feed a task through another task's tower). Use "
                     "on_representation=False with this net, or a HardSharing net.")


def loss_factor(scale: Callable[[Tensor], Tensor], like: Tensor) -> float:
    """The factor by which ``scale`` multiplies a loss (the AMP loss scale; 1 without)."""
    if scale is identity:
        return 1.0
    factor = float(scale(like.detach().new_ones(())))
    return factor if math.isfinite(factor) and factor > 0 else 1.0


class GramWeighting(GradientWeighting):
    r"""Gradient methods that decide from the Gram matrix of the per-task gradients.

    The base of :class:`~regmtl.deep.NashMTL`, :class:`~regmtl.deep.IMTL`,
    :class:`~regmtl.deep.MGDA`, :class:`~regmtl.deep.AlignedMTL` and
    :class:`~regmtl.deep.UPGrad`. A subclass implements ``_solve(A, b, idx, losses, reduce)``:
    the coefficients :math:`c` (a float64 array) of the update :math:`\sum_t c_t g_t` from the
    Gram matrix :math:`A = G G^\top` and the base weights :math:`b` of the tasks ``idx`` taking
    part (at least two: a task with a zero gradient or a zero base weight gets 0, a single one
    left its plain gradient :math:`b_t g_t`). The heads get the gradient of
    :math:`\sum_t b_t L_t`. A non-finite gradient raises a ValueError naming the task, except
    under loss scaling (mixed precision), where the step keeps the base weights so that the
    gradient scaler skips it.

    The decision is taken on the gradients of the unscaled losses (the Gram matrix divided by
    the square of the AMP loss scale), so the coefficients do not depend on the loss scale
    and the scaled gradient matrix gives a scaled update, as the gradient scaler expects.

    **The shared-representation route** (``on_representation=True``; MGDA's ``upper_bound``, the
    MGDA-UB of Sener & Koltun, 2018). The Gram matrix is taken of the gradients :math:`\nabla_Z
    L_t` with respect to the shared representation :math:`Z` (the trunk's output on the batch,
    captured by :meth:`watch`; the trainer watches the module the net names,
    ``net.shared_representation()``, by itself): T backward passes through the heads only, a (T,
    B x width) matrix instead of (T, trunk parameters), then one backward pass of :math:`\sum_t
    c_t L_t` through the whole net. The coefficients are the method's own, decided on
    :math:`\nabla_Z L_t`: its promise (MGDA's min-norm point, UPGrad's non-conflict, IMTL-G's
    equal projections) holds for the representation's gradients, and for the parameters' only
    where the trunk's Jacobian :math:`J` keeps inner products (:math:`J J^\top = I`, e.g. a
    linear trunk on orthonormal inputs, where both routes give the same coefficients); in
    general :math:`g_s \cdot d = \nabla_Z L_s^\top J J^\top \sum_t c_t \nabla_Z L_t` may differ
    in sign from :math:`\nabla_Z L_s^\top \sum_t c_t \nabla_Z L_t`. Every Gram method allows it
    (MGDA, IMTL-G and Aligned-MTL as their papers' feature-level variants; UPGrad and Nash-MTL
    as a cheaper approximation that no paper states); CAGrad and PCGrad are not Gram methods and
    do not offer it. Only a net with a single shared representation has one
    (:func:`shared_representation`: a hard-sharing net; MMoE, CGC, PLE and ESMM are refused),
    and one forward pass per step (not per-task batches). Under data parallelism each rank holds
    the representation of its own rows, and the Gram matrix is the sum of the ranks' (a
    ``reduce`` with a ``gram`` method, :class:`~regmtl.deep.distributed.RankMean`, gives it;
    another ``reduce`` is applied as it is): one process's on the global batch.

    Parameters
    ----------
    on_representation : bool, default=False
        Decide from the gradients with respect to the shared representation (above).

    Examples
    --------
    A method of one's own: every task gradient scaled to unit length.

    >>> import numpy as np
    >>> import torch
    >>> from regmtl.deep import TaskSpec
    >>> from regmtl.deep.weighting import GramWeighting
    >>> class UnitGradients(GramWeighting):
    ...     def _solve(self, A, b, idx, losses, reduce):
    ...         return b / np.sqrt(np.diag(A))
    >>> weighting = UnitGradients()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 4 * theta[1]])  # gradients (1, 0) and (0, 4)
    >>> weighting.backward(losses, [theta], []).tolist()
    [1.0, 0.25]
    >>> theta.grad.tolist()
    [1.0, 1.0]
    """

    #: Whether the method may decide from the representation's gradients (a subclass whose
    #: mathematics needs the parameters' gradients sets it to False).
    allows_representation: bool = True

    def __init__(self, on_representation: bool = False) -> None:
        super().__init__()
        if not isinstance(on_representation, (bool, np.bool_)):
            raise ValueError(f"on_representation must be True or False, got "
                             f"{on_representation!r}.")
        if on_representation and not self.allows_representation:
            raise ValueError(f"{type(self).__name__} does not take on_representation=True: "
                             "its update needs the gradients of the shared parameters; use "
                             "on_representation=False.")
        self.on_representation = bool(on_representation)
        self._hook: Any = None
        self._representation: Tensor | None = None
        self._n_captured = 0

    def __setstate__(self, state: dict) -> None:
        # models saved before the option: MGDA's upper_bound is on_representation
        state = dict(state)
        if "upper_bound" in state:
            state.setdefault("on_representation", bool(state.pop("upper_bound")))
        state.setdefault("on_representation", False)
        state.setdefault("_hook", None)
        state.setdefault("_representation", None)
        state.setdefault("_n_captured", 0)
        super().__setstate__(state)

    # ------------------------------------------------------------------ representation
    def watch(self, module: torch.nn.Module) -> GramWeighting:
        """Capture the output of ``module`` (the shared representation) at every forward pass.

        Parameters
        ----------
        module : torch.nn.Module
            The module whose output is the representation Z, e.g. ``net.trunk`` of a
            :class:`~regmtl.deep.HardSharing` net. Replaces a previously watched module.

        Returns
        -------
        GramWeighting
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
        if self.on_representation and isinstance(output, torch.Tensor) and output.requires_grad:
            self._representation = output
            self._n_captured += 1

    def _solve(self, A: np.ndarray, b: np.ndarray, idx: np.ndarray, losses: Tensor,
               reduce: Callable[[Tensor], Tensor] | None) -> np.ndarray:
        """Coefficients on the rows ``idx`` (>= 2 tasks taking part) from their Gram ``A``."""
        raise NotImplementedError

    def _coefficients(self, A: Tensor, losses: Tensor, scale: Callable[[Tensor], Tensor],
                      reduce: Callable[[Tensor], Tensor] | None) -> Tensor:
        """(T,) float64 coefficients from the Gram matrix of all tasks (CPU float64)."""
        base = self._base()
        diag = torch.diagonal(A)
        bad = ~torch.isfinite(diag)
        if bad.any() or not torch.isfinite(A).all():
            if scale is not identity:  # an overflowing mixed-precision step: the scaler skips
                return base.clone()
            # a NaN loss spreads NaN to every row through autograd: name it first
            bad_loss = ~torch.isfinite(losses.detach().to("cpu", F64))
            what, bad = ("loss", bad_loss) if bad_loss.any() else ("gradient", bad)
            raise non_finite(type(self).__name__, what, self.task_names, bad.numpy())
        An = A.numpy() / loss_factor(scale, losses) ** 2
        b = base.numpy()
        d = np.diag(An)
        active = (b > 0) & (d > ZERO_GRAD * max(float(d.max()), 0.0))
        idx = np.flatnonzero(active)
        coeffs = np.zeros(len(b))
        if len(idx) == 1:
            coeffs[idx] = b[idx]
        elif len(idx) >= 2:
            coeffs[idx] = self._solve(An[np.ix_(idx, idx)], b[idx], idx, losses, reduce)
        return torch.as_tensor(coeffs, dtype=F64)

    def _combine(self, G, losses, scale, reduce):
        return self._coefficients(gram_matrix(G), losses, scale, reduce), self._base()

    def extra_repr(self) -> str:
        return "on_representation=True" if self.on_representation else ""

    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None,
                 representation: Tensor | None = None) -> Tensor:
        """As :meth:`~regmtl.deep.Weighting.backward`; with ``on_representation`` the
        coefficients come from the gradients with respect to ``representation`` (default:
        the one captured by :meth:`watch`)."""
        if not self.on_representation:
            return super().backward(losses, shared, specific, extra=extra, scale=scale,
                                    reduce=reduce)
        self._check_losses(losses)
        captured, n_captured = self._representation, self._n_captured
        self._representation, self._n_captured = None, 0
        Z = representation if representation is not None else captured
        scale = identity if scale is None else scale
        shared = [p for p in shared if p.requires_grad]
        specific = [p for p in specific if p.requires_grad]
        name = type(self).__name__
        if not losses.requires_grad:
            coeffs = torch.zeros(self.n_tasks, dtype=F64)
        else:
            if Z is None or not Z.requires_grad:
                raise RuntimeError(f"{name}(on_representation=True) needs the shared "
                                   "representation: call weighting.watch(net.trunk) before "
                                   "training (the trainer does it for a HardSharing net), or "
                                   "pass backward(..., representation=Z).")
            if representation is None and n_captured > 1:
                raise RuntimeError(f"{name}(on_representation=True): {n_captured} forward "
                                   "passes of the watched module since the last step; the "
                                   "route needs one forward pass per step (one training set "
                                   "for all tasks, not per-task batches).")
            GZ = task_gradients(losses, [Z], scale)
            if GZ.dtype in (torch.float16, torch.bfloat16):
                GZ = GZ.float()
            A = GZ @ GZ.T
            del GZ
            if reduce is not None:  # (the ranks' rows: a sum of their Gram matrices)
                A = getattr(reduce, "gram", reduce)(A)
            coeffs = self._coefficients(A.to("cpu", F64), losses, scale, reduce)
            if shared:
                objective = scale((coeffs.to(losses) * losses).sum())
                torch.autograd.backward(objective, inputs=shared, retain_graph=True)
        return finish_step(losses, specific, self._base(), coeffs, extra, scale)
