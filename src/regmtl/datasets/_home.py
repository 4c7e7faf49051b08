"""Where the data sets that are not shipped with regmtl are read from."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "get_data_home", "find_file"]

#: Environment variable naming the folder that holds the data sets.
DATA_ENV = "REGMTL_DATA"


def get_data_home(data_home: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds one subfolder per data set.

    The loaders of the data sets that are not shipped read
    ``<data home>/<folder>/<file>`` (:func:`list_datasets` shows each set's folder).

    Parameters
    ----------
    data_home : str or path-like, default=None
        Used when given (``~`` is expanded). Otherwise the ``REGMTL_DATA`` environment
        variable, and when that is unset or empty, ``data/`` in the current directory.

    Returns
    -------
    pathlib.Path
        The folder (it need not exist).

    See Also
    --------
    list_datasets : Which data sets are under it.

    Examples
    --------
    >>> import os
    >>> from pathlib import Path
    >>> from regmtl.datasets import get_data_home
    >>> str(get_data_home("my-data"))
    'my-data'

    Without an argument, the ``REGMTL_DATA`` environment variable, else ``./data``:

    >>> saved = os.environ.pop("REGMTL_DATA", None)
    >>> get_data_home() == Path.cwd() / "data"
    True
    >>> os.environ["REGMTL_DATA"] = "shared-data"  # as exported in a shell
    >>> str(get_data_home())
    'shared-data'
    >>> del os.environ["REGMTL_DATA"]
    >>> if saved is not None:
    ...     os.environ["REGMTL_DATA"] = saved
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
