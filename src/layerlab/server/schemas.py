"""Request bodies, validated by pydantic before a route sees them (extra fields are refused), and
the models of the answers, which document the API (``/openapi.json``) and are what the contract
test (``tests/test_api_contract.py``) holds every response to.

Response models only describe: the routes return plain dicts (``response_model=None``), so no
field is dropped or coerced on the way out, and a non-finite number stays the string "NaN",
"Infinity" or "-Infinity" that ``SafeJSONResponse`` writes (``Number``). Fields not listed are
allowed (an answer may grow); the listed ones are required when always present.
"""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from ..errors import PROBLEM_CATEGORIES
from ..store.store import STATUSES

__all__ = ["RunCreate", "RunRename", "SpecText", "SpecExport", "MAX_SPEC_TEXT", "Number", "ErrorOut", "ProblemOut",
           "RequestErrorOut", "RunSummary", "RunListItem", "RunList", "RunDetail", "RunQueued", "MetricsPage",
           "SeriesOut", "EventsPage", "PredictionsOut", "CheckOut", "ParsedSpec", "PredictOut", "LayerKind",
           "InitOut", "OptimizersOut", "PresetOut", "PresetRow", "DatasetOut", "DatasetStatsOut", "DownloadOut", "MetaOut",
           "HealthOut", "PoolState", "OutcomeOut", "MetricDefOut", "ActivationsOut", "BoundaryOut", "HistogramsOut"]

MAX_SPEC_TEXT = 200_000  # characters of an uploaded YAML/JSON spec (the body limit is 256 KiB)

_EXAMPLE_SPEC = {"name": "digits-linear", "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
                 "train": {"examples": 2000}}


def _example(**body) -> ConfigDict:
    """Extra fields refused, and one example body, which /docs shows and the contract test sends."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [body]})


class RunCreate(BaseModel):
    """Start a run: the spec as data (what /api/check accepts) and an optional run name."""

    model_config = _example(spec=_EXAMPLE_SPEC, name="first try")
    spec: dict[str, Any] = Field(..., description="spec data: {name, data, model, train}")
    name: str | None = Field(None, min_length=1, max_length=200, description="run name (default: the spec's)")


class RunRename(BaseModel):
    model_config = _example(name="lr 0.1, wider")
    # The store strips the name, so one of blanks only is no name: the pattern says so (a non-blank character).
    name: str = Field(..., min_length=1, max_length=200, pattern=r"\S", description="the new name (not blank)")


class SpecText(BaseModel):
    """An uploaded spec file's text; parsed as data only (yaml.safe_load / json.loads)."""

    model_config = _example(text="data: {dataset: digits}\nmodel: [flatten, {fc: {units: 10}}]\n", format="yaml",
                            filename="digits.yaml")
    text: str = Field(..., max_length=MAX_SPEC_TEXT)
    format: Literal["auto", "yaml", "json"] = "auto"
    filename: str | None = Field(None, max_length=200, description="only used to guess the format")


class SpecExport(BaseModel):
    model_config = _example(spec=_EXAMPLE_SPEC, format="yaml")
    spec: dict[str, Any]
    format: Literal["yaml", "json"] = "yaml"


# ------------------------------------------------------------------------------ answers

# A float as SafeJSONResponse writes it: a number, or "NaN" / "Infinity" / "-Infinity" (a diverged run's).
Number = Union[float, Literal["NaN", "Infinity", "-Infinity"]]
RunStatus = Literal[STATUSES]  # type: ignore[valid-type]


class ProblemOut(BaseModel):
    """One thing wrong with a spec (``errors.Problem``): where, what, and the fix."""

    message: str
    hint: str
    layer: int | None = Field(..., description="0-based index in `model`, or null")
    kind: str | None
    field: str | None = Field(..., description="dotted path of the offending field")
    category: Literal[tuple(PROBLEM_CATEGORIES)]  # type: ignore[valid-type]
    context: str | None
    where: str = Field(..., description="`layer 2 (fc)` for a shape problem, else the field path")


