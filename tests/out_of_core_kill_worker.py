"""Run by test_out_of_core_resume.py: an out-of-core fit with a checkpoint folder, killed
(SIGKILL of its own process) at a chosen point of a stage: the ``chunk``-th chunk read (the
statistics pass reads the first ones, the certificate on the rows the last ones), or the
``save``-th FISTA state written to the folder (seen by a thread watching the file); the
squared loss (a regressor) or the logistic one (a classifier on the ``label`` column)."""

import os
import signal
import sys
import threading
import time

from regmtl import MultiTaskClassifier, MultiTaskRegressor
from regmtl.parquet import ParquetTasks


def _watch(path: str, saves: int) -> None:
    seen, last = 0, None
    while True:
        try:
            stamp = os.stat(path).st_mtime_ns
        except OSError:
            stamp = None
        if stamp is not None and stamp != last:
            seen, last = seen + 1, stamp
            if seen >= saves:
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.0002)


if __name__ == "__main__":
    data, folder, alpha, where, at, loss = sys.argv[1:7]
    logistic = loss == "logistic"
    source = ParquetTasks(data, chunk_rows=5000, progress=False,
                          target="label" if logistic else "y")
    count = [0]

    def tick(lo: int, hi: int, rows: int) -> None:
        count[0] += 1
        if count[0] == int(at):
            os.kill(os.getpid(), signal.SIGKILL)

    if where == "chunk":
        source.on_chunk = tick
    else:
        threading.Thread(target=_watch, args=(os.path.join(folder, "fista.npz"), int(at)),
                         daemon=True).start()
    if logistic:
        MultiTaskClassifier("l21", alpha=float(alpha), tol=1e-8).fit(source, checkpoint=folder)
    else:
        MultiTaskRegressor("l21", alpha=float(alpha), tol=1e-8, max_iter=5000).fit(
            source, checkpoint=folder)
    sys.exit(3)  # (never reached: the fit is killed first)
