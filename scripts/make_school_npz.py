"""Convert the MALSAR ``school.mat`` into ``src/regmtl/datasets/data/school.npz``.

Usage::

    python scripts/make_school_npz.py [path/to/school.mat]

The default input is ``../shared/data/school/school.mat`` next to the repository. The output holds
the stacked ``X`` (15362 x 28, uint8, column 27 = bias), ``y`` (15362, uint8) and ``indptr``
(140 int64 task offsets, as in CSR), compressed with :func:`numpy.savez_compressed`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.io

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = ROOT.parent / "shared" / "data" / "school" / "school.mat"
DEFAULT_DST = ROOT / "src" / "regmtl" / "datasets" / "data" / "school.npz"


def convert(src: Path, dst: Path) -> None:
    """Read ``src`` (keys ``X``, ``Y``: (1, T) cells of uint8), write the stacked ``dst``."""
    mat = scipy.io.loadmat(src)
    Xs = [np.asarray(x) for x in mat["X"].ravel()]
    ys = [np.asarray(y).ravel() for y in mat["Y"].ravel()]
    if len(Xs) != len(ys):
        raise ValueError("X and Y hold different numbers of tasks")
    for x, y in zip(Xs, ys, strict=True):
        if x.dtype != np.uint8 or y.dtype != np.uint8 or x.shape[0] != y.shape[0]:
            raise ValueError("expected uint8 cells with matching row counts")
    X = np.vstack(Xs)
    y = np.concatenate(ys)
    indptr = np.concatenate([[0], np.cumsum([x.shape[0] for x in Xs])]).astype(np.int64)
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(dst, X=X, y=y, indptr=indptr)
    print(f"wrote {dst} ({dst.stat().st_size} bytes): X {X.shape} {X.dtype}, y {y.shape}, "
          f"{len(indptr) - 1} tasks")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", type=Path, default=DEFAULT_SRC)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_DST)
    args = parser.parse_args(argv)
    convert(args.src, args.output)


if __name__ == "__main__":
    main()
