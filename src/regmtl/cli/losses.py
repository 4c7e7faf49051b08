"""The loss options of ``regmtl compare`` and ``regmtl fit``: ``--loss`` (one loss, or a list
with one per task), each registered loss's own parameter flags (``Datafit.cli_parameters``:
``--huber-delta``, ``--quantile``, ...) and ``--offset``; their reading into the ``loss=`` of
the estimators, the kind of target it fits, and the check that a list has one loss per task. A
new loss's flags land here by its registration, without an edit of this module.
"""

from __future__ import annotations

import argparse
from typing import Any

from .shared import UsageError, some


def loss_arguments(p: argparse.ArgumentParser, offset: bool = True) -> None:
    from ..datafits import LOSSES

    p.add_argument("--loss", metavar="LOSS[,LOSS...]",
                   help=f"the loss: {', '.join(LOSSES)}; or a comma-separated list with one "
                        "loss per task, in the order of the sorted task ids, for a fit with "
                        "one loss per task (default: squared, logistic for a binary target)")
    for flag, _, _, metavar, text in _loss_flags():
        p.add_argument(flag, type=float, metavar=metavar, help=text)
    if offset:
        p.add_argument("--offset", metavar="COLUMN",
                       help="file input: the column of each row's offset, added to its "
                            "linear predictor (the log exposure for poisson and gamma); it "
                            "is not a feature")


def _loss_flags() -> list[tuple[str, str, str, str, str]]:
    """``(flag, loss, parameter, metavar, help)`` of every registered loss's command-line
    parameters (``Datafit.cli_parameters``: ``--huber-delta``, ``--quantile``)."""
    from ..datafits import LOSSES

    return [(flag, name, *spec) for name, cls in LOSSES.items()
            for flag, spec in cls.cli_parameters.items()]


def _flag_value(args: argparse.Namespace, flag: str) -> Any:
    return getattr(args, flag.lstrip("-").replace("-", "_"), None)


def loss_option(args: argparse.Namespace) -> Any:
    """The ``loss=`` of ``--loss`` (a name, a loss object, or a list with one per task),
    each loss's parameter flags (``--huber-delta``, ``--quantile``) given to the loss they
    belong to; None without ``--loss``."""
    from ..datafits import LOSSES

    names = ([] if args.loss is None
             else [n.strip().lower() for n in args.loss.split(",")])
    flags = _loss_flags()
    for flag, loss, *_ in flags:
        if _flag_value(args, flag) is not None and loss not in names:
            raise UsageError(f"{flag} is a parameter of the {loss} loss; pass --loss {loss} "
                             "(or a list of losses that holds it).")
    if not names:
        return None
    unknown = [n for n in names if n not in LOSSES]
    if unknown:
        raise UsageError(f"--loss {unknown[0]!r} is not a loss; the losses: "
                         f"{', '.join(LOSSES)} (or a comma-separated list of them, one per "
                         "task).")
    losses: list[Any] = []
    for n in names:
        given = [(flag, param, _flag_value(args, flag)) for flag, loss, param, *_ in flags
                 if loss == n and _flag_value(args, flag) is not None]
        if not given:
            losses.append(n)
            continue
        try:
            losses.append(LOSSES[n](**{param: value for _, param, value in given}))
        except ValueError as exc:
            raise UsageError(f"{given[0][0]} {given[0][2]}: {exc}") from None
    return losses[0] if len(losses) == 1 else losses


def loss_kind(loss: Any) -> str:
    """The kind of task of a ``loss=``: ``"binary"``, ``"regression"`` or ``"mixed"``."""
    from ..datafits import make_loss

    return make_loss(loss).kind


def loss_and_kind(args: argparse.Namespace) -> Any:
    """The ``loss=`` of the loss flags; ``args.kind`` set to the kind of task it fits
    (refused where ``--kind`` says another)."""
    loss = loss_option(args)
    kind = None if loss is None else loss_kind(loss)
    if kind is not None:
        if args.kind != "auto" and (args.kind == "binary") != (kind == "binary"):
            raise UsageError(f"--kind {args.kind} does not fit --loss {args.loss}: "
                             f"the {args.loss} loss fits {kind} targets.")
        args.kind = "binary" if kind == "binary" else "regression"
    return loss


def check_loss_count(loss: Any, bunch: Any) -> None:
    """A list of losses has one per task."""
    if isinstance(loss, list) and len(loss) != len(bunch.X):
        raise UsageError(f"--loss lists {len(loss)} losses for {len(bunch.X)} tasks; give one "
                         "per task, in the order of the sorted task ids: "
                         f"{some(bunch.task_names, 8)}.")