class ErrorOut(BaseModel):
    """A refused request. ``error`` names the library's error type (``InvalidSpec``, ``RunNotFound``,
    ``DataUnavailable``...) and is absent on the server's own guards (Host, token, same-origin, body
    size) and on routing errors; ``problems`` comes with a spec that cannot be used."""

    error: str | None = Field(None, description="the error's type; absent on guard refusals")
    detail: str = Field(..., description="what was wrong, to show as is")
    problems: list[ProblemOut] | None = Field(None, description="every problem of an invalid spec")


class FieldErrorOut(BaseModel):
    field: str = Field(..., description="where: `query.limit`, `path.run_id`, `name`, `body`...")
    message: str
    type: str | None


class RequestErrorOut(BaseModel):
    """A request whose parameters or body do not match this schema (422)."""

    detail: str = Field(..., description="every field's message, joined")
    errors: list[FieldErrorOut]


class OutcomeOut(BaseModel):
    """Did the run learn? ``RunResults.outcome`` (train/outcome.py): the badge's label and the cause in evidence."""

    kind: Literal["learned", "failed_to_learn", "diverged", "stopped"]
    label: str = Field(..., description="what the status badge says, e.g. 'failed to learn'")
    text: str | None = Field(..., description="the cause in evidence (failed to learn, diverged); null otherwise")


class MetricDefOut(BaseModel):
    """One dashboard number's definition (layerlab.metric_defs; the same words as docs/metrics.md)."""

    key: str = Field(..., description="the counter or chart it defines (for counters, the RunResults field)")
    label: str
    definition: str


class RunSummary(BaseModel):
    """A run without its spec and bulky results (lists, stream headers, answers to changes)."""

    id: int
    name: str
    status: RunStatus
    dataset: str
    model: str = Field(..., description="one-line model summary")
    seed: int | None
    device: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float | None
    duration_s: float | None
    step: int | None
    examples: int | None
    best_test_accuracy: Number | None
    test_accuracy: Number | None
    diagnosis: str | None
    error: str | None
    stop_requested: bool | None
    host: str | None
    pid: int | None
    optimizer: str | None = Field(..., description="train.optimizer of the run's spec")
    lr: Number | None = Field(..., description="train.lr of the run's spec (the schedule's starting value)")
    params: int | None = Field(..., description="trainable parameters (from the results; null before the end)")
    outcome: OutcomeOut | None = Field(..., description="the verdict once the run has results; null before")


class PoolState(BaseModel):
    workers: int
    running: list[int]
    queued: list[int]


class RunListItem(RunSummary):
    queue_position: int | None = Field(..., description="1-based place in the worker queue of a queued run")


class RunList(BaseModel):
    runs: list[RunListItem]
    pool: PoolState | None = Field(..., description="the worker pool; null on a server without workers")


class RunQueued(RunSummary):
    queue_position: int | None


class RunDetail(RunSummary):
    spec: dict[str, Any] | None
    results: dict[str, Any] | None = Field(..., description="RunResults (confusion matrix, worst examples...), "
                                                            "a study's result for a record run; null before the end")
    versions: dict[str, Any] | None


class MetricRow(BaseModel):
    id: int
    name: str
    step: int
    examples: int
    wall_time: float
    value: Number | None


class MetricsPage(BaseModel):
    rows: list[MetricRow]
    last_id: int = Field(..., description="pass as `after_id` for the next page")


class SeriesOut(BaseModel):
    run: RunSummary
    series: dict[str, list[tuple[int, Number | None]]] = Field(..., description="name -> [[examples, value], ...]")


class EventRow(BaseModel):
    id: int
    run_id: int
    kind: str
    payload: Any
    time: float


class EventsPage(BaseModel):
    events: list[EventRow]
    last_id: int


class PredictionsOut(BaseModel):
    run_id: int
    snapshots: int
    latest: dict[str, Any] | None
    image_url: str | None


class LayerRowOut(BaseModel):
    index: int
    kind: str
    input_shape: list[int] | None
    output_shape: list[int] | None
    params: int
    mult_adds: int
    status: Literal["ok", "error", "unchecked"]
    config: dict[str, Any]
    memory: int


