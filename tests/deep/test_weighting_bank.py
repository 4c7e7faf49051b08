"""One bank of cases and contract checks that every registered weighting runs.

Every key of ``regmtl.deep.weighting.WEIGHTINGS`` must have an entry in ``ENTRIES`` of
``tests/_weighting_cases.py``, the one list of the weightings that the tests read (a test fails
otherwise). The cases (``tests/_weighting_cases.py``) are seeded Jacobians J whose rows are
the task gradients: Gaussian, conflicting, duplicated rows, a zero row, nearly collinear rows,
rows scaled by 1e6, low rank (T in {2, 3, 5, 10}, p in {5, 50}, three at p = 500), and strongly
stationary ones (0 in the relative interior of the hull of the rows). Each method is driven
through its public training path: ``setup(tasks, seed=SEED)`` then ``backward(losses, [theta],
[])`` on losses L_t = g_t . theta + ell_t at theta = 0 (float64), so the per-task gradients are
exactly the rows of J; the direction d is ``theta.grad``. Stateful methods (uncertainty, dwa,
gradnorm, famo) are checked at their first step (whose weights their entry states).

Adding an entry
---------------
Add ``"name": Entry(...)`` to ``ENTRIES`` in ``tests/_weighting_cases.py`` with the method's
promises, read from its docstring:

- ``options``: keyword options to build it with (``make_weighting(name, **options)``), or a
  callable ``T -> options`` when they depend on the number of tasks;
- ``order_invariant``: True (permuting the rows and the task specs permutes the weights and
  leaves d unchanged) or ``"seeded"`` for random-by-design methods (then the same seed gives
  the same step, and the functional form with that seed equals the training path);
- ``scale``: ``"linear"`` (d(kJ) = k d(J), losses scaled by k too), ``"invariant"`` (d(kJ) =
  d(J)) or None (state why in ``notes``);
- ``non_conflicting``: True where J d >= 0 is promised;
- ``stationary``: ``"zero"`` (d = 0 at a strongly stationary point), ``"base"`` (d = J^T b, the
  method does not look at the gradients there) or None (say why in ``notes``);
- ``functional``: ``(J, ell) -> d`` computed from the package's public functions (or a closed
  form), in the original task order, with the seed ``SEED``; None if there is none;
- ``qp``: ``J -> d`` an exact solution by cvxpy for methods defined by an optimization problem
  (``qp_compare="direction"`` compares d; ``"maxmin"`` compares min_t g_t . d, for problems
  whose optimal d need not be unique); None otherwise;
- ``returns_fresh``: always True (the returned weights share no memory with the state);
- ``sums``: what the weights of a training sum to, a law of ``tests/deep/test_deep_weight_sums.py``
  (None: finite weights only).

A variant of a method with other options is an extra entry keyed ``"name:variant"``.

Tolerances (float64), with s = T max_t |g_t| and n = sum_t |w_t| |g_t| (w the returned
weights): the functional form equals the training path to 1e-10 max(n, |d|) + 1e-13 s; order
invariance and scaling to 1e-8 max(n, |d|) + 1e-13 s (1e-13 s: rounding); non-conflict
J d >= -max_t |g_t| (1e-8 |d| + 1e-13 max(n, s)); "zero" means |d| <= 1e-8 s; cvxpy agreement
to 1e-5 max(n, |d|) + 1e-6 s (an interior-point solver's accuracy).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import _weighting_cases as wc  # noqa: E402
from _weighting_cases import ENTRIES, Entry  # noqa: E402

from regmtl.deep.weighting import WEIGHTINGS  # noqa: E402


def test_every_registered_weighting_has_an_entry():
    missing = sorted(set(WEIGHTINGS) - set(ENTRIES))
    assert not missing, (f"registered weighting(s) {missing} have no entry in ENTRIES of "
                         "tests/deep/test_weighting_bank.py: add one stating their promises.")
    unknown = sorted({k.split(":")[0] for k in ENTRIES} - set(WEIGHTINGS))
    assert not unknown, f"entries {unknown} name no registered weighting"
    assert all(e.returns_fresh is True for e in ENTRIES.values())


# ----------------------------------------------------------------------------- the bank
CASES = wc.CASES
RTOL_FUNCTIONAL = 1e-10
RTOL = 1e-8  # order and scaling: rounding amplified by the conditioning of the T x T problems
RTOL_QP = 1e-5
ATOL = 1e-13  # rounding, relative to s = T max_t |g_t|
ATOL_QP = 1e-6  # an interior-point solver's accuracy, relative to s
SCALES = (1e-3, 37.0)


def _params(where: Callable[[Entry], bool] = lambda e: True, cases=None) -> list:
    cases = CASES if cases is None else cases
    return [pytest.param(key, case, id=f"{key}-{case.name}")
            for key, entry in ENTRIES.items() if where(entry) for case in cases]


_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


def _base(key: str, case: wc.Case) -> tuple[np.ndarray, np.ndarray]:
    """(d, w) of the training path in the original order, computed once."""
    if (key, case.name) not in _CACHE:
        weighting = ENTRIES[key].build(key, case.T)
        _CACHE[key, case.name] = wc.run(weighting, case.J, case.ell)
    return _CACHE[key, case.name]


def _s(case: wc.Case) -> float:
    """The scale of a direction: T max_t |g_t|."""
    return case.T * float(np.linalg.norm(case.J, axis=1).max())


def _nat(w: np.ndarray, case: wc.Case) -> float:
    """sum_t |w_t| |g_t|: the size of the terms of d = J^T w (what rounding is relative to)."""
    return float(np.abs(w) @ np.linalg.norm(case.J, axis=1))


def _close(a: np.ndarray, b: np.ndarray, w: np.ndarray, case: wc.Case, rtol: float,
           atol: float = ATOL) -> None:
    """|a - b| <= rtol max(sum_t |w_t| |g_t|, |a|, |b|) + atol s (atol: rounding, 1e-13)."""
    ref = max(_nat(w, case), float(np.linalg.norm(a)), float(np.linalg.norm(b)))
    err = float(np.linalg.norm(a - b))
    bound = rtol * ref + atol * _s(case)
    assert err <= bound, f"|a - b| = {err:.3g} > {bound:.3g} (a = {a[:4]}..., b = {b[:4]}...)"


@pytest.mark.parametrize(("key", "case"), _params())
def test_finite(key, case):
    d, w = _base(key, case)
    assert d.shape == (case.J.shape[1],) and w.shape == (case.T,)
    assert np.all(np.isfinite(d)) and np.all(np.isfinite(w))


def _perm(T: int) -> np.ndarray:
    """A fixed non-identity permutation: reversed, then a seeded shuffle."""
    perm = np.random.default_rng(T).permutation(T)[::-1].copy()
    return perm if T < 2 or np.any(perm != np.arange(T)) else perm[::-1].copy()


@pytest.mark.parametrize(("key", "case"), _params())
def test_task_order(key, case):
    """Permuting the rows and the task specs: d unchanged, the weights permuted. Random by
    design ("seeded"): the same seed gives the same step bit for bit, and the permuted step is
    the functional form's with the same seed on the permuted rows (draws follow positions)."""
    if case.T < 2:
        pytest.skip("one task")
    entry = ENTRIES[key]
    d, w = _base(key, case)
    perm = _perm(case.T)
    dp, wp = wc.run(entry.build(key, case.T), case.J, case.ell, order=perm)
    if entry.order_invariant is True:
        _close(dp, d, w, case, RTOL)
        idx = wc.active_rows(case.J)
        if np.linalg.cond(wc.gram(case.J[idx]).numpy()) < 1e8:  # unique weights
            np.testing.assert_allclose(wp, w[perm], rtol=RTOL,
                                       atol=RTOL * max(float(np.abs(w).max()), 1e-300))
    else:
        d2, w2 = wc.run(entry.build(key, case.T), case.J, case.ell)
        assert np.array_equal(d2, d) and np.array_equal(w2, w)
        assert entry.functional is not None
        ref = entry.functional(case.J[perm], case.ell[perm])
        _close(dp, ref, wp, case, RTOL_FUNCTIONAL)


