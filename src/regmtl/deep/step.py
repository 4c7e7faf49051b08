r"""One training step, written once: every route of the data (a data set's batches of
indices, a loader's batches, one batch per task), one process or DDP, dense or lazy heads.

A step draws the task losses :math:`L_t` of its batch (``losses_of()``, under mixed precision
where it is on), hands them with the smooth penalties :math:`\Omega` to the weighting (which
writes the gradients, for a loss weighting those of :math:`\sum_t w_t L_t + \Omega(\theta)`),
averages the gradients across ranks where DDP does not (gradient methods, per-task batches;
under DDP the losses carry the global batch's values and W times the rank's share of its
gradients, so that the average is one process's gradient: ``regmtl.deep.distributed``),
unscales and clips them, takes the optimizer step, then the proximal steps of the non-smooth
penalties, and for a weighting with ``needs_step_losses`` (FAMO) hands it the batch's losses
at the updated parameters.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from ._torch import torch
from .conversion import find_stack_level
from .distributed import RankMean
from .preflight import buffers_to_keep
from .weighting.helpers import NonFiniteTask, non_finite

__all__ = ["StepSetup", "train_step", "mixed_precision", "owns_precision", "outer_autocast",
           "repeatable_kernels"]

#: the device types whose ``torch.autocast`` a caller may have turned on around a fit
AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps", "hpu")


@dataclass
class StepSetup:
    """The choices of a fit that every step reads, made once.

    Attributes
    ----------
    net : MultiTaskNet
        The net (its parameters and buffers).
    model : torch.nn.Module
        What runs the forward pass: the net, or its ``DistributedDataParallel`` wrapper.
    weighting : Weighting
        Writes the gradients.
    optimizer : torch.optim.Optimizer
        Takes the step.
    params : list of Parameter
        The net's and the weighting's (clipped together).
    shared, specific : list of Parameter
        The trainable shared and task parameters.
    smooth, prox : list of ParameterPenalty
        The penalties in the objective and those taken by proximal steps.
    ctx : Context
        Where the fit runs.
    autocast : callable
        Context factory of mixed precision (``nullcontext`` without).
    scaler : GradScaler or None
        Loss scaling of float16.
    grad_clip : float or None
        The largest gradient norm.
    clip : callable
        The clipping function (``clip_grad_norm`` for row-sparse head gradients).
    manual : bool
        Average the net's gradients by hand (DDP with gradient methods or per-task batches).
    balance : GradientBalance or None
        Measures the gradient balance on every ``every``-th step.
    every : int
        See ``balance``.
    guard : DivergenceGuard or None
        Counts the steps whose gradient norm (taken by clipping) was finite; not under loss
        scaling, whose scaler skips an overflowing step.
    """

    net: Any
    model: Any
    weighting: Any
    optimizer: Any
    params: list
    shared: list
    specific: list
    smooth: list
    prox: list
    ctx: Any
    autocast: Callable = nullcontext
    scaler: Any = None
    grad_clip: float | None = None
    clip: Callable = torch.nn.utils.clip_grad_norm_
    manual: bool = False
    balance: Any = None
    every: int = 1
    guard: Any = None

    def __post_init__(self) -> None:
        self.scale = None if self.scaler is None else self.scaler.scale
        self.reduce = RankMean(self.ctx) if self.ctx.distributed else None


def train_step(s: StepSetup, losses_of: Callable[[], torch.Tensor],
               step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the batch whose task losses ``losses_of()`` computes.

    Parameters
    ----------
    s : StepSetup
        The fit's choices.
    losses_of : callable
        Runs the forward pass of the step's batch and returns its (T,) task losses.
    step : int
        The step's number in its epoch (from 0; the gradient balance is measured on every
        ``s.every``-th).

    Returns
    -------
    losses, weights : Tensor of shape (T,)
        The batch's task losses and the weighting's weights of the step, detached.
    """
    opt, weighting, ctx = s.optimizer, s.weighting, s.ctx
    opt.zero_grad(set_to_none=True)
    with s.model.no_sync() if s.manual else nullcontext():
        with s.autocast():
            losses = losses_of()
        if s.balance is not None and step % s.every == 0:
            s.balance.add(losses.float(), s.shared)
        extra = sum(p.value(s.net) for p in s.smooth) if s.smooth else None
        try:
            w = weighting.backward(losses.float(), s.shared, s.specific, extra=extra,
                                   scale=s.scale, reduce=s.reduce)
        except NonFiniteTask as e:  # a NaN loss spreads to every gradient: name the loss
            bad = ~torch.isfinite(losses.detach()).cpu()
            if e.what == "gradient" and bool(bad.any()):
                raise non_finite(type(weighting).__name__, "loss",
                                 getattr(weighting, "task_names", ()), bad.numpy()) from e
            raise
    if s.manual:
        ctx.average_gradients(s.net.parameters())
    if ctx.distributed:
        ctx.average_gradients(weighting.parameters())
    if s.scaler is not None:
        s.scaler.unscale_(opt)
    if s.grad_clip is not None:
        norm = s.clip(s.params, s.grad_clip)
        if s.guard is not None and s.scaler is None:
            s.guard.gradient(norm)
    if s.scaler is not None:
        s.scaler.step(opt)
        s.scaler.update()
    else:
        opt.step()
    if s.prox:
        lr = opt.param_groups[0]["lr"]
        for p in s.prox:
            p.prox(s.net, lr)
    if weighting.needs_step_losses:
        _step_end(s, losses_of)
    return losses.detach(), w.detach()