class CheckOut(BaseModel):
    """The checker's verdict (``prepare.inspect_run``): layer rows, or problems; warnings either way."""

    valid: bool
    problems: list[ProblemOut]
    warnings: list[ProblemOut]
    dataset: str | None
    input_shape: list[int] | None
    output_shape: list[int] | None
    task: str | None
    loss: str | None
    total_params: int
    trainable_params: int
    total_mult_adds: int
    memory: dict[str, Any] | None
    layers: list[LayerRowOut]


class ParsedSpec(BaseModel):
    spec: dict[str, Any]
    check: CheckOut


class PredictOut(BaseModel):
    step: int
    examples: int
    task: str
    predictions: list[dict[str, Any]] = Field(..., description="classification: {index, label, top, correct}; "
                                                               "regression: {index, target, output}; "
                                                               "reconstruction: {index, error}")
    classes: list[str] | None = None
    images: bool
    image_url: str | None


class ParamOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    type: str
    doc: str


class LayerKind(BaseModel):
    kind: str
    doc: str
    category: str
    aliases: list[str]
    weighted: bool
    params: list[ParamOut]


class InitOut(BaseModel):
    name: str
    doc: str
    params: list[ParamOut]


class FieldOut(BaseModel):
    name: str
    type: str
    default: Any
    doc: str
    nullable: bool


class OptimizersOut(BaseModel):
    names: list[str]
    params: dict[str, list[str]] = Field(..., description="optimiser -> the hyper-parameters it uses")
    train_fields: list[FieldOut]


class PresetOut(BaseModel):
    name: str
    description: str
    spec: dict[str, Any]


class PresetRow(PresetOut):
    dataset: str | None
    layers: int
    params: int
    valid: bool


class DatasetOut(BaseModel):
    name: str
    doc: str
    task: str
    input_shape: list[int]
    num_classes: int | None
    class_names: list[str]
    target_shape: list[int]
    target_names: list[str]
    output_size: int
    train_size: int | None
    test_size: int | None
    pixel_range: list[float] | None
    options: dict[str, Any]
    source: str | None
    citation: str | None
    images: bool
    available: bool


class DatasetStatsOut(BaseModel):
    info: DatasetOut
    stats: dict[str, Any] = Field(..., description="counts, shapes, pixel range, class balance")


class DownloadOut(BaseModel):
    """A data set's download job (``downloads.py``), polled by the builder for its progress bar."""

    dataset: str
    state: Literal["idle", "running", "done", "failed"]
    file: str | None = Field(..., description="the file being fetched (or last fetched)")
    files: int = Field(..., description="files the data set has")
    bytes_done: int
    bytes_total: int | None = Field(..., description="bytes of all its files, where known")
    fraction: float = Field(..., ge=0.0, le=1.0, description="bytes_done / bytes_total")
    error: str | None = Field(..., description="why it failed (names no server folder)")
    seconds: float | None = Field(..., description="since the job started")


class MetaOut(BaseModel):
    version: str
    layers: list[LayerKind]
    presets: list[PresetRow]
    datasets: list[DatasetOut]
    inits: list[InitOut]
    optimizers: dict[str, Any]
    train_fields: list[FieldOut]
    data_fields: list[FieldOut]
    workers: int
    metrics: list[MetricDefOut] = Field(..., description="what each dashboard number means (GET /api/metrics)")


class HealthOut(BaseModel):
    ok: bool
    version: str
    store: str = Field(..., description="the store's URL, password hidden")
    static: str = Field(..., description="the versioned prefix of the page's static files")
    pool: PoolState | None
    store_error: str | None = Field(None, description="why the store cannot be used (with 503)")


# ------------------------------------------------------------------------------ activations (api_activations.py)


class FiltersOut(BaseModel):
    shape: list[int] = Field(..., description="the weight's shape: [out, in, *kernel]")
    min: Number
    max: Number
    count: int = Field(..., description="filters (output channels) in the layer")
    inputs: int = Field(..., description="input channels of each filter")
    inputs_shown: int = Field(..., description="input channels drawn side by side in each image")
    rgb: bool = Field(..., description="each image is one RGB filter over three input channels")
    images: list[str] = Field(..., description="base64 PNGs of the first filters, a zero weight mid-grey")


