"""The one place that imports PyTorch: a clear error when the optional extra is missing, and
the notices of PyTorch's that a valid use sets off silenced in one place."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "regmtl.deep needs PyTorch, an optional dependency: install it with "
        "`pip install 'regmtl[deep]'` (torch==2.13.0)."
    ) from exc

__all__ = ["quiet_sparse", "torch"]

#: PyTorch's notices on sparse tensors built valid by regmtl (sorted, in range) with the
#: invariant check skipped: the CSR "beta" notice, and (torch 2.11) the notice that the
#: checks are off, which an explicit ``check_invariants=False`` still sets off there.
_SPARSE_NOTICES = ("Sparse CSR tensor support is in beta",
                   "Sparse invariant checks are implicitly disabled")


@contextmanager
def quiet_sparse() -> Iterator[None]:
    """Build sparse tensors inside without PyTorch's notices on them (not repeated per batch,
    and not turned into errors where a caller makes warnings errors)."""
    with warnings.catch_warnings():
        for message in _SPARSE_NOTICES:
            warnings.filterwarnings("ignore", message=message)
        yield
