r"""Lazy Adam for row-sparse gradients: a step touches only the rows a batch reached.

Each task's head is a row of a batched parameter (:mod:`regmtl.deep.heads`). Adam updates
every row on every step, the rows of the tasks absent from the batch too (their moments
decay and their weights drift along the old momentum), so a step costs O(T). With a
row-sparse gradient :math:`g` over the rows :math:`R` of the batch, the lazy update is Adam's
on those rows only, with the parameter's step count :math:`s` (one per step, as
``torch.optim.SparseAdam`` and TensorFlow's LazyAdam count it):

.. math::

    m_R \leftarrow \beta_1 m_R + (1 - \beta_1) g_R, \qquad
    v_R \leftarrow \beta_2 v_R + (1 - \beta_2) g_R^2, \qquad
    w_R \leftarrow w_R - \frac{\eta}{1 - \beta_1^s}\,
        \frac{m_R}{\sqrt{v_R / (1 - \beta_2^s)} + \epsilon},

and the rows outside :math:`R` keep their weights and moments. When every row is in every
batch this is Adam's step exactly. Weight decay reaches the rows of :math:`R` only: added to
their gradient (:class:`LazyAdam`) or decoupled, :math:`w_R \leftarrow (1 - \eta\lambda)
w_R` (:class:`LazyAdamW`). Dense gradients (of the trunk, or of a head under a penalty that
reads every row) take torch's Adam step, fused where it can be.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from ._torch import torch

__all__ = ["LazyAdam", "LazyAdamW", "clip_grad_norm", "make_optimizer"]


class _Lazy:
    """Adam's step for dense gradients, the lazy row update for sparse ones."""

    def _check_lazy(self) -> None:
        for group in self.param_groups:
            for key in ("amsgrad", "maximize", "differentiable", "capturable"):
                if group.get(key):
                    raise ValueError(f"{type(self).__name__} does not take {key}=True (the lazy "
                                     f"row update is Adam's plain step).")

    @torch.no_grad()
    def step(self, closure=None):
        """One step: torch's Adam on the dense gradients, the lazy update on the sparse."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        held = []
        for group in self.param_groups:
            sparse = [p for p in group["params"] if p.grad is not None and p.grad.is_sparse]
            if sparse:
                held.append((group, sparse, [p.grad for p in sparse]))
                for p in sparse:
                    p.grad = None  # Adam's step skips a parameter without a gradient
        try:
            self._dense_step()
        finally:
            for _, ps, gs in held:
                for p, g in zip(ps, gs, strict=True):
                    p.grad = g
        for group, ps, gs in held:
            self._lazy_rows(group, ps, gs)
        return loss

    def _dense_step(self) -> None:
        """Adam's own step, without the hook wrapper torch puts on each optimizer class's
        ``step`` (else the step hooks would run twice, once for this step and once for
        Adam's)."""
        fn = super().step.__func__
        if getattr(fn, "hooked", False):
            fn = fn.__wrapped__
        fn(self)

    def _state(self, group: dict, p: torch.Tensor) -> dict:
        """The parameter's state, made as torch's Adam makes it (so either step can follow)."""
        state = self.state[p]
        if not state:
            scalar = torch.float32 if group["fused"] or torch.get_default_dtype() != \
                torch.float64 else torch.float64
            state["step"] = (torch.zeros((), dtype=scalar, device=p.device) if group["fused"]
                             else torch.tensor(0.0, dtype=scalar))
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _lazy_rows(self, group: dict, ps: list, grads: list) -> None:
        """The lazy update of the rows of ``ps`` that their sparse ``grads`` hold."""
        lr, (b1, b2) = float(group["lr"]), group["betas"]
        eps, wd = group["eps"], group["weight_decay"]
        decoupled = group.get("decoupled_weight_decay", False)
        for p, grad in zip(ps, grads, strict=True):
            grad = grad.coalesce()  # repeated rows summed, in row order
            rows, g = grad.indices()[0], grad.values()
            state = self._state(group, p)
            state["step"] += 1
            s = float(state["step"])
            if wd:
                w = p.index_select(0, rows)
                if decoupled:
                    p.index_add_(0, rows, w, alpha=-lr * wd)
                else:
                    g = g.add(w, alpha=wd)
            m = state["exp_avg"].index_select(0, rows).lerp_(g, 1.0 - b1)
            v = state["exp_avg_sq"].index_select(0, rows).mul_(b2).addcmul_(g, g, value=1.0 - b2)
            state["exp_avg"].index_copy_(0, rows, m)
            state["exp_avg_sq"].index_copy_(0, rows, v)
            c2 = math.sqrt(1.0 - b2 ** s)
            # w -= lr / c1 * m / (sqrt(v) / c2 + eps) = lr c2 / c1 * m / (sqrt(v) + eps c2)
            p.index_add_(0, rows, m.div_(v.sqrt_().add_(eps * c2)),
                         alpha=-lr * c2 / (1.0 - b1 ** s))


class LazyAdam(_Lazy, torch.optim.Adam):
    """Adam whose row-sparse gradients update only their rows (see the module's docstring);
    the arguments are ``torch.optim.Adam``'s (``amsgrad``, ``maximize``, ``capturable`` and
    ``differentiable`` are refused).

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.heads import gather_rows
    >>> from regmtl.deep.optim import LazyAdam
    >>> W = torch.nn.Parameter(torch.ones(4, 2))
    >>> opt = LazyAdam([W], lr=0.1)
    >>> gather_rows(torch.tensor([1, 1, 3]), W, sparse=True)[0].sum().backward()
    >>> opt.step()
    >>> [round(w, 6) for w in W[:, 0].tolist()]  # rows 0 and 2 had no gradient: untouched
    [1.0, 0.9, 1.0, 0.9]
    """

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self._check_lazy()


class LazyAdamW(_Lazy, torch.optim.AdamW):
    """AdamW whose row-sparse gradients update (and decay) only their rows (see the module's
    docstring); the arguments are ``torch.optim.AdamW``'s."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self._check_lazy()


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    r"""Scale the gradients of ``params`` (dense or sparse) so that their joint Euclidean norm
    is at most ``max_norm``: :math:`g \leftarrow g \min(1, c / (\|g\| + 10^{-6}))`, as
    ``torch.nn.utils.clip_grad_norm_``; sparse gradients are coalesced first (repeated rows
    summed). Returns the norm before clipping."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return torch.tensor(0.0)
    for p in params:
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
    parts = [(p.grad.values() if p.grad.is_sparse else p.grad).float().pow(2).sum()
             for p in params]
    norm = torch.stack(parts).sum().sqrt()
    factor = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    for p in params:
        if p.grad.is_sparse:
            p.grad.values().mul_(factor.to(p.grad.dtype))
        else:
            p.grad.mul_(factor.to(p.grad.dtype))
    return norm


def make_optimizer(choice: str | Callable, params: list, lr: float, weight_decay: float,
                   lazy: bool = False) -> torch.optim.Optimizer:
    """The trainer's optimizer: ``"adam"``, ``"adamw"`` (their lazy forms with ``lazy``, for
    row-sparse head gradients) or ``"sgd"`` on ``params``, fused where the parameters allow;
    a callable ``params -> Optimizer`` is called."""
    if callable(choice):
        return choice(params)
    opts = ({"adam": LazyAdam, "adamw": LazyAdamW} if lazy else
            {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD})
    if choice not in opts:
        raise ValueError(f"optimizer must be one of {sorted(opts)} or a callable params -> "
                         f"Optimizer, got {choice!r}.")
    kw: dict = {"lr": lr, "weight_decay": weight_decay}
    if choice != "sgd" and _fusable(params):
        # the same update in one kernel over all parameters (on the CPU too): the update
        # of 10,000 heads costs 0.3 ms a step instead of 1.5
        kw["fused"] = True
    return opts[choice](params, **kw)


def _fusable(params: list) -> bool:
    """Whether the fused Adam kernel takes these parameters: dense floating-point tensors on
    one CPU or CUDA device."""
    params = list(params)
    if not params:
        return False
    dev = params[0].device
    return dev.type in ("cpu", "cuda") and all(
        isinstance(p, torch.Tensor) and p.device == dev and p.is_floating_point()
        and p.layout == torch.strided for p in params)
