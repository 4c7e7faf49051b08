r"""Random loss weighting, RLW (Lin, Ye, Xu, Shi & Zhang, 2022).

Fresh weights every step, :math:`w = T\,\mathrm{softmax}(z)` with :math:`z \sim N(0, I_T)`
(weighted by the base weights :math:`b`), from a generator seeded at setup.

Lin, Ye, Xu, Shi & Zhang (2022). Reasonable effectiveness of random weighting: a litmus test
for multi-task learning. TMLR.
"""

from __future__ import annotations

from .._torch import torch
from .base import F64, Weighting, weighted_softmax

__all__ = ["RandomWeighting"]

Tensor = torch.Tensor


class RandomWeighting(Weighting):
    r"""Random loss weighting (RLW): random weights drawn at every step.

    .. math::

        w = T\,\mathrm{softmax}(z), \qquad z \sim N(0, I_T),

    with base weights :math:`b`: :math:`w_t = (\sum_k b_k)\, b_t e^{z_t} / \sum_k b_k e^{z_k}`.
    The draws come from a generator seeded at :meth:`~regmtl.deep.Weighting.setup`, so a seed
    fixes the sequence. The weights sum to :math:`\sum_t b_t` (T by default) at every step; with
    unit base weights each averages 1 over steps. ``make_weighting`` also knows it as ``"rlw"``.

    Notes
    -----
    **Degenerate gradients.** The weights do not depend on the gradients (random by design,
    drawn from the seeded generator): the update is :math:`\sum_t w_t g_t` whatever the
    gradients.

    **Differences from the paper.** The paper's weights are :math:`\mathrm{softmax}(z)`,
    summing to 1 (LibMTL's too); here they are multiplied by :math:`\sum_t b_t` (T) so that
    learning rates carry over from equal weighting. The paper compares several distributions
    (uniform, normal and Dirichlet draws through a softmax, Bernoulli draws); only the
    softmax of a standard normal draw is here, LibMTL's default. The draws come from the
    weighting's own generator (seeded at setup), not torch's global one.

    References
    ----------
    Lin, Ye, Xu, Shi & Zhang (2022). Reasonable effectiveness of random weighting: a litmus
    test for multi-task learning. TMLR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import RandomWeighting, TaskSpec
    >>> weighting = RandomWeighting()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")], seed=0)
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    >>> w = weighting.backward(torch.stack([theta[0] ** 2, theta[1] ** 2]), [theta], [])
    >>> round(float(w.sum()), 6), bool((w > 0).all())
    (2.0, True)
    """

    #: The name users pass (``weighting="random"``) and saved models carry.
    name = "random"

    def _loss_weights(self, losses: Tensor) -> Tensor:
        z = torch.randn(self.n_tasks, generator=self._generator, dtype=F64)
        return weighted_softmax(z, self._base()).to(losses)
