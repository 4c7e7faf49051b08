"""Checkpoints: a folder with ``model.pt`` (the state_dict) and ``config.json`` (the net).

The weights are read with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import __version__
from ._torch import torch
from .nets import NETS, MultiTaskNet
from .tasks import TaskSpec

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = 1
WEIGHTS, CONFIG = "model.pt", "config.json"


def save_checkpoint(path: str | Path, net: MultiTaskNet, extra: dict | None = None) -> Path:
    """Write ``net``'s weights and config into the folder ``path`` (created if needed).

    The folder gets ``model.pt`` (the ``state_dict``, on the CPU) and ``config.json`` (the
    checkpoint format, the regmtl version, the net's class and constructor arguments, and
    ``extra``). A net whose config cannot be written (a custom trunk, a callable loss) gets
    its weights saved and ``"net": null``; load it with ``load_checkpoint(path, net=...)``.
    Existing files are overwritten.

    Parameters
    ----------
    path : str or path-like
        The folder.
    net : MultiTaskNet
        The net to save.
    extra : dict, optional
        JSON-able entries stored in the config (epoch, metric, ...).

    Returns
    -------
    pathlib.Path
        The folder.

    See Also
    --------
    regmtl.deep.load_checkpoint : Reads it back.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from regmtl.deep import HardSharing, save_checkpoint
    >>> net = HardSharing(4, ["a", "b"], hidden=(8,))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = save_checkpoint(Path(tmp) / "best", net, extra={"epoch": 3})
    ...     sorted(f.name for f in folder.iterdir())
    ['config.json', 'model.pt']
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        net_config: Any = net.config()
    except ValueError:
        net_config = None
    config = {"format": FORMAT, "regmtl_version": __version__,
              "net": type(net).__name__ if net_config is not None else None,
              "net_config": net_config, **(extra or {})}
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save(state, path / WEIGHTS)
    (path / CONFIG).write_text(json.dumps(config, indent=2))
    return path


def read_config(path: str | Path) -> dict:
    path = Path(path)
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        raise FileNotFoundError(f"{path} is not a regmtl checkpoint (it needs {WEIGHTS} and "
                                f"{CONFIG}).")
    try:
        config = json.loads((path / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path / CONFIG} is not valid JSON ({exc}).") from None
    if not isinstance(config, dict) or not isinstance(config.get("format"), int):
        raise ValueError(f"{path / CONFIG} is not a regmtl checkpoint config (no format).")
    if config["format"] > FORMAT:
        raise ValueError(f"{path / CONFIG}: checkpoint format {config['format']} is newer "
                         f"than this regmtl reads ({FORMAT}); upgrade regmtl.")
    return config


def load_checkpoint(path: str | Path, net: MultiTaskNet | None = None,
                    map_location: Any = "cpu") -> MultiTaskNet:
    """The net saved in ``path``: rebuilt from its config, or ``net`` with the saved weights.

    The weights are read with ``torch.load(weights_only=True)``: a checkpoint cannot run code.

    Parameters
    ----------
    path : str or path-like
        A folder written by :func:`~regmtl.deep.save_checkpoint`.
    net : MultiTaskNet, optional
        A net of the saved architecture to load the weights into (required when the config
        could not be saved, e.g. a custom trunk).
    map_location : str or torch.device, default="cpu"
        Where the tensors are loaded (as in ``torch.load``).

    Returns
    -------
    MultiTaskNet
        The net with the saved weights (``net`` itself when given).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a checkpoint folder.
    ValueError
        If the config is invalid or of a newer format, or the net cannot be rebuilt from it
        and ``net`` is not given.

    Examples
    --------
    >>> import tempfile
    >>> import torch
    >>> from regmtl.deep import MMoE, load_checkpoint, save_checkpoint
    >>> net = MMoE(4, ["a", "b"], n_experts=2, expert_hidden=(8,))
    >>> x = torch.randn(3, 4)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save_checkpoint(tmp, net)
    ...     loaded = load_checkpoint(tmp)
    >>> type(loaded).__name__, loaded.task_names
    ('MMoE', ['a', 'b'])
    >>> torch.equal(net(x)["a"], loaded(x)["a"])
    True
    """
    config = read_config(path)
    if net is None:
        name = config.get("net")
        if name not in NETS:
            raise ValueError(f"{path}: the saved net ({name!r}) cannot be rebuilt from its "
                             "config; pass the net: load_checkpoint(path, net=...).")
        kw = dict(config["net_config"])
        kw["tasks"] = [TaskSpec.from_config(t) for t in kw["tasks"]]
        net = NETS[name](**kw)
    state = torch.load(Path(path) / WEIGHTS, map_location=map_location, weights_only=True)
    net.load_state_dict(state)
    return net