@pytest.mark.parametrize(("key", "case"), _params(lambda e: e.scale is not None))
def test_scaling(key, case):
    """Losses (values and gradients) times k: d times k (linear) or unchanged (invariant)."""
    entry = ENTRIES[key]
    d, w = _base(key, case)
    # a single task taking part takes its plain gradient (the Gram methods' documented
    # convention), which is linear in k even for a scale-invariant method
    from regmtl.deep.weighting import WEIGHTINGS, GramWeighting

    gram_method = issubclass(WEIGHTINGS[key.split(":")[0]], GramWeighting)
    linear = entry.scale == "linear" or (gram_method and len(wc.active_rows(case.J)) < 2)
    for k in SCALES:
        dk, _ = wc.run(entry.build(key, case.T), k * case.J, k * case.ell)
        expected = k * d if linear else d
        _close(dk, expected, (k if linear else 1.0) * w, case, RTOL)


@pytest.mark.parametrize(("key", "case"), _params(lambda e: e.non_conflicting))
def test_non_conflicting(key, case):
    """J d >= -1e-9 max_t |g_t| |d|: no task is made worse."""
    d, w = _base(key, case)
    Jd = case.J @ d
    top = float(np.linalg.norm(case.J, axis=1).max())
    tol = top * (RTOL * float(np.linalg.norm(d)) + ATOL * max(_nat(w, case), _s(case)))
    assert Jd.min() >= -tol, f"J d = {Jd}"


