r"""The shared parts of the scikit-learn wrappers' docstrings, written once.

:class:`~regmtl.deep.DeepMultiTaskRegressor`, :class:`~regmtl.deep.DeepMultiTaskClassifier`
and :class:`~regmtl.deep.DeepMultiTaskModel` take the same net, training and early-stopping
options and have the same fitted attributes; their docstrings are composed from the blocks
here by :func:`wrapper_doc` (numpydoc sections: an intro, Parameters, Attributes, then the
class's own See Also and Examples). The choices of ``architecture`` and ``weighting`` are read
from their registries.
"""

from __future__ import annotations

import textwrap

from .nets import ARCHITECTURES
from .weighting import WEIGHTINGS

__all__ = ["LAYER_PARAMETERS", "NET_PARAMETERS", "TRAINING_PARAMETERS", "FITTED_ATTRIBUTES",
           "TRAINER_ATTRIBUTE", "LOSS_PARAMETER", "MODAL_PARAMETERS", "MODEL_LOSS_PARAMETER",
           "wrapper_doc"]

_ARCHITECTURES = "{" + ", ".join(f'"{k}"' for k in ARCHITECTURES) + "}"
_WEIGHTING_TEXT = textwrap.fill(
    "Task weighting or gradient surgery: a name of ``regmtl.deep.WEIGHTINGS`` but "
    '``"fixed"`` (' + ", ".join(f'``"{k}"``' for k in WEIGHTINGS if k != "fixed")
    + "), or a :class:`~regmtl.deep.Weighting` instance (for options and fixed weights).",
    width=88, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False)

_LOSS_CHOICES = """\
    ``"squared"`` (:math:`\\tfrac12 r^2`), ``"absolute"`` (:math:`|r|`), ``"huber"`` or
    ``("huber", delta)`` (:math:`\\tfrac12 r^2` for :math:`|r| \\le \\delta`, :math:`\\delta
    |r| - \\tfrac12 \\delta^2` beyond; delta > 0 in the target's units, divided by the
    standard deviation of the task's training labels for the loss on standardized targets;
    ``"huber"`` alone: delta is one such deviation), ``"quantile"`` or ``("quantile", tau)``
    (the pinball loss :math:`\\tau r^+ + (1 - \\tau) r^-`, tau in (0, 1), alone 0.5: the task
    predicts the tau-quantile), ``"poisson"`` (a count task: labels >= 0, integers not
    required; one output, the log of the mean; the loss :math:`e^f - y f + y \\log y - y`;
    its target is not standardized and ``predict`` gives the mean count). One loss for every
    task, or a list with one per task (``regmtl.deep.wrapper_losses``).
"""

#: ``loss`` of the regressor.
LOSS_PARAMETER = """\
loss : str, tuple or list, default="squared"
    Each task's loss:
""" + _LOSS_CHOICES

#: ``loss`` of the mixed model.
MODEL_LOSS_PARAMETER = """\
loss : str, tuple, list or None, default=None
    The loss of the tasks that are not classifications (None: squared for a regression,
    Poisson for a count; a classification task always has the log loss, and takes None in
    a list); a loss makes an ``"auto"`` task of its kind:
""" + _LOSS_CHOICES

#: ``activation``, ``dropout``, ``batch_norm``: the layers of every wrapper's net.
LAYER_PARAMETERS = """\
activation : str, default="relu"
    Nonlinearity (see :func:`~regmtl.deep.mlp`).
dropout : float, default=0.0
    Dropout after every hidden layer, in [0, 1).
batch_norm : bool, default=False
    Batch normalization after every hidden linear layer.
"""

#: ``architecture`` ... ``batch_norm``: the net.
NET_PARAMETERS = """\
architecture : """ + _ARCHITECTURES + """, default="hard"
    Hard parameter sharing (:class:`~regmtl.deep.HardSharing`, an MLP trunk of widths
    ``hidden``), or mixtures of experts (:class:`~regmtl.deep.MMoE`,
    :class:`~regmtl.deep.CGC`, :class:`~regmtl.deep.PLE`: each expert an MLP of widths
    ``hidden``, ``n_experts`` shared experts).
hidden : sequence of int, default=(64,)
    Widths of the shared trunk, or of each expert.
head_hidden : sequence of int, default=()
    Hidden widths of each task's head (tower) before its output layer.
n_experts : int, default=4
    Shared experts of the mixture architectures (>= 1).
""" + LAYER_PARAMETERS

