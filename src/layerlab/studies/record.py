"""Study records: how a sweep, a study or a learning-rate range test lives in the store.

The store knows runs, metric series, events and artifacts; a study is kept in those, with no
table of its own:

* **The record** is a run of its own (the *record run*) whose ``kind`` column says what it is
  (``sweep``, ``lr-find`` or ``study``; ordinary runs are ``run``). Its ``model`` column
  reads ``sweep``, ``lr-find`` or ``study:<name>`` and its name starts with that word
  (``sweep 12: fc100-relu-fc10 · lr``), for people to read; the study's name is found by
  that ``model`` text, the kind only by the column. It is ``running`` while the study runs
  and ``finished`` (or ``failed``) after; its ``spec`` is the base spec (sweeps, lr-find) or
  ``{"name", "study", "options", "data"}`` (studies). It carries no training metrics of its own
  except what the study measures itself (lr-find's loss curve, the init study's per-step
  gradient norms).
* **Membership**: each member (trial) run's ``parent`` column is the record's id
  (``store.list_runs(parent=record_id)`` lists them). Each member also gets a ``study`` event
  ``{"record": <record id>, "kind", "index", "values", "label"}``, and the record a ``member``
  event ``{"run_id", "index", "values", "label"}`` per member, which keep the index, values
  and label. Trial run names also say it: ``sweep 12 #3 · lr=0.01``.
* **Results**: the record's ``results`` (``Store.set_results``) and its ``study.json`` artifact
  (kind ``study``) hold the numbers and tables; each figure is a PNG artifact (kind
  ``figure``, name ``figures/<key>.png``), so ``layerlab report`` can rebuild the page from the
  store alone, on any machine that can reach it.

Stores written before the ``kind``/``parent`` columns existed are upgraded when opened: both
are filled in from the ``model`` markers and the ``study`` events.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunNotFound, StoreError

__all__ = ["StudyResult", "Table", "create_record", "add_member", "finish_record", "fail_record",
           "load_record", "find_records", "is_record", "STUDY_ARTIFACT", "RECORD_KINDS", "record_kind",
           "failed_members", "failure_text"]

STUDY_ARTIFACT = "study.json"
FIGURE_PREFIX = "figures/"
RECORD_KINDS = ("sweep", "lr-find", "study")  # the store's run kinds that are records


@dataclass
class Table:
    """A table for the terminal and the report: a title, column names and rows of cells."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""

    def to_dict(self) -> dict:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "note": self.note}

    @classmethod
    def from_dict(cls, d: dict) -> "Table":
        return cls(d["title"], list(d["columns"]), [list(r) for r in d["rows"]], d.get("note", ""))


@dataclass
class StudyResult:
    """What a sweep or study returns: its record, members, numbers, tables and figures.

    ``numbers`` holds the measured values the docs and tests quote (JSON types only);
    ``figures`` maps a key (``curves``, ``final``, ...) to a PNG path on this machine.
    """

    kind: str                   # "sweep" | "lr-find" | "study"
    name: str                   # "sweep", "lr-find" or the study's name
    record_id: int | None
    runs: list[int] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    elapsed_s: float = 0.0
    title: str = ""
    text: str = ""              # one paragraph for the report: what was done, what it shows
    options: dict = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)   # figure key -> one sentence for the report
    failed: list[dict] = field(default_factory=list)  # members that failed: {run_id, label, error} (finish_record)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "record_id": self.record_id, "runs": self.runs,
                "numbers": self.numbers, "tables": [t.to_dict() for t in self.tables],
                "figures": sorted(self.figures), "elapsed_s": self.elapsed_s, "title": self.title,
                "text": self.text, "options": self.options, "captions": self.captions, "failed": self.failed}


def record_kind(run: dict) -> str | None:
    """``sweep``, ``lr-find``, ``study`` for a record run (its ``kind``), None for an ordinary run."""
    kind = run.get("kind")
    return kind if kind in RECORD_KINDS else None


def is_record(run: dict) -> bool:
    return record_kind(run) is not None


def create_record(store, *, kind: str, name: str, spec: dict, title: str) -> int:
    """Create the running record run of a study; return its id."""
    if kind not in RECORD_KINDS:
        raise StoreError(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_KINDS)}")
    model = kind if kind in ("sweep", "lr-find") else f"study:{name}"
    versions = _versions()
    run_id = store.create_run(spec, name=f"{kind if kind != 'study' else 'study ' + name} …", status="running",
                              model=model, versions=versions, device="cpu", kind=kind)
    label = f"{kind} {run_id}: {title}" if kind != "study" else f"study {name} {run_id}: {title}"
    store.rename_run(run_id, label[:200])
    return run_id


def add_member(store, record_id: int, run_id: int, *, kind: str, index: int, values: dict, label: str) -> None:
    """Make ``run_id`` a member of the record: its ``parent``, plus the ``study``/``member`` events."""
    values = _json_safe(values)
    store.set_parent(run_id, record_id)
    store.add_event(run_id, "study", {"record": record_id, "kind": kind, "index": index, "values": values,
                                      "label": label})
    store.add_event(record_id, "member", {"run_id": run_id, "index": index, "values": values, "label": label})


