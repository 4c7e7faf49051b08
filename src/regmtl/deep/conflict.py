r"""The gradient-conflict methods at their first import path (FAMO, Nash-MTL, IMTL-G, MGDA,
Aligned-MTL, UPGrad and their functions), re-exported from :mod:`regmtl.deep.weighting`.

Each method is a module of that package, named for it (``famo``, ``nash_mtl``, ``imtl``,
``mgda``, ``aligned_mtl``, ``upgrad``), where its paper, mathematics and conventions are
written; ``gram`` holds the base of the methods that decide from the Gram matrix
:math:`G G^\top`. This module defines nothing: ``regmtl.deep.conflict.MGDA`` and
``from regmtl.deep.conflict import nash_weights`` keep working.
"""

from __future__ import annotations

from .weighting import WEIGHTINGS, Weighting
from .weighting.aligned_mtl import AlignedMTL, alignment_matrix
from .weighting.cagrad import CAGrad
from .weighting.famo import FAMO
from .weighting.imtl import IMTL, imtl_weights
from .weighting.mgda import MGDA, mgda_weights
from .weighting.nash_mtl import NashMTL, nash_weights
from .weighting.pcgrad import PCGrad
from .weighting.upgrad import UPGrad, upgrad_weights

__all__ = [
    "FAMO",
    "NashMTL",
    "IMTL",
    "MGDA",
    "AlignedMTL",
    "UPGrad",
    "mgda_weights",
    "nash_weights",
    "imtl_weights",
    "alignment_matrix",
    "upgrad_weights",
    # gradient surgery and the registry, importable here as they always were
    "PCGrad",
    "CAGrad",
    "Weighting",
    "WEIGHTINGS",
]
