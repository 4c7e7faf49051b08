"""The deep estimators on disk: ``save`` into a checkpoint folder, and its loader.

A saved estimator is a checkpoint (:func:`~regmtl.deep.save_checkpoint`): the net's
``state_dict`` in ``model.pt`` and, in ``config.json``, the estimator's class, its parameters
as JSON (:func:`param_to_json`; a weighting by name and options) and its fitted attributes
(each class's ``_attributes_to_json``). :func:`load_estimator` (what :func:`regmtl.load` calls
for such a folder) checks the config in full before the weights are read. The estimator
classes register here (:func:`saved_as_folder`), so this module imports none of them.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..serialization import Malformed, Refused, array_from_json, array_to_json, check_labels
from ._torch import torch
from .checkpoint import CONFIG, WEIGHTS, checked_task_specs, load_net, read_config, save_checkpoint
from .distributed import resolve_device
from .nets import ARCHITECTURES, MultiTaskNet, module_config
from .tasks import TaskSpec
from .weighting import WEIGHTINGS, Weighting

__all__ = ["ARCHITECTURE_NETS", "ESTIMATORS", "check_weights_bytes", "load_estimator",
           "param_from_json", "param_to_json", "saved_as_folder", "save_estimator",
           "scales_from_attributes"]

#: the name of the net class each ``architecture`` builds (from the registry of the nets)
ARCHITECTURE_NETS = {name: cls.__name__ for name, cls in ARCHITECTURES.items()}
#: the estimator classes a folder may name, by class name (filled by :func:`saved_as_folder`)
ESTIMATORS: dict[str, type] = {}
_SAVED = ("tasks_", "n_tasks_", "input_form_", "n_features_in_", "feature_names_in_",
          "n_iter_", "best_epoch_", "history_", "x_mean_", "x_scale_", "categories_",
          "input_kind_", "input_size_", "tokenizer_", "modalities_",
          "modality_importance_")
_REQUIRED = ("tasks_", "n_tasks_", "input_form_", "n_features_in_", "n_iter_", "best_epoch_",
             "history_")
_DIMS = ("n_tasks_", "n_features_in_", "input_form_", "n_iter_")


def saved_as_folder(cls: type) -> type:
    """Class decorator: ``cls`` is a deep estimator that :func:`load_estimator` reads back."""
    ESTIMATORS[cls.__name__] = cls
    return cls


def save_estimator(est: Any, path: str | os.PathLike) -> None:
    """Write the fitted deep estimator ``est`` to the folder ``path`` (its ``save``)."""
    check_is_fitted(est)
    params = {k: param_to_json(k, v) for k, v in est.get_params(deep=False).items()}
    estimator = {"class": type(est).__name__, "params": params,
                 "attributes": est._attributes_to_json()}
    save_checkpoint(path, est.net_, {"estimator": estimator})


def _weighting_name(w: Weighting) -> str:
    for name, cls in WEIGHTINGS.items():
        if cls is type(w):
            return name
    raise TypeError(f"a weighting of class {type(w).__name__} cannot be saved; use one of "
                    f"{sorted(WEIGHTINGS)}.")


#: containers nested deeper than this in a saved parameter are refused
MAX_PARAM_DEPTH = 8
#: the tags of a saved parameter's values (a one-key object ``{tag: ...}``), see
#: :func:`param_to_json`
PARAM_TAGS = ("tuple", "list", "dict", "array", "tensor", "task_spec", "random_state")
_MT_KEYS = 624  # the words of a RandomState's Mersenne Twister
_MAX_TASK_OUTPUTS = 2**20  # the outputs a saved TaskSpec may declare


def _to_json(v: Any, depth: int = 0) -> Any:
    """A parameter's value as tagged JSON (see :func:`param_to_json`)."""
    if depth > MAX_PARAM_DEPTH:
        raise TypeError(f"containers nested more than {MAX_PARAM_DEPTH} deep cannot be saved")
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, tuple):
        return {"tuple": [_to_json(x, depth + 1) for x in v]}
    if isinstance(v, list):
        return {"list": [_to_json(x, depth + 1) for x in v]}
    if isinstance(v, dict):
        return {"dict": [[_to_json(k, depth + 1), _to_json(x, depth + 1)]
                         for k, x in v.items()]}
    if isinstance(v, np.ndarray):
        return {"array": array_to_json(v)}
    if isinstance(v, torch.Tensor):
        return {"tensor": array_to_json(v.detach().cpu().numpy())}
    if isinstance(v, TaskSpec):
        return {"task_spec": v.to_config()}
    if isinstance(v, np.random.RandomState):
        kind, keys, pos, has_gauss, cached = v.get_state(legacy=True)
        return {"random_state": {"keys": [int(k) for k in keys], "pos": int(pos),
                                 "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if isinstance(v, Weighting):
        cls = WEIGHTINGS[_weighting_name(v)]
        args = [a for a in inspect.signature(cls.__init__).parameters if a != "self"]
        return {"weighting": _weighting_name(v),
                "options": {a: _to_json(getattr(v, a), depth + 1) for a in args}}
    raise TypeError(f"a value of type {type(v).__name__} cannot be saved")


def param_to_json(name: str, v: Any) -> Any:
    """A constructor parameter as JSON, read back by :func:`param_from_json` as it was given.

    Numbers, strings, booleans and None are themselves; every other value is a one-key object
    naming its type: ``{"tuple": [...]}``, ``{"list": [...]}``, ``{"dict": [[key, value],
    ...]}`` (keys of any saved type, int or str task labels, in their order), ``{"array":
    ...}`` and ``{"tensor": ...}`` (dtype, shape, values), ``{"task_spec": ...}``
    (:meth:`TaskSpec.to_config`), ``{"random_state": ...}`` (a ``RandomState``'s state), and a
    weighting by name and options, ``{"weighting": ..., "options": {...}}``. No pickle: a
    value of another type (a weighting of your own class, a callable) is a ``TypeError``
    naming the parameter.
    """
    try:
        return _to_json(v)
    except (TypeError, ValueError, AttributeError) as exc:
        raise TypeError(f"parameter {name}={v!r:.200} cannot be saved "
                        f"({str(exc).rstrip('.')}); set a plain value "
                        f"(est.set_params({name}=...)) and save again.") from None


def param_from_json(name: str, v: Any) -> Any:
    """The parameter :func:`param_to_json` wrote (and those of earlier releases: dicts of
    options as plain JSON, lists of labels), checked; ``ValueError`` naming it otherwise."""
    where = f"parameter {name!r}"
    try:
        if isinstance(v, dict) and set(v) == {"options"} and isinstance(v["options"], dict):
            return _options(name, v["options"])  # (the trunk's options, as saved before)
        return _from_json(v, where, 0, False)
    except Malformed as exc:
        raise ValueError(str(exc)) from None


def _from_json(v: Any, where: str, depth: int, plain: bool) -> Any:
    """One value of a saved parameter, checked as it is rebuilt; ``plain``: inside a
    weighting's options, where earlier releases wrote lists and dicts as plain JSON."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if depth > MAX_PARAM_DEPTH:
        raise Malformed(f"{where} nests containers more than {MAX_PARAM_DEPTH} deep")
    if isinstance(v, list) and plain:  # a weighting option saved by an earlier release
        return [_from_json(x, where, depth + 1, plain) for x in v]
    if not isinstance(v, dict):
        raise Malformed(f"{where} holds a value of type {type(v).__name__}")
    if set(v) == {"weighting", "options"}:
        return _weighting(v, where, depth)
    tag = next(iter(v)) if len(v) == 1 else None
    body = v[tag] if tag is not None else None
    if tag in ("tuple", "list") and isinstance(body, list):
        items = [_from_json(x, where, depth + 1, plain) for x in body]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict" and isinstance(body, list):
        out: dict = {}
        for pair in body:
            if not isinstance(pair, list) or len(pair) != 2:
                raise Malformed(f"{where} holds a dict entry that is not a [key, value] pair")
            key = _from_json(pair[0], where, depth + 1, plain)
            if not _hashable(key) or key in out:
                raise Malformed(f"{where} holds a dict key that is not a label "
                                "(a number, string, None or tuple of them) or is given twice")
            out[key] = _from_json(pair[1], where, depth + 1, plain)
        return out
    if tag in ("array", "tensor"):
        arr = array_from_json(body, where)
        if tag == "array":
            return arr
        if arr.dtype.kind not in "biuf":
            raise Malformed(f"{where} holds a tensor that is not numeric")
        return torch.from_numpy(arr)
    if tag == "task_spec":
        return checked_task_specs([body], _MAX_TASK_OUTPUTS)[0]
    if tag == "random_state":
        return _random_state(body, where)
    if plain and not any(t in v for t in PARAM_TAGS):  # (an earlier release's dict option)
        return {k: _from_json(x, where, depth + 1, plain) for k, x in v.items()}
    raise Malformed(f"{where} holds a value that is not a number, string, None or one of "
                    f"the saved types ({', '.join(PARAM_TAGS)}, a weighting)")


def _hashable(key: Any) -> bool:
    if key is None or isinstance(key, (bool, int, float, str)):
        return not (isinstance(key, float) and key != key)  # (NaN matches no key)
    return isinstance(key, tuple) and all(_hashable(k) for k in key)


def _weighting(v: dict, where: str, depth: int) -> Weighting:
    cls = WEIGHTINGS.get(v["weighting"]) if isinstance(v["weighting"], str) else None
    args = set() if cls is None else set(inspect.signature(cls.__init__).parameters)
    if (cls is None or not isinstance(v["options"], dict)
            or not set(v["options"]) <= args - {"self"}):
        raise Malformed(f"{where} is not a known weighting with its options")
    return cls(**{k: _from_json(x, where, depth + 1, True) for k, x in v["options"].items()})


def _random_state(body: Any, where: str) -> np.random.RandomState:
    """A ``RandomState`` from its saved state (624 words, a position, a cached draw)."""
    ok = (isinstance(body, dict)
          and set(body) == {"keys", "pos", "has_gauss", "cached_gaussian"}
          and isinstance(body["keys"], list) and len(body["keys"]) == _MT_KEYS
          and all(type(k) is int and 0 <= k < 2**32 for k in body["keys"])
          and type(body["pos"]) is int and 0 <= body["pos"] <= _MT_KEYS
          and body["has_gauss"] in (0, 1) and type(body["has_gauss"]) is int
          and isinstance(body["cached_gaussian"], (int, float))
          and not isinstance(body["cached_gaussian"], bool))
    if not ok:
        raise Malformed(f"{where} is not the state of a RandomState")
    rs = np.random.RandomState()
    rs.set_state(("MT19937", np.array(body["keys"], dtype=np.uint32), body["pos"],
                  body["has_gauss"], float(body["cached_gaussian"])))
    return rs


def _options(name: str, value: Any, depth: int = 0) -> Any:
    """Trunk or tokenizer options saved by an earlier release: str keys, numbers, strings,
    lists of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list) and depth < 2:
        return [_options(name, x, depth + 1) for x in value]
    if isinstance(value, dict) and depth == 0 and all(isinstance(k, str) for k in value):
        return {k: _options(name, x, depth + 1) for k, x in value.items()}
    raise ValueError(f"parameter {name!r} holds options that are not numbers, strings or "
                     "lists of them")


def _estimator(spec: Any) -> tuple[Any, dict]:
    """The estimator (parameters checked) and its attributes (checked) from the config."""
    if not isinstance(spec, dict) or set(spec) != {"class", "params", "attributes"}:
        raise ValueError("its 'estimator' entry is not a saved estimator")
    cls = ESTIMATORS.get(spec["class"]) if isinstance(spec["class"], str) else None
    params, attrs = spec["params"], spec["attributes"]
    if cls is None or not isinstance(params, dict) or not isinstance(attrs, dict):
        raise ValueError(f"class {spec['class']!r:.80} is not a deep estimator")
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise ValueError(f"parameter {unknown[0]!r:.80} is not a parameter of {cls.__name__}")
    est = cls(**{k: param_from_json(k, v) for k, v in params.items()})
    est._validate_params()
    allowed = set(_SAVED) | set(cls._saved)
    for name in attrs:
        if name not in allowed:
            raise ValueError(f"attribute {name!r:.80} is not one that {cls.__name__} saves "
                             f"(those are {', '.join(sorted(allowed))})")
    for name in (*_REQUIRED, *cls._saved):
        if name not in attrs:
            raise ValueError(f"attribute {name!r} is missing")
    dims: dict = {}
    for name in (*_DIMS, *attrs):
        if name in attrs and name not in dims:
            dims[name] = est._attribute_from_json(name, attrs[name], dims)
    if dims["input_form_"] == "single" and dims["n_tasks_"] != 1:
        raise ValueError(f"input_form_ is 'single' but n_tasks_ is {dims['n_tasks_']}")
    for name in ("tasks_", "feature_names_in_", "classes_"):  # distinct, finite labels
        value = dims.get(name)
        single = name == "classes_" and dims["input_form_"] == "single"
        for i, labels in enumerate([value] if single or name != "classes_" else value or []):
            if labels is not None:
                check_labels(name if single or name != "classes_" else f"{name}[{i}]",
                             labels)
    return est, dims


def _check_net_matches(est: Any, attrs: dict, config: dict) -> None:
    """The saved net is the one the estimator's fit builds: class, inputs, task heads."""
    net, kw = config.get("net"), config.get("net_config")
    # an estimator of one net (ESMM) names it; the others build their ``architecture``'s
    want = getattr(type(est), "_net_name", None) or ARCHITECTURE_NETS[est.architecture]
    if net != want or not isinstance(kw, dict):
        builds = (type(est).__name__ if getattr(type(est), "_net_name", None)
                  else f"architecture={est.architecture!r}")
        raise ValueError(f"the net is {net!r:.80}, but {builds} builds a {want}")
    cats = attrs.get("categories_")
    kind = attrs.get("input_kind_")
    if "modalities_" in attrs:
        if kind is not None or cats is not None or "x_mean_" in attrs:
            raise ValueError("a model of Modalities has no input_kind_, categories_ nor x_mean_")
        probe = type(est)(**est.get_params())
        probe.modalities_ = attrs["modalities_"]
        want_encoder = json.loads(json.dumps(module_config(probe._encoder(), "encoder")))
        if kw.get("n_features") is not None or kw.get("encoder") != want_encoder:
            raise ValueError("the net's encoder is not the fused trunk of the saved "
                             "modalities_ (names, kinds, sizes, fusion)")
        kind = cats = None
    if ("input_kind_" in attrs) != ("input_size_" in attrs) or (
            ("tokenizer_" in attrs) != (kind == "text")):
        raise ValueError("input_kind_ and input_size_ come together, with tokenizer_ for "
                         "texts only")
    if kind is not None:
        if cats is not None or "x_mean_" in attrs:
            raise ValueError(f"a model of {kind} input has no categories_ nor x_mean_")
        if kind == "text" and attrs["tokenizer_"].n_ids != attrs["input_size_"][0]:
            raise ValueError("tokenizer_'s vocabulary does not fit input_size_")
        if len(attrs["input_size_"]) != (3 if kind == "images" else 1):
            raise ValueError(f"input_size_ does not describe {kind} input")
        probe = type(est)(**est.get_params())
        probe.input_kind_, probe.input_size_ = kind, attrs["input_size_"]
        want_encoder = json.loads(json.dumps(module_config(probe._encoder(), "encoder")))
        if kw.get("n_features") is not None or kw.get("encoder") != want_encoder:
            raise ValueError(f"the net's encoder is not the trunk of the saved {kind} input "
                             "(input_size_, trunk)")
    elif cats is not None:
        names = list(attrs.get("feature_names_in_", []))
        absent = [c for c in cats if c not in names]
        if absent or len(cats) > attrs["n_features_in_"]:
            raise ValueError(f"categories_ names column {(absent or list(cats))[0]!r:.40}, "
                             "which is not among feature_names_in_")
        probe = type(est)()
        probe.categories_, probe.n_features_in_ = cats, attrs["n_features_in_"]
        want_encoder = json.loads(json.dumps(module_config(probe._encoder(), "encoder")))
        if kw.get("n_features") is not None or kw.get("encoder") != want_encoder:
            raise ValueError("the net's encoder does not embed the saved categories_ "
                             "(vocabulary sizes, numeric width)")
    elif "modalities_" not in attrs and kw.get("n_features") != attrs["n_features_in_"]:
        raise ValueError(f"the net reads {kw.get('n_features')!r:.40} features, but "
                         f"n_features_in_ is {attrs['n_features_in_']}")
    heads = est._head_kinds(attrs)
    tasks = kw.get("tasks")
    got = ([(t.get("name"), t.get("kind", "regression"), t.get("n_outputs", 1))
            for t in tasks if isinstance(t, dict)] if isinstance(tasks, list) else None)
    if got != [(f"t{k}", kind, n) for k, (kind, n) in enumerate(heads)]:
        raise ValueError("the net's task heads do not fit the saved tasks and classes "
                         f"({len(heads)} tasks)")


def load_estimator(path: str | os.PathLike, *, max_bytes: int | None = None) -> Any:
    """A deep estimator saved with ``save`` in the folder ``path`` (:func:`regmtl.load`).

    The config is checked in full (class, parameters, only the attributes the class saves,
    their types and shapes, the net they need) before the weights are read with
    ``torch.load(weights_only=True)`` and compared with the net (see
    :func:`~regmtl.deep.load_checkpoint`); every refusal is a ``ValueError`` naming the file.
    The weights are stored uncompressed and mapped as they are, so ``max_bytes`` bounds the
    size of the weights file.
    """
    path = Path(path)
    config = read_config(path)
    check_weights_bytes(path, max_bytes)
    if "estimator" not in config:
        raise ValueError(f"{path} holds a net checkpoint, not a saved estimator; read the net "
                         "with regmtl.deep.load_checkpoint.")
    try:
        est, attrs = _estimator(config["estimator"])
        _check_net_matches(est, attrs, config)
    except (ValueError, TypeError, Malformed, Refused) as exc:
        raise ValueError(f"{path / CONFIG} was refused: {str(exc).rstrip('.')}.") from None
    if ("x_mean_" in attrs) != ("x_scale_" in attrs):
        raise ValueError(f"{path / CONFIG} was refused: x_mean_ and x_scale_ come together.")
    net = load_net(path, config, None)
    for name, value in attrs.items():
        setattr(est, name, value)
    est._restored(net)  # what the class derives from its attributes and net
    est.net_ = net.to(_device_of(est)).eval()
    return est


def _device_of(est: Any) -> torch.device:
    """The device a loaded estimator predicts on: its ``device`` parameter, as at fit (so a
    model saved and loaded on one machine predicts bit for bit as it did), the CPU where that
    device is not on this machine (a model saved on a GPU loads anywhere)."""
    try:
        dev = resolve_device(getattr(est, "device", "cpu"))
    except ValueError:
        return torch.device("cpu")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        return torch.device("cpu")
    return dev


def check_weights_bytes(path: Path, max_bytes: int | None) -> None:
    """Refuse the weights file of the folder ``path`` when it holds more than ``max_bytes``
    (the weights are stored uncompressed and mapped as they are)."""
    size = (path / WEIGHTS).stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f"{path / WEIGHTS} was refused: it holds {size} bytes of weights, "
                         f"more than max_bytes={max_bytes} (raise max_bytes if you trust "
                         "the file).")


def scales_from_attributes(net: MultiTaskNet, est: Any) -> None:
    """A regressor saved before nets held their target maps: its net predicts standardized
    values, ``y_mean_`` and ``y_scale_`` map them back; they become the net's maps."""
    maps = net.target_scales  # (a count task has none: its target is not standardized)
    pairs = [(maps[t.name], mu, sd) for t, mu, sd in zip(net.tasks, est.y_mean_, est.y_scale_,
                                                          strict=True) if t.name in maps]
    if all(s.is_identity() for s, _, _ in pairs):
        for s, mu, sd in pairs:
            s.set(torch.tensor([float(mu)]), torch.tensor([float(sd)]))
