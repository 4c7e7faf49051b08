"""The shared bank of cases (``_cases.py``) covers every registered penalty and weighting.

A penalty added to ``regmtl.penalties.PENALTY_NAMES`` (or a public ``Penalty`` subclass in
``regmtl.__all__``), or a weighting added to ``regmtl.deep.WEIGHTINGS``, fails here until the bank
has a case for it, so every contract check of ``_asserts.py`` runs on it.
"""

from __future__ import annotations

import numpy as np
import pytest
from _cases import (
    PENALTY_CASES,
    PROBLEMS,
    REGISTERED_PENALTIES,
    WEIGHTING_SPECS,
    weighting_registry,
)

import regmtl as rm
from regmtl.penalties import PENALTY_NAMES, make_penalty


def test_every_registered_penalty_has_a_case():
    covered = {type(c.penalty) for c in PENALTY_CASES}
    missing = [cls.__name__ for cls in REGISTERED_PENALTIES if cls not in covered]
    assert not missing, f"no case in tests/_cases.py for {missing}"
    # and the registry is what the bank reads: every name builds a penalty of a covered class
    for name in PENALTY_NAMES:
        assert type(make_penalty(name)) in covered, name


def test_every_public_penalty_class_is_registered():
    """A public Penalty subclass that is not in the registry would escape the check above."""
    public = {getattr(rm, n) for n in rm.__all__}
    classes = {c for c in public if isinstance(c, type) and issubclass(c, rm.Penalty)
               and c is not rm.Penalty}
    assert classes <= set(REGISTERED_PENALTIES), classes - set(REGISTERED_PENALTIES)


def test_cases_have_readable_unique_ids_and_the_non_default_variants():
    ids = [c.id for c in PENALTY_CASES]
    assert len(ids) == len(set(ids))
    assert all(c.id and " " not in c.id.replace(", ", ",") for c in PENALTY_CASES)
    # the variants that change the mathematics
    assert any(isinstance(c.penalty, rm.L21) and c.penalty.l1_ratio < 1 for c in PENALTY_CASES)
    assert any(isinstance(c.penalty, rm.MeanRegularized) and c.penalty.ridge > 0
               for c in PENALTY_CASES)
    assert any(isinstance(c.penalty, rm.Dirty) and c.penalty.own_weight > 1
               for c in PENALTY_CASES)


def test_problems_cover_the_data_forms():
    """Dense, sparse CSR, shared design, a 5-row task next to 60-row ones, logistic labels."""
    import scipy.sparse as sp

    assert sp.issparse(PROBLEMS["sparse_csr"].fit_args[0][0])
    assert PROBLEMS["sparse_csr"].fit_args[0][0].format == "csr"
    assert np.ndim(PROBLEMS["shared"].fit_args[1]) == 2
    sizes = [X.shape[0] for X in PROBLEMS["tiny_task"].fit_args[0]]
    assert min(sizes) == 5 and max(sizes) == 60
    assert PROBLEMS["logistic"].loss == "logistic"
    for prob in PROBLEMS.values():
        assert prob.data().n_tasks == 4


def test_every_registered_weighting_has_a_case():
    pytest.importorskip("torch")
    registry = weighting_registry()
    names = [name for _, name, _ in WEIGHTING_SPECS]
    missing = sorted(set(registry) - set(names))
    assert not missing, f"no weighting case in tests/_cases.py for {missing}"
    assert len(names) == len(set(names)), "one case per method"
    import _cases

    for id_, name, instance in _cases.WEIGHTING_CASES:
        assert type(instance) is registry[name], id_