class LayerActivationOut(BaseModel):
    index: int = Field(..., description="0-based index in the spec's `model`")
    kind: str
    name: str = Field(..., description="the built module's name (conv2d1, relu2...)")
    output_shape: list[int] = Field(..., description="without the batch axis, as the shape checker's rows")
    min: Number
    max: Number
    view: Literal["maps", "vector"] = Field(..., description="maps: per-channel images; vector: values for bars")
    channels: int = Field(..., description="channels (maps) or values (vector) in the whole output")
    maps: list[str] | None = Field(None, description="base64 8-bit PNGs of the first channels, min..max of the layer")
    values: list[Number] | None = Field(None, description="the first values of a flat output")
    filters: FiltersOut | None = Field(None, description="a conv layer's filters")


class WeightsSourceOut(BaseModel):
    source: Literal["final", "checkpoint"]
    step: int | None
    examples: int | None


class ActivationsOut(BaseModel):
    run_id: int
    index: int
    label: int | None = Field(..., description="the example's class, for a classification data set")
    class_name: str | None
    weights: WeightsSourceOut
    max_channels: int = Field(..., description="maps and filters sent per layer at most")
    max_units: int = Field(..., description="values of a flat output sent at most")
    layers: list[LayerActivationOut]


# ------------------------------------------------------------------------------ views (api_views.py)


class GridOut(BaseModel):
    min: Number = Field(..., description="the value of level 0")
    max: Number = Field(..., description="the value of level 255")
    data: str = Field(..., description="base64 of size*size uint8 levels, row-major, row 0 at the plane's lowest y")


class NeuronLayerOut(BaseModel):
    layer: int = Field(..., description="0-based index in the spec's `model` of the hidden weighted layer")
    name: str = Field(..., description="its module's name (fc1...)")
    output: str = Field(..., description="the module whose output is the units' activation (tanh1...)")
    units: int
    shown: int = Field(..., description="units with a map (the first ones)")
    maps: list[GridOut]


class PlanePointsOut(BaseModel):
    x: list[list[Number]] = Field(..., description="raw inputs [x, y]")
    y: list[Number] = Field(..., description="labels (classification) or targets")
    of: int = Field(..., description="examples in the split (the first ones are sent)")


class BoundaryOut(BaseModel):
    run_id: int
    step: int
    examples: int
    steps: list[int] = Field(..., description="every step with a stored boundary")
    task: str
    value: str = Field(..., description="what the grid holds: p(<last class>) or output")
    size: int
    extent: list[list[Number]] = Field(..., description="[[x0, x1], [y0, y1]] of the plane")
    grid: GridOut
    neuron_size: int
    neurons: list[NeuronLayerOut]
    points: dict[str, PlanePointsOut] | None = Field(None, description="train and test points (with points=true)")


class HistogramOut(BaseModel):
    lo: Number
    hi: Number
    counts: list[int]
    edges: list[Number] = Field(..., description="bins + 1 edges from lo to hi")
    n: int = Field(..., description="finite values counted")
    nonfinite: int


class HistogramPointOut(BaseModel):
    step: int
    examples: int
    weights: HistogramOut
    grads: HistogramOut | None = Field(..., description="the last update's gradient (none at step 0)")


class LayerHistogramsOut(BaseModel):
    index: int = Field(..., description="0-based index in the spec's `model`")
    name: str
    shape: list[int] = Field(..., description="the weight tensor's shape")
    points: list[HistogramPointOut]


class DiagnosisLayerOut(BaseModel):
    kind: str
    step: int | None
    text: str
    layer: int = Field(..., description="the layer whose histograms the diagnosis concerns")
    layer_name: str


class HistogramsOut(BaseModel):
    run_id: int
    bins: int | None
    steps: list[int]
    layers: list[LayerHistogramsOut]
    diagnoses: list[DiagnosisLayerOut]
