"""The gallery example on nets trained on ids alone (plot_11_recommender_ids) makes true claims.

It runs at its reduced sizes (``REGMTL_GALLERY_QUICK=1``: 20,000 impressions, 30 users, 20
items, at most 12 epochs), about 9 s on one core.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_example

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_recommender_ids_come_close_to_dense_and_unseen_users_get_the_bucket():
    ns = run_example("plot_11_recommender_ids")
    table, gaps = ns["table"], ns["gaps"]
    metrics = ["click AUC", "purchase AUC", "CTCVR AUC", "CVR AUC (all)"]
    assert list(table.index) == [(n, v) for n in ("MMoE", "PLE", "ESMM")
                                 for v in ("dense", "ids")]
    assert list(gaps.index) == ["MMoE", "PLE", "ESMM"] and list(gaps.columns) == metrics
    ids = table.xs("ids", level="inputs")
    # quick run, on ids: click 0.703 to 0.715, purchase 0.748 to 0.763, CTCVR 0.795 to 0.804,
    # CVR (all) 0.720 to 0.737 (the true probabilities: click 0.787); ids minus dense -0.034
    # to -0.007 (the same setting as tests/deep/test_deep_recommender_ids.py, seeds 0-4 there:
    # at worst -0.036). The full-size run is within 0.011 on every task.
    assert np.all(ids["click AUC"] > 0.695), ids
    assert np.all(ids["purchase AUC"] > 0.73), ids
    assert np.all(ids["CTCVR AUC"] > 0.78), ids
    assert np.all(ids["CVR AUC (all)"] > 0.70), ids
    assert np.all(gaps.to_numpy() > -0.05), gaps
    assert np.all(table["click AUC"] < ns["ceiling"]["click AUC"])  # below the true model
    # unseen users (ids beyond the vocabulary) all read the OOV bucket: one prediction, finite
    unseen, known = ns["unseen"], ns["known"]
    assert unseen.shape == (3,) and np.all(np.isfinite(unseen))
    np.testing.assert_array_equal(unseen, np.full(3, unseen[0]))
    assert known.min() < unseen[0] < known.max()
