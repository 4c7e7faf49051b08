"""Serving without regmtl: fitted models exported to ONNX and checked by ONNX Runtime.

- :func:`export_onnx`: a linear model (every loss, every input form) or a deep one (every
  architecture, head kind and input kind of ``regmtl.deep``) as a graph with its task routing,
  links and label tables, verified against ``predict`` / ``predict_proba`` before it is
  written (:mod:`~regmtl.serving.export`; the graphs: :mod:`~regmtl.serving.linear`,
  :mod:`~regmtl.serving.deep`);
- :func:`check_onnx`: the same check later, on any rows;
- :func:`read_card`: the model card in a graph's metadata (:mod:`~regmtl.serving.card`).

Needs the ``export`` extra (``onnx``, ``onnxruntime``).
"""

from .card import read_card
from .export import TOLERANCE, ExportMismatch, NotExportable, check_onnx, export_onnx

__all__ = ["ExportMismatch", "NotExportable", "TOLERANCE", "check_onnx", "export_onnx",
           "read_card"]
