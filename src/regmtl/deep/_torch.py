"""The one place that imports PyTorch: a clear error when the optional extra is missing."""

from __future__ import annotations

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "regmtl.deep needs PyTorch, an optional dependency: install it with "
        "`pip install 'regmtl[deep]'` (torch==2.13.0)."
    ) from exc

__all__ = ["torch"]
