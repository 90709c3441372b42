"""Routes about runs: create (queue for a worker), list, read, stop, resume, rename, delete, and stream.

Everything is read from the store, so runs started elsewhere (``layerlab train --db SAME``)
are listed and streamed like the server's own.
"""
from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from ..errors import Conflict, RunConflict
from ..store.store import STATUSES
from ..studies.record import is_record
from ..train.results import RunResults
from .api_catalogue import PNG, _png, valid_spec
from .openapi import error_responses
from .schemas import (EventsPage, MetricsPage, PredictionsOut, RunCreate, RunDetail, RunList, RunQueued, RunRename,
                      RunSummary, SeriesOut)
from .stream import ACTIVE_STATUSES, parse_cursor, run_stream, run_summary

__all__ = ["router"]

# Every route reads or writes the store: 503 when it cannot be used.
router = APIRouter(prefix="/api/runs", responses=error_responses(503))

RunId = Path(..., ge=1, le=2**62, description="the run's id", examples=[1])
RowId = Query(0, ge=0, le=2**62, description="rows after this id (0: from the start)")  # past int64 the store cannot
MISSING = error_responses(404, s404="Not found: no run with this id")
WRONG_STATE = error_responses(409, s409="Conflict: the run is in the wrong state for this request (the message "
                                        "says which), or it already waits for a worker")
Status = Literal[STATUSES]  # type: ignore[valid-type]


def _store(request: Request):
    return request.app.state.store


@router.get("", summary="Runs, newest first, with status, data set, model, best test accuracy and duration",
            response_model=None, responses={200: {"model": RunList}})
def list_runs(request: Request, status: Status | None = Query(None), dataset: str | None = Query(None, max_length=100),
              search: str | None = Query(None, max_length=200), limit: int = Query(200, ge=1, le=1000)) -> dict:
    runs = _store(request).list_runs(status=status, dataset=dataset, search=search, limit=limit)
    pool = request.app.state.pool
    out = []
    for run in runs:
        row = run_summary(run)
        row["queue_position"] = pool.position(run["id"]) if pool and run["status"] == "queued" else None
        out.append(row)
    return {"runs": out, "pool": pool.state() if pool else None}


@router.post("", status_code=201, summary="Queue a run of a valid spec; a worker process trains it",
             response_model=None, responses={201: {"model": RunSummary, "description": "The queued run"},
                                             **error_responses(400, 409, s409=(
                                                 "Conflict: the data set is not on this machine (`DataUnavailable`, "
                                                 "with `problems`), or the server has no workers (--workers 0)"))})
def create_run(request: Request, body: RunCreate) -> dict:
    prepared = valid_spec(body.spec)
    pool = request.app.state.pool
    if pool is None:
        raise Conflict("this server has no workers (started with --workers 0); start runs with `layerlab train`")
    store = _store(request)
    run_id = prepared.create_run(store, name=body.name)
    pool.submit(run_id)
    return run_summary(store.get_run(run_id))


@router.get("/{run_id}", summary="One run: summary, spec, results (confusion matrix, worst examples)",
            response_model=None, responses={200: {"model": RunDetail}, **MISSING})
def get_run(request: Request, run_id: int = RunId) -> dict:
    run = _store(request).get_run(run_id)
    results = run["results"]
    if not is_record(run):  # a record's results are its study's (StudyResult.to_dict), not a run's
        results = RunResults.from_json(results)
        results = results.to_json() if results is not None else None
    return {**run_summary(run), "spec": run["spec"], "results": results, "versions": run["versions"]}


@router.patch("/{run_id}", summary="Rename a run", response_model=None,
              responses={200: {"model": RunSummary}, **MISSING})
def rename_run(request: Request, body: RunRename, run_id: int = RunId) -> dict:
    store = _store(request)
    store.rename_run(run_id, body.name)
    return run_summary(store.get_run(run_id))


@router.delete("/{run_id}", status_code=204, summary="Delete a run with its metrics, events and artifacts",
               responses={204: {"description": "Deleted"}, **MISSING,
                          **error_responses(409, s409="Conflict: the run is running (stop it first)")})
