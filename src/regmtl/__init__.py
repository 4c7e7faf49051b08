"""regmtl: regularized multi-task learning.

Linear multi-task estimators with certified solvers (duality gap / KKT residual), penalties that
make tasks share structure, and the tools around them.
"""

from .compare import Comparison, compare
from .datafits import Logistic, Quadratic
from .estimators import MultiTaskClassifier, MultiTaskRegressor
from .penalties import (
    L1,
    L2,
    L21,
    Clustered,
    Dirty,
    ElasticNet,
    GraphLaplacian,
    MeanRegularized,
    Penalty,
    SparseLowRank,
    Trace,
    chain_graph,
    knn_graph,
)
from .persistence import load
from .problem import alpha_max
from .relatedness import Relatedness, task_relatedness
from .selection import (
    MultiTaskClassifierCV,
    MultiTaskRegressorCV,
    RegularizationPath,
    regularization_path,
)
from .taskdata import TaskData, as_task_data
from .transfer import TransferredTask, transfer

__all__ = [
    "MultiTaskRegressor",
    "MultiTaskClassifier",
    "MultiTaskRegressorCV",
    "MultiTaskClassifierCV",
    "Penalty",
    "L1",
    "L2",
    "ElasticNet",
    "L21",
    "Trace",
    "MeanRegularized",
    "GraphLaplacian",
    "Clustered",
    "Dirty",
    "SparseLowRank",
    "chain_graph",
    "knn_graph",
    "Quadratic",
    "Logistic",
    "TaskData",
    "as_task_data",
    "alpha_max",
    "regularization_path",
    "RegularizationPath",
    "load",
    "compare",
    "Comparison",
    "task_relatedness",
    "Relatedness",
    "transfer",
    "TransferredTask",
]

__version__ = "0.1.0"
