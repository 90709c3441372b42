"""Routes about models and data: the layer catalogue, presets, data sets, checking and predicting.

Nothing here trains or writes the store. ``POST /api/check`` is called on every keystroke of
the builder, so it only parses and walks shapes (a few milliseconds) and never loads data.
"""
from __future__ import annotations

import functools
import math
from typing import Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..data import DATASETS
from ..errors import NotFound, Problem, SpecError
from ..init import INITIALISERS
from ..layers import catalogue_json
from ..metric_defs import definitions_json
from ..presets import preset_data, preset_description, preset_names
from ..shapes import CheckResult, check
from ..textfmt import file_stem
from ..prepare import PreparedRun, inspect_run, prepare_run, spec_object
from ..spec import (MAX_SUBSET, OPTIMIZER_PARAMS, OPTIMIZERS, DataSpec, TrainSpec, check_spec_shape,
                    parse_spec_text)
from .datacache import check_index, dataset_json, stats_json
from .images import example_png
from .openapi import error_responses
from .schemas import (CheckOut, DatasetOut, DatasetStatsOut, DownloadOut, InitOut, LayerKind, MetaOut, MetricDefOut,
                      OptimizersOut, ParsedSpec,
                      PredictOut, PresetOut, PresetRow, SpecExport, SpecText)

__all__ = ["router", "check_data", "field_json"]

router = APIRouter(prefix="/api")

SpecBody = Body(..., description="spec data: {name, data, model, train} (a preset model as `preset/NAME`)",
                examples=[{"name": "mlp", "data": {"dataset": "fashion-mnist"},
                           "model": ["flatten", {"fc": {"units": 10}}], "train": {"epochs": 1}}])
IMAGE_CACHE = "public, max-age=3600"
# What the schema says of a spec body: a JSON object. /api/check takes any JSON (and judges it); the routes that
# use the spec answer 400 for anything else, so their schema says "object" (openapi_extra) while they accept
# any JSON and answer it with the spec's problems.
SPEC_OBJECT = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}
PNG = {"content": {"image/png": {}}, "description": "The example as an 8-bit greyscale or RGB PNG",
       "headers": {"Cache-Control": {"schema": {"type": "string"}, "description": "cacheable for an hour"}}}
Size = functools.partial(Query, None, ge=1, le=MAX_SUBSET)  # a data subset's size, as DataSpec allows it
DatasetName = functools.partial(Path, ..., max_length=100, description="a data set of `GET /api/datasets`",
                                examples=["digits"])


def field_json(model) -> list[dict]:
    """A pydantic model's fields as the builder's form needs them: type, default, range, choices, doc."""
    schema = model.model_json_schema()
    out = []
    for name, prop in schema["properties"].items():
        options = prop.get("anyOf", [prop])
        main = next((o for o in options if o.get("type") != "null"), options[0])
        entry = {"name": name, "type": main.get("type", "object"), "default": prop.get("default"),
                 "doc": prop.get("description", ""), "nullable": any(o.get("type") == "null" for o in options)}
        for src, dst in (("minimum", "ge"), ("exclusiveMinimum", "gt"), ("maximum", "le"), ("exclusiveMaximum", "lt")):
            if src in main:
                entry[dst] = main[src]
        if "enum" in prop:
            entry["choices"] = prop["enum"]
        if entry["type"] == "number":
            entry["finite"] = True  # the spec models refuse NaN and infinities (spec._STRICT)
        out.append(entry)
    return out


def check_data(spec: Any) -> CheckResult:
    """The verdict on untrusted spec *data* (never a file path or preset name): what a run would get."""
    try:
        data = spec_object(spec)
    except SpecError as exc:
        return CheckResult(valid=False, rows=[], problems=exc.problems)
    return inspect_run(data)[1]


def valid_spec(data: Any) -> PreparedRun:
    """Untrusted spec data, prepared as a run would be; InvalidSpec (400) or DataUnavailable (409) if not."""
    return prepare_run(spec_object(data))


@functools.lru_cache(maxsize=1)
def presets_json() -> list[dict]:
    rows = []
    for name in preset_names():
        data = preset_data(name)
        result = check(data)
        rows.append({"name": name, "description": preset_description(name), "spec": data,
                     "dataset": result.dataset, "layers": len(data.get("model", [])), "params": result.total_params,
                     "valid": result.valid})
    return rows


def optimizers_json() -> dict:
    return {"names": list(OPTIMIZERS), "params": {k: list(v) for k, v in OPTIMIZER_PARAMS.items()}}


# ------------------------------------------------------------------------------ catalogue


