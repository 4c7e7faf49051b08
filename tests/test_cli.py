import math
import re

import pytest

from regmtl.cli import main


def test_demo_prints_both_models(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "ridge (per school)" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("MTL L2,1"))
    # columns after the name: alpha, EV pooled, EV task avg, RMSE, fit s, CV s
    alpha, ev_pooled, *_ = (float(v) for v in line[len("MTL L2,1"):].split())
    assert alpha > 0
    assert math.isfinite(ev_pooled) and 0 < ev_pooled < 1
    assert re.search(r"L2,1: \d+ of 27 features selected", out)


def test_no_command_is_an_error(capsys):
    with pytest.raises(SystemExit):
        main([])
