"""Static shape checking: every layer's shapes, parameters and cost, before torch is asked.

``check`` walks the layer stack with each kind's pure shape rule. It returns a row per layer
(input shape, output shape, parameters, multiply-adds) or problems that name the layer,
say what it received and what it needs, and propose a fix — better than torch's
"mat1 and mat2 shapes cannot be multiplied", which names no layer. It also notes things
that run but are probably not meant (warnings). The property test in
``tests/test_shapes_property.py`` holds it to agreeing with PyTorch.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .budget import budget_problems, estimate
from .data.catalogue import DatasetInfo, get_info
from .errors import DataError, Problem
from .layers import CATALOGUE, Shape, ShapeError, shape_text
from .spec import LayerSpec, Spec, parse_spec, resolve_objective, spec_data

__all__ = ["LayerRow", "CheckResult", "check", "check_layers", "infer_shapes"]


@dataclass
class LayerRow:
    """One layer as the summary table and the UI's cards show it."""

    index: int                      # 0-based position in `model`
    kind: str
    input_shape: list[int] | None
    output_shape: list[int] | None
    params: int = 0
    mult_adds: int = 0
    status: str = "ok"              # ok | error | unchecked (after an error)
    config: dict = field(default_factory=dict)
    memory: int = 0                 # bytes to train: its weights' share and its activations (budget.py)


@dataclass
class CheckResult:
    """The checker's verdict: rows for every layer, problems (invalid) and warnings (valid but odd)."""

    valid: bool
    rows: list[LayerRow]
    problems: list[Problem]
    warnings: list[Problem] = field(default_factory=list)
    dataset: str | None = None
    input_shape: list[int] | None = None
    output_shape: list[int] | None = None
    task: str | None = None
    loss: str | None = None
    total_params: int = 0
    trainable_params: int = 0
    total_mult_adds: int = 0
    memory: dict | None = None      # budget.MemoryEstimate.to_json() for the spec's batch size and optimiser

    def to_json(self) -> dict:
        out = asdict(self)
        out["problems"] = [p.to_dict() for p in self.problems]
        out["warnings"] = [p.to_dict() for p in self.warnings]
        out["layers"] = out.pop("rows")
        return out


def _layer_name(i: int, kind: str) -> str:
    return f"layer {i + 1} ({kind})"


def check(source: Spec | dict | str, *, dataset: str | DatasetInfo | None = None) -> CheckResult:
    """Check a spec (object, data, file path or preset name) against its data set (or ``dataset``)."""
    if isinstance(source, Spec):
        spec = source
    else:
        spec, problems = parse_spec(spec_data(source))
        if problems:
            return CheckResult(valid=False, rows=[], problems=problems)
    if dataset is None:
        info = spec.dataset
    elif isinstance(dataset, DatasetInfo):
        info = dataset
    else:
        try:
            info = get_info(dataset)
        except DataError as exc:
            return CheckResult(valid=False, rows=[], problems=[Problem(
                str(exc), "pick a data set from `layerlab data list`", field="data.dataset")])
    task, loss = resolve_objective(spec.train, info)
    result = check_layers(spec.model, info, task=task, loss=loss)
    if result.rows and all(r.status == "ok" for r in result.rows):
        est = estimate(result.rows, info.input_shape, batch_size=spec.train.batch_size,
                       optimizer=spec.train.optimizer)
        for row, size in zip(result.rows, est.by_layer):
            row.memory = size
        result.memory = est.to_json()
        over = budget_problems(est, result.rows)
        result.problems += over
        result.valid = result.valid and not over
    return result


def infer_shapes(layers: list[LayerSpec], input_shape: Shape,
                 info: DatasetInfo | None = None) -> tuple[list[LayerRow], list[Problem], list[Problem]]:
    """Walk the layers from ``input_shape``: (rows, problems, warnings). Stops computing at the first break."""
    shape: Shape = tuple(input_shape)
    rows: list[LayerRow] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for i, layer in enumerate(layers):
        kind = CATALOGUE[layer.kind]
        if problems:
            rows.append(LayerRow(i, layer.kind, None, None, status="unchecked", config=layer.params))
            continue
        try:
            out = kind.output_shape(shape, layer.params)
        except ShapeError as err:
            problems.append(_shape_problem(err, i, layer, shape, layers, info))
            rows.append(LayerRow(i, layer.kind, list(shape), None, status="error", config=layer.params))
            continue
        rows.append(LayerRow(i, layer.kind, list(shape), list(out), kind.count_params(shape, layer.params),
                             kind.mult_adds(shape, out, layer.params), config=layer.params))
        warnings += _window_warnings(i, layer, shape)
        shape = out
    return rows, problems, warnings


