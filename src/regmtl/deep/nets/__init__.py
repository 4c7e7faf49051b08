r"""Multi-task networks: a shared part, one head (tower) per task.

Every net maps a batch ``x`` (B x p) to ``{task: output}`` (B x ``n_outputs``: values or logits,
see :class:`~regmtl.deep.TaskSpec`) and says which of its parameters are shared by all tasks
(:meth:`MultiTaskNet.shared_parameters`) and which read the raw input
(:meth:`MultiTaskNet.input_layers`, the layers a group L2,1 penalty selects features on).

====================  ===================================================  ===============
net                   output of task t                                     reference
====================  ===================================================  ===============
:class:`HardSharing`  h_t(g(x)), g a shared trunk (MLP or any module)      Caruana 1997
:class:`MMoE`         h_t(Σ_k softmax(G_t x)_k e_k(x)), experts e_k        Ma et al. 2018
                      shared by all tasks
:class:`CGC`          the same over task t's own experts and the shared    Tang et al. 2020
                      ones
:class:`PLE`          CGC levels stacked; a shared gate feeds the shared   Tang et al. 2020
                      experts of the next level
:class:`ESMM`         CTR :math:`\sigma(a)` and CTCVR                       Ma et al. 2018
                      :math:`\sigma(a)\sigma(b)`, towers on a shared       (SIGIR)
                      bottom
====================  ===================================================  ===============

One module per net (``hard``, ``mmoe``, ``ple`` with CGC, ``esmm``), the base class and the
pieces every net builds with in ``base``, the gates of the mixtures in ``experts``.
:data:`NETS` is the one registry of the nets by class name (what a checkpoint saves), and
:data:`ARCHITECTURES` the same by the wrappers' ``architecture``, read from each class's
``architecture``.

References
----------
- Caruana (1997). Multitask learning. Machine Learning 28, 41-75.
- Ma, Zhao, Yi, Chen, Hong & Chi (2018). Modeling task relationships in multi-task learning
  with multi-gate mixture-of-experts. KDD.
- Tang, Liu, Zhao & Gong (2020). Progressive layered extraction (PLE): a novel multi-task
  learning (MTL) model for personalized recommendations. RecSys.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import MultiTaskNet, build_module, first_linear, mlp, module_config, out_width
from .esmm import ESMM
from .hard import HardSharing
from .mmoe import MMoE
from .ple import CGC, PLE

__all__ = ["MultiTaskNet", "HardSharing", "MMoE", "CGC", "PLE", "ESMM", "mlp", "NETS",
           "ARCHITECTURES",
           "module_config", "build_module", "first_linear", "out_width"]

#: Net classes by name (the ``net`` field of a saved config): the one registry of the
#: architectures. A net class names the wrappers' ``architecture`` it builds (``"hard"``, ...)
#: and how (:meth:`MultiTaskNet.for_estimator`).
NETS: dict[str, type[MultiTaskNet]] = {cls.__name__: cls
                                       for cls in (HardSharing, MMoE, CGC, PLE, ESMM)}

#: The net class of each ``architecture`` of the scikit-learn wrappers (ESMM has none).
ARCHITECTURES: dict[str, type[MultiTaskNet]] = {cls.architecture: cls for cls in NETS.values()
                                               if cls.architecture is not None}

#: Names that pickles of nets made before the nets became a package refer to.
_MOVED = {"_Gate": ("experts", "Gate"), "_to_target_units": ("base", "_to_target_units"),
          "_Standardized": ("base", "_Standardized"), "_ELEMENTWISE": ("hard", "ELEMENTWISE")}


def __getattr__(name: str) -> Any:
    """The old module's names that pickles refer to, from their modules now."""
    if name in _MOVED:
        module, attr = _MOVED[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
