"""The route that looks inside a run's network: every layer's output for one test example, and its filters.

The work (one forward pass with hooks, ``activations.py``) runs in the thread pool, never in the
event loop; it reads the run's weights from the store and the example from the data cache.
"""
from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from .activations import MAX_CHANNELS, MAX_UNITS, example_activations
from .api_runs import RunId
from .openapi import error_responses
from .schemas import ActivationsOut

__all__ = ["router"]

router = APIRouter(prefix="/api/runs", responses=error_responses(503))


@router.get("/{run_id}/activations",
            summary="Every layer's output for one test example (feature maps, vectors) and the conv filters",
            description=f"One forward pass of the run's stored weights (the final weights of a run that ended, "
                        f"the latest checkpoint of a running one) on test example `index`. Feature maps are "
                        f"base64 8-bit PNGs scaled from the layer's min to its max, the first {MAX_CHANNELS} "
                        f"channels; a flat output sends its first {MAX_UNITS} values; conv filters are PNGs "
                        f"(the first {MAX_CHANNELS}) with a zero weight mid-grey.",
            response_model=None, responses={200: {"model": ActivationsOut}, **error_responses(
                400, 404, 409, 413,
                s400="Bad request: the run's model is not on images (or is a study's record), or there is no "
                     "test example `index` (the message gives the valid range)",
                s404="Not found: no run with this id (or its data set is not in the catalogue)",
                s409="Conflict: the run has no weights stored yet (queued), or its data set is not on this "
                     "machine (`DataUnavailable`)",
                s413="Too large: the model or its data set is larger than this server builds or keeps loaded")})
async def activations(request: Request, run_id: int = RunId,
                      index: int = Query(0, ge=0, le=2**31, description="the test example (0-based)")) -> dict:
    state = request.app.state
    return await run_in_threadpool(example_activations, state.store, run_id, state.data, index)
