"""What a weighting declares of its state, so that a fit resumed from a training state
continues as the uninterrupted one: :class:`DeclaredState`, a base of
:class:`~regmtl.deep.Weighting`."""

from __future__ import annotations

from .._torch import torch

__all__ = ["DeclaredState"]

Tensor = torch.Tensor


class DeclaredState:
    """The whole state of a weighting: its buffers and parameters (``state_dict``), its random
    generator and the Python attributes it names in ``state_attributes``.

    Examples
    --------
    >>> from regmtl.deep import DWA, TaskSpec
    >>> weighting = DWA()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")], seed=0)
    >>> tensors, values = weighting.training_state()
    >>> sorted(tensors)
    ['generator', 'state.loss_history', 'state.n_epochs', 'state.task_weights']
    >>> values
    {'task_names': ['a', 'b'], 'attributes': {}}
    """

    #: The Python attributes (numbers, strings, lists of them) that carry state from step to
    #: step beside the buffers, the parameters and the random generator, which
    #: :meth:`training_state` always holds. The built-in methods keep all their state (DWA's
    #: loss history, FAMO's logits and previous losses, GradNorm's initial losses, the
    #: uncertainty parameters, ...) in buffers and parameters, so they declare none; a
    #: subclass keeping state in an attribute names it here.
    state_attributes: tuple[str, ...] = ()

    def training_state(self) -> tuple[dict[str, Tensor], dict]:
        """The whole state of the method, for resuming a fit exactly.

        Returns
        -------
        tensors : dict of str to Tensor
            The buffers and parameters (``state_dict`` names, detached CPU copies) and the
            random generator's state (``"generator"``, where set up).
        values : dict
            The task names and the attributes of ``state_attributes``.
        """
        tensors = {f"state.{k}": v.detach().cpu().clone()
                   for k, v in self.state_dict().items()
                   if not k.endswith("_extra_state")}
        if self._generator is not None:
            tensors["generator"] = self._generator.get_state()
        values = {"task_names": list(self.task_names),
                  "attributes": {k: getattr(self, k) for k in self.state_attributes}}
        return tensors, values

    def load_training_state(self, tensors: dict[str, Tensor], values: dict) -> None:
        """Restore :meth:`training_state` into a method set up for the same tasks (its
        names and shapes checked by the caller); parameters are copied in place, so an
        optimizer built on them keeps them."""
        state = {k[len("state."):]: v for k, v in tensors.items() if k.startswith("state.")}
        extra = {"generator": tensors.get("generator"), "task_names": values["task_names"]}
        if "_extra_state" in self.state_dict():
            state["_extra_state"] = extra
        self.load_state_dict(state)
        for k in self.state_attributes:
            setattr(self, k, values["attributes"][k])
