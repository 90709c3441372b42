"""What every sweep and study shares: queueing member runs, running them, reading them back.

``prepare_members`` checks every member's spec with ``prepare_run`` (the one path from a spec
to a run) before anything is written: a study's record and its members' runs exist only
when every member passed. ``run_members`` then creates each member's queued run (named after
the record, tagged as a member), executes them all (inline, pool or Ray; see ``executors``),
and reads each run back *from the store* — status, results, diagnosis, metric series — so a
study's numbers are what anyone else looking at the store would see. When every member failed
there are no numbers to show: ``run_members`` raises ``StudyFailed`` naming the cause (the record
is then marked failed); when some did, ``record.finish_record`` names them in the result.
"""
from __future__ import annotations

import math
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidSpec, StudyFailed, spec_error
from ..prepare import PreparedRun, prepare_run
from ..spec import load_spec
from ..train.results import RunResults, curve_series
from .executors import Trial, TrialFailure, check_executor, execute
from .record import add_member, create_record, fail_record, failure_text

__all__ = ["Member", "prepare_members", "run_members", "read_member", "out_dir_for", "fmt", "finite", "Timer",
           "study_record", "trained_model", "weights_of", "evaluate_run", "last_predictions"]

# Curves read test_loss / test_accuracy from their subset series: every evaluation point (train.results).
CURVE_METRICS = ("cost", "test_loss", "train_accuracy", "test_accuracy")


@dataclass
class Member:
    """One member run: how it was made (label, values, spec) and what the store says about it."""

    label: str
    spec: dict
    values: dict = field(default_factory=dict)
    run_id: int | None = None
    status: str | None = None
    results: RunResults | None = None   # None: the run ended without results (it failed)
    diagnosis: str | None = None
    error: str | None = None
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    prepared: PreparedRun | None = field(default=None, repr=False)

    @property
    def measured(self) -> RunResults:
        """``results``, or for a run without any (failed) a RunResults whose every value is None."""
        return self.results if self.results is not None else RunResults.from_json({})


def prepare_members(members: list[Member]) -> None:
    """``prepare_run`` every member; InvalidSpec with every member's problems (each naming its member,
    or said once for "all N members" when every member has the same ones, e.g. a data set not here)."""
    found: list[tuple[Member, list]] = []
    for m in members:
        if m.prepared is not None:
            continue
        try:
            m.prepared = prepare_run(m.spec)
        except InvalidSpec as exc:
            found.append((m, exc.problems))
    if not found:
        return
    if len(found) == len(members) > 1 and all(ps == found[0][1] for _, ps in found):
        raise spec_error([p.with_context(f"all {len(members)} members") for p in found[0][1]])
    raise spec_error([p.with_context(m.label) for m, ps in found for p in ps])


def run_members(store, record_id: int, kind: str, members: list[Member], *, workers: int = 1,
                ray: str | None = None, train_options: dict | None = None,
                on_done: Callable[[Member], None] | None = None, name_prefix: str | None = None) -> list[Member]:
    """Queue, execute and read back ``members`` (prepared first, if ``prepare_members`` was not called)."""
    check_executor(workers, ray)
    prepare_members(members)
    prefix = name_prefix or f"{kind} {record_id}"
    trials = []
    for i, m in enumerate(members):
        m.spec = m.prepared.spec.to_dict()
        m.run_id = m.prepared.create_run(store, name=f"{prefix} #{i + 1} · {m.label}"[:200], parent=record_id)
        add_member(store, record_id, m.run_id, kind=kind, index=i, values=m.values, label=m.label)
        trials.append(Trial(m.run_id, m.spec, m.label, train_options))
    by_id = {m.run_id: m for m in members}

    def done(trial: Trial, result: RunResults | TrialFailure) -> None:
        m = by_id[trial.run_id]
        m.error = result.error if isinstance(result, TrialFailure) else None
        if on_done:
            read_member(store, m)
            on_done(m)

    execute(store, trials, workers=workers, ray=ray, on_done=done)
    for m in members:
        read_member(store, m)
    if members and all(m.status == "failed" for m in members):
        record = store.get_run(record_id)["name"].split(":")[0]  # "study classifiers 12", "sweep 7"
        raise StudyFailed(f"{record}: " + failure_text(members, every=True))
    return members


def read_member(store, m: Member, metrics: tuple[str, ...] = CURVE_METRICS) -> Member:
    run = store.get_run(m.run_id)
    m.status = run["status"]
    m.results = RunResults.from_json(run.get("results"))
    m.diagnosis = run.get("diagnosis") or m.measured.diagnosis
    m.error = run.get("error") or m.error
    m.series = {name: curve_series(store, m.run_id, name) for name in metrics}
    return m


def out_dir_for(out_dir: str | Path | None, name: str) -> Path:
    """``out_dir/name`` (created), or a fresh temporary directory named after the study."""
    if out_dir is None:
        return Path(tempfile.mkdtemp(prefix=f"layerlab-{name}-"))
    path = Path(out_dir) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.{digits}g}"
    return str(v)


def finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    @property
    def s(self) -> float:
        return time.perf_counter() - self.t0


@contextmanager
def study_record(store, name: str, *, title: str, options: dict, dataset: str, members: list[Member]):
    """Prepare every member, then create the record run of study ``name``; mark it failed if the body raises.

    A member that cannot run raises InvalidSpec here, before the record or any run exists.
    """
    prepare_members(members)
    spec = {"name": f"study {name}", "study": name, "options": options, "data": {"dataset": dataset}}
    rid = create_record(store, kind="study", name=name, spec=spec, title=title)
    try:
        yield rid
    except BaseException as exc:
        fail_record(store, rid, f"{type(exc).__name__}: {exc}")
        raise


def trained_model(store, run_id: int):
    """``(spec, model)``: the run's spec and its final weights from the store (eval mode, CPU)."""
    from ..builder import build
    from ..train import WEIGHTS_ARTIFACT, load_weights
    spec = load_spec(store.get_run(run_id)["spec"])
    model = build(spec)
    load_weights(model, store.get_artifact(run_id, WEIGHTS_ARTIFACT))
    return spec, model.eval()


def weights_of(store, run_id: int) -> dict:
    """The run's final weights as ``{name: tensor}`` (CPU)."""
    from safetensors.torch import load
    from ..train import WEIGHTS_ARTIFACT
    return load(store.get_artifact(run_id, WEIGHTS_ARTIFACT))


def evaluate_run(store, run_id: int, split: str = "train", data=None) -> dict:
    """Loss and accuracy of the run's final weights on a whole split (e.g. train, for the overfitting gap)."""
    from ..train import evaluate
    spec, model = trained_model(store, run_id)
    data = data if data is not None else spec.data.load()
    return evaluate(model, data, split=split)


def last_predictions(store, run_id: int) -> list[dict]:
    """The items of the run's last ``prediction`` event (regression: ``{index, target, output}``)."""
    events = store.events(run_id, kinds=["prediction"])
    return events[-1]["payload"].get("predictions", []) if events else []
