"""The Benchmarks page's figures: bench/figures.py draws them from the committed records
(bench/results/), and a missing or unreadable record is reported, not a crash; the pass counter
of bench/bench_passes.py counts and puts the library back as it was. Nothing here is timed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
RESULTS = BENCH / "results"


@pytest.fixture
def figures():
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(BENCH))
    try:
        import figures as module

        yield module
    finally:
        sys.path.remove(str(BENCH))


def test_the_committed_records_draw_every_figure_they_hold(figures, tmp_path):
    records = sorted(p.name for p in RESULTS.glob("*.json"))
    assert {"structured_wide.json", "l21.json", "passes.json"} <= set(records)
    drawn, missing = figures.draw(str(RESULTS), str(tmp_path / "benchmarks"))
    names = {Path(p).name for p in drawn}
    assert {"ratios_structured.png", "ratios_l21.png", "scaling.png", "passes.png"} <= names
    for path in drawn:
        assert Path(path).stat().st_size > 5000  # a real image, not an empty canvas
    inc = (tmp_path / "benchmarks" / "figures.inc").read_text()
    for name in names:
        assert f".. image:: /benchmarks/{name}" in inc
    if not (RESULTS / "first_call.json").exists():
        assert any("first_call.json" in m for m in missing)
        assert "Not drawn (no record)" in inc


def test_the_page_includes_what_the_figures_script_wrote():
    docs = Path(__file__).resolve().parents[1] / "docs"
    inc = (docs / "benchmarks" / "figures.inc").read_text()
    assert ".. include:: benchmarks/figures.inc" in (docs / "benchmarks.rst").read_text()
    for line in inc.splitlines():
        if line.startswith(".. image:: /benchmarks/"):
            assert (docs / line.split("/", 1)[1]).exists(), line


def test_a_missing_or_broken_record_is_reported_not_raised(figures, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "passes.json").write_text("{not json")
    drawn, missing = figures.draw(str(results), str(tmp_path / "out"))
    assert drawn == []
    assert any("no record" in m and "l21.json" in m for m in missing)
    assert any("passes.json" in m and "unreadable" in m for m in missing)
    assert "Not drawn (no record)" in (tmp_path / "out" / "figures.inc").read_text()


def test_a_plain_dict_of_named_numbers_is_drawn_and_stale_figures_go(figures, tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    results.mkdir()
    out.mkdir()
    (out / "scaling.png").write_bytes(b"stale")
    (results / "first_call.json").write_text(json.dumps(
        {"sklearn.import_s": 1.1, "sklearn.fit_s": 0.01, "l21.import_s": 0.9, "l21.fit_s": 0.04,
         "l21.fit_over_sklearn": 4.0, "n_rounds": 5.0, "nested": {"a": 1.0, "b": "text"}}))
    drawn, missing = figures.draw(str(results), str(out))
    assert [Path(p).name for p in drawn] == ["first_call.png"]
    assert not (out / "scaling.png").exists()
    inc = (out / "figures.inc").read_text()
    for name in ("l21.fit_over_sklearn", "n_rounds", "nested.a"):
        assert name in inc  # every number in the table, the seconds in the figure


def test_the_pass_counter_counts_and_restores(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        import bench_passes
    finally:
        sys.path.remove(str(BENCH))
    import regmtl
    from regmtl import taskdata

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((60, 20)), rng.standard_normal((60, 3))
    linear = taskdata.TaskData.__dict__["linear"]
    counter = bench_passes.Counter()
    with counter.installed():
        m = regmtl.MultiTaskRegressor(penalty="l21", alpha=0.05, tol=1e-8).fit(X, Y)
    assert taskdata.TaskData.__dict__["linear"] is linear
    assert set(counter.rows) == {"bcd"}
    passes = sum(counter.bytes.values()) / X.nbytes
    assert 1.0 <= passes  # at least the certificate's pass
    assert passes <= 10 * max(m.n_iter_, 1) + 10
