"""``GET /api/runs/{id}/export?format=...``: a trained run as a file to download.

The files are the CLI's (``layerlab export``, ``export/__init__.py``), made in the thread pool,
never in the event loop. ``pytorch`` answers the standalone ``.py`` file, which loads its weights
from ``NAME.safetensors`` beside it: the ``weights`` format's file, under that very name. Exports
are kept for the last few (run, format, stored artifacts) triples, so a second download of the
same weights costs nothing (an ONNX export takes seconds).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..export import FORMATS, check_format, export_files
from .api_runs import RunId
from .openapi import error_responses
from .predict import refuse_large_model

__all__ = ["router", "CACHE_SIZE"]

router = APIRouter(prefix="/api/runs", responses=error_responses(503))

CACHE_SIZE = 8  # exports kept in memory, keyed by store, run, format and the run's artifacts
_CACHE: OrderedDict[tuple, tuple[str, bytes]] = OrderedDict()
_LOCK = threading.Lock()

_BINARY = {"type": "string", "format": "binary"}
_BODY_SCHEMA = {"spec": {"type": "object"}}  # YAML is data: a client that reads it gets a mapping
_FORMATS_DOC = "; ".join(f"`{f.name}`: {f.doc}" for f in FORMATS.values())


def _export(store, cache, run_id: int, fmt: str) -> tuple[str, bytes]:
    """``(file name, bytes)`` of the run's export, from the cache when its artifacts have not changed."""
    run = store.get_run(run_id)  # 404 before anything else
    artifacts = tuple((a["name"], a["created_at"], a["size"]) for a in store.list_artifacts(run_id))
    key = (store.url, run_id, fmt, run["status"], run.get("name"), artifacts)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    if fmt != "spec":  # the other formats build the model in the server's memory
        from ..shapes import check
        from ..spec import load_spec
        refuse_large_model(check(load_spec(run["spec"])).total_params, f"run {run_id}'s model",
                           purpose="to export", advice="; export it with `layerlab export` instead")
    files = export_files(store, run_id, fmt, load_data=cache.for_spec)
    name = next(n for n in files if n.endswith(FORMATS[fmt].suffix))
    with _LOCK:
        _CACHE[key] = (name, files[name])
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return name, files[name]


@router.get("/{run_id}/export", summary="A trained run as a file: standalone PyTorch, weights, ONNX or spec YAML",
            description="The same files as `layerlab export RUN --format FORMAT`. " + _FORMATS_DOC + ". The PyTorch "
                        "file reads its weights from the `weights` download beside it, under the name it is "
                        "given (`run-ID-NAME.safetensors`). Weights are the run's final weights, or the latest "
                        "checkpoint of a run still queued or running.",
            response_model=None,
            responses={200: {"description": "The file to download (`Content-Disposition: attachment`)",
                             "content": {f.media_type.split(";")[0]: {"schema": _BODY_SCHEMA.get(f.name, _BINARY)}
                                         for f in FORMATS.values()},
                             "headers": {"Content-Disposition": {"schema": {"type": "string"}, "required": True,
                                                                 "description": "attachment; filename=..."}}},
                       **error_responses(
                           400, 404, 409, 413, 501,
                           s413="Payload too large: the model has more parameters than the server builds in its "
                                "memory (the message says how many; `layerlab export` has no such limit)",
                           s400="Bad request: an unknown format (the message lists them), or the run is a study's "
                                "record, not a trained model",
                           s404="Not found: no run with this id",
                           s409="Conflict: the run has no weights stored yet (queued, or failed before its first "
                                "checkpoint); `spec` exports any run",
                           s501="Not implemented here: the format needs optional packages this server lacks "
                                "(ONNX: `pip install 'layerlab[onnx]'`); the message says which")})
async def export(request: Request, run_id: int = RunId,
                 format: str = Query("pytorch", max_length=40, description="what to export: "
                                     + ", ".join(FORMATS), json_schema_extra={"enum": list(FORMATS)})) -> Response:
    spec = check_format(format)  # 400 naming the formats
    state = request.app.state
    name, data = await run_in_threadpool(_export, state.store, state.data, run_id, format)
    return Response(data, media_type=spec.media_type.split(";")[0],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
