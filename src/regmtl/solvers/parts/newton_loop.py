r"""The one outer loop of proximal Newton, which every proximal-Newton solver runs.

Proximal Newton (Lee, Sun & Saunders 2014) repeats: certify the point; stop where the
certificate meets tol, the budget of Newton steps is spent, or the certificate has stopped
improving; else build the loss's quadratic model at the point, minimize model plus penalty
to a target, search along the direction on the true objective and move. The solvers differ
only in the model and its inner solve: IRLS weights over working sets
(:mod:`~regmtl.solvers.methods.newton`), the rows' ``K x K`` softmax curvature
(:mod:`~regmtl.solvers.parts.softmax_newton`), Gram or row-space forms
(:mod:`~regmtl.solvers.methods.structured_newton`), a stationary point's KKT residual
(:mod:`~regmtl.solvers.methods.stationary`), steps under a box
(:mod:`~regmtl.solvers.parts.box_descent`), Grams read from a task source
(:mod:`~regmtl.solvers.streamed.newton`). Each is a :class:`NewtonMethod`; :func:`newton_loop`
is the loop, with its counters in a :class:`NewtonProgress` that a checkpoint can keep.

The stop on stalling: ``patience`` rounds in a row without the relative certificate falling
below 0.99 of its best (the rounding floor, or progress too slow to measure); a method may
also end the loop itself (a step with no decrease along its direction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..certificates.certify import Certificate

__all__ = ["NewtonMethod", "NewtonProgress", "newton_loop", "model_target"]


@dataclass
class NewtonProgress:
    """The loop's counters: Newton ``steps`` taken, the ``best`` relative certificate, the
    rounds without a gain (``stalls``), and ``ratio``, the last step's certificate over the
    one before it."""

    steps: int = 0
    best: float = np.inf
    stalls: int = 0
    ratio: float = 1.0


class NewtonMethod(Protocol):
    """What a proximal-Newton solver gives the loop."""

    def certify(self) -> Certificate:
        """The certificate at the current point."""

    def step(self, cert: Certificate | None, progress: NewtonProgress, budget: int
             ) -> int | None:
        """Take at most ``budget`` Newton steps from the current point (``cert`` its
        certificate, None before the first where the method does not certify its start);
        return how many, or None where no step lowers the objective (the loop ends,
        stalled)."""

    def status(self) -> str:
        """What the verbose line shows beside the certificate."""

    #: Set by a method whose own rule says its steps gain nothing more (the loop ends after
    #: certifying the point reached).
    spent: bool


def model_target(cert: Certificate, tol: float, ratio: float) -> float:
    """How far to solve the next model: a tenth of the certificate; where quadratic
    convergence predicts that this step ends the solve (the next certificate about
    ``ratio^2`` times this one, ``ratio`` the last step's), half of what tol asks (absolute
    for a gap, relative for a KKT residual, as the certificate's value)."""
    target = 0.1 * cert.value
    goal = cert.value * tol / cert.relative if cert.relative > 0 else 0.0
    if ratio * ratio * cert.value <= goal:
        target = min(target, 0.5 * goal)
    return target


def newton_loop(method: NewtonMethod, *, tol: float, max_iter: int, label: str,
                verbose: int = 0, patience: int | None = 20, certify_start: bool = True,
                progress: NewtonProgress | None = None,
                stepped: Callable[[NewtonProgress], None] | None = None
                ) -> tuple[Certificate, NewtonProgress, bool, bool]:
    """Run proximal Newton's outer loop (the module's text) on ``method``; ``max_iter``
    bounds the Newton steps, ``patience`` the rounds without a gain (None: no such stop),
    ``certify_start`` whether the start is certified before the first step, ``progress``
    the counters of a run resumed, ``stepped(progress)`` a call after each round (a
    checkpoint). Returns (certificate, progress, converged, stalled)."""
    p = NewtonProgress() if progress is None else progress
    cert = method.certify() if certify_start or p.steps else None
    while True:
        if cert is not None:
            if verbose:
                print(f"[{label}] step {p.steps:4d}  {cert.kind} {cert.relative:.3e}"
                      f"{method.status()}")
            if cert.converged(tol):
                return cert, p, True, False
            if patience is not None:
                p.stalls = 0 if cert.relative < 0.99 * p.best else p.stalls + 1
                p.best = min(p.best, cert.relative)
        if p.steps >= max_iter or (patience is not None and p.stalls >= patience):
            return cert, p, False, p.steps < max_iter
        took = method.step(cert, p, max_iter - p.steps)
        if took is None:  # no decrease along the direction: the loss at its rounding floor
            p.steps += 1
            return cert, p, False, True
        p.steps += took
        before = cert.relative if cert is not None else 0.0
        cert = method.certify()
        p.ratio = cert.relative / before if before > 0 else 1.0
        if stepped is not None:
            stepped(p)
        if getattr(method, "spent", False):  # (the method's own rule: nothing left to gain)
            return cert, p, cert.converged(tol), not cert.converged(tol)