#: ``penalty`` ... ``verbose``: the training, early stopping, seeding, device and progress.
TRAINING_PARAMETERS = """\
penalty : {"l1", "l2", "l21"} or None, default=None
    ``alpha`` times the L1 norm or half the squared L2 norm of the shared weights
    (biases excluded), or the group L2,1 norm of the input columns (features selected
    for all tasks at once; :class:`~regmtl.deep.GroupL21`), added to the training
    objective.
alpha : float, default=0.0
    Strength of the penalty (>= 0; 0 disables it; > 0 without a ``penalty`` has
    no effect, with a UserWarning).
weighting : str or Weighting, default="equal"
""" + _WEIGHTING_TEXT + """
optimizer : {"adam", "adamw", "sgd"}, default="adam"
    The optimizer.
lr : float, default=1e-3
    Learning rate (> 0).
batch_size : int, default=256
    Rows per training step.
max_epochs : int, default=200
    Maximum number of passes over the training rows.
early_stopping : bool, default=True
    Hold out ``validation_fraction`` of the rows and stop when their loss has not improved
    for ``patience`` epochs; the best epoch's weights are kept.
validation_fraction : float, default=0.1
    Fraction of the rows held out for early stopping, in (0, 1); one that leaves no
    row on a side (few rows) turns early stopping off with a UserWarning.
patience : int, default=10
    Epochs without improvement before stopping (>= 1).
random_state : int, RandomState instance or None, default=0
    Seeds the split, the initial weights, the batch order and the random draws.
device : str, default="auto"
    ``"auto"`` (the GPU when there is one), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
verbose : int, default=0
    Show a progress bar over epochs when > 0.
categorical_features : "from_dtype" or list of str, default="from_dtype"
    The DataFrame columns read as categories (each value embedded, vocabularies in
    ``categories_``): those of ``category``, ``object`` or ``string`` dtype, and the columns
    a list names whatever their dtype (integer user or item ids). With ``"from_dtype"``, an
    integer column that looks like ids (many dense distinct values) is fit as a number with
    a UserWarning naming it; a list (``[]`` for none) says which are categories.
on_divergence : {"raise", "restore_best"}, default="raise"
    When a training loss, the weights or a validation loss turns NaN or infinite:
    ``"raise"`` stops the fit with :class:`~regmtl.deep.TrainingDiverged` (naming the task,
    the epoch, the step and the learning rate); ``"restore_best"`` keeps the best weights
    seen and warns (see :class:`~regmtl.deep.Trainer`).
input_kind : {"auto", "table", "images", "sparse", "tokens", "text"}, default="auto"
    What ``X`` holds (``regmtl.deep.wrapper_inputs``): a table (2-D array or DataFrame, the
    MLP), images of rank >= 3 (a :class:`~regmtl.deep.ConvTrunk`), a SciPy sparse bag of
    words, integer token ids (n, length) padded with 0, or raw texts (a 1-D array, list or
    Series of str; the built-in :class:`~regmtl.deep.Tokenizer`), the last three
    through a :class:`~regmtl.deep.TextTrunk`. ``"auto"`` finds all but token ids, which an
    integer table cannot be told from.
trunk : dict, optional
    Options of the trunk the input kind gets (the wrapper sets the channels or vocabulary
    size from the data): ``ConvTrunk``'s ``channels`` (default (32, 64)), ``kernel_size``,
    ``out_features``, ``dropout``, ``batch_norm``, ``pool``; ``TextTrunk``'s ``dim``
    (default 64), ``mode``, ``conv`` (ids only), ``out_features``, ``dropout``,
    ``oov_rate``, ``padding_idx`` (token ids only). For a :class:`~regmtl.deep.Modalities`
    X, a dict of such options per modality, by name (a table's: ``hidden``), e.g.
    ``{"image": {"channels": (16, 32)}, "title": {"dim": 32}}``.
tokenizer : dict, optional
    Options of the tokenizer of raw texts: ``lowercase`` (True), ``min_count`` (1),
    ``max_size`` (20000 words), ``max_length`` (256 words per text).
warm_start : bool, default=False
    When True, a fit after a fit continues its training (the weights, the optimizer's
    moments, the weighting's state, the early-stopping record, the random streams and the
    input scaling of the last fit; ``Trainer.fit(resume=...)``) instead of starting anew.
    ``max_epochs`` counts the epochs of all fits together: a second fit with
    ``max_epochs=N`` after one of k epochs trains N - k more, and on the same data equals
    one fit of N epochs (bit for bit on the CPU); a fit that early stopping ended trains no
    further (a UserWarning). The net, tasks and options must be those of the last fit, which
    keeps its state in memory when ``warm_start`` was True (not in a saved estimator: a
    loaded one starts anew); ``X`` with another number of features is refused (a
    ValueError: give the same features, or ``warm_start=False``).

"""

