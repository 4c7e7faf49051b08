"""ESMM at its first import path: the net, its CTCVR logit and its labels live in
:mod:`regmtl.deep.nets.esmm`; ``regmtl.deep.esmm.ESMM`` and ``esmm_targets`` keep working here."""

from __future__ import annotations

from .nets.esmm import ESMM, ctcvr_logit, esmm_targets

__all__ = ["ESMM", "ctcvr_logit", "esmm_targets"]
