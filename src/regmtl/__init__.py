"""regmtl: regularized multi-task learning.

Linear multi-task estimators with certified solvers (duality gap / KKT residual), penalties that
make tasks share structure, and the tools around them:

- estimators (scikit-learn API): :class:`~regmtl.MultiTaskRegressor`,
  :class:`~regmtl.MultiTaskClassifier` and their cross-validated versions
  :class:`~regmtl.MultiTaskRegressorCV`, :class:`~regmtl.MultiTaskClassifierCV`;
- penalties (every class of ``regmtl.penalties.PENALTY_CLASSES``): :class:`~regmtl.L1`,
  :class:`~regmtl.L2`, :class:`~regmtl.ElasticNet`,
  :class:`~regmtl.L21`, :class:`~regmtl.Trace`, :class:`~regmtl.MeanRegularized`,
  :class:`~regmtl.GraphLaplacian`, :class:`~regmtl.Clustered`,
  :class:`~regmtl.SharedStructure`, :class:`~regmtl.Dirty`,
  :class:`~regmtl.SparseLowRank`, :class:`~regmtl.RobustLowRank`,
  :class:`~regmtl.RobustFeatures`, :class:`~regmtl.TemporalGroupLasso`,
  :class:`~regmtl.FusedGroupLasso`, :class:`~regmtl.MultiSource`, and the nonconvex
  :class:`~regmtl.MCP`, :class:`~regmtl.SCAD`, :class:`~regmtl.CappedL1`;
- model selection: :func:`~regmtl.alpha_max`, :func:`~regmtl.regularization_path`,
  :func:`~regmtl.stability_selection`;
- does sharing help, and what carries over: :func:`~regmtl.compare`,
  :func:`~regmtl.task_relatedness`, :func:`~regmtl.transfer`;
- which features matter, and how sure: :func:`~regmtl.coef_table` and
  :func:`~regmtl.wald_test` (also the estimators' methods, with ``aic`` and ``bic``);
- persistence: ``model.save(path)`` and :func:`~regmtl.load`;
- serving without regmtl: :func:`~regmtl.export_onnx` and :func:`~regmtl.check_onnx`
  (ONNX, checked by ONNX Runtime).

Submodules hold the rest: ``regmtl.selection``, ``regmtl.solvers``, ``regmtl.metrics``,
``regmtl.plotting``, ``regmtl.report``, ``regmtl.datasets``, ``regmtl.scaling`` and the deep
multi-task models of ``regmtl.deep`` (PyTorch).

Every estimator takes the tasks as lists (one design per task), as a long table with a task
id per row, or as one shared design with a target matrix:

>>> import numpy as np
>>> import regmtl as rm
>>> rng = np.random.default_rng(0)
>>> Xs = [rng.standard_normal((40, 5)) for _ in range(3)]
>>> ys = [X @ np.array([1.0, -1.0, 0.0, 0.0, 0.0]) for X in Xs]
>>> model = rm.MultiTaskRegressor(penalty="l21", alpha=0.01).fit(Xs, ys)
>>> np.flatnonzero(np.any(model.coef_ != 0, axis=0)).tolist()  # features kept
[0, 1]
"""

import importlib as _importlib
import sys as _sys
import types as _types

from .datafits import DATAFIT_CLASSES
from .estimators import MultiTaskClassifier, MultiTaskRegressor
from .inputs import as_task_data
from .penalties import PENALTY_CLASSES, Penalty, chain_graph, knn_graph
from .persistence import load, register_class_modules, register_kinds
from .problem import alpha_max
from .taskdata import TaskData

#: public names whose modules are imported on first use (``regmtl.compare`` and the others
#: load scipy.stats, pandas tables, the data sets and the CV machinery: a fit needs none)
_LAZY = {
    "compare": "regmtl.compare", "Comparison": "regmtl.compare",
    "task_relatedness": "regmtl.relatedness", "Relatedness": "regmtl.relatedness",
    "transfer": "regmtl.transfer", "TransferredTask": "regmtl.transfer",
    "MultiTaskClassifierCV": "regmtl.selection", "MultiTaskRegressorCV": "regmtl.selection",
    "RegularizationPath": "regmtl.selection", "regularization_path": "regmtl.selection",
    "stability_selection": "regmtl.selection", "StabilitySelection": "regmtl.selection",
    "ParquetTasks": "regmtl.parquet", "Checkpoint": "regmtl.solvers.streamed.checkpoint",
    "export_onnx": "regmtl.serving", "check_onnx": "regmtl.serving",
    "coef_table": "regmtl.inference", "wald_test": "regmtl.inference",
}
#: submodules reachable as attributes of ``regmtl`` (imported on first use)
_SUBMODULES = ("baselines", "datasets", "metrics", "relatedness", "selection", "transfer_ridge")

__all__ = [
    "MultiTaskRegressor",
    "MultiTaskClassifier",
    "MultiTaskRegressorCV",
    "MultiTaskClassifierCV",
    "Penalty",
    *PENALTY_CLASSES,
    "chain_graph",
    "knn_graph",
    *DATAFIT_CLASSES,
    "TaskData",
    "as_task_data",
    "ParquetTasks",
    "Checkpoint",
    "alpha_max",
    "regularization_path",
    "RegularizationPath",
    "stability_selection",
    "StabilitySelection",
    "load",
    "compare",
    "Comparison",
    "task_relatedness",
    "Relatedness",
    "transfer",
    "TransferredTask",
    "export_onnx",
    "check_onnx",
    "coef_table",
    "wald_test",
]

from ._version import __version__ as __version__  # noqa: E402

# every registered penalty and loss class (each module of regmtl.penalties and regmtl.datafits
# registers its own)
globals().update(PENALTY_CLASSES)
globals().update(DATAFIT_CLASSES)

# the deep estimators' folders: regmtl.deep (and PyTorch) is imported when one is loaded
register_kinds(("DeepMultiTaskRegressor", "DeepMultiTaskClassifier", "DeepMultiTaskModel",
                "DeepESMMClassifier", "net-checkpoint"), "regmtl.deep.saving:load_estimator")
register_kinds(("TransferredHead",), "regmtl.deep.transfer:load_transferred_head")
# the saved files of regmtl.transfer's models: the module is imported when one is loaded
register_class_modules(("TransferredTask",), "regmtl.transfer")


def __getattr__(name: str):
    """The names of :data:`_LAZY`, imported from their module on first use."""
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return _importlib.import_module(f"regmtl.{name}")
    raise AttributeError(f"module 'regmtl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


class _Package(_types.ModuleType):
    """``regmtl``: ``regmtl.compare`` and ``regmtl.transfer`` stay the functions when their
    modules (of the same names) are imported, as they were when imported eagerly."""

    def __setattr__(self, name: str, value) -> None:
        if (name in _LAZY and isinstance(value, _types.ModuleType)
                and value.__name__ == _LAZY[name] and hasattr(value, name)):
            value = getattr(value, name)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