def check_layers(layers: list[LayerSpec], info: DatasetInfo, *, task: str, loss: str) -> CheckResult:
    """Walk ``layers`` from the data set's input shape, then check the end against the loss; see ``check``."""
    rows, problems, warnings = infer_shapes(layers, tuple(info.input_shape), info)
    broken = bool(problems)
    shape = tuple(rows[-1].output_shape) if rows and not broken else tuple(info.input_shape)
    if not layers:
        problems.append(Problem(
            "the model has no layers", _first_layers_hint(info, task), field="model", category="shape"))
    elif not broken:
        problems += _objective_problems(layers, rows, shape, info, task, loss)
        warnings += _stacked_linear_warnings(layers, rows)
        if loss == "cross_entropy" and layers[-1].kind == "softmax":
            i = len(layers) - 1
            warnings.append(Problem(
                f"{_layer_name(i, 'softmax')} before cross-entropy applies softmax twice, which flattens the "
                "gradients and slows learning", "remove it: the loss applies softmax itself", i, "softmax",
                category="advice"))
    total = sum(r.params for r in rows)
    return CheckResult(
        valid=not problems, rows=rows, problems=problems, warnings=warnings, dataset=info.name,
        input_shape=list(info.input_shape), output_shape=None if broken or not layers else list(shape),
        task=task, loss=loss, total_params=total, trainable_params=total,
        total_mult_adds=sum(r.mult_adds for r in rows))


def _first_layers_hint(info: DatasetInfo, task: str) -> str:
    need = info.output_size if task != "reconstruction" else math.prod(info.input_shape)
    start = "add flatten, then " if len(info.input_shape) > 1 else "add "
    return f"{start}fc with {need} units (or pick a preset)"


def _shape_problem(err: ShapeError, i: int, layer: LayerSpec, shape: Shape, layers: list[LayerSpec],
                   info: DatasetInfo | None) -> Problem:
    """Turn a shape rule's error into a Problem naming the layer, with a fix that fits this model."""
    hint = err.hint
    if hint.endswith("before this layer"):
        hint = _rank_fix(i, layer.kind, shape, layers, info)
    field_path = f"model[{i}].{layer.kind}.{err.field}" if err.field else f"model[{i}]"
    return Problem(err.message, hint, i, layer.kind, field_path, "shape")


def _rank_fix(i: int, kind: str, shape: Shape, layers: list[LayerSpec], info: DatasetInfo | None) -> str:
    """The fix for a layer that got the wrong number of dimensions."""
    before = f"before layer {i + 1}"
    if kind == "fc":
        return f"add flatten {before}"
    n = math.prod(shape)
    flatten_at = next((j for j in range(i - 1, -1, -1) if layers[j].kind == "flatten"), None)
    if kind in ("conv2d", "maxpool2d", "avgpool2d"):
        if len(shape) == 2:
            return f"use {kind.replace('2d', '1d')} for 1-D signals, or add reshape to (channels, height, width) {before}"
        if info is not None and len(info.input_shape) == 3 and math.prod(info.input_shape) == n:
            target = list(info.input_shape)
        else:
            side = math.isqrt(n)
            target = [1, side, side] if side * side == n else None
        if target is None:
            return f"add reshape to (channels, height, width) {before}"
        fix = f"add reshape with shape {target} {before}"
        if flatten_at is not None:
            fix += f", or remove the flatten at layer {flatten_at + 1}"
        return fix
    if kind in ("conv1d", "maxpool1d"):
        if len(shape) == 3:
            return f"use {kind.replace('1d', '2d')} for images, or add reshape with shape [{shape[0]}, {n // shape[0]}] {before}"
        return f"add reshape with shape [1, {n}] {before}"
    return f"add reshape {before}"


