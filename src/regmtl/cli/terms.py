"""The per-feature term options of ``regmtl fit`` (``regmtl.feature_terms``): penalty
factors and unpenalized, excluded and bounded columns, named by the table's column names.

``--penalty-factor col=w,...`` gives factors (``inf`` excludes), ``--unpenalized col,...``
factor 0, ``--exclude col,...`` leaves columns out, ``--lower-bounds`` / ``--upper-bounds``
take one number for every column or ``col=v,...``, ``--no-rescale-factors`` keeps the
factors as given, ``--factor-convention glmnet`` has a ridge part weigh a factor as glmnet's
``penalty.factor`` does (:math:`d_j`, not :math:`d_j^2`) and ``--standardize`` has the
estimator penalize the raw columns in their standard deviations (its ``standardize=True``,
glmnet's; ``--standardize-task``: each task's columns in that task's own, its
``standardize="task"``) instead of the command z-scoring them first. The command fits on
z-scored columns unless ``--no-standardize`` or ``--standardize``: factors act there (as
glmnet's do), bounds are given in the columns' own units and converted (a bound ``u`` on the
raw coefficient is ``u s_j`` on the standardized one), and the saved model holds them in raw
units.

Every value is checked here, the option named: an unknown column (the known ones listed), a
value that is not a number, a factor that is negative or NaN, a column given twice or given
contradictory terms (unpenalized and weighted, excluded and kept), a NaN bound, a lower bound
above the upper one.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .shared import UsageError

__all__ = ["terms_arguments", "terms_given", "estimator_terms", "raw_bounds"]

_OPTIONS = ("penalty_factor", "unpenalized", "exclude", "lower_bounds", "upper_bounds",
            "factor_convention")
_FLAGS = ("no_rescale_factors", "standardize")


def terms_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--penalty-factor", metavar="COL=W,...",
                   help="a penalty factor per named column (others 1; 0 unpenalized, inf "
                        "leaves it out): the penalty of that column's coefficients times W")
    p.add_argument("--unpenalized", metavar="COL,...",
                   help="columns kept in every task's model unpenalized (factor 0)")
    p.add_argument("--exclude", metavar="COL,...",
                   help="columns left out of the model (their coefficients are 0)")
    p.add_argument("--lower-bounds", metavar="V|COL=V,...",
                   help="a lower bound on the coefficients, one for all or per column, in "
                        "the column's own units")
    p.add_argument("--upper-bounds", metavar="V|COL=V,...",
                   help="an upper bound on the coefficients, as --lower-bounds")
    p.add_argument("--no-rescale-factors", action="store_true",
                   help="take the factors as given (default: rescaled as glmnet does, an "
                        "excluded column counted as 1, to sum to the number of columns)")
    p.add_argument("--factor-convention", choices=("unit", "glmnet"),
                   help="how a factor enters a ridge part (an elastic net's, L2,1's with "
                        "l1_ratio < 1): 'unit' (default) d_j^2, a change of the column's "
                        "unit; 'glmnet' d_j, as glmnet's penalty.factor and glum's P2 = d")
    p.add_argument("--standardize", action="store_const", const="pooled", default=None,
                   help="fit the raw columns, penalized in their standard deviations by the "
                        "estimator (its standardize=True, glmnet's), instead of z-scoring "
                        "them first (the default)")
    p.add_argument("--standardize-task", dest="standardize", action="store_const",
                   const="task",
                   help="as --standardize, each task's columns in that task's own deviations "
                        "(the estimator's standardize='task')")


def terms_given(args: argparse.Namespace) -> list[str]:
    """The term options given, as their flags (for a refusal)."""
    given = ["--" + name.replace("_", "-") for name in _OPTIONS
             if getattr(args, name, None) is not None]
    return given + ["--" + name.replace("_", "-") for name in _FLAGS
                    if getattr(args, name, False)]


def _column(name: str, names: Sequence[str], option: str) -> int:
    if name not in names and name.strip() in names:  # "a, b" as typed
        name = name.strip()
    if name not in names:
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise UsageError(f"{option}: unknown column {name!r}; the feature columns are "
                         f"{shown}.")
    return list(names).index(name)


def _columns(text: str, names: Sequence[str], option: str) -> list[int]:
    """The positions of ``COL,...`` (a column named twice is kept once)."""
    return list(dict.fromkeys(_column(n, names, option) for n in text.split(",")))


def _pairs(text: str, names: Sequence[str], option: str) -> dict[int, float]:
    """``COL=VALUE,...`` as position -> value; a column given twice is refused."""
    out: dict[int, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{option}: expected COL=VALUE,..., got {item!r}.")
        j = _column(name, names, option)
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"{option}: {value!r} for {name!r} is not a number.") from None
        if j in out:
            raise UsageError(f"{option}: column {names[j]!r} is given twice.")
        out[j] = number
    return out


def _bounds(text: str | None, names: Sequence[str], option: str, fill: float
            ) -> np.ndarray | None:
    """A bound per column (raw units) from one number or ``COL=V,...``; NaN, and a bound that
    leaves no value (a lower bound of inf, an upper one of -inf), refused."""
    if text is None:
        return None
    try:
        out = np.full(len(names), float(text))
    except ValueError:
        out = np.full(len(names), fill)
        for j, value in _pairs(text, names, option).items():
            out[j] = value
    for j, v in enumerate(out):
        if math.isnan(v) or v == -fill:
            where = "" if _scalar(text) else f" (column {names[j]!r})"
            what = "NaN is not a bound" if math.isnan(v) else \
                f"{v:g} leaves no value to a coefficient"
            raise UsageError(f"{option}: {what}{where}; give a number, or {fill:g} for no "
                             "bound.")
    return out


def _scalar(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _factors(args: argparse.Namespace, names: Sequence[str]) -> np.ndarray | None:
    """The factors of ``--penalty-factor`` and ``--unpenalized`` (others 1), checked; None
    without either."""
    if not args.penalty_factor and not args.unpenalized:
        return None
    factor = np.ones(len(names))
    weighted = _pairs(args.penalty_factor, names, "--penalty-factor") \
        if args.penalty_factor else {}
    for j, w in weighted.items():
        if math.isnan(w) or w < 0:
            what = "NaN" if math.isnan(w) else f"{w:g}"
            raise UsageError(f"--penalty-factor: {what} for {names[j]!r}; a factor is a "
                             "number >= 0 (0: unpenalized, inf: left out).")
        factor[j] = w
    free = _columns(args.unpenalized, names, "--unpenalized") if args.unpenalized else []
    both = [names[j] for j in free if j in weighted]
    if both:
        raise UsageError(f"--unpenalized and --penalty-factor both name {', '.join(both)}; "
                         "give each column in one of them (--unpenalized is the factor 0).")
    factor[free] = 0.0
    return factor


def _named(args: argparse.Namespace, names: Sequence[str]) -> list[int]:
    """The columns ``--penalty-factor`` or ``--unpenalized`` name."""
    out = list(_pairs(args.penalty_factor, names, "--penalty-factor")) \
        if args.penalty_factor else []
    return out + (_columns(args.unpenalized, names, "--unpenalized") if args.unpenalized
                  else [])


def estimator_terms(args: argparse.Namespace, names: Sequence[str],
                    scale: np.ndarray) -> dict[str, Any]:
    """The estimator parameters of the term options, for columns ``names`` fitted in units of
    ``scale`` (the z-scoring's, ones without it): factors by position, bounds converted.
    Raises :class:`~regmtl.cli.shared.UsageError` naming the option (see the module)."""
    names = [str(n) for n in names]
    terms: dict[str, Any] = {}
    factor = _factors(args, names)
    if factor is not None:
        terms["penalty_factor"] = factor
    if args.exclude:
        out = _columns(args.exclude, names, "--exclude")
        named = set() if factor is None else set(_named(args, names))
        kept = [names[j] for j in out if j in named and np.isfinite(factor[j])]
        if kept:
            raise UsageError(f"--exclude names {', '.join(kept)}, also given a finite factor "
                             "by --unpenalized / --penalty-factor; leave it out of one.")
        if len(out) == len(names):
            raise UsageError("--exclude leaves no column; keep one.")
        terms["exclude"] = out
    raw = {}
    for option, key, fill in (("--lower-bounds", "lower_bounds", -np.inf),
                              ("--upper-bounds", "upper_bounds", np.inf)):
        raw[key] = _bounds(getattr(args, key), names, option, fill)
    if raw["lower_bounds"] is not None and raw["upper_bounds"] is not None:
        cross = np.flatnonzero(raw["lower_bounds"] > raw["upper_bounds"])
        if cross.size:
            j = int(cross[0])
            raise UsageError(f"--lower-bounds / --upper-bounds: column {names[j]!r} has lower "
                             f"{raw['lower_bounds'][j]:g} > upper {raw['upper_bounds'][j]:g}"
                             f"{f' (and {cross.size - 1} more)' if cross.size > 1 else ''}.")
    for key, bound in raw.items():
        if bound is not None:
            terms[key] = bound * scale
    if args.no_rescale_factors:
        if factor is None:
            raise UsageError("--no-rescale-factors acts on the factors of --penalty-factor / "
                             "--unpenalized; give one of them, or leave it out.")
        terms["rescale_factors"] = False
    if args.factor_convention is not None:
        terms["factor_convention"] = args.factor_convention
    if args.standardize:
        if args.no_standardize:
            raise UsageError("--standardize and --no-standardize: give one (--standardize "
                             "fits the raw columns penalized in their standard deviations, "
                             "--no-standardize the raw columns as they are).")
        terms["standardize"] = "task" if args.standardize == "task" else True
    return terms


def raw_bounds(model: Any, terms: dict, scale: np.ndarray) -> None:
    """Set a model expressed in raw units (``regmtl.scaling.raw_units``) to hold its bounds in
    raw units too, as the command was given them."""
    for key in ("lower_bounds", "upper_bounds"):
        if key in terms:
            model.set_params(**{key: terms[key] / scale})
