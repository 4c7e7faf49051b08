"""Deep multi-task learning in PyTorch (``pip install 'regmtl[deep]'``).

Nets that share layers across tasks (:class:`HardSharing`, :class:`MMoE`, :class:`CGC`,
:class:`PLE`), penalties by parameter group (:class:`L1Penalty`, :class:`L2Penalty`,
:class:`GroupL21`), task weighting and gradient surgery (:mod:`regmtl.deep.weighting`), missing
labels (NaN targets), a :class:`Trainer`, and scikit-learn wrappers.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .data import Batches, MultiTaskDataset
from .estimators import DeepMultiTaskClassifier, DeepMultiTaskRegressor
from .nets import CGC, PLE, HardSharing, MMoE, MultiTaskNet, mlp
from .penalties import GroupL21, L1Penalty, L2Penalty, ParameterPenalty
from .tasks import Metric, TaskSpec
from .trainer import EarlyStopping, Trainer, set_seed
from .transfer import TransferredHead, transfer_head
from .weighting import (
    DWA,
    CAGrad,
    EqualWeighting,
    FixedWeighting,
    GradNorm,
    PCGrad,
    RandomWeighting,
    UncertaintyWeighting,
    Weighting,
    make_weighting,
)

__all__ = [
    "TaskSpec",
    "Metric",
    "MultiTaskNet",
    "HardSharing",
    "MMoE",
    "CGC",
    "PLE",
    "mlp",
    "ParameterPenalty",
    "L1Penalty",
    "L2Penalty",
    "GroupL21",
    "Weighting",
    "EqualWeighting",
    "FixedWeighting",
    "RandomWeighting",
    "UncertaintyWeighting",
    "DWA",
    "GradNorm",
    "PCGrad",
    "CAGrad",
    "make_weighting",
    "MultiTaskDataset",
    "Batches",
    "Trainer",
    "EarlyStopping",
    "set_seed",
    "save_checkpoint",
    "load_checkpoint",
    "DeepMultiTaskRegressor",
    "DeepMultiTaskClassifier",
    "transfer_head",
    "TransferredHead",
]
