"""The experiment spec: what to train, on what, and how, as one validated object.

A spec comes from YAML, JSON, a Python dict or the browser's form and always passes
through ``parse_spec``, which collects *every* problem with the path of the offending
field (``model[3].conv2d.stride: must be >= 1, got 0``) instead of stopping at the first.
"""
from __future__ import annotations

import copy
import difflib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from .data.catalogue import DATASETS, DatasetInfo, get_info
from .durations import parse_minutes
from .errors import DataError, Problem, SpecError
from .init import parse_init
from .layers import CATALOGUE, get_kind, resolve_kind
from .params import problems_from_validation, validate_params

__all__ = ["DataSpec", "TrainSpec", "LayerSpec", "Spec", "parse_spec", "load_spec", "read_spec_file", "parse_spec_text",
           "apply_overrides", "OPTIMIZERS", "OPTIMIZER_PARAMS", "resolve_objective"]

PRESET_PREFIX = "preset/"
SUBSET_SEED = 0  # the permutation data subsets are taken from; see DataSpec.load

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adadelta", "adam", "adamw", "adamax")
# The hyper-parameters each optimiser reads; the UI shows only these.
OPTIMIZER_PARAMS: dict[str, tuple[str, ...]] = {
    "sgd": ("lr", "weight_decay"),
    "momentum": ("lr", "momentum", "weight_decay"),
    "nesterov": ("lr", "momentum", "weight_decay"),
    "rmsprop": ("lr", "rho", "momentum", "epsilon", "weight_decay"),
    "adagrad": ("lr", "epsilon", "weight_decay"),
    "adadelta": ("lr", "rho", "epsilon", "weight_decay"),
    "adam": ("lr", "beta1", "beta2", "epsilon", "weight_decay"),
    "adamw": ("lr", "beta1", "beta2", "epsilon", "weight_decay"),
    "adamax": ("lr", "beta1", "beta2", "epsilon", "weight_decay"),
}

# Constraints an optimiser adds to the fields' own ranges: (field, test, message, fix).
OPTIMIZER_CONSTRAINTS: dict[str, tuple[tuple[str, Any, str, str], ...]] = {
    "nesterov": (("momentum", lambda v: v > 0, "nesterov needs momentum > 0, got {value}",
                  "set train.momentum above 0, e.g. 0.9, or use optimizer: sgd"),),
}

# allow_inf_nan=False: every float field must be finite; upper bounds below mark what cannot be meant.
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
MAX_EXAMPLES = 10**10   # examples a run may train (about 2 days at 50,000 examples/s)
MAX_MINUTES = 10_080    # a time budget of at most a week
MAX_SUBSET = 1_000_000  # examples a data subset (or a generated set) may hold


class DataSpec(BaseModel):
    """Which data set, and how its inputs are scaled."""

    model_config = _STRICT
    dataset: str = Field("fashion-mnist", description="name from `layerlab data list`")
    # -1..1 is the Model Builder's default; standardize uses the training set's mean and std.
    normalize: Literal["-1..1", "0..1", "none", "standardize"] = "-1..1"
    # Subsets make classroom runs fast; None keeps the whole split.
    train_size: int | None = Field(None, ge=1, le=MAX_SUBSET,
                                   description="use the first N training examples (seeded order)")
    test_size: int | None = Field(None, ge=1, le=MAX_SUBSET, description="use the first N test examples")
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of train held out for validation")
    options: dict[str, Any] = Field(default_factory=dict, description="data-set knobs (toy sets: noise, sizes)")

    def load(self, *, device: Any = "cpu", download: bool = False):
        """The resident data set this spec names: the one place a run's data is loaded.

        The trainer, ``predict``, the server and the studies all call this, so example ``i``
        is the same example everywhere. The subset does not depend on ``train.seed``
        (``SUBSET_SEED``): runs that differ only in their seed see the same examples.
        """
        from .data import load_dataset
        return load_dataset(self.dataset, normalize=self.normalize, device=device, train_size=self.train_size,
                            test_size=self.test_size, val_fraction=self.val_fraction, seed=SUBSET_SEED,
                            options=self.options, download=download)

    def problems(self) -> list[Problem]:
        """Why this data cannot be loaded as asked: subsets larger than the splits, files not here."""
        from .data import available
        info = DATASETS.get(self.dataset)
        if info is None:
            return []  # parse_spec names an unknown data set
        out = []
        try:
            from .data.options import check_options
            check_options(info.name, info.options, self.options)
        except DataError as exc:
            out.append(Problem(str(exc), f"see `layerlab data show {info.name}` for its options and their ranges",
                               field="data.options"))
        if info.source != "generated":  # generated sets make as many examples as asked
            for name, size in (("train_size", info.train_size), ("test_size", info.test_size)):
                value = getattr(self, name)
                if value is not None and value > size:
                    out.append(Problem(f"must be at most {size} (the {name[:-5]} split of {info.name} has {size}), "
                                       f"got {value}",
                                       f"set {name} to {size} or less, or leave it out for the whole split",
                                       field=f"data.{name}"))
        if not available(self.dataset):
            out.append(Problem(f"data set {self.dataset!r} is not on this machine (its files have not been fetched)",
                               f"fetch it with `layerlab data fetch {self.dataset}`, or pick a data set from "
                               "`layerlab data list`", field="data.dataset", category="data"))
        return out