def _last_sized_layer(layers: list[LayerSpec]) -> int | None:
    """Index of the last fc when only shape-preserving layers (activations, dropout, batchnorm) follow it."""
    for j in range(len(layers) - 1, -1, -1):
        kind = layers[j].kind
        if kind == "fc":
            return j
        if CATALOGUE[kind].category not in ("activation", "regularisation"):
            return None
    return None


def _objective_problems(layers: list[LayerSpec], rows: list[LayerRow], out: Shape, info: DatasetInfo,
                        task: str, loss: str) -> list[Problem]:
    """Does the last layer produce what the loss compares with the labels?"""
    if loss == "cross_entropy" and task != "classification":
        return [Problem(f"cross-entropy needs class labels, but the task is {task} on {info.name}",
                        "use loss: mse", field="train.loss", category="objective")]
    if task == "classification" and info.task != "classification":
        return [Problem(f"{info.name} has no classes to classify: it is a {info.task} data set",
                        "use task: regression (or auto)", field="train.task", category="objective")]
    if task == "reconstruction":
        need, what = math.prod(info.input_shape), f"reconstructs inputs of {math.prod(info.input_shape)} values ({shape_text(tuple(info.input_shape))})"
    elif task == "classification":
        need, what = info.output_size, f"{info.name} has {info.output_size} classes"
    else:
        need, what = info.output_size, f"{info.name} has {info.output_size} target value(s) per example"
    got = math.prod(out)
    last = len(layers) - 1
    fc_at = _last_sized_layer(layers)
    if task != "reconstruction" and len(out) != 1:
        return [Problem(
            f"the model ends with {shape_text(out)} values per example, but the loss needs a flat vector of {need} "
            f"({what})", f"add flatten and fc with {need} units at the end", last, layers[last].kind,
            category="objective")]
    if got != need:
        if fc_at is not None:
            hint = f"set units of the fc at layer {fc_at + 1} to {need}"
            field_path = f"model[{fc_at}].fc.units"
        else:
            hint = f"add fc with {need} units at the end" + (" (after flatten)" if len(out) > 1 else "")
            field_path = None
        return [Problem(f"the model ends with {got} values but {what}", hint,
                        fc_at if fc_at is not None else last, "fc" if fc_at is not None else layers[last].kind,
                        field_path, "objective")]
    return []


def _window_warnings(i: int, layer: LayerSpec, shape: Shape) -> list[Problem]:
    """Windows that don't tile the input exactly drop its last rows/columns (torch floors)."""
    p = layer.params
    if "field" not in p or len(shape) < 2:
        return []
    dropped = [(size + 2 * p["pad"] - p["field"]) % p["stride"] for size in shape[1:]]
    if not any(dropped):
        return []
    size = shape[1]
    return [Problem(
        f"{_layer_name(i, layer.kind)}: ({size} + 2×{p['pad']} − {p['field']}) / {p['stride']} + 1 is not a whole "
        f"number, so the last {max(dropped)} row(s)/column(s) are never looked at",
        "change stride, field or pad so the windows tile the input exactly", i, layer.kind,
        f"model[{i}].{layer.kind}.stride", "advice")]


_LINEAR_KINDS = ("fc", "conv1d", "conv2d")
_TRANSPARENT = ("flatten", "reshape", "dropout", "linear", "avgpool2d")


def _stacked_linear_warnings(layers: list[LayerSpec], rows: list[LayerRow]) -> list[Problem]:
    """Two linear maps with no activation between them are one linear map (unless a bottleneck)."""
    out = []
    prev = None
    for i, layer in enumerate(layers):
        if layer.kind in _LINEAR_KINDS:
            if prev is not None:
                mid = math.prod(rows[prev].output_shape)
                bottleneck = mid < math.prod(rows[prev].input_shape) and mid < math.prod(rows[i].output_shape)
                if not bottleneck:
                    out.append(Problem(
                        f"{_layer_name(prev, layers[prev].kind)} and {_layer_name(i, layer.kind)} have no activation "
                        "between them: together they compute one linear map, no more expressive than a single layer",
                        f"add relu after layer {prev + 1} if you want a non-linear model", i, layer.kind,
                        category="advice"))
            prev = i
        elif layer.kind not in _TRANSPARENT:
            prev = None
    return out