@pytest.mark.parametrize(("key", "case"), _params(lambda e: e.stationary is not None,
                                                  wc.STATIONARY_CASES))
def test_strongly_stationary(key, case):
    """0 in the relative interior of the hull: d = 0 ("zero") or d = J^T b ("base"), to 1e-8 s."""
    d, _ = _base(key, case)
    expected = np.zeros_like(d) if ENTRIES[key].stationary == "zero" else case.J.sum(0)
    err = float(np.linalg.norm(d - expected))
    assert err <= RTOL * _s(case), f"d = {d}, expected {expected}"


@pytest.mark.parametrize(("key", "case"), _params(lambda e: e.functional is not None))
def test_functional_form_equals_training_path(key, case):
    d, w = _base(key, case)
    ref = ENTRIES[key].functional(case.J, case.ell)
    _close(d, ref, w, case, RTOL_FUNCTIONAL)


@pytest.mark.parametrize(("key", "case"), _params(
    lambda e: e.qp is not None,
    [c for c in CASES if c.J.shape[1] <= 50 and not c.name.startswith("scaled")]))
def test_agrees_with_cvxpy(key, case):
    """The exact solution of the method's optimization problem (cvxpy, Clarabel) to 1e-5
    relative plus 1e-6 s: the direction, or for CAGrad the max-min value min_t g_t . d (its d
    need not be unique). Rows scaled by 1e6 are left out: an interior-point solver in float64
    does not resolve a contrast of 1e-12 in the objective."""
    pytest.importorskip("cvxpy")
    entry = ENTRIES[key]
    d, w = _base(key, case)
    ref = entry.qp(case.J)
    if entry.qp_compare == "direction":
        _close(d, ref, w, case, RTOL_QP, ATOL_QP)
    else:
        norms = np.linalg.norm(case.J, axis=1)
        unit = _s(case) * float(norms.max())
        got, want = float((case.J @ d).min()), float((case.J @ ref).min())
        assert abs(got - want) <= (RTOL_QP + ATOL_QP) * unit, f"min_t g_t . d = {got}, cvxpy {want}"


FRESH_CASES = [c for c in CASES if c.name in ("gauss-T3-p50", "zero-T5-p5", "conflict-T10-p50",
                                               "opp2-exact")]


def _state(weighting) -> dict[str, torch.Tensor]:
    out = {k: v.detach().clone() for k, v in weighting.state_dict().items()
           if isinstance(v, torch.Tensor)}
    out["base_weights"] = weighting.base_weights.detach().clone()
    return out


@pytest.mark.parametrize(("key", "case"), _params(cases=FRESH_CASES))
def test_returned_weights_are_the_callers_own(key, case):
    """The returned tensor shares no memory with the state; writing into it changes no
    buffer, parameter or base weight, nor the next step (against an untouched twin)."""
    entry = ENTRIES[key]
    J = torch.as_tensor(case.J, dtype=wc.F64)
    ell = torch.as_tensor(case.ell, dtype=wc.F64)
    a, b = entry.build(key, case.T), entry.build(key, case.T)
    out = []
    for weighting in (a, b):
        weighting.setup(wc.tasks(case.T), seed=wc.SEED)
        theta = torch.nn.Parameter(torch.zeros(J.shape[1], dtype=wc.F64))
        out.append(weighting.backward(J @ theta + ell, [theta], []))
    w = out[0]
    ptr = w.untyped_storage().data_ptr()
    tensors = [*a.buffers(), *a.parameters(), a.base_weights]
    tensors += [getattr(a, n) for n in dir(a) if isinstance(getattr(a, n, None), torch.Tensor)]
    assert all(t.untyped_storage().data_ptr() != ptr for t in tensors)
    w.mul_(-3.0).add_(11.0)
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k].nan_to_num(123.0), sb[k].nan_to_num(123.0)), k
    steps = []
    for weighting in (a, b):
        theta = torch.nn.Parameter(torch.zeros(J.shape[1], dtype=wc.F64))
        wt = weighting.backward(J @ theta + 0.5 * ell, [theta], [])
        steps.append((theta.grad.clone(), wt.clone()))
    assert torch.equal(steps[0][0], steps[1][0]) and torch.equal(steps[0][1], steps[1][1])