class TrainSpec(BaseModel):
    """How to train. Defaults are the deeplearn.js Model Builder's (momentum 0.1, lr 0.1, batch 64)."""

    model_config = _STRICT
    optimizer: Literal[OPTIMIZERS] = "momentum"  # type: ignore[valid-type]
    # Up to 1e38 (float32's range): divergence demos go far past any useful rate, never to infinity.
    lr: float = Field(0.1, gt=0.0, le=1e38, description="learning rate")
    momentum: float = Field(0.1, ge=0.0, lt=1.0, description="momentum (momentum, nesterov, rmsprop)")
    rho: float = Field(0.9, ge=0.0, lt=1.0, description="decay of the squared-gradient average (rmsprop, adadelta)")
    beta1: float = Field(0.9, ge=0.0, lt=1.0, description="decay of the gradient average (adam family)")
    beta2: float = Field(0.999, ge=0.0, lt=1.0, description="decay of the squared-gradient average (adam family)")
    epsilon: float = Field(1e-8, gt=0.0, le=1.0, description="added to denominators for stability")
    weight_decay: float = Field(0.0, ge=0.0, le=100.0, description="L2 penalty (decoupled for adamw)")
    schedule: Literal["constant", "step", "cosine", "one-cycle"] = "constant"
    step_epochs: float = Field(1.0, gt=0.0, le=10000.0, description="step schedule: epochs between learning-rate drops")
    step_gamma: float = Field(0.1, gt=0.0, le=1.0, description="step schedule: factor applied at each drop")
    batch_size: int = Field(64, ge=1, le=65536)
    # Budget: `examples` (the practicum's "train about 5,000 examples") wins over `epochs` when set.
    epochs: float = Field(1.0, gt=0.0, le=10000.0)
    examples: int | None = Field(None, ge=1, le=MAX_EXAMPLES, description="stop after this many training examples")
    # A time budget ("train about 2 minutes"): wall minutes, evaluations included; like `examples` it wins
    # over `epochs`, and with `examples` the run ends at whichever comes first (docs/metrics.md, "Budgets").
    minutes: float | None = Field(None, gt=0.0, le=MAX_MINUTES,
                                  description="stop after this many minutes (a number, or 90s, 2m, 1.5m, 1h)")
    # stop: a diverged run ends at its first NaN loss; continue: the broken model is trained on (NaN loss,
    # chance accuracy) to the end of its budget, so the flat curve can be drawn. Either way it is `diverged`.
    on_divergence: Literal["stop", "continue"] = Field(
        "stop", description="at a NaN, infinite or exploded loss: stop, or continue to the end of the budget")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    init: str | dict = Field("default", description="initialiser for all fc/conv layers (`layerlab inits`)")
    task: Literal["auto", "classification", "regression", "reconstruction"] = "auto"
    loss: Literal["auto", "cross_entropy", "mse", "bce"] = "auto"
    # Live evaluation points cost time; None measures them at step 0 and spaces them so that they
    # take about 10% of the training time (docs/metrics.md, "When things are measured").
    eval_every: int | None = Field(None, ge=1, le=MAX_EXAMPLES, description="examples between test-set evaluations")
    # Live points use a fixed, class-stratified subset of the test split (the same for every run on
    # the same data); step 0, epoch ends and the end use the whole split. "all": the whole split always.
    eval_subset: int | Literal["all"] = Field(
        2000, description="test examples at live evaluation points (at least 1), or 'all' for the whole test split")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = Field(False, description="torch.compile the model (CUDA mostly)")
    amp: bool = Field(False, description="mixed precision (bf16) on CUDA")
    clip_grad: float | None = Field(None, gt=0.0, le=1e9, description="clip the global gradient norm")

    @field_validator("minutes", mode="before")
    @classmethod
    def _minutes_duration(cls, v):
        """``90s``, ``2m``, ``1.5m``: the one parser of a time budget (``durations.parse_minutes``)."""
        if v is None:
            return v
        try:
            return parse_minutes(v)
        except ValueError as exc:
            raise PydanticCustomError("duration_parsing", "{text}", {"text": str(exc)}) from None

    @field_validator("eval_subset")
    @classmethod
    def _eval_subset_range(cls, v):
        """The range of an ``int | "all"`` field (pydantic's ge/le do not apply to a union)."""
        if isinstance(v, int) and v < 1:
            raise PydanticCustomError("greater_than_equal", "Input should be greater than or equal to 1", {"ge": 1})
        if isinstance(v, int) and v > MAX_SUBSET:
            raise PydanticCustomError("less_than_equal", "Input should be less than or equal to {le}", {"le": MAX_SUBSET})
        return v


