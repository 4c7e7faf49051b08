r"""The contract of a task weighting and the gradient helpers the methods share.

:class:`~regmtl.deep.Weighting` turns the per-task losses :math:`L_t` of a step into parameter
gradients (a loss weighting backpropagates :math:`\sum_t w_t L_t`);
:class:`~regmtl.deep.weighting.GradientWeighting` is the base of the methods that first form
the (T, d) matrix :math:`G` of the per-task gradients :math:`g_t = \nabla_\theta L_t` of the d
shared parameters (``task_gradients``, T backward passes through the trunk) and update the
shared parameters along :math:`c^\top G`. The checks and small helpers here (``check_number``,
``gram_matrix``, ``weighted_softmax``, ...) are those of every method module of this package.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from .._torch import torch
from ..tasks import TaskSpec
from .helpers import check_number, task_list, weighted_softmax
from .state import DeclaredState

__all__ = [
    "F64",
    "REGISTRY",
    "Weighting",
    "GradientWeighting",
    "check_number",
    "gram_matrix",
    "identity",
    "task_gradients",
    "task_list",
    "weighted_softmax",
]

Tensor = torch.Tensor


#: The dtype of the small T-dimensional problems (weights, Gram matrices): float64.
F64 = torch.float64


def identity(x: Tensor) -> Tensor:
    """The identity: the ``scale`` of a step without loss scaling."""
    return x


#: The weighting classes that name themselves (``name = "pcgrad"``), by name, filled as they
#: are defined: ``regmtl.deep.weighting.WEIGHTINGS`` is built from it.
REGISTRY: dict[str, type] = {}


# ----------------------------------------------------------------------------- base class
class Weighting(DeclaredState, torch.nn.Module):
    r"""Base class of the task weightings: turns per-task losses into parameter gradients.

    A loss weighting backpropagates :math:`\sum_t w_t L_t` (plus an optional regularizer and
    the penalty) with the weights :math:`w` of the step. Subclasses of loss weighting implement
    ``_loss_weights(losses)``, the (T,) weights on the device and dtype of ``losses`` (and
    ``_regularizer(losses)``, a term added to the objective, or None); gradient methods
    (:class:`~regmtl.deep.GradNorm`, :class:`~regmtl.deep.PCGrad`,
    :class:`~regmtl.deep.CAGrad`, ...) derive from
    :class:`~regmtl.deep.weighting.GradientWeighting`, which forms the per-task gradient
    matrix. The trainer calls :meth:`setup` once (before building its optimizer: some methods
    create parameters), :meth:`backward` every step, :meth:`step_end` after every optimizer
    step for methods with ``needs_step_losses`` (FAMO) and :meth:`epoch_end` after every epoch.
    State lives in buffers (and the random generator in the extra state), so ``state_dict``
    round-trips after :meth:`setup`; move the module with ``.to(device)`` like the net. A
    resumed fit restores it all with ``training_state`` (state kept in Python attributes is
    named in ``state_attributes``, see ``regmtl.deep.weighting.state``).

    Attributes
    ----------
    base_weights : Tensor of shape (T,)
        Each task's ``TaskSpec.weight`` :math:`b_t` (float64, CPU), set by :meth:`setup`.
    task_names : tuple of str
        The tasks, set by :meth:`setup`.
    needs_task_grads : bool
        Whether the method forms the per-task gradients of the shared parameters (T backward
        passes per step).
    needs_step_losses : bool
        Whether the method needs the losses of the batch after the optimizer step
        (:meth:`step_end`; the trainer then runs one more forward pass per step).
    on_representation : bool
        Whether the method reads the gradients with respect to the net's shared
        representation (the trainer then hands :meth:`watch` the net's module of it).

    See Also
    --------
    regmtl.deep.make_weighting : A weighting from its name.
    regmtl.deep.Trainer : Takes a weighting (``weighting=``).

    Examples
    --------
    A weighting of one's own, inversely proportional to each task's current loss:

    >>> import torch
    >>> from regmtl.deep import TaskSpec, Weighting
    >>> class InverseLoss(Weighting):
    ...     def _loss_weights(self, losses):
    ...         return self.base_weights.to(losses) / losses.detach().clamp(min=1e-8)
    >>> weighting = InverseLoss()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    >>> losses = torch.stack([theta[0] ** 2, theta[1] ** 2])  # 1 and 4
    >>> weighting.backward(losses, [theta], []).tolist()
    [1.0, 0.25]
    >>> theta.grad.tolist()  # the gradient of 1 * theta_0^2 + 0.25 * theta_1^2
    [2.0, 1.0]

    It can then be passed to :class:`~regmtl.deep.Trainer` as ``weighting=InverseLoss()``.
    """

    #: True where per-task gradients of the shared parameters are formed.
    needs_task_grads: bool = False
    #: True where :meth:`step_end` wants the losses of the batch after the optimizer step.
    needs_step_losses: bool = False
    #: True where the gradients with respect to the shared representation are read.
    on_representation: bool = False
    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass with its own ``name`` joins :data:`REGISTRY`; its own ``backward``
        returns a copy too (the caller's own (T,) tensor, never a buffer of the state)."""
        super().__init_subclass__(**kwargs)
        key = cls.__dict__.get("name")
        if isinstance(key, str):
            known = REGISTRY.setdefault(key, cls)
            if known is not cls and (known.__module__, known.__qualname__) != (
                    cls.__module__, cls.__qualname__):  # (a module imported again replaces)
                raise ValueError(f"weighting name {key!r} is taken by {known.__qualname__}.")
            REGISTRY[key] = cls
        method = cls.__dict__.get("backward")
        if method is None or getattr(method, "_returns_own", False):
            return

        @functools.wraps(method)
        def backward(self, *args: Any, **kw: Any) -> Any:
            out = method(self, *args, **kw)
            return out.detach().clone() if isinstance(out, torch.Tensor) else out

        backward._returns_own = True  # type: ignore[attr-defined]
        cls.backward = backward  # type: ignore[method-assign]

    def __init__(self) -> None:
        super().__init__()
        self.base_weights: Tensor = torch.ones(0, dtype=F64)  # CPU float64, from the specs
        self.task_names: tuple[str, ...] = ()
        self._generator: torch.Generator | None = None

    @property
    def n_tasks(self) -> int:
        """The number of tasks T (0 before :meth:`setup`)."""
        return len(self.task_names)

    # ------------------------------------------------------------------ life cycle
    def setup(self, tasks: list[TaskSpec], seed: int | None = None) -> None:
        """Size the state for ``tasks`` and seed the random draws.

        Calling it again resets every state.

        Parameters
        ----------
        tasks : list of TaskSpec
            The tasks, in the order of the losses given to :meth:`backward`.
        seed : int, optional
            Seed of the method's random draws (random weights, PCGrad's order). None draws it
            from torch's global generator, so ``torch.manual_seed`` makes a run reproducible.

        Raises
        ------
        ValueError
            If ``tasks`` is empty, or does not fit the method's options (unknown task names
            or a wrong number of fixed weights).
        """
        tasks = list(tasks)
        if not tasks:
            raise ValueError("setup: give at least one TaskSpec.")
        self.task_names = tuple(t.name for t in tasks)
        self.base_weights = torch.tensor([float(t.weight) for t in tasks], dtype=F64)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self._generator = torch.Generator().manual_seed(int(seed))
        self._setup(tasks)

    def _setup(self, tasks: list[TaskSpec]) -> None:
        """Subclass hook: create the per-task state."""

    def epoch_end(self, train_losses: Tensor) -> None:
        """Record the mean training loss per task of the finished epoch (DWA uses it).

        Parameters
        ----------
        train_losses : Tensor of shape (T,)
            Each task's mean training loss over the epoch.
        """

    def step_end(self, losses: Tensor, *,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        """Take the losses of the last batch after the optimizer step (FAMO uses them).

        Called by the trainer after every optimizer step when ``needs_step_losses`` is True;
        nothing happens by default.

        Parameters
        ----------
        losses : Tensor of shape (T,)
            The detached task losses of the batch of the last :meth:`backward`, at the
            updated parameters.
        reduce : callable, optional
            Averages a tensor across distributed ranks.
        """

    def watch(self, module: torch.nn.Module) -> Weighting:
        """Follow the output of ``module`` (the shared representation) at every forward pass;
        the trainer calls it when ``on_representation`` is True. Nothing by default.

        Parameters
        ----------
        module : torch.nn.Module
            The module whose output is the shared representation :math:`Z`.

        Returns
        -------
        Weighting
            The weighting itself.
        """
        return self

    def unwatch(self) -> None:
        """Stop following the module of :meth:`watch` (nothing by default)."""

    def get_extra_state(self) -> dict:
        """The state outside the buffers, saved in ``state_dict``.

        Returns
        -------
        dict
            The random generator's state and the task names.
        """
        gen = None if self._generator is None else self._generator.get_state()
        return {"generator": gen, "task_names": list(self.task_names)}

    def set_extra_state(self, state: dict) -> None:
        """Restore the state of :meth:`get_extra_state` (called by ``load_state_dict``).

        Parameters
        ----------
        state : dict
            The random generator's state and the task names.
        """
        if not isinstance(state, dict):
            return
        if state.get("generator") is not None:
            self._generator = torch.Generator()
            self._generator.set_state(state["generator"])
        if state.get("task_names"):
            self.task_names = tuple(state["task_names"])

    # ------------------------------------------------------------------ helpers
    def _base(self) -> Tensor:
        """Base weights, float64 on the CPU."""
        return self.base_weights

    def _check_losses(self, losses: Tensor) -> None:
        if not self.task_names:
            raise RuntimeError(f"{type(self).__name__}.setup(tasks) must be called before "
                               "backward().")
        if not isinstance(losses, torch.Tensor) or losses.shape != (self.n_tasks,):
            shape = getattr(losses, "shape", type(losses).__name__)
            raise ValueError(f"losses must be a tensor of shape ({self.n_tasks},), one loss per "
                             f"task, got {shape}.")

    # ------------------------------------------------------------------ loss weighting
    def _loss_weights(self, losses: Tensor) -> Tensor:
        """The (T,) weights of this step, on the device and dtype of ``losses``."""
        return self.base_weights.to(losses)

    def _regularizer(self, losses: Tensor) -> Tensor | None:
        """A term added to the objective (uncertainty weighting's sum of log-variances)."""
        return None

    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """Accumulate the gradients of one step into ``.grad``; return the (T,) task weights.

        Parameters
        ----------
        losses : Tensor of shape (T,)
            The task losses of the batch, attached to the graph.
        shared, specific : sequence of Parameter
            The trunk's and the heads' parameters (only gradient methods tell them apart).
        extra : scalar Tensor, optional
            Added to the objective with weight 1 (the parameter penalty); its gradient reaches
            every parameter it depends on.
        scale : callable, optional
            Applied to every objective before differentiating (``GradScaler.scale``).
        reduce : callable, optional
            Averages a tensor across distributed ranks; gradient methods apply it to the (T, d)
            per-task gradient matrix (and gradnorm to the loss values) before deciding.

        Returns
        -------
        Tensor of shape (T,)
            The detached weights of this step: the effective coefficient of each task's loss,
            a new tensor (it shares no memory with the state; a subclass's own ``backward``
            is wrapped to return a copy too).
        """
        self._check_losses(losses)
        scale = identity if scale is None else scale
        w = self._loss_weights(losses)
        objective = (w * losses).sum()
        reg = self._regularizer(losses)
        if reg is not None:
            objective = objective + reg
        if extra is not None:
            objective = objective + extra
        if objective.requires_grad:
            scale(objective).backward()
        return w.detach().clone()  # the caller's own: never a buffer of the state


def task_gradients(losses: Tensor, params: list[torch.nn.Parameter],
                    scale: Callable[[Tensor], Tensor]) -> Tensor:
    """The (T, d) matrix of ``grad scale(L_t)`` with respect to the flattened ``params``."""
    sizes = [p.numel() for p in params]
    dtype = params[0].dtype if params else losses.dtype
    device = params[0].device if params else losses.device
    G = torch.zeros(losses.shape[0], sum(sizes), dtype=dtype, device=device)
    if not params or not losses.requires_grad:
        return G
    for t in range(losses.shape[0]):
        grads = torch.autograd.grad(scale(losses[t]), params, retain_graph=True,
                                    allow_unused=True)
        off = 0
        for g, n in zip(grads, sizes, strict=True):
            if g is not None:
                G[t, off:off + n] = g.reshape(-1)
            off += n
    return G


def accumulate(params: list[torch.nn.Parameter], flat: Tensor) -> None:
    """Add the flat gradient vector ``flat`` into the ``.grad`` of ``params``."""
    off = 0
    for p in params:
        n = p.numel()
        g = flat[off:off + n].view_as(p).to(p.dtype)
        p.grad = g if p.grad is None else p.grad + g
        off += n


def finish_step(losses: Tensor, specific: list[torch.nn.Parameter], heads: Tensor,
                weights: Tensor, extra: Tensor | None,
                scale: Callable[[Tensor], Tensor]) -> Tensor:
    """The end of a gradient method's step, once the shared parameters have their gradient:
    the heads get that of ``scale(sum_t h_t L_t)``, then ``extra`` (a penalty) is
    differentiated; returns the caller's own copy of ``weights`` on the losses' device and
    dtype."""
    with_extra = extra is not None and extra.requires_grad
    if specific and losses.requires_grad:
        head_objective = scale((heads.to(losses) * losses).sum())
        torch.autograd.backward(head_objective, inputs=specific, retain_graph=with_extra)
    if with_extra:
        scale(extra).backward()
    return weights.to(device=losses.device, dtype=losses.dtype).clone()


def gram_matrix(G: Tensor) -> Tensor:
    """``G G^T`` as float64 on the CPU (the small T x T problem)."""
    return (G @ G.T).to("cpu", F64)


class GradientWeighting(Weighting):
    r"""Base of the methods that combine the per-task gradients of the shared parameters.

    :meth:`backward` forms the (T, d) matrix :math:`G` of the gradients
    :math:`g_t = \nabla_\theta L_t` of the d shared parameters (T backward passes through the
    trunk; averaged across ranks by ``reduce``), asks the subclass's
    ``_combine(G, losses, scale, reduce)`` for the (T,) coefficients :math:`c` (float64, CPU)
    and the weights :math:`h` of the heads' losses, then adds :math:`c^\top G` to the shared
    parameters' gradients and the gradient of :math:`\sum_t h_t L_t` to the heads'. It returns
    :math:`c`, the effective coefficients of the original task gradients. ``scale`` (the AMP
    loss scale) is applied to every loss before differentiating, so :math:`G` is scaled too.

    Memory: T times the shared parameters for :math:`G` (not the heads, not activations).

    See Also
    --------
    regmtl.deep.weighting.GramWeighting : The methods that decide from :math:`G G^\top`.

    Examples
    --------
    A method of one's own: every task gradient scaled to unit length.

    >>> import torch
    >>> from regmtl.deep import TaskSpec
    >>> from regmtl.deep.weighting import GradientWeighting
    >>> class UnitGradients(GradientWeighting):
    ...     def _combine(self, G, losses, scale, reduce):
    ...         norms = torch.linalg.vector_norm(G, dim=1).to("cpu", torch.float64)
    ...         return self._base() / norms.clamp(min=1e-12), self._base()
    >>> weighting = UnitGradients()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    >>> losses = torch.stack([theta[0], 4 * theta[1]])  # gradients (1, 0) and (0, 4)
    >>> weighting.backward(losses, [theta], []).tolist()
    [1.0, 0.25]
    >>> theta.grad.tolist()
    [1.0, 1.0]
    """

    needs_task_grads = True

    def _combine(self, G: Tensor, losses: Tensor, scale: Callable[[Tensor], Tensor],
                 reduce: Callable[[Tensor], Tensor] | None) -> tuple[Tensor, Tensor]:
        """(coefficients c with shared gradient c @ G, weights of the heads' losses), CPU f64."""
        raise NotImplementedError

    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """As :meth:`~regmtl.deep.Weighting.backward`; the weights are the effective
        coefficients of the original task gradients in the shared-parameter gradient."""
        self._check_losses(losses)
        scale = identity if scale is None else scale
        shared = [p for p in shared if p.requires_grad]
        specific = [p for p in specific if p.requires_grad]
        G = task_gradients(losses, shared, scale)
        if reduce is not None:
            G = reduce(G)
        coeffs, head_weights = self._combine(G, losses, scale, reduce)
        if shared:
            accumulate(shared, coeffs.to(G) @ G)
        del G
        return finish_step(losses, specific, head_weights, coeffs, extra, scale)