@router.get("/meta", summary="Everything the builder needs at start: layers, presets, data sets, settings",
            response_model=None, responses={200: {"model": MetaOut}})
def meta(request: Request) -> dict:
    from .. import __version__
    return {
        "version": __version__, "layers": catalogue_json(), "presets": presets_json(),
        "datasets": [dataset_json(n) for n in DATASETS], "inits": [i.to_json() for i in INITIALISERS.values()],
        "optimizers": optimizers_json(), "train_fields": field_json(TrainSpec), "data_fields": field_json(DataSpec),
        "workers": request.app.state.pool.workers if request.app.state.pool else 0,
        "metrics": definitions_json(),
    }


@router.get("/metrics", summary="What each dashboard number means (the same words as docs/metrics.md)",
            response_model=None, responses={200: {"model": list[MetricDefOut]}})
def metric_definitions() -> list[dict]:
    return definitions_json()


@router.get("/layers", summary="The layer catalogue with parameter schemas",
            response_model=None, responses={200: {"model": list[LayerKind]}})
def layers() -> list[dict]:
    return catalogue_json()


@router.get("/inits", summary="Weight initialisers and their parameters",
            response_model=None, responses={200: {"model": list[InitOut]}})
def inits() -> list[dict]:
    return [i.to_json() for i in INITIALISERS.values()]


@router.get("/optimizers", summary="Optimisers, the hyper-parameters each uses, and the training fields",
            response_model=None, responses={200: {"model": OptimizersOut}})
def optimizers() -> dict:
    return {**optimizers_json(), "train_fields": field_json(TrainSpec)}


@router.get("/presets", summary="Named models (complete specs)",
            response_model=None, responses={200: {"model": list[PresetRow]}})
def presets() -> list[dict]:
    return presets_json()


@router.get("/presets/{name}", summary="One preset's spec",
            response_model=None, responses={200: {"model": PresetOut}, **error_responses(404)})
def preset(name: str = Path(..., max_length=100, description="a preset of `GET /api/presets`",
                            examples=["linear"])) -> dict:
    if name not in preset_names():
        raise NotFound(f"unknown preset {name!r}; presets: {', '.join(preset_names())}")
    return {"name": name, "description": preset_description(name), "spec": preset_data(name)}


# ------------------------------------------------------------------------------ data sets


@router.get("/datasets", summary="The data-set catalogue (no data loaded)",
            response_model=None, responses={200: {"model": list[DatasetOut]}})
def datasets() -> list[dict]:
    return [dataset_json(n) for n in DATASETS]


@router.get("/datasets/{name}", summary="One data set's catalogue entry",
            response_model=None, responses={200: {"model": DatasetOut}, **error_responses(404)})
def dataset(name: str = DatasetName()) -> dict:
    return dataset_json(_known(name))


@router.get("/datasets/{name}/download", summary="The state and progress of the data set's download",
            response_model=None, responses={200: {"model": DownloadOut}, **error_responses(404)})
def download_status(request: Request, name: str = DatasetName()) -> dict:
    return request.app.state.downloads.status(name)


@router.post("/datasets/{name}/download", status_code=202,
             summary="Download the data set's files on the server, verified; poll the GET for progress",
             response_model=None, responses={202: {"model": DownloadOut, "description": "The download job, "
                                                   "started (or already running)"}, **error_responses(
                 404, 409, s409="Conflict: the data set is bundled or generated and has no files to download")})
def download_start(request: Request, name: str = DatasetName()) -> dict:
    return request.app.state.downloads.start(name)


def _known(name: str) -> str:
    from ..data import get_info
    return get_info(name).name  # DataError -> 404


@router.get("/datasets/{name}/stats",
            summary="Statistics of a loaded data set: counts, shapes, pixel range, class balance",
            response_model=None, responses={200: {"model": DatasetStatsOut}, **error_responses(
                400, 404, 409, 413, s400="Bad request: sizes this data set cannot give (a validation split of "
                                         "0 examples...), or its files cannot be read (`DataError`)")})
async def dataset_stats(request: Request, name: str = DatasetName(),
                        train_size: int | None = Size(), test_size: int | None = Size(),
                        val_fraction: float = Query(0.0, ge=0.0, lt=1.0)) -> dict:
    cache = request.app.state.data
    data = await run_in_threadpool(cache.get, _known(name), train_size=train_size, test_size=test_size,
                                   val_fraction=val_fraction)
    return {"info": dataset_json(name), "stats": stats_json(data)}


