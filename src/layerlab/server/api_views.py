"""Routes for the views the trainer stores at evaluation points: decision boundaries and histograms.

Both only read the store (``views_read.py``: the same reads as ``layerlab predict --boundary`` and the
report), in the thread pool. Grids travel as base64 uint8 levels with their min and max, as stored.
"""
from __future__ import annotations

import base64

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from ..views_read import read_boundary, read_histograms, read_points
from .api_runs import RunId
from .openapi import error_responses
from .schemas import BoundaryOut, HistogramsOut

__all__ = ["router", "boundary_json"]

router = APIRouter(prefix="/api/runs", responses=error_responses(503))

_b64 = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731


def boundary_json(store, run_id: int, step: int | None, cache=None, points: bool = False) -> dict:
    """The API's answer for a boundary (``BoundaryOut``)."""
    got = read_boundary(store, run_id, step, decode=False)
    meta, levels = got["meta"], got["levels"]
    size, n = meta["size"], meta["neuron_size"]
    neurons = [{**layer, "maps": [{"min": m["min"], "max": m["max"], "data": _b64(q)} for q, m in zip(maps, layer["maps"])]}
               for maps, layer in zip(levels["neurons"], meta["neurons"])]
    out = {"run_id": run_id, "step": got["step"], "examples": got["examples"], "steps": got["steps"],
           "task": meta["task"], "value": meta["value"], "size": size, "extent": meta["extent"],
           "grid": {"min": meta["min"], "max": meta["max"], "data": _b64(levels["grid"])},
           "neuron_size": n, "neurons": neurons, "points": None}
    if points and cache is not None:
        run = store.get_run(run_id)
        out["points"] = read_points(cache.for_spec_data((run["spec"] or {}).get("data")))
    return out


@router.get("/{run_id}/boundary",
            summary="The decision boundary over the input plane, and per-neuron maps, at an evaluation point",
            description="For a run on a data set with 2-D inputs (circle, xor, gauss, spiral, plane, multi-gauss): "
                        "the model's value (p(positive class), or the regression output) over a 64×64 grid of "
                        "the plane, and each unit's activation of the first two hidden layers (up to 16 each) "
                        "over a 24×24 grid, as stored at step `step` (default: the latest). `points=true` adds "
                        "the first 1000 training and test points.",
            response_model=None, responses={200: {"model": BoundaryOut}, **error_responses(
                400, 404, 409,
                s400="Bad request: the run's data set has no 2-D inputs (the message says what it has), or the "
                     "run is a study's record",
                s404="Not found: no run with this id, or no boundary at `step` (the message gives the stored range)",
                s409="Conflict: the run has stored no boundary yet (queued; the first is stored at step 0), or "
                     "its data set is not on this machine (with points=true)")})
async def boundary(request: Request, run_id: int = RunId,
                   step: int | None = Query(None, ge=0, le=2**62, description="the evaluation point's step"),
                   points: bool = Query(False, description="add the training and test points")) -> dict:
    state = request.app.state
    return await run_in_threadpool(boundary_json, state.store, run_id, step, state.data, points)


@router.get("/{run_id}/histograms",
            summary="Per-layer histograms of the weights and their gradients at each stored evaluation point",
            description="30 equal bins over each tensor's finite range at that point, with the edges; "
                        "`diagnoses` lists the run's dead-ReLU and divergence diagnoses with the layer "
                        "whose histograms they concern.",
            response_model=None, responses={200: {"model": HistogramsOut}, **error_responses(
                400, 404, s400="Bad request: the run is a study's record, not a trained model",
                s404="Not found: no run with this id, or no histograms of `layer` (the message lists the layers)")})
async def histograms(request: Request, run_id: int = RunId,
                     layer: int | None = Query(None, ge=0, le=10_000, description="only this layer (spec index)")) -> dict:
    return await run_in_threadpool(read_histograms, request.app.state.store, run_id, layer=layer)