@dataclass(frozen=True)
class LayerSpec:
    """One layer: its canonical kind and all its parameters (defaults filled in)."""

    kind: str
    params: dict = field(default_factory=dict)
    init: tuple[str, dict] | None = None

    def to_data(self) -> str | dict:
        shown = {k: v for k, v in self.params.items() if not (k == "init" and v is None)}
        return {self.kind: shown} if shown else self.kind

    def label(self) -> str:
        main = self.params.get("units", self.params.get("depth"))
        return f"{self.kind}{main}" if main is not None and self.kind in ("fc",) else self.kind


@dataclass
class Spec:
    """A validated experiment."""

    name: str
    data: DataSpec
    model: list[LayerSpec]
    train: TrainSpec
    preset: str | None = None

    @property
    def dataset(self) -> DatasetInfo:
        return get_info(self.data.dataset)

    def to_dict(self) -> dict:
        """Canonical data form: round-trips through ``parse_spec`` to an equal spec."""
        return {
            "name": self.name,
            "data": self.data.model_dump(exclude_defaults=False),
            "model": [layer.to_data() for layer in self.model],
            "train": self.train.model_dump(),
        }

    def model_label(self) -> str:
        """Short description for run lists: the preset's name, or the layer kinds in order."""
        if self.preset:
            return self.preset
        return "-".join(layer.label() for layer in self.model) or "(empty)"


def optimizer_problems(train: "TrainSpec") -> list[Problem]:
    """What the chosen optimiser cannot work with, though each field is in its own range."""
    out = []
    for name, test, message, fix in OPTIMIZER_CONSTRAINTS.get(train.optimizer, ()):
        value = getattr(train, name)
        if not test(value):
            out.append(Problem(message.format(value=value), fix, field=f"train.{name}", category="optimizer"))
    return out


