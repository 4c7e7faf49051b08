"""``regmtl export``: a saved model as an ONNX graph for serving without regmtl, verified by
ONNX Runtime against the model before it is written (:func:`~regmtl.serving.export_onnx`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .shared import UsageError


def export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model file written by 'regmtl fit' (or model.save), or "
                                 "the folder of a saved deep estimator")
    p.add_argument("--format", choices=["onnx"], default="onnx",
                   help="the graph's format (ONNX, run by ONNX Runtime)")
    p.add_argument("--out", "--output", dest="out", default=None,
                   help="the graph to write (default: the model's path with .onnx)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="the float type of the inputs, weights and outputs (linear models "
                        "verified to 1e-6 relative in float64, 1e-4 in float32; deep models "
                        "to 1e-4, their nets computing in float32)")
    p.add_argument("--offset", action="store_true",
                   help="an input 'offset' added to each row's linear predictor (Poisson, "
                        "Gamma)")
    p.add_argument("--all-tasks", action="store_true",
                   help="a model of a shared design: every task's output for every row (n x "
                        "T) instead of rows with their task ids")
    p.add_argument("--named-columns", action="store_true",
                   help="one input per feature column, named as in the fit (default: one "
                        "input X with the columns in the fit's order)")
    p.add_argument("--target-opset", type=int, default=None, metavar="N",
                   help="the default domain's ONNX opset of the graph, for an older or newer "
                        "runtime (default 17; linear models 11 and later, deep models 12 to "
                        "20)")
    p.add_argument("--ml-opset", type=int, default=None, metavar="M",
                   help="the ai.onnx.ml opset of the task encoder (default 4; 3 or 2 for "
                        "ONNX Runtime 1.16 and older)")
    p.add_argument("--max-bytes", type=int, default=None,
                   help="the most bytes the model's arrays may take once loaded "
                        "(regmtl.load)")


def run_export(args: argparse.Namespace) -> int:
    from ..persistence import load
    from ..serving import export_onnx, read_card

    source = Path(args.model)
    opsets = _opsets(args)
    if not source.is_file() and not source.is_dir():
        raise UsageError(f"{args.model}: no such model file or folder.")
    model = load(source, max_bytes=args.max_bytes)
    out = Path(args.out) if args.out else source.with_suffix(".onnx")
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise UsageError(f"--out {out} is the model itself (or inside its folder); give "
                         "another path.")
    graph = export_onnx(model, out, dtype=args.dtype, offset=args.offset,
                        task_input=False if args.all_tasks else None,
                        named_columns=args.named_columns, target_opset=opsets)
    card = read_card({p.key: p.value for p in graph.metadata_props})
    inputs = ", ".join(f"{i['name']} {i['type']} {i['shape']}" for i in card["inputs"])
    outputs = ", ".join(f"{o['name']} {o['type']} {o['shape']}" for o in card["outputs"])
    modal = card.get("modalities")
    width = f"{card['training']['n_features']} features" if modal is None else \
        f"modalities {', '.join(modal['names'])}"
    print(f"wrote {out}: {card['n_tasks']} task(s), {width} ({card['form']}), verified by ONNX "
          f"Runtime to {card['verified_tolerance']:g}")
    print(f"inputs: {inputs}")
    print(f"outputs: {outputs}")
    return 0


def _opsets(args: argparse.Namespace) -> dict[str, int] | None:
    """``--target-opset`` and ``--ml-opset`` as ``export_onnx``'s ``target_opset`` (None:
    the defaults), each checked and refused by its flag's name."""
    from ..serving.graph import ML_DOMAIN, target_opsets

    given: dict[str, int] = {}
    for flag, domain, value in (("--target-opset", "", args.target_opset),
                                ("--ml-opset", ML_DOMAIN, args.ml_opset)):
        if value is None:
            continue
        try:
            target_opsets({domain: value})
        except ValueError as exc:
            text = str(exc)
            raise UsageError(flag + " " + text[text.index("=") + 1:]) from None
        given[domain] = value
    return given or None
