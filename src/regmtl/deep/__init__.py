"""Deep multi-task learning in PyTorch (``pip install 'regmtl[deep]'``).

- Tasks: :class:`TaskSpec` (regression, with the squared, absolute, Huber or quantile loss;
  binary; multiclass; count, a Poisson log mean; its loss, metrics and weight); NaN in a
  target is a missing label, left out of that task's loss.
- Nets that share layers across tasks: :class:`HardSharing` (a shared trunk, a head per
  task), :class:`MMoE`, :class:`CGC` and :class:`PLE` (experts mixed by a gate per task);
  the heads of all tasks are batched parameters (:class:`TaskHeads`), so a row reaches only
  its own task's head and a step costs the same for 10 or 10,000 tasks.
- Inputs of any kind (``regmtl.deep.inputs``): tensors of any shape and dtype, sparse rows,
  named inputs. Encoders turn them into the flat vector the nets read, under every
  architecture (``encoder=``): :class:`FeatureColumns` (embedded ids and categories with an
  out-of-vocabulary bucket, :class:`Categorical`, :class:`IdSequence`; standardized
  :class:`Numeric` columns), :class:`ConvTrunk` (images), :class:`TextTrunk` (token ids or
  bag-of-words), and :class:`Tokenizer` (raw texts as padded word ids). Several modalities
  of one row set (:class:`Modalities`: images, texts, tables, missing per row) through one
  encoder each, fused (:class:`FusedTrunk`, :class:`TableTrunk`).
- Click -> conversion chains: :class:`ESMM` (pCTCVR = pCTR x pCVR, trained on every
  impression), its labels from :func:`esmm_targets`.
- Penalties by parameter group: :class:`L1Penalty`, :class:`L2Penalty`, :class:`GroupL21`
  (features selected for all tasks at once), on the shared layers by default.
- Task weighting and gradient surgery (``regmtl.deep.weighting``): :class:`EqualWeighting`
  (the default), :class:`FixedWeighting`, :class:`RandomWeighting`,
  :class:`UncertaintyWeighting`, :class:`DWA`, :class:`GradNorm`, :class:`PCGrad`,
  :class:`CAGrad`; gradient-conflict methods (``regmtl.deep.conflict``): :class:`FAMO`,
  :class:`NashMTL`, :class:`IMTL`, :class:`MGDA`, :class:`AlignedMTL`, :class:`UPGrad`;
  further gradient methods (``regmtl.deep.weighting``): :class:`GradVac`, :class:`GradDrop`,
  :class:`DualProj`, :class:`ConFIG`, :class:`FairGrad`, :class:`SDMGrad`, :class:`MoDo`.
- Training: :class:`Trainer` (validation, early stopping, best weights, mixed precision on
  CUDA, DistributedDataParallel under ``torchrun``: ``regmtl.deep.distributed``),
  checkpoints (:func:`save_checkpoint`, :func:`load_checkpoint`).
- scikit-learn estimators (:class:`DeepMultiTaskRegressor`, :class:`DeepMultiTaskClassifier`,
  :class:`DeepMultiTaskModel` for mixed kinds, :class:`DeepESMMClassifier` for click ->
  purchase logs) and transfer to a new task (:func:`transfer_head`).

Examples
--------
>>> import numpy as np
>>> from regmtl.deep import HardSharing, L2Penalty, Trainer, set_seed
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((40, 3))
>>> targets = {"a": X[:, 0], "b": np.where(X[:, 1] > 0, 1.0, 0.0)}
>>> set_seed(0)
>>> net = HardSharing(3, {"a": "regression", "b": "binary"}, hidden=(8,))
>>> trainer = Trainer(net, weighting="dwa", penalty=L2Penalty(1e-3), max_epochs=3,
...                   batch_size=16).fit((X, targets), val=(X, targets))
>>> sorted(trainer.predict(X[:4]))
['a', 'b']
>>> len(trainer.history), "val/b/auc" in trainer.history
(3, True)
"""

try:
    import torch  # noqa: F401 - the deep half needs PyTorch, an extra
except ImportError as exc:  # pragma: no cover - torch is installed where the suite runs
    raise ImportError(
        'regmtl.deep needs PyTorch, which is not installed: pip install "regmtl[deep]" '
        f"(it installs torch==2.13.0). ({exc})"
    ) from exc

from . import conflict as conflict  # the first import path of the gradient-conflict methods
from .checkpoint import load_checkpoint, save_checkpoint
from .data import Batches, MultiTaskDataset
from .divergence import TrainingDiverged
from .esmm import ESMM, esmm_targets
from .esmm_estimator import DeepESMMClassifier
from .estimators import DeepMultiTaskClassifier, DeepMultiTaskModel, DeepMultiTaskRegressor
from .features import Categorical, FeatureColumns, IdSequence, Numeric, embedding_dim
from .fusion import FusedTrunk, TableTrunk
from .heads import TaskGates, TaskHeads
from .modalities import Modalities
from .modality_use import modality_importance
from .nets import CGC, PLE, HardSharing, MMoE, MultiTaskNet, mlp
from .penalties import GroupL21, L1Penalty, L2Penalty, ParameterPenalty
from .saving import load_estimator as load_estimator
from .tasks import Metric, TaskSpec
from .tokenizer import Tokenizer
from .trainer import EarlyStopping, Trainer, set_seed
from .transfer import TransferredHead, transfer_head
from .trunks import ConvTrunk, TextTrunk
from .weighting import WEIGHTINGS, Weighting, make_weighting

# every registered weighting class by its class name (``regmtl.deep.PCGrad``, ...)
globals().update({cls.__name__: cls for cls in WEIGHTINGS.values()})

__all__ = [
    "TaskSpec",
    "Metric",
    "MultiTaskNet",
    "HardSharing",
    "MMoE",
    "CGC",
    "PLE",
    "mlp",
    "TaskHeads",
    "TaskGates",
    "FeatureColumns",
    "Categorical",
    "IdSequence",
    "Numeric",
    "embedding_dim",
    "ConvTrunk",
    "TextTrunk",
    "TableTrunk",
    "Modalities",
    "FusedTrunk",
    "modality_importance",
    "Tokenizer",
    "ESMM",
    "esmm_targets",
    "ParameterPenalty",
    "L1Penalty",
    "L2Penalty",
    "GroupL21",
    "Weighting",
    "WEIGHTINGS",
    *(cls.__name__ for cls in WEIGHTINGS.values()),
    "make_weighting",
    "MultiTaskDataset",
    "Batches",
    "Trainer",
    "EarlyStopping",
    "TrainingDiverged",
    "set_seed",
    "save_checkpoint",
    "load_checkpoint",
    "DeepMultiTaskRegressor",
    "DeepMultiTaskClassifier",
    "DeepMultiTaskModel",
    "DeepESMMClassifier",
    "transfer_head",
    "TransferredHead",
]