def finish_record(store, result: StudyResult) -> None:
    """Store numbers, tables and figures on the record and mark it finished.

    Members that failed (read from the store) are named in ``result.failed`` and in the first
    sentence of ``result.text``: a study whose numbers miss some members says which.
    """
    rid = result.record_id
    if rid is None:
        return
    result.failed = failed_members(store, rid)
    if result.failed:
        said = failure_text(result.failed, of=len(members(store, rid))) + "."
        result.text = f"{said} {result.text}".strip() if said not in result.text else result.text
    data = _json_safe(result.to_dict())
    store.put_artifact(rid, STUDY_ARTIFACT, json.dumps(data, indent=1).encode(), kind="study",
                       media_type="application/json")
    for key, path in result.figures.items():
        store.put_artifact(rid, f"{FIGURE_PREFIX}{key}.png", Path(path).read_bytes(), kind="figure",
                           media_type="image/png")
    store.set_results(rid, data)
    store.set_status(rid, "finished")


def fail_record(store, record_id: int | None, error: str) -> None:
    if record_id is None:
        return
    try:
        store.set_status(record_id, "failed", error=error[:2000])
    except StoreError:  # already final: the original error matters more
        pass


def load_record(store, record_id: int) -> dict:
    """The record's ``study.json`` with its figures as PNG bytes: ``{..., "figure_bytes": {key: bytes}}``."""
    try:
        data = json.loads(store.get_artifact(record_id, STUDY_ARTIFACT))
    except StoreError:
        run = store.get_run(record_id)
        raise StoreError(f"run {record_id} ({run['name']}) has no study results "
                         f"(status {run['status']}); it may still be running or have failed") from None
    figures = {}
    for art in store.list_artifacts(record_id):
        if art["kind"] == "figure" and art["name"].startswith(FIGURE_PREFIX):
            figures[art["name"][len(FIGURE_PREFIX):].removesuffix(".png")] = store.get_artifact(record_id, art["name"])
    data["figure_bytes"] = {k: figures[k] for k in data.get("figures", []) if k in figures}
    return data


def find_records(store, *, name: str | None = None, kind: str | None = None, limit: int = 50) -> list[dict]:
    """Record runs, newest first; ``name`` a study name (``toy-functions``), ``kind`` sweep/lr-find/study.

    Queries the store by ``kind`` (and a study's name by its ``model`` text), so the newest
    record is found however many member or other runs came after it.
    """
    if kind is not None and kind not in RECORD_KINDS:
        raise StoreError(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_KINDS)}")
    if name:
        if kind not in (None, "study"):
            return []  # only studies have names
        return store.list_runs(kind="study", model=f"study:{name}", limit=limit)
    found = [run for k in ([kind] if kind else RECORD_KINDS) for run in store.list_runs(kind=k, limit=limit)]
    return sorted(found, key=lambda run: run["id"], reverse=True)[:limit]


def members(store, record_id: int) -> list[dict]:
    """``[{"run_id", "index", "values", "label"}, ...]`` in index order."""
    rows = [e["payload"] for e in store.events(record_id, kinds=["member"])]
    return sorted(rows, key=lambda p: p.get("index", 0))


def failed_members(store, record_id: int) -> list[dict]:
    """``[{"run_id", "label", "error"}, ...]``: the record's members whose run is ``failed``, in index order."""
    failed = []
    for m in members(store, record_id):
        try:
            run = store.get_run(m["run_id"])
        except RunNotFound:  # deleted meanwhile: it cannot be counted either way, and must not stop the record
            continue
        if run["status"] == "failed":
            failed.append({"run_id": m["run_id"], "label": m.get("label", ""), "error": run.get("error")})
    return failed


def failure_text(failed: list, *, every: bool = False, of: int | None = None) -> str:
    """Which members failed and why, with a cause they share said once: "all 6 members failed, each with
    DataError: …" or "2 of 6 members failed: run 5 (MLP · adam): …; run 7 (…): …".

    ``failed``: ``common.Member`` objects, or ``{"run_id", "label", "error"}`` dicts (``failed_members``).
    """
    rows = [(m["run_id"], m["label"], m["error"]) if isinstance(m, dict) else (m.run_id, m.label, m.error)
            for m in failed]
    errors = {e or "no error recorded" for _, _, e in rows}
    n = len(rows)
    head = f"all {n} members failed" if every else f"{n} of {of} members failed" if of else f"{n} member(s) failed"
    if len(errors) == 1 and n > 1:
        runs = ", ".join(str(r) for r, _, _ in rows)
        return f"{head}, each with the same error: {errors.pop()} (runs {runs})"
    return f"{head}: " + "; ".join(f"run {r} ({label}): {e or 'no error recorded'}" for r, label, e in rows)


def _versions() -> dict:
    import platform
    from .. import __version__
    out = {"layerlab": __version__, "python": platform.python_version()}
    try:
        import torch
        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _json_safe(obj.item())
    return obj
