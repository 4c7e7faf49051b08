"""``python -m regmtl.cli``: the ``regmtl`` command (:func:`regmtl.cli.main`) run as a module,
for an environment without the console script; its exit status is the process's.
"""

from __future__ import annotations

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