def budget_problems(train: "TrainSpec") -> list[Problem]:
    """A schedule that needs the run's length, with a budget that is only a time (its length is not known)."""
    if train.minutes is not None and train.examples is None and train.schedule in ("cosine", "one-cycle"):
        return [Problem(f"the {train.schedule} schedule needs the run's length in updates, but train.minutes "
                        "alone does not fix it", "add train.examples (the run ends at whichever comes first), "
                        "or use schedule: constant or step", field="train.schedule", category="optimizer")]
    return []


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    return {name: f.default for name, f in model.model_fields.items()}


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def parse_layer(entry: Any, index: int) -> tuple[LayerSpec | None, list[Problem]]:
    """A bare kind name, ``{kind: {params}}``, or ``{kind: KIND, params: {...}}``."""
    path = f"model[{index}]"
    if isinstance(entry, str):
        written, params = entry, {}
    elif isinstance(entry, dict) and "kind" in entry and isinstance(entry["kind"], str):
        written = entry["kind"]
        params = entry.get("params", {k: v for k, v in entry.items() if k != "kind"}) or {}
    elif isinstance(entry, dict) and len(entry) == 1:
        written, params = next(iter(entry.items()))
        params = {} if params is None else params
        if not isinstance(written, str):
            return None, [Problem(f"layer kind must be a name, got {written!r}",
                                  "write the kind as a name, e.g. `fc: {units: 10}`", index, None, path, "layer")]
    else:
        return None, [Problem(f"a layer must be a kind name or {{kind: {{params}}}}, got {entry!r}",
                              "write e.g. `relu` or `fc: {units: 10}`", index, None, path, "layer")]
    canonical = resolve_kind(written)
    if canonical is None:
        return None, [Problem(f"unknown layer kind {written!r}",
                              f"{_suggest(written, list(CATALOGUE))}known kinds: {', '.join(CATALOGUE)}",
                              index, written, path, "layer")]
    kind = get_kind(canonical)
    if not isinstance(params, dict):
        return None, [Problem(f"parameters of {written} must be a mapping, got {params!r}",
                              f"write `{written}: {{{', '.join(kind.param_names()[:2])}: ...}}`",
                              index, canonical, f"{path}.{written}", "layer")]
    clean, problems = validate_params(kind.validator, params, prefix=("model", index, written),
                                      known=kind.param_names(), layer=index, kind=canonical,
                                      defaults=kind.defaults())
    if problems:
        return None, problems
    init = None
    if clean.get("init") is not None:
        init, problems = parse_init(clean["init"], path=f"{path}.{written}.init", layer=index, kind=canonical)
        if problems:
            return None, problems
    elif "init" in clean:
        clean.pop("init")
    return LayerSpec(canonical, clean, init), []


def parse_spec(data: Any) -> tuple[Spec | None, list[Problem]]:
    """Validate spec data; returns (spec, []) or (None, every problem found)."""
    if not isinstance(data, dict):
        return None, [Problem(f"a spec must be a mapping with data, model and train, got {type(data).__name__}",
                              "start from `layerlab presets` or the README's example", category="syntax")]
    problems: list[Problem] = []
    known_top = ["name", "data", "model", "train"]
    for key in data:
        if key not in known_top:
            problems.append(Problem("unknown field", f"remove it or use one of: {', '.join(known_top)}",
                                    field=str(key)))

    name = data.get("name")  # None: named after the model's layers, below
    if name is not None and (not isinstance(name, str) or not name.strip()):
        problems.append(Problem(f"must be a non-empty string, got {name!r}", "give the spec a name, e.g. my-mlp",
                                field="name"))

    try:
        data_spec = DataSpec.model_validate(data.get("data") or {})
        if data_spec.dataset not in DATASETS:
            problems.append(Problem(f"unknown data set {data_spec.dataset!r}",
                                    f"{_suggest(data_spec.dataset, list(DATASETS))}known: {', '.join(DATASETS)}",
                                    field="data.dataset"))
    except ValidationError as exc:
        data_spec = None
        problems += problems_from_validation(exc, prefix=("data",), known=list(DataSpec.model_fields),
                                             defaults=_defaults(DataSpec))

    try:
        train = TrainSpec.model_validate(data.get("train") or {})
        _, init_problems = parse_init(train.init)
        problems += init_problems + optimizer_problems(train) + budget_problems(train)
    except ValidationError as exc:
        train = None
        problems += problems_from_validation(exc, prefix=("train",), known=list(TrainSpec.model_fields),
                                             defaults=_defaults(TrainSpec))

    preset = None
    model_data = data.get("model", [])
    if isinstance(model_data, str):
        from .presets import preset_names, preset_data
        if not model_data.startswith(PRESET_PREFIX) or model_data[len(PRESET_PREFIX):] not in preset_names():
            wanted = model_data.removeprefix(PRESET_PREFIX)
            problems.append(Problem(f"unknown model preset {model_data!r}",
                                    f"{_suggest(wanted, preset_names())}use preset/NAME with NAME one of: "
                                    f"{', '.join(preset_names())}", field="model"))
            model_data = []
        else:
            preset = model_data[len(PRESET_PREFIX):]
            model_data = preset_data(preset)["model"]
    if not isinstance(model_data, list):
        problems.append(Problem(f"must be a list of layers or preset/NAME, got {model_data!r}",
                                "write a list, e.g. [flatten, {fc: {units: 10}}], or preset/NAME", field="model"))
        model_data = []
    layers = []
    for i, entry in enumerate(model_data):
        layer, layer_problems = parse_layer(entry, i)
        problems += layer_problems
        layers.append(layer)

    if problems:
        return None, problems
    if name is None:
        name = preset or "-".join(layer.label() for layer in layers) or "untitled"
    return Spec(name=name, data=data_spec, model=layers, train=train, preset=preset), []