def delete_run(request: Request, run_id: int = RunId) -> Response:
    _store(request).delete_run(run_id)
    return Response(status_code=204)


@router.post("/{run_id}/stop", summary="Ask a run to stop (a queued run stops at once)", response_model=None,
             responses={200: {"model": RunSummary}, **MISSING, **WRONG_STATE})
def stop_run(request: Request, run_id: int = RunId) -> dict:
    store = _store(request)
    run = store.get_run(run_id)
    pool = request.app.state.pool
    if run["status"] not in ACTIVE_STATUSES:
        if pool is not None and pool.cancel(run_id):  # it was waiting to resume: it simply stays as it is
            return run_summary(run)
        raise RunConflict(f"run {run_id} is {run['status']}, not running: nothing to stop")
    store.request_stop(run_id)
    if pool is not None and run["status"] == "queued":
        pool.cancel(run_id)  # out of the queue at once: the runs behind it move up
    return run_summary(store.get_run(run_id))


RESUMABLE = ("interrupted", "stopped")


@router.post("/{run_id}/resume", summary="Queue an interrupted or stopped run to continue from its last checkpoint",
             response_model=None, responses={200: {"model": RunQueued}, **MISSING, **error_responses(
                 409, s409="Conflict: the run is not interrupted or stopped, is a study's record, already waits "
                           "for a worker, or the server has no workers (--workers 0)")})
def resume_run(request: Request, run_id: int = RunId) -> dict:
    store = _store(request)
    run = store.get_run(run_id)
    if run["status"] not in RESUMABLE or run.get("kind", "run") != "run":
        what = "a study's record" if run.get("kind", "run") != "run" else f"{run['status']}"
        raise RunConflict(f"run {run_id} is {what}: only interrupted or stopped runs can be resumed")
    pool = request.app.state.pool
    if pool is None:
        raise Conflict(f"this server has no workers (started with --workers 0); resume the run with "
                       f"`layerlab train --resume {run_id}`")
    pool.submit(run_id, resume=True)  # RunConflict when it already waits for a worker
    return {**run_summary(store.get_run(run_id)), "queue_position": pool.position(run_id)}


@router.get("/{run_id}/metrics", summary="Metric rows after a row id (paging), optionally of some names",
            response_model=None, responses={200: {"model": MetricsPage}, **MISSING})
def metrics(request: Request, run_id: int = RunId, after_id: int = RowId,
            names: str | None = Query(None, max_length=2000, description="comma-separated metric names"),
            limit: int = Query(10000, ge=1, le=100000)) -> dict:
    store = _store(request)
    store.get_run(run_id)  # 404 for an unknown run
    wanted = [n for n in names.split(",") if n] if names else None
    rows = store.metrics(run_id, names=wanted, after_id=after_id, limit=limit)
    return {"rows": rows, "last_id": rows[-1]["id"] if rows else after_id}


@router.get("/{run_id}/series", summary="Metric series as [examples, value] pairs, by name (for charts)",
            response_model=None, responses={200: {"model": SeriesOut}, **MISSING})
def series(request: Request, run_id: int = RunId,
           names: str = Query("cost,train_accuracy,test_accuracy,test_loss,examples_per_sec", max_length=2000)) -> dict:
    store = _store(request)
    run = store.get_run(run_id)
    wanted = [n for n in names.split(",") if n]
    out: dict[str, list] = {n: [] for n in wanted}
    for row in store.metrics(run_id, names=wanted):
        out[row["name"]].append([row["examples"], row["value"]])
    return {"run": run_summary(run), "series": out}


@router.get("/{run_id}/events", summary="Stored events after an event id: status, prediction, diagnosis, epoch...",
            response_model=None, responses={200: {"model": EventsPage}, **MISSING})
def events(request: Request, run_id: int = RunId, after_id: int = RowId,
           kinds: str | None = Query(None, max_length=500, description="comma-separated kinds"),
           limit: int = Query(1000, ge=1, le=10000)) -> dict:
    store = _store(request)
    store.get_run(run_id)
    wanted = [k for k in kinds.split(",") if k] if kinds else None
    rows = store.events(run_id, after_id=after_id, kinds=wanted, limit=limit)
    return {"events": rows, "last_id": rows[-1]["id"] if rows else after_id}


