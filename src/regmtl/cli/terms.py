"""The per-feature term options of ``regmtl fit`` (``regmtl.feature_terms``): penalty
factors and unpenalized, excluded and bounded columns, named by the table's column names.

``--penalty-factor col=w,...`` gives factors (``inf`` excludes), ``--unpenalized col,...``
factor 0, ``--exclude col,...`` leaves columns out, ``--lower-bounds`` / ``--upper-bounds``
take one number for every column or ``col=v,...``, and ``--no-rescale-factors`` keeps the
factors as given. The command fits on z-scored columns unless ``--no-standardize``: factors
act there (as glmnet's do), bounds are given in the columns' own units and converted (a bound
``u`` on the raw coefficient is ``u s_j`` on the standardized one), and the saved model holds
them in raw units.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

from .shared import UsageError

__all__ = ["terms_arguments", "terms_given", "estimator_terms", "raw_bounds"]

_OPTIONS = ("penalty_factor", "unpenalized", "exclude", "lower_bounds", "upper_bounds")


def terms_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--penalty-factor", metavar="COL=W,...",
                   help="a penalty factor per named column (others 1; inf leaves it out): "
                        "the penalty of that column's coefficients times W")
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
                   help="take the factors as given (default: rescaled to sum to their "
                        "number, as glmnet does)")


def terms_given(args: argparse.Namespace) -> list[str]:
    """The term options given, as their flags (for a refusal)."""
    return ["--" + name.replace("_", "-") for name in _OPTIONS
            if getattr(args, name, None) is not None]


def _column(name: str, names: Sequence[str], option: str) -> int:
    if name not in names:
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise UsageError(f"{option}: unknown column {name!r}; the feature columns are "
                         f"{shown}.")
    return list(names).index(name)


def _pairs(text: str, option: str) -> list[tuple[str, float]]:
    out = []
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{option}: expected COL=VALUE,..., got {item!r}.")
        try:
            out.append((name, float(value)))
        except ValueError:
            raise UsageError(f"{option}: {value!r} for {name!r} is not a number.") from None
    return out


def _bounds(text: str | None, names: Sequence[str], option: str, fill: float
            ) -> np.ndarray | None:
    """A bound per column (raw units) from one number or ``COL=V,...``."""
    if text is None:
        return None
    try:
        return np.full(len(names), float(text))
    except ValueError:
        pass
    out = np.full(len(names), fill)
    for name, value in _pairs(text, option):
        out[_column(name, names, option)] = value
    return out


def estimator_terms(args: argparse.Namespace, names: Sequence[str],
                    scale: np.ndarray) -> dict[str, Any]:
    """The estimator parameters of the term options, for columns ``names`` fitted in units of
    ``scale`` (the z-scoring's, ones without it): factors by position, bounds converted."""
    names = [str(n) for n in names]
    terms: dict[str, Any] = {}
    factor = np.ones(len(names))
    named = False
    if args.penalty_factor:
        for name, value in _pairs(args.penalty_factor, "--penalty-factor"):
            factor[_column(name, names, "--penalty-factor")] = value
        named = True
    if args.unpenalized:
        for name in args.unpenalized.split(","):
            factor[_column(name, names, "--unpenalized")] = 0.0
        named = True
    if named:
        terms["penalty_factor"] = factor
    if args.exclude:
        terms["exclude"] = [_column(n, names, "--exclude") for n in args.exclude.split(",")]
    for option, key, fill in (("--lower-bounds", "lower_bounds", -np.inf),
                              ("--upper-bounds", "upper_bounds", np.inf)):
        raw = _bounds(getattr(args, key), names, option, fill)
        if raw is not None:
            terms[key] = raw * scale
    if terms and args.no_rescale_factors:
        terms["rescale_factors"] = False
    return terms


def raw_bounds(model: Any, terms: dict, scale: np.ndarray) -> None:
    """Set a model expressed in raw units (``regmtl.scaling.raw_units``) to hold its bounds in
    raw units too, as the command was given them."""
    for key in ("lower_bounds", "upper_bounds"):
        if key in terms:
            model.set_params(**{key: terms[key] / scale})
