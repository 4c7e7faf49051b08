"""Where the data sets that are not shipped with regmtl are read from."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "get_data_home", "find_file"]

#: Environment variable naming the folder that holds the data sets.
DATA_ENV = "REGMTL_DATA"


def get_data_home(data_home: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds one subfolder per data set.

    Parameters
    ----------
    data_home : path-like, optional
        Used when given. Otherwise the ``REGMTL_DATA`` environment variable, and when that is
        unset or empty, ``data/`` in the current directory.

    Returns
    -------
    Path
        The folder (it need not exist).
    """
    if data_home is not None:
        return Path(data_home).expanduser()
    env = os.environ.get(DATA_ENV, "")
    if env:
        return Path(env).expanduser()
    return Path.cwd() / "data"


def _origin(data_home: str | os.PathLike[str] | None) -> str:
    if data_home is not None:
        return "data_home argument"
    if os.environ.get(DATA_ENV, ""):
        return f"{DATA_ENV} environment variable"
    return f"default ./data; {DATA_ENV} is not set"


def find_file(folder: str, name: str, data_home: str | os.PathLike[str] | None = None,
              *, ignore_case: bool = False) -> Path:
    """Path of ``<data home>/<folder>/<name>``, or a ``FileNotFoundError`` that says how to fix it.

    With ``ignore_case``, a file whose name differs from ``name`` only in case is accepted.
    """
    home = get_data_home(data_home)
    path = home / folder / name
    if path.is_file():
        return path
    if ignore_case and path.parent.is_dir():
        for candidate in sorted(path.parent.iterdir()):
            if candidate.name.lower() == name.lower() and candidate.is_file():
                return candidate
    raise FileNotFoundError(
        f"{path} not found (data home {home}, from the {_origin(data_home)}). Put the "
        f"'{folder}' folder in a data home and pass data_home=... or set {DATA_ENV}=/path/to/data."
    )
