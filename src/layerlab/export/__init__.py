"""Take a trained run away: a standalone PyTorch file, its weights, ONNX, or the spec as YAML.

``export_files`` makes the files of one format in memory (nothing is written until all of them
exist); ``write_export`` writes them for ``layerlab export``, and the API route
(``server/api_export.py``) sends one of them as a download. torch is imported only when a
format needs the model, so importing this package stays cheap.

====================  ==========================================================================
format                files
====================  ==========================================================================
``pytorch``           ``NAME.py``, a plain ``nn.Module`` with a loader and a ``__main__`` that
                      prints the test accuracy, and ``NAME.safetensors``, its weights, beside it
``weights``           ``NAME.safetensors``: the state_dict (keys as in the PyTorch file)
``onnx``              ``NAME.onnx``, from torch's exporter (needs ``layerlab[onnx]``)
``spec``              ``NAME.yaml``: the run's spec, to train again with ``layerlab train``
====================  ==========================================================================
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import LayerlabError
from ..textfmt import file_stem

__all__ = ["FORMATS", "ExportFormat", "export_files", "write_export", "check_format"]


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    media_type: str
    doc: str


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("pytorch", ".py", "text/x-python; charset=utf-8",
                 "one standalone PyTorch file (torch + safetensors only); its weights are the `weights` export"),
    ExportFormat("weights", ".safetensors", "application/octet-stream",
                 "the trained weights (safetensors), keys as in the PyTorch file's state_dict"),
    ExportFormat("onnx", ".onnx", "application/onnx", "the model as ONNX (torch's exporter; needs the optional onnx extra)"),
    ExportFormat("spec", ".yaml", "application/yaml; charset=utf-8", "the run's spec as YAML, to train it again"),
)}


def check_format(fmt: str) -> ExportFormat:
    """The format named ``fmt``, or a ``LayerlabError`` (400, exit 2) listing the formats."""
    if fmt not in FORMATS:
        raise LayerlabError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def export_files(store, run_id: int, fmt: str, *, stem: str | None = None,
                 load_data: Callable | None = None) -> dict[str, bytes]:
    """``{file name: bytes}`` of run ``run_id`` exported as ``fmt`` (``stem``: the files' name without suffix).

    ``load_data(spec)``: the run's resident data (default ``spec.data.load()``; the server passes
    its data cache), which the PyTorch file's normalisation constants are read from.
    """
    check_format(fmt)
    if fmt == "spec":
        from .spec import spec_text
        run = store.get_run(run_id)
        stem = stem or _stem(run)
        return {f"{stem}.yaml": spec_text(run["spec"]).encode("utf-8")}
    from .weights import stored_model
    stored = stored_model(store, run_id)
    stem = stem or _stem(stored.run)
    if fmt == "onnx":
        from .onnx import onnx_bytes
        return {f"{stem}.onnx": onnx_bytes(stored.model, tuple(stored.check.input_shape))}
    from ..train.checkpoint import weights_bytes
    meta = {"run_id": run_id, "status": stored.run["status"], **stored.source, "spec": stored.run["spec"]}
    weights = {f"{stem}.safetensors": weights_bytes(stored.model, meta)}
    if fmt == "weights":
        return weights
    from .pytorch import pytorch_source
    data = load_data(stored.spec) if load_data is not None else None
    source = pytorch_source(stored, weights_name=f"{stem}.safetensors", data=data)
    return {f"{stem}.py": source.encode("utf-8"), **weights}


def _stem(run: dict) -> str:
    name = str(run.get("name") or "model")
    return f"run-{run['id']}-{file_stem(name, limit=60, default='model', strip='.-')}"


def write_export(store, run_id: int, fmt: str, out: str | os.PathLike | None = None) -> list[Path]:
    """Write run ``run_id``'s ``fmt`` export to ``out`` (default: ``run-ID-NAME.SUFFIX`` here); return the paths.

    The pytorch format writes its weights beside ``out`` (``model.py`` -> ``model.safetensors``).
    Every file is made first, then each is written to a temporary file and renamed into place.
    """
    spec = check_format(fmt)
    target = Path(out) if out is not None else None
    if target is not None:
        if target.is_dir():
            raise LayerlabError(f"{target} is a folder: give the file to write, e.g. {target / ('model' + spec.suffix)}")
        if not target.parent.is_dir():
            raise LayerlabError(f"cannot write {target}: the folder {target.parent} does not exist")
    files = export_files(store, run_id, fmt, stem=target.stem if target is not None else None)
    directory = target.parent if target is not None else Path.cwd()
    written: list[tuple[str, Path]] = []  # (temporary file, its place): all are written before any is moved
    try:
        for name, data in files.items():
            path = target if target is not None and name.endswith(spec.suffix) else directory / name
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
            written.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        for tmp, path in written:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in written:
            Path(tmp).unlink(missing_ok=True)
        raise
    return [path for _, path in written]