# Limits on untrusted spec text (docs/security.md, "Untrusted input"). A real spec is a few
# hundred values a few levels deep; these bounds are far above that and far below harm.
MAX_SPEC_BYTES = 1_000_000  # a spec file or text (the API's body limit is 256 KiB)
MAX_SPEC_DEPTH = 50  # nested mappings and lists
MAX_SPEC_NODES = 10_000  # values in all, each YAML alias counted as what it expands to
MAX_SPEC_ALIASES = 100  # YAML alias references (*name); anchors are allowed, bombs are not
MAX_INT_DIGITS = 100  # digits of an integer literal (Python's own limit, 4,300, raises mid-parse)

_LIMIT_FIX = "a spec is a few hundred values; write it out plainly (see `layerlab presets`)"


class _TooBig(yaml.MarkedYAMLError):
    """A YAML document over one of the limits; ``fix`` is the hint shown."""

    def __init__(self, problem: str, mark, fix: str = _LIMIT_FIX):
        super().__init__(problem=problem, problem_mark=mark)
        self.fix = fix


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader with the limits above, enforced while composing (before any expansion).

    Aliases are kept (a student may anchor one layer's parameters), but each alias adds the
    size of what it names to the node count, so a billion-laughs document is refused after a
    few dozen events instead of expanding to 10**9 values in every later walk of the data.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(composed node) -> values in it, aliases expanded
        self._open: list[int] = []  # values counted so far inside each node being composed
        self._aliases = 0

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_SPEC_ALIASES:
                raise _TooBig(f"more than {MAX_SPEC_ALIASES} aliases (*name)", mark,
                              "write the repeated parts out instead of using anchors and aliases")
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise _TooBig("an alias inside the node it names (a recursive structure)", mark,
                              "remove the alias: a spec is a tree")
        else:
            if not self.check_event(yaml.ScalarEvent) and len(self._open) >= MAX_SPEC_DEPTH:
                raise _TooBig(f"nested more than {MAX_SPEC_DEPTH} levels deep", mark)
            self._open.append(0)
            node = super().compose_node(parent, index)
            size = 1 + self._open.pop()
            self._sizes[id(node)] = size
        if self._open:
            self._open[-1] += size
        # Values so far: the finished ones counted in each open node, plus the open nodes themselves.
        if (sum(self._open) + len(self._open) if self._open else size) > MAX_SPEC_NODES:
            raise _TooBig(f"more than {MAX_SPEC_NODES:,} values (aliases expanded)", mark)
        return node

    def construct_yaml_int(self, node):
        if len(node.value) > MAX_INT_DIGITS:
            raise _TooBig(f"an integer of {len(node.value):,} characters (at most {MAX_INT_DIGITS})",
                          node.start_mark, "write a number of sensible size, e.g. 10 or 1e6")
        return super().construct_yaml_int(node)


_SpecLoader.add_constructor("tag:yaml.org,2002:int", _SpecLoader.construct_yaml_int)


def load_yaml_value(text: str) -> Any:
    """One YAML value from untrusted text (an override's value), under the spec limits; yaml.YAMLError if bad."""
    loader = _SpecLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _json_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _JSONTooBig(f"an integer of {len(text):,} digits (at most {MAX_INT_DIGITS})", text,
                          "write a number of sensible size, e.g. 10 or 1e6")
    return int(text)


class _JSONTooBig(ValueError):
    def __init__(self, problem: str, needle: str | None = None, fix: str = _LIMIT_FIX):
        super().__init__(problem)
        self.problem, self.needle, self.fix = problem, needle, fix


def _line_of(text: str, needle: str | None) -> str:
    pos = text.find(needle) if needle else -1
    return f" at line {text.count(chr(10), 0, pos) + 1}" if pos >= 0 else ""


def check_spec_shape(data: Any, *, source: str = "") -> None:
    """Refuse spec data nested deeper than MAX_SPEC_DEPTH, with more than MAX_SPEC_NODES values,
    or holding text that is not Unicode (a lone surrogate such as "\\ud800"): an InvalidSpec
    (category "syntax") naming where. Iterative, so a 10,000-deep list cannot overflow the stack.
    """
    prefix = f"{source}: " if source else ""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    nodes = 0
    while stack:
        value, path, depth = stack.pop()
        nodes += 1
        where = path.lstrip(".") or "(the spec)"
        where = where if len(where) <= 60 else where[:60] + "..."
        if nodes > MAX_SPEC_NODES:
            raise SpecError(Problem(f"{prefix}more than {MAX_SPEC_NODES:,} values in the spec", _LIMIT_FIX,
                                    category="syntax"))
        if isinstance(value, (dict, list)):
            if depth >= MAX_SPEC_DEPTH:
                raise SpecError(Problem(f"{prefix}nested more than {MAX_SPEC_DEPTH} levels deep at {where}",
                                        _LIMIT_FIX, category="syntax"))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in items:
                if isinstance(k, str):
                    _check_unicode(k, f"{where} (a key)", prefix)
                stack.append((v, f"{path}[{k}]" if isinstance(value, list) else f"{path}.{k}", depth + 1))
        elif isinstance(value, str):
            _check_unicode(value, where, prefix)


def _check_unicode(text: str, where: str, prefix: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecError(Problem(f"{prefix}{where}: text holds {text[exc.start]!r}, a lone surrogate that is not "
                                "a character", "remove it, or write the character it was meant to be",
                                category="syntax")) from None


def parse_spec_text(text: str, fmt: str, *, source: str = "") -> Any:
    """Spec data from untrusted JSON or YAML text; a SpecError names the source, line and column on bad syntax.

    Never executes anything (PyYAML's safe loader) and refuses, as category "syntax", text over
    the limits above: MAX_SPEC_BYTES of text, MAX_SPEC_DEPTH levels, MAX_SPEC_NODES values
    (YAML aliases expanded), MAX_SPEC_ALIASES aliases, MAX_INT_DIGITS-digit integers.
    """
    prefix = f"{source}: " if source else ""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(Problem(f"{prefix}{len(text):,} characters is too long for a spec (at most "
                                f"{MAX_SPEC_BYTES:,})", _LIMIT_FIX, category="syntax"))
    try:
        data = json.loads(text, parse_int=_json_int) if fmt == "json" else load_yaml_value(text)
    except json.JSONDecodeError as exc:
        raise SpecError(Problem(f"{prefix}invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                                f"fix the JSON near line {exc.lineno} (quotes, commas, brackets)",
                                category="syntax")) from None
    except _JSONTooBig as exc:
        raise SpecError(Problem(f"{prefix}JSON over a limit{_line_of(text, exc.needle)}: {exc.problem}", exc.fix,
                                category="syntax")) from None
    except RecursionError:  # json's C scanner stops near 1,000 levels; the limit is far lower
        raise SpecError(Problem(f"{prefix}JSON over a limit: nested more than {MAX_SPEC_DEPTH} levels deep", _LIMIT_FIX,
                                category="syntax")) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        near = f" near line {mark.line + 1}" if mark else ""
        fix = getattr(exc, "fix", None) or f"fix the YAML{near} (indentation, colons, brackets)"
        what = "YAML over a limit" if isinstance(exc, _TooBig) else "invalid YAML"
        raise SpecError(Problem(f"{prefix}{what}{where}: {getattr(exc, 'problem', None) or exc}",
                                fix, category="syntax")) from None
    check_spec_shape(data, source=source)
    return data


def read_spec_file(path: str | Path) -> dict:
    """Parse a YAML or JSON spec file into data; a SpecError names the file and line on bad syntax.

    The file must be a regular file of at most MAX_SPEC_BYTES of UTF-8 text (a BOM is allowed).
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a directory, not a file")
        if path.exists() and not path.is_file():  # a FIFO or a device would block or never end
            raise OSError(0, "not a regular file")
        with path.open("rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(Problem(f"cannot read spec file {path}: {exc.strerror or exc}",
                                "check the path, or name a preset (`layerlab presets`)", category="source")) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(Problem(f"{path}: more than {MAX_SPEC_BYTES:,} bytes is too long for a spec", _LIMIT_FIX,
                                category="syntax"))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError(Problem(f"{path}: not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                                f"(line {line}) cannot be decoded", "save the file as UTF-8 text",
                                category="syntax")) from None
    return parse_spec_text(text, "json" if path.suffix.lower() == ".json" else "yaml", source=str(path))


def _path_kind(text: str) -> str:
    """"file", "other" (exists but is no regular file, or cannot be looked at) or "none"."""
    try:
        path = Path(text)
        return "file" if path.is_file() else ("other" if path.exists() else "none")
    except (OSError, ValueError):  # a name too long, a NUL byte
        return "none"


def spec_data(source: str | Path | dict) -> dict:
    """Spec data from a dict, a file path, ``preset/NAME`` or a bare preset name."""
    from .presets import preset_data, preset_names
    if isinstance(source, dict):
        check_spec_shape(source)  # before deepcopy, which recurses: a 1,000-deep list would overflow it
        return copy.deepcopy(source)
    text = str(source)
    name = text.removeprefix(PRESET_PREFIX)
    kind = _path_kind(text)
    if kind == "file":
        return read_spec_file(text)
    if name in preset_names():
        data = preset_data(name)
        data["model"] = PRESET_PREFIX + name
        return data
    if kind == "other":  # a directory, a FIFO, an unreadable path: say so rather than "not a file"
        return read_spec_file(text)
    raise SpecError(Problem(f"{text!r} is neither a spec file nor a preset",
                            f"{_suggest(name, preset_names())}give a YAML/JSON file or one of: {', '.join(preset_names())}",
                            category="source"))


def load_spec(source: str | Path | dict, *, overrides: list[str] | None = None) -> Spec:
    """Load and validate a spec; raise SpecError listing every problem."""
    data = spec_data(source)
    if overrides:
        data = apply_overrides(data, overrides)
    spec, problems = parse_spec(data)
    if problems:
        raise SpecError(problems)
    return spec


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def _split_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    pos = 0
    for m in _PATH_PART.finditer(path):
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts or pos != len(path):
        raise SpecError(Problem(f"cannot read the path {path!r}", "write e.g. train.lr or model[1].fc.units",
                                field=path))
    return parts


def set_path(data: dict, path: str, value: Any) -> dict:
    """Set a dotted path (``model[1].fc.units``) in spec data; a preset model is expanded first."""
    parts = _split_path(path)
    if parts[0] == "model" and isinstance(data.get("model"), str) and len(parts) > 1:
        from .presets import preset_data
        data["model"] = preset_data(data["model"].removeprefix(PRESET_PREFIX))["model"]
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                raise SpecError(Problem(f"no item {part} here", "check the layer index", field=path))
            if isinstance(node[part], str) and isinstance(nxt, str):
                node[part] = {node[part]: {}}
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise SpecError(Problem(f"{part!r} is not inside a mapping",
                                        "write e.g. train.lr or model[1].fc.units", field=path))
            if node.get(part) is None:
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or not -len(node) <= last < len(node):
            raise SpecError(Problem(f"no item {last} here", "check the layer index", field=path))
    node[last] = value
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"{getattr(exc, 'problem', None) or exc}" + (f" (column {mark.column + 1})" if mark else "")


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key=value`` overrides; values are read as YAML (``1e-3``, ``true``, ``[1, 28, 28]``)."""
    data = copy.deepcopy(data)
    preset_model = data.get("model") if isinstance(data.get("model"), str) else None
    for item in overrides:
        if "=" not in item:
            raise SpecError(Problem(f"override {item!r} must look like key=value", "e.g. --set train.lr=0.01"))
        key, raw = item.split("=", 1)
        try:
            value = load_yaml_value(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            shown = item if len(item) <= 60 else item[:60] + "..."
            raise SpecError(Problem(f"cannot read the value of override {shown!r}: {_yaml_problem(exc)}",
                                    getattr(exc, "fix", None) or "quote text and close brackets, e.g. "
                                    "--set 'train.lr=0.01' or --set 'data.options={noise: 0.1}'",
                                    field=key.strip(), category="syntax")) from None
        if isinstance(value, float) and not math.isfinite(value):
            value = float(value)
        set_path(data, key.strip(), value)
    renamed = any(item.split("=", 1)[0].strip() == "name" for item in overrides)
    if preset_model is not None and data.get("model") != preset_model and not renamed \
            and data.get("name") == preset_model.removeprefix(PRESET_PREFIX):
        data.pop("name")  # the preset's name no longer says what the model is; parse_spec names it by its layers
    return data


def resolve_objective(train: TrainSpec, info: DatasetInfo) -> tuple[str, str]:
    """(task, loss) for a training spec on a data set: what 'auto' means."""
    task = info.task if train.task == "auto" else train.task
    if train.loss != "auto":
        return task, train.loss
    return task, "cross_entropy" if task == "classification" else "mse"
