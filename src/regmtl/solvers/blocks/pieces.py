r"""Per-block results of objects held in groups of task blocks (FISTA's and PDHG's groups on
Dask workers, :meth:`~regmtl.blocks.TaskBlocks.keep`): laid in the blocks' order, so that
whatever worker holds which block the same numbers come out; added up; joined along the
tasks; and, after a lost holder, the surviving groups' columns laid over a start point."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["by_block", "summed", "joined", "block_widths", "overlaid"]


def by_block(parts: list, blocks: list) -> list:
    """The groups' per-block results laid in the blocks' order (``blocks``: those each group
    holds, in the order of its results)."""
    return [x for _, x in sorted(((k, x) for held, xs in zip(blocks, parts, strict=True)
                                  for k, x in zip(held, xs, strict=True)),
                                 key=lambda kx: kx[0])]


def summed(values: list) -> Any:
    """Per-block numbers (tuples) or arrays added up in their order; None where they are
    None (a prox separable over tasks: no summary)."""
    if values[0] is None:
        return None
    if isinstance(values[0], tuple):
        return tuple(sum(column) for column in zip(*values, strict=True))
    total = np.array(values[0], dtype=np.float64)
    for x in values[1:]:
        total += x
    return total


def joined(pieces: list) -> np.ndarray:
    """Per-block columns (in the blocks' order) as one array along the tasks."""
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=-1)


def block_widths(held: Any) -> dict[int, int]:
    """The number of tasks of each block, by block index (one call of the groups'
    ``widths``)."""
    return dict(zip((k for ks in held.blocks for k in ks),
                    (w for ws in held.call("widths") for w in ws), strict=True))


def overlaid(start: np.ndarray, blocks: list, got: list, widths: dict[int, int]) -> np.ndarray:
    """A copy of ``start`` (tasks along its last axis) with the columns each surviving group
    sent (``got``: per group its blocks' columns, None for a group lost) laid over its
    blocks' tasks: where a fit's groups start again after a lost holder."""
    bounds = np.concatenate([[0], np.cumsum([widths[k] for k in sorted(widths)])])
    out = np.array(start, dtype=np.float64)
    for ks, cols in zip(blocks, got, strict=True):
        for k, c in zip(ks, cols or (), strict=False):
            out[..., bounds[k]:bounds[k + 1]] = c
    return out