#: The options of a ``Modalities`` input (``regmtl.deep.modal_inputs``).
MODAL_PARAMETERS = """\
fusion : {"concat", "gated"}, default="concat"
    How a :class:`~regmtl.deep.FusedTrunk` fuses the modalities of a
    :class:`~regmtl.deep.Modalities` ``X`` (each read by its default encoder: images by a
    ``ConvTrunk``, texts by a ``TextTrunk`` on a tokenizer fitted on that modality's present
    texts, tables by a ``TableTrunk``): concatenate their vectors, or mix them by learned
    gates. Only for a ``Modalities`` X (another value is refused for other inputs).
modality_dropout : float, default=0.0
    Probability, in training, that an available modality of a row is read as missing (never
    every modality of a row), in [0, 1). Only for a ``Modalities`` X.
"""

#: The fitted attributes of every wrapper (but ``trainer_``, which comes last).
FITTED_ATTRIBUTES = """\
net_ : MultiTaskNet
    The trained net (task ``k`` is named ``"t{k}"``).
history_ : DataFrame
    One row per epoch (see :class:`~regmtl.deep.Trainer`).
tasks_ : ndarray
    The task labels, in order.
n_tasks_ : int
    Number of tasks.
n_iter_ : int
    Epochs run.
best_epoch_ : int
    The epoch whose weights the net has.
input_form_ : str
    The input form of the fit (``"single"``, ``"list"``, ``"dict"``, ``"long"`` or
    ``"shared"``).
x_mean_, x_scale_ : ndarray of shape (n_features,)
    Each input column's mean and standard deviation over the training rows (0 and 1 for
    categorical columns).
categories_ : dict
    Each categorical column's vocabulary (only when X had such columns).
input_kind_ : str
    What the fit read: ``"table"``, ``"images"``, ``"sparse"``, ``"tokens"`` or ``"text"``.
input_size_ : list of int
    For a trunk's input: the images' (C, H, W), or the number of ids or columns V its
    embedding reads (absent for a table).
tokenizer_ : Tokenizer
    The vocabulary learned from raw texts (``input_kind_ == "text"`` only).
modalities_ : dict
    For a :class:`~regmtl.deep.Modalities` X: its ``"names"``, ``"kinds"``, ``"sizes"``
    (images' (C, H, W), a table's columns, ids), each text modality's fitted tokenizer
    (``"tokenizers"``, as ``Tokenizer.to_json``) and each DataFrame table with categorical
    columns' ``"columns"`` and vocabularies (``"tables"``).
"""

#: The regressor's target maps.
TARGET_ATTRIBUTES = """\
y_mean_, y_scale_ : ndarray of shape (n_tasks,)
    Each task's target mean and standard deviation (the net's
    :class:`~regmtl.deep.scaling.TargetScale` maps); 0 and 1 for a count task, whose
    target is not standardized.
"""

#: The last fitted attribute of every wrapper.
TRAINER_ATTRIBUTE = """\
trainer_ : Trainer
    The trainer of the fit.
"""


def wrapper_doc(intro: str, *, parameters: str = "", attributes: str = "",
                extra_attributes: str = "", rest: str = "") -> str:
    """A wrapper's docstring: ``intro``, then Parameters (``parameters`` before the shared
    net and training options), Attributes (``attributes`` before the shared ones,
    ``extra_attributes`` after them, ``trainer_`` last) and ``rest`` (See Also, Examples),
    indented as a class docstring.

    Parameters
    ----------
    intro : str
        The summary line and the description.
    parameters, attributes, extra_attributes, rest : str
        The class's own parts (numpydoc, unindented).

    Returns
    -------
    str
        The docstring.
    """
    params = parameters + NET_PARAMETERS + TRAINING_PARAMETERS + MODAL_PARAMETERS
    attrs = attributes + FITTED_ATTRIBUTES + extra_attributes + TRAINER_ATTRIBUTE
    body = (f"Parameters\n----------\n{params.rstrip()}\n\n"
            f"Attributes\n----------\n{attrs.rstrip()}\n\n{rest}")
    return textwrap.dedent(intro).strip("\n") + "\n\n" + textwrap.indent(body, "    ") + "    "