@router.get("/{run_id}/predictions", summary="The latest prediction snapshot of the fixed test examples",
            response_model=None, responses={200: {"model": PredictionsOut}, **MISSING})
def predictions(request: Request, run_id: int = RunId) -> dict:
    store = _store(request)
    run = store.get_run(run_id)
    snaps = store.events(run_id, kinds=["prediction"])
    latest = snaps[-1]["payload"] if snaps else None
    return {"run_id": run_id, "snapshots": len(snaps), "latest": latest,
            "image_url": f"/api/runs/{run_id}/images/{{index}}.png" if _has_images(run) else None}


def _has_images(run: dict) -> bool:
    from ..data import DATASETS
    info = DATASETS.get(run.get("dataset") or "")
    return info is not None and len(info.input_shape) == 3


@router.get("/{run_id}/images/{index}.png", summary="Test example `index` of the run's data set as a PNG",
            response_class=Response, responses={200: PNG, **error_responses(
                400, 404, 409, 413, s400="Bad request: the run's data set has no images, or no example `index` "
                                         "(out of range)", s404="Not found: no run with this id (or its data set "
                                                                "is not in the catalogue)")})
async def image(request: Request, run_id: int = RunId, index: int = Path(..., ge=0, examples=[0])) -> Response:
    run = await run_in_threadpool(_store(request).get_run, run_id)
    data = await run_in_threadpool(request.app.state.data.for_spec_data, (run["spec"] or {}).get("data"))
    return _png(data, index)


# One message of the stream, as a client reads it (Open API 3.1: the schema describes each event).
SSE_EVENT = {
    "type": "object", "required": ["event", "data", "id"],
    "properties": {
        "event": {"type": "string", "pattern": "^[a-z0-9_]+$",
                  "description": "run, metrics, end, or the stored event's kind (status, prediction, epoch...)"},
        "id": {"type": "string", "pattern": r"^\d+-\d+$",
               "description": "the cursor `<metric id>-<event id>`: send it back as Last-Event-ID to resume"},
        "retry": {"type": "integer"},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {"type": "object"},
                 "description": "JSON: a RunSummary (`run`), {rows: [MetricRow]} (`metrics`), {status, run} "
                                "(`end`), or {id, kind, payload, time} (a stored event)"},
    },
    "allOf": [
        {"if": {"properties": {"event": {"const": event}}},
         "then": {"properties": {"data": {"contentMediaType": "application/json", "contentSchema": content}}}}
        for event, content in (
            ("run", {"$ref": "#/components/schemas/RunSummary"}),
            ("metrics", {"type": "object", "required": ["rows"], "properties": {
                "rows": {"type": "array", "items": {"$ref": "#/components/schemas/MetricRow"}}}}),
            ("end", {"type": "object", "required": ["status", "run"],
                     "properties": {"status": {"type": "string"}, "run": {"type": "object"}}}),
        )
    ],
}


@router.get("/{run_id}/stream", summary="Server-sent events: new metric rows, events and status changes, live",
            response_class=StreamingResponse, responses={200: {
                "description": "The run's messages (`stream.py`): `run`, `metrics`, one per stored event, `end`; "
                               "it stays open while the run is queued or running",
                "content": {"text/event-stream": {"schema": SSE_EVENT}}}, **MISSING})
async def stream(request: Request, run_id: int = RunId,
                 last_event_id: str | None = Header(None, alias="Last-Event-ID", max_length=64),
                 cursor: str | None = Query(None, max_length=64, description="resume after this cursor (m-e)")):
    store = _store(request)
    await asyncio.to_thread(store.get_run, run_id)  # 404 before the stream starts
    start = parse_cursor(last_event_id or cursor)
    state = request.app.state
    gen = run_stream(store, run_id, cursor=start, poll=state.stream_poll, is_disconnected=request.is_disconnected,
                     shutting_down=lambda: state.shutting_down)
    return StreamingResponse(gen, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