def _step_end(s: StepSetup, losses_of: Callable[[], torch.Tensor]) -> None:
    """Give the weighting the losses of the step's batch at the updated parameters (FAMO):
    one more forward pass without gradients, leaving the net's buffers as they were."""
    saved = buffers_to_keep(s.net)
    with torch.no_grad(), s.autocast():
        new = losses_of()
    with torch.no_grad():
        for b, v in saved:
            b.copy_(v)
    s.weighting.step_end(new.detach().float(), reduce=s.reduce)


def mixed_precision(device: torch.device, amp: str | bool) -> tuple[Callable, Any]:
    """(autocast context factory, GradScaler or None) of ``amp`` on ``device``: bfloat16 on
    CUDA where supported, else float16 with loss scaling; never on the CPU."""
    on = device.type == "cuda" and amp in ("auto", True)
    if amp is True and device.type != "cuda":
        raise ValueError("amp=True needs a CUDA device; use amp='auto' (on for CUDA only).")
    if not on:
        return nullcontext, None
    bf16 = torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float16
    scaler = None if bf16 else torch.amp.GradScaler("cuda")
    # no cast cache: torch empties it only on leaving the outermost autocast region, so
    # inside a caller's autocast (turned off by owns_precision, still the outermost) every
    # step would read the weights cast at the first one and training would stall
    return (lambda: torch.autocast("cuda", dtype=dtype, cache_enabled=False)), scaler


def outer_autocast() -> list[str]:
    """The device types whose ``torch.autocast`` is on where this is called (a caller's
    ``with torch.autocast(...)`` around a fit or a prediction)."""
    on = []
    for device in AUTOCAST_DEVICES:
        try:
            if torch.is_autocast_enabled(device):
                on.append(device)
        except RuntimeError:  # a device type this build has no autocast for
            continue
    return on


@contextmanager
def repeatable_kernels() -> Iterator[None]:
    """cuDNN's deterministic algorithms, none benchmarked, inside (the caller's choice back
    after): a fit on CUDA repeats itself bit for bit. cuDNN otherwise picks, per call,
    convolution kernels that add in a varying order (an H200: two fits of one conv net
    apart by 8e-3 in the weights; the deterministic ones ran at the same speed)."""
    cudnn = torch.backends.cudnn
    before = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = before


def owns_precision(method: Callable | None = None, *, what: str | None = None) -> Callable:
    """``method`` (a fit, a prediction) run in its own precision and on repeatable kernels
    (:func:`repeatable_kernels`): inside a caller's
    ``torch.autocast`` it runs with that autocast turned off, after one UserWarning that says
    so and names ``amp=``, the option of mixed precision.

    The trainer decides its precision: float32, with the mixed precision of ``amp`` on CUDA
    (its own autocast, with loss scaling for float16). An outer autocast would run the net
    and the losses in bfloat16 or float16 without loss scaling and without the float32 master
    computations that mixed training needs: a fit inside ``torch.autocast("cpu",
    torch.bfloat16)`` learned next to nothing. The calls it makes (a fit's validation, a
    wrapper's trainer) find the autocast off and do not warn again. The warning names
    ``Class.method``, or ``what`` (``@owns_precision(what="prediction")`` on a private
    method).
    """
    if method is None:
        return functools.partial(owns_precision, what=what)

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        on = outer_autocast()
        if on:
            who = (f"{type(self).__name__}.{method.__name__}" if what is None
                   else f"a {what} of {type(self).__name__}")
            warnings.warn(
                f"{who} was called inside torch.autocast({', '.join(map(repr, on))}); it "
                "runs with that autocast turned off (float32), since the trainer owns its "
                "precision: mixed precision is its amp= option (amp='auto' or True: on CUDA, "
                "with loss scaling where float16), not an outer autocast.", UserWarning,
                stacklevel=find_stack_level())
        with ExitStack() as stack:
            stack.enter_context(repeatable_kernels())
            for device in on:
                stack.enter_context(torch.autocast(device, enabled=False))
            return method(self, *args, **kwargs)

    return run