@router.get("/datasets/{name}/images/{index}.png", summary="A test example as a PNG (image data sets)",
            response_class=Response, responses={200: PNG, **error_responses(
                400, 404, 409, 413, s400="Bad request: the data set has no images, or no example `index` "
                                         "(out of range)")})
async def dataset_image(request: Request, name: str = DatasetName(), index: int = Path(..., ge=0, examples=[0]),
                        test_size: int | None = Size(), split: str = Query("test", pattern="^(test|train)$")
                        ) -> Response:
    cache = request.app.state.data
    data = await run_in_threadpool(cache.get, _known(name), test_size=test_size)
    return _png(data, index, split)


def _png(data, index: int, split: str = "test") -> Response:
    from ..errors import DataError
    if len(data.info.input_shape) != 3:
        raise DataError(f"{data.info.name} has no images: its examples are {data.info.input_shape[0]} values")
    check_index(data, index, split)
    png = example_png(data.split(split).x[index], data.info.pixel_range)
    return Response(png, media_type="image/png", headers={"Cache-Control": IMAGE_CACHE})


# ------------------------------------------------------------------------------ specs


@router.post("/check", summary="Check a spec: per-layer rows, or problems naming the layer and the fix",
             response_model=None, responses={200: {"model": CheckOut, "description": "The verdict, valid or not"},
                                             **error_responses(400, s400="Bad request: a body nested too deep "
                                                                         "or too large to be a spec")})
def check_spec(spec: Any = SpecBody) -> dict:
    check_spec_shape(spec)  # a body nested 900 deep is a 400 here, not a RecursionError further on
    return check_data(spec).to_json()


@router.post("/predict", summary="Predictions of the spec's untrained model (random initial weights)",
             response_model=None, responses={200: {"model": PredictOut}, **error_responses(
                 400, 409, 413, 503, 507, s503="Unavailable: the prediction worker process died or did not answer "
                                               "in time (`PredictionFailed`); training the model shows them")},
             openapi_extra=SPEC_OBJECT)
async def predict(request: Request, spec: Any = SpecBody) -> dict:
    prepared = valid_spec(spec)
    parsed = prepared.spec
    from .predict import initial_predictions
    out = await run_in_threadpool(initial_predictions, prepared, request.app.state.data)
    d = parsed.data
    query = f"?test_size={d.test_size}" if d.test_size else ""
    out["images"] = len(parsed.dataset.input_shape) == 3
    out["image_url"] = f"/api/datasets/{d.dataset}/images/{{index}}.png{query}" if out["images"] else None
    return out


@router.post("/spec/parse", summary="Read an uploaded YAML or JSON spec file as data (never executed)",
             response_model=None, responses={200: {"model": ParsedSpec}, **error_responses(
                 400, s400="Bad request: the text is not YAML or JSON, not a mapping, too big or not finite")})
def parse_text(body: SpecText) -> dict:
    fmt = body.format
    if fmt == "auto":
        name = (body.filename or "").lower()
        fmt = "json" if name.endswith(".json") else ("yaml" if name.endswith((".yaml", ".yml")) else "yaml")
    data = parse_spec_text(body.text, fmt)
    if not isinstance(data, dict):
        spec_object(data)
    _check_finite(data)
    return {"spec": data, "check": check_data(data).to_json()}


def _check_finite(value, path: str = "spec") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(Problem(f"must be a finite number, got {value}", "write a finite number, e.g. 0.1",
                                field=path.removeprefix("spec.")))
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{path}[{i}]")


@router.post("/spec/export", summary="A spec as YAML or JSON text, to download", response_model=None,
             responses={200: {"description": "The spec as a file to download (the format asked for)",
                              "content": {"application/yaml": {"schema": {"type": "object"}},
                                          "application/json": {"schema": {"type": "object"}}},
                              "headers": {"Content-Disposition": {"schema": {"type": "string"}, "required": True,
                                                                  "description": "attachment; filename=..."}}},
                        **error_responses(400, s400="Bad request: a spec nested too deep, too big, or with text "
                                                    "that UTF-8 cannot write")})
def export(body: SpecExport) -> Response:
    check_spec_shape(body.spec)  # too deep, too big, or a lone surrogate (\ud800) that UTF-8 cannot encode
    name = str(body.spec.get("name") or "spec")
    safe = file_stem(name, limit=80, default="spec")
    from ..export.spec import SPEC_MEDIA, spec_text  # one writer of spec files: this route and the run export
    text, media = spec_text(body.spec, body.format), SPEC_MEDIA[body.format]
    return Response(text, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{safe}.{body.format}"'})
