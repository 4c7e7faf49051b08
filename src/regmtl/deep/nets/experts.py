r"""The pieces of the mixtures of experts: a softmax gate over experts, the mixture
:math:`\sum_k g_k e_k`, and the record of one gate's weights that a net's
``expert_gates(x)`` returns (read by ``regmtl.deep.expert_use``).

Experts are named by their owner and position: ``shared[k]`` for the k-th shared expert of
a level (every expert of MMoE), ``TASK[j]`` for the j-th expert of a task (CGC, PLE)."""

from __future__ import annotations

from typing import Any, NamedTuple

from ..._options import check_option
from .._torch import torch

nn = torch.nn

__all__ = ["Gate", "ExpertGate", "gate_bias_option", "mix", "expert_names"]


class Gate(nn.Module):
    """Softmax weights over experts from the input of the level: softmax(G x [+ c])."""

    def __init__(self, in_features: int, n_experts: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, n_experts, bias=bias)

    def forward(self, x):
        return torch.softmax(self.linear(x), dim=-1)


def gate_bias_option(gate_bias: Any) -> bool:
    """``gate_bias`` checked (a bool)."""
    return check_option("gate_bias", gate_bias, "bool",
                        fix="True adds a bias c to every gate, False is the paper's form")


def mix(gate: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Σ_k gate_k e_k: gate (B, K), experts (B, K, d) -> (B, d)."""
    return torch.einsum("bk,bkd->bd", gate, experts)


class ExpertGate(NamedTuple):
    """One gate's weights on a batch: ``level`` (0 for MMoE and CGC), ``gate`` (a task, or
    ``"shared"`` for PLE's shared gate), the ``experts`` it weighs, in order, and
    ``weights`` (B, len(experts)), rows summing to 1 (detached)."""

    level: int
    gate: str
    experts: tuple[str, ...]
    weights: torch.Tensor


def expert_names(owner: str, n: int) -> tuple[str, ...]:
    """``owner[0]``, ..., ``owner[n-1]``: the names of ``n`` experts of ``owner`` (a task or
    ``"shared"``)."""
    return tuple(f"{owner}[{k}]" for k in range(n))
