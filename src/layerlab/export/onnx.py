"""A run's model as ONNX, written by torch's own exporter (``torch.onnx.export``, the dynamo path).

torch 2.13 exports through ``torch.export`` by default (``dynamo=True``), which needs the
``onnxscript`` package (and ``onnx``); both come with the optional extra ``layerlab[onnx]``,
with ``onnxruntime`` to run the file. The graph takes ``input`` (B, *input shape), already
normalised as in training, and returns ``output`` (B, *output shape); the batch is dynamic.
Weights are stored inside the one file (no external-data file beside it).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
import warnings

from ..errors import ExportUnavailable

__all__ = ["onnx_bytes", "onnx_available", "ONNX_PACKAGES", "OPSET"]

ONNX_PACKAGES = ("onnx", "onnxscript")
OPSET = 18  # the dynamo exporter's default opset in torch 2.13; written down so files do not change with it


def onnx_available() -> str | None:
    """None when the exporter's packages import; else the message saying what to install."""
    import importlib
    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if not missing:
        return None
    return (f"ONNX export needs the package(s) {', '.join(missing)}, which are not installed: "
            "pip install 'layerlab[onnx]' (or run scripts/setup.sh)")


_EXPORTING = threading.Lock()


@contextlib.contextmanager
def _quiet():
    """The exporter reports its steps on stdout and logs warnings (torchvision ops it skips): library code prints nothing."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def onnx_bytes(model, input_shape: tuple[int, ...]) -> bytes:
    """``model`` (eval mode) as the bytes of one ONNX file; ``ExportUnavailable`` without the packages."""
    problem = onnx_available()
    if problem:
        raise ExportUnavailable(problem)
    import torch
    example = torch.zeros((2, *input_shape), dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1, max=2**20)
    with tempfile.TemporaryDirectory(prefix="layerlab-onnx-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        with _EXPORTING, _quiet():  # _quiet swaps process-wide stdout and filters: one export at a time
            torch.onnx.export(model, (example,), path, dynamo=True, input_names=["input"], output_names=["output"],
                              dynamic_shapes=({0: batch},), opset_version=OPSET, external_data=False,
                              verbose=False)
        with open(path, "rb") as f:
            return f.read()
