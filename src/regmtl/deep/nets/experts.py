r"""The pieces of the mixtures of experts: a softmax gate over experts and the mixture
:math:`\sum_k g_k e_k`."""

from __future__ import annotations

from typing import Any

from ..._options import check_option
from .._torch import torch

nn = torch.nn

__all__ = ["Gate", "gate_bias_option", "mix"]


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
