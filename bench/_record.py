"""The recorded results of a benchmark run (not part of regmtl): one JSON file per bench.

A record is ``{"format": 1, "bench": name, "meta": {...}, "data": {...}}``: ``meta`` says where
and when it was measured (machine, BLAS threads, versions, commit, load, the command line),
``data`` holds the bench's own numbers. ``make bench-record`` writes them under
``bench/results/<bench>.json`` (``--record PATH`` of each bench) and ``bench/figures.py`` draws
the Benchmarks page from them. :func:`load` also reads a plain JSON dict of named numbers (a
bench that writes no envelope), as ``data`` with an empty ``meta``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys

FORMAT = 1


def add_option(ap) -> None:
    """The ``--record PATH`` option of a bench."""
    ap.add_argument("--record", metavar="PATH", default=None,
                    help="also write the run's numbers as JSON to PATH (bench/_record.py; "
                         "bench/figures.py draws the Benchmarks page from them)")


def meta() -> dict:
    """Where and when: machine, versions, regmtl's commit, load average, command line."""
    import numpy as np

    out = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               machine=platform.machine(), cpus=os.cpu_count(),
               python=platform.python_version(), numpy=np.__version__,
               load=[round(x, 2) for x in os.getloadavg()],
               argv=[os.path.basename(sys.argv[0]), *sys.argv[1:]])
    try:
        import subprocess

        import regmtl

        out["regmtl"] = regmtl.__version__
        out["commit"] = subprocess.run(
            ["git", "-C", os.path.dirname(os.path.abspath(regmtl.__file__)), "rev-parse",
             "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # pragma: no cover - informational only
        pass
    try:
        from threadpoolctl import threadpool_info

        out["blas_threads"] = max([d.get("num_threads") or 1 for d in threadpool_info()
                                   if d.get("user_api") == "blas"], default=None)
    except Exception:  # pragma: no cover - informational only
        pass
    return out


def write(path: str | None, bench: str, data: dict) -> None:
    """Write the record of ``bench`` to ``path`` (nothing when ``path`` is None)."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    record = dict(format=FORMAT, bench=bench, meta=meta(), data=data)
    with open(path, "w") as fh:
        json.dump(record, fh, indent=1, sort_keys=False, default=_plain)
        fh.write("\n")
    print(f"record written to {path}")


def _plain(value):
    """NumPy scalars and arrays as JSON numbers and lists; infinities as strings."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def load(path: str) -> tuple[dict | None, str]:
    """``(record, "")`` or ``(None, why)`` where the file is missing or unreadable: a figure
    drawn from it is then left out and the reason said, never an exception."""
    if not os.path.exists(path):
        return None, f"no record {path} (run `make bench-record`)"
    try:
        with open(path) as fh:
            raw = json.load(fh)
    except (OSError, ValueError) as exc:
        return None, f"record {path} unreadable ({exc})"
    if not isinstance(raw, dict):
        return None, f"record {path} is not a JSON object"
    if "data" in raw and isinstance(raw["data"], dict):
        raw.setdefault("meta", {})
        return raw, ""
    return dict(format=0, bench=os.path.splitext(os.path.basename(path))[0], meta={},
                data=raw), ""
