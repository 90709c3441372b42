"""One path from a spec to a run: read, check everything, and only then create the run.

Every entry point that starts training — ``layerlab train``, the API's run creation, sweeps,
studies, ``lr-find``, the server's worker and ``resume`` — gets its run through
``prepare_run``, and ``layerlab validate`` and the builder's check see the same verdict
through ``inspect_run``. So a spec is accepted or refused the same way, with the same
problems, wherever it comes from, and no run row exists for a spec that was refused.

What is checked, in order (every problem is collected, not just the first):

1. the source reads (a file, a preset name, spec data) and its overrides apply;
2. every field is valid (``spec.parse_spec``), including the optimiser's own constraints;
3. the shapes flow and the model's output fits the task and loss (``shapes.check``);
4. the data set is on this machine, or the problem says how to fetch it.

A ``PreparedRun`` is the result: the spec, the checker's verdict (rows, task, loss,
warnings) and ``create_run``, the one way a run row is written for a spec.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidSpec, Problem, spec_error
from .shapes import CheckResult, check
from .spec import Spec, apply_overrides, parse_spec, spec_data

__all__ = ["PreparedRun", "prepare_run", "inspect_run", "spec_object"]

@dataclass(frozen=True)
class PreparedRun:
    """A spec that passed every check, with the checker's verdict; what the trainer runs."""

    spec: Spec
    check: CheckResult = field(repr=False)

    @property
    def task(self) -> str:
        return self.check.task

    @property
    def loss(self) -> str:
        return self.check.loss

    @property
    def warnings(self) -> list[Problem]:
        return self.check.warnings

    def load_data(self, device: Any = "cpu"):
        """The run's data, resident on ``device`` (``DataSpec.load``)."""
        return self.spec.data.load(device=device)

    def create_run(self, store, *, name: str | None = None, status: str = "queued", **fields) -> int:
        """Write the run's row (queued unless ``status`` says running) and return its id."""
        return store.create_run(self.spec.to_dict(), name=name or self.spec.name, seed=self.spec.train.seed,
                                model=self.spec.model_label(), status=status, **fields)


def spec_object(data: Any) -> dict:
    """Spec *data* from an untrusted client: a mapping, never read as a file path or preset name."""
    if not isinstance(data, dict):
        raise InvalidSpec(Problem(f"a spec must be a mapping (a JSON object) with data, model and train, got "
                                  f"{type(data).__name__}", "send {\"data\": ..., \"model\": [...], \"train\": ...}",
                                  category="syntax"))
    return data


def _spec_of(source, overrides: list[str] | None, dataset: str | None) -> Spec | dict:
    if isinstance(source, Spec) and not overrides and dataset is None:
        return source
    data = source.to_dict() if isinstance(source, Spec) else spec_data(source)
    if overrides:
        data = apply_overrides(data, overrides)
    if dataset is not None:
        data["data"] = dict(data.get("data") or {}, dataset=dataset)
    return data


def inspect_run(source, overrides: list[str] | None = None, *, dataset: str | None = None,
                need_data: bool = True) -> tuple[PreparedRun | None, CheckResult]:
    """Every check ``prepare_run`` makes, as a verdict instead of an error.

    Returns ``(prepared, result)``: ``prepared`` is None when ``result.problems`` is not
    empty. ``need_data=False`` skips the data-availability check (the caller brings the data).
    """
    if isinstance(source, PreparedRun):
        source = source.spec
    try:
        data = _spec_of(source, overrides, dataset)
    except InvalidSpec as exc:
        return None, CheckResult(valid=False, rows=[], problems=exc.problems)
    if isinstance(data, Spec):
        spec = data
    else:
        spec, problems = parse_spec(data)
        if problems:
            return None, CheckResult(valid=False, rows=[], problems=problems)
    result = check(spec)
    if need_data:
        missing = spec.data.problems()
        if missing:
            result.problems = result.problems + missing
            result.valid = False
    return (PreparedRun(spec, result) if result.valid else None), result


def prepare_run(source, overrides: list[str] | None = None, *, dataset: str | None = None,
                need_data: bool = True) -> PreparedRun:
    """A run's spec, checked: a ``PreparedRun``, or ``InvalidSpec`` listing every problem.

    ``source``: a ``PreparedRun`` (returned as it is), a ``Spec``, spec data, a file path or
    a preset name. ``overrides``: ``key=value`` strings (``--set``). ``dataset``: replaces
    ``data.dataset``. A spec whose only problem is a data set that is not here raises
    ``DataUnavailable`` (an ``InvalidSpec``).
    """
    if isinstance(source, PreparedRun) and not overrides and dataset is None:
        return source
    prepared, result = inspect_run(source, overrides, dataset=dataset, need_data=need_data)
    if prepared is None:
        raise spec_error(result.problems, result=result)
    return prepared
