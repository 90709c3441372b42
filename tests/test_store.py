"""The run store against a real SQLite file and, with LAYERLAB_TEST_PG_URL, a real PostgreSQL.

PostgreSQL: ``eval "$(scripts/postgres.sh --export)"`` (as root) sets the URL; each test gets
its own schema in that database, dropped afterwards.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import pickle
import signal
import socket
import time

import pytest
import sqlalchemy as sa

from store_backends import run_together, url  # noqa: F401  (a fixture: SQLite, and PostgreSQL when configured)
from layerlab.errors import StoreError
from layerlab.store import SCHEMA_VERSION, STATUSES, Store, resolve_url
from layerlab.store.schema import artifacts, events, metrics, runs, schema_version

SPEC = {
    "name": "mlp on mnist",
    "data": {"dataset": "mnist", "normalize": "-1..1"},
    "model": ["flatten", {"fc": {"units": 128}}, "relu", {"fc": {"units": 10}}],
    "train": {"epochs": 2, "lr": 0.1, "seed": 7},
}


@pytest.fixture
def store(url):
    s = Store(url, check_interval=None)
    yield s
    s.close()


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def count(store: Store, table: sa.Table, run_id: int) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.run_id == run_id)).scalar()


# ------------------------------------------------------------------ round trips


def test_every_run_field_round_trips(store):
    t0 = time.time()
    run_id = store.create_run(SPEC, seed=11, versions={"torch": "2.13.0"}, device="cpu")
    store.start_run(run_id, device="cuda:0", versions={"torch": "2.13.0", "numpy": "2.1"})
    store.heartbeat(run_id, step=42, examples=5376)
    store.set_results(run_id, {"test_accuracy": 0.9312, "loss": math.nan, "grad": -math.inf, "per_class": [0.5, 1.0]})
    store.set_status(run_id, "diverged", diagnosis="loss became NaN at step 42; lower the learning rate",
                     error="FloatingPointError: nan loss")
    run = store.get_run(run_id)

    assert run["id"] == run_id
    assert run["name"] == "mlp on mnist"
    assert run["spec"] == SPEC
    assert run["dataset"] == "mnist"
    assert run["model"] == "flatten-fc128-relu-fc10"
    assert run["seed"] == 11
    assert run["status"] == "diverged"
    assert run["device"] == "cuda:0"
    assert run["versions"] == {"torch": "2.13.0", "numpy": "2.1"}
    assert run["host"] == socket.gethostname()
    assert run["pid"] == os.getpid()
    assert run["diagnosis"] == "loss became NaN at step 42; lower the learning rate"
    assert run["error"] == "FloatingPointError: nan loss"
    assert run["step"] == 42 and run["examples"] == 5376
    assert run["stop_requested"] is False
    results = run["results"]
    assert results["test_accuracy"] == 0.9312 and math.isnan(results["loss"]) and results["grad"] == -math.inf
    assert results["per_class"] == [0.5, 1.0]
    assert t0 <= run["created_at"] <= run["started_at"] <= run["finished_at"] <= time.time()
    assert run["updated_at"] >= run["started_at"]
    assert run["best_test_accuracy"] is None
    statuses = [(e["payload"]["from"], e["payload"]["status"]) for e in store.events(run_id, kinds=["status"])]
    assert statuses == [(None, "queued"), ("queued", "running"), ("running", "diverged")]


def test_defaults_come_from_the_spec(store):
    spec = {"data": "fashion-mnist", "model": [{"kind": "fc", "units": 8}, "relu"], "seed": 3}
    run_id = store.create_run(spec)
    run = store.get_run(run_id)
    assert (run["name"], run["dataset"], run["model"], run["seed"]) == (f"run {run_id}", "fashion-mnist", "fc8-relu", 3)
    assert run["status"] == "queued" and run["started_at"] is None and run["host"] is None
    assert run["spec"] == spec and run["results"] is None and run["versions"] is None


def test_a_spec_object_is_stored_as_its_data(store):
    spec_module = pytest.importorskip("layerlab.spec")
    spec = spec_module.load_spec("mnist-fc")
    run = store.get_run(store.create_run(spec))
    assert run["spec"] == spec.to_dict()
    assert (run["name"], run["dataset"], run["model"], run["seed"]) == (
        spec.name, spec.data.dataset, spec.model_label(), spec.train.seed)


def test_metric_values_round_trip_faithfully(store):
    run_id = store.create_run(SPEC)
    values = [0.0, -1.5, 1e300, -1e-300, 5e-324, math.nan, math.inf, -math.inf, 0.1]
    store.add_metrics(run_id, [("loss", i, 32 * i, 0.5 * i, v) for i, v in enumerate(values)])
    rows = store.metrics(run_id)
    assert [r["step"] for r in rows] == list(range(len(values)))
    assert [r["examples"] for r in rows] == [32 * i for i in range(len(values))]
    assert [r["wall_time"] for r in rows] == [0.5 * i for i in range(len(values))]
    assert all(same(r["value"], v) for r, v in zip(rows, values, strict=True)), [r["value"] for r in rows]
    assert set(rows[0]) == {"id", "name", "step", "examples", "wall_time", "value"}
    got = store.series(run_id, "loss")
    assert [e for e, _ in got] == [32 * i for i in range(len(values))]
    assert all(same(v, w) for (_, v), w in zip(got, values, strict=True))


def test_best_test_accuracy_ignores_nan_and_inf(store):
    run_id = store.create_run(SPEC)
    store.add_metrics(run_id, [("test_accuracy", 1, 10, 1.0, 0.61), ("test_accuracy", 2, 20, 2.0, math.nan),
                               ("test_accuracy", 3, 30, 3.0, 0.87), ("test_accuracy", 4, 40, 4.0, math.inf),
                               ("train_accuracy", 4, 40, 4.0, 0.99)])
    assert store.get_run(run_id)["best_test_accuracy"] == 0.87
    assert store.list_runs()[0]["best_test_accuracy"] == 0.87


def test_bad_metric_rows_are_rejected_whole(store):
    run_id = store.create_run(SPEC)
    with pytest.raises(StoreError, match=r"metric row 1 must be \(name, step, examples, wall_time, value\)"):
        store.add_metrics(run_id, [("loss", 1, 1, 0.0, 1.0), ("loss", 2, 2, 0.0)])
    assert store.metrics(run_id) == []


def test_a_failed_transaction_leaves_nothing(store):
    run_id = store.create_run(SPEC)

    def half_then_crash(conn):
        conn.execute(sa.insert(metrics), [{"run_id": run_id, "name": "loss", "step": 1, "examples": 1,
                                           "wall_time": 0.0, "value": 1.0}])
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        store._tx(half_then_crash)
    assert count(store, metrics, run_id) == 0


# ------------------------------------------------------------------ statuses

ALLOWED = {
    "queued": {"running", "stopped", "failed"},
    "running": {"finished", "stopped", "diverged", "failed", "interrupted"},
    "interrupted": {"running", "stopped", "failed"},
    "stopped": {"running"},
    "finished": set(),
    "diverged": set(),
    "failed": set(),
}
PATH_TO = {  # set_status calls from 'queued'
    "queued": [], "running": ["running"], "interrupted": ["running", "interrupted"],
    "stopped": ["running", "stopped"], "finished": ["running", "finished"],
    "diverged": ["running", "diverged"], "failed": ["running", "failed"],
}


def test_status_transition_table(store):
    assert set(ALLOWED) == set(STATUSES)
    for old in STATUSES:
        for new in STATUSES:
            run_id = store.create_run(SPEC)
            for step in PATH_TO[old]:
                store.set_status(run_id, step)
            assert store.get_run(run_id)["status"] == old
            if new in ALLOWED[old]:
                store.set_status(run_id, new)
                run = store.get_run(run_id)
                assert run["status"] == new, (old, new)
                assert (run["finished_at"] is not None) == (new != "running"), (old, new)
            else:
                allowed = ", ".join(sorted(ALLOWED[old])) or "none, it is final"
                message = f"run {run_id} cannot go from '{old}' to '{new}' (allowed from '{old}': {allowed})"
                with pytest.raises(StoreError) as info:
                    store.set_status(run_id, new)
                assert str(info.value) == message
                assert store.get_run(run_id)["status"] == old


def test_status_errors_name_the_problem(store):
    run_id = store.create_run(SPEC)
    with pytest.raises(StoreError, match="unknown run status 'done'; expected one of queued, running, finished"):
        store.set_status(run_id, "done")
    with pytest.raises(StoreError, match="^run 999 not found$"):
        store.set_status(999, "running")
    with pytest.raises(StoreError, match="a new run's status must be 'queued' or 'running'"):
        store.create_run(SPEC, status="finished")


def test_start_and_resume(store):
    run_id = store.create_run(SPEC)
    store.start_run(run_id, device="cpu", versions={})
    with pytest.raises(StoreError, match="cannot go from 'running' to 'running'"):
        store.start_run(run_id, device="cpu", versions={})
    store.request_stop(run_id)
    assert store.stop_requested(run_id) is True
    assert store.get_run(run_id)["status"] == "running"  # the trainer decides when to stop
    store.set_status(run_id, "stopped")
    with pytest.raises(StoreError, match=f"run {run_id} was stopped; pass resume=True"):
        store.start_run(run_id, device="cpu", versions={})
    store.start_run(run_id, device="cuda", versions={"torch": "x"}, resume=True)
    run = store.get_run(run_id)
    assert (run["status"], run["device"], run["stop_requested"], run["finished_at"]) == ("running", "cuda", False, None)
    store.set_status(run_id, "interrupted")
    store.start_run(run_id, device="cpu", versions={})  # resuming an interrupted run needs no flag
    assert store.get_run(run_id)["status"] == "running"


def test_request_stop_cancels_a_queued_run(store):
    run_id = store.create_run(SPEC)
    assert store.stop_requested(run_id) is False
    store.request_stop(run_id)
    run = store.get_run(run_id)
    assert (run["status"], run["stop_requested"]) == ("stopped", True)
    assert [e["kind"] for e in store.events(run_id)] == ["status", "stop_requested", "status"]
    with pytest.raises(StoreError, match="^run 12345 not found$"):
        store.stop_requested(12345)


# ------------------------------------------------------------------ paging, events, artifacts


def test_metrics_after_id_paging(store):
    run_id, other = store.create_run(SPEC), store.create_run(SPEC)
    written = []
    for batch in range(3):
        rows = [("loss" if i % 2 else "accuracy", batch * 10 + i, 64 * (batch * 10 + i), float(batch), i / 10)
                for i in range(10)]
        store.add_metrics(run_id, rows)
        store.add_metrics(other, rows[:3])
        written += rows
    pages, after = [], 0
    while page := store.metrics(run_id, after_id=after, limit=7):
        pages.append(page)
        after = page[-1]["id"]
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    got = [r for p in pages for r in p]
    assert [(r["name"], r["step"], r["examples"], r["wall_time"], r["value"]) for r in got] == written
    ids = [r["id"] for r in got]
    assert ids == sorted(ids) and len(set(ids)) == 30
    assert store.metrics(run_id, after_id=ids[-1]) == []
    assert [r["id"] for r in store.metrics(run_id, after_id=ids[9])] == ids[10:]
    assert [r["step"] for r in store.metrics(run_id, names=["loss"], after_id=ids[9])] == list(range(11, 30, 2))
    assert store.metrics(run_id, names=["nope"]) == []


def test_events_paging_and_kinds(store):
    run_id = store.create_run(SPEC)
    first = store.add_event(run_id, "prediction", {"images": [1, 2], "confidence": math.nan})
    second = store.add_event(run_id, "diagnosis", {"text": "dead ReLUs in layer 2"})
    got = store.events(run_id, after_id=first)
    assert [(e["id"], e["kind"], e["payload"]) for e in got] == [(second, "diagnosis", {"text": "dead ReLUs in layer 2"})]
    (pred,) = store.events(run_id, kinds=["prediction"])
    assert pred["payload"]["images"] == [1, 2] and math.isnan(pred["payload"]["confidence"])
    assert pred["run_id"] == run_id and pred["time"] > 0
    with pytest.raises(StoreError, match="^run 999 not found$"):
        store.add_event(999, "x", {})
    with pytest.raises(StoreError, match="cannot store the 'x' event: object is not JSON data"):
        store.add_event(run_id, "x", {"o": object()})


def test_artifacts_overwrite_and_missing(store):
    run_id, other = store.create_run(SPEC), store.create_run(SPEC)
    weights = bytes(range(256)) * 100
    store.put_artifact(run_id, "weights.safetensors", weights, kind="weights")
    store.put_artifact(run_id, "loss.png", b"\x89PNG...", kind="plot", media_type="image/png")
    store.put_artifact(other, "weights.safetensors", b"other", kind="weights")
    assert store.get_artifact(run_id, "weights.safetensors") == weights
    store.put_artifact(run_id, "weights.safetensors", b"new weights", kind="checkpoint", media_type="application/x-st")
    assert store.get_artifact(run_id, "weights.safetensors") == b"new weights"
    assert store.get_artifact(other, "weights.safetensors") == b"other"
    listed = store.list_artifacts(run_id)
    assert [(a["name"], a["kind"], a["media_type"], a["size"]) for a in listed] == [
        ("loss.png", "plot", "image/png", 7),
        ("weights.safetensors", "checkpoint", "application/x-st", 11),
    ]
    assert count(store, artifacts, run_id) == 2
    with pytest.raises(StoreError, match=f"^run {run_id} has no artifact named 'nope.bin'$"):
        store.get_artifact(run_id, "nope.bin")
    with pytest.raises(StoreError, match="^run 999 not found$"):
        store.put_artifact(999, "w", b"x", kind="weights")


def test_safetensors_weights_round_trip(store):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load, save

    tensors = {"0.weight": torch.randn(4, 3), "0.bias": torch.tensor([math.nan, math.inf, 0.0, 1.0])}
    run_id = store.create_run(SPEC)
    store.put_artifact(run_id, "weights", save(tensors), kind="weights")
    back = load(store.get_artifact(run_id, "weights"))
    assert torch.equal(back["0.weight"], tensors["0.weight"])
    assert torch.equal(back["0.bias"].isnan(), tensors["0.bias"].isnan())


def test_delete_cascades(store):
    keep, gone = store.create_run(SPEC), store.create_run(SPEC)
    for run_id in (keep, gone):
        store.add_metrics(run_id, [("loss", i, i, 0.0, 1.0) for i in range(5)])
        store.add_event(run_id, "note", {"i": run_id})
        store.put_artifact(run_id, "w", b"xyz", kind="weights")
    store.start_run(gone, device="cpu", versions={})
    with pytest.raises(StoreError, match=f"run {gone} is running; stop it before deleting it"):
        store.delete_run(gone)
    store.delete_run(gone, force=True)
    for table in (metrics, events, artifacts):
        assert count(store, table, gone) == 0, table.name
    assert count(store, metrics, keep) == 5 and count(store, events, keep) == 2 and count(store, artifacts, keep) == 1
    with pytest.raises(StoreError, match=f"^run {gone} not found$"):
        store.get_run(gone)
    with pytest.raises(StoreError, match=f"^run {gone} not found$"):
        store.delete_run(gone)
    assert [r["id"] for r in store.list_runs()] == [keep]
    assert store.create_run(SPEC) > gone  # a deleted id is never reused


def test_list_filters_and_rename(store):
    a = store.create_run({**SPEC, "name": "wide mlp"})
    b = store.create_run({"data": {"dataset": "cifar10"}, "model": [{"conv2d": {"depth": 16}}]}, name="CNN 100%")
    c = store.create_run({"data": {"dataset": "mnist"}, "model": [{"fc": {"units": 10}}]})
    store.start_run(b, device="cpu", versions={})
    ids = lambda **kw: [r["id"] for r in store.list_runs(**kw)]  # noqa: E731
    assert ids() == [c, b, a]
    assert ids(status="running") == [b]
    assert ids(status="queued") == [c, a]
    assert ids(dataset="mnist") == [c, a]
    assert ids(dataset="cifar10", status="queued") == []
    assert ids(search="WIDE") == [a]
    assert ids(search="conv2d") == [b]  # model summary
    assert ids(search="100%") == [b]  # % is literal
    assert ids(search="1_0") == []  # _ is literal
    assert ids(search="FC10") == [c, a]
    assert ids(limit=2) == [c, b]
    listed = store.list_runs(status="running")[0]
    assert listed["spec"]["data"] == {"dataset": "cifar10"} and listed["name"] == "CNN 100%"
    store.rename_run(a, "  renamed  ")
    assert store.get_run(a)["name"] == "renamed"
    with pytest.raises(StoreError, match="a run name must have 1 to 200 characters"):
        store.rename_run(a, " ")
    with pytest.raises(StoreError, match="^run 999 not found$"):
        store.rename_run(999, "x")
    with pytest.raises(StoreError, match="unknown run status"):
        store.list_runs(status="done")


def test_schema_version_is_recorded_and_checked(url):
    with Store(url) as store:
        with store.engine.begin() as conn:
            assert conn.execute(sa.select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]
            conn.execute(sa.update(schema_version).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match=rf"written by a newer layerlab \(schema version {SCHEMA_VERSION + 1}\)"):
        Store(url)


# ------------------------------------------------------------------ interrupted runs & processes


def _run_then_hang(url: str, queue) -> None:
    store = Store(url)
    run_id = store.create_run(SPEC)
    store.start_run(run_id, device="cpu", versions={})
    store.heartbeat(run_id, step=3, examples=96)
    queue.put(run_id)
    time.sleep(120)


def test_killed_process_leaves_an_interrupted_run(store, url):
    alive = store.create_run(SPEC)
    store.start_run(alive, device="cpu", versions={})  # this process: alive, never interrupted
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_then_hang, args=(url, queue))
    proc.start()
    try:
        run_id = queue.get(timeout=60)
        assert store.mark_interrupted() == []
        assert store.get_run(run_id)["status"] == "running"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    assert store.mark_interrupted() == [run_id]
    run = store.get_run(run_id)
    assert (run["status"], run["step"], run["examples"], run["pid"]) == ("interrupted", 3, 96, proc.pid)
    assert run["finished_at"] is not None
    last = store.events(run_id, kinds=["status"])[-1]["payload"]
    assert last == {"status": "interrupted", "from": "running", "reason": f"process {proc.pid} on {run['host']} is gone",
                    "cause": "process gone"}
    assert store.get_run(alive)["status"] == "running"
    assert store.mark_interrupted() == []  # already done
    store.start_run(run_id, device="cpu", versions={})  # and it can be resumed
    assert store.get_run(run_id)["pid"] == os.getpid()


def test_get_run_checks_for_dead_runs_itself(url):
    with Store(url, check_interval=0) as store:
        run_id = store.create_run(SPEC, status="running")
        with store.engine.begin() as conn:  # a pid that cannot exist
            conn.execute(sa.update(runs).where(runs.c.id == run_id).values(pid=2**22 + 12345))
        assert store.get_run(run_id)["status"] == "interrupted"


def test_silent_run_on_another_host_times_out_and_revives(url):
    with Store(url, heartbeat_timeout=60, check_interval=None) as store:
        run_id = store.create_run(SPEC)
        store.start_run(run_id, device="cpu", versions={})
        fresh = store.create_run(SPEC)
        store.start_run(fresh, device="cpu", versions={})
        with store.engine.begin() as conn:
            conn.execute(sa.update(runs).where(runs.c.id.in_([run_id, fresh])).values(host="gpu-node-7"))
            conn.execute(sa.update(runs).where(runs.c.id == run_id).values(updated_at=time.time() - 61))
        assert store.mark_interrupted() == [run_id]
        assert store.get_run(fresh)["status"] == "running"
        assert store.mark_interrupted(timeout=0) == [fresh]
        # the run's own process turns out to be alive: its heartbeat puts it back
        with store.engine.begin() as conn:
            conn.execute(sa.update(runs).where(runs.c.id == run_id).values(host=socket.gethostname()))
        store.heartbeat(run_id, step=9)
        run = store.get_run(run_id)
        assert (run["status"], run["step"], run["finished_at"]) == ("running", 9, None)
        assert store.get_run(fresh)["status"] == "interrupted"
        # ... and so does its final status (the transition is judged as from 'running')
        with store.engine.begin() as conn:
            conn.execute(sa.update(runs).where(runs.c.id == fresh).values(host=socket.gethostname()))
        store.set_status(fresh, "finished")
        assert store.get_run(fresh)["status"] == "finished"
        assert store.events(fresh, kinds=["status"])[-1]["payload"] == {"status": "finished", "from": "interrupted"}
        # a run its own trainer marked interrupted (Ctrl-C) stays so: it only resumes
        own = store.create_run(SPEC, status="running")
        store.set_status(own, "interrupted")
        store.heartbeat(own, step=1)
        assert store.get_run(own)["status"] == "interrupted"
        with pytest.raises(StoreError, match="cannot go from 'interrupted' to 'finished'"):
            store.set_status(own, "finished")


def _write_metrics(url: str, run_id: int, writer: int, start, errors) -> None:
    try:
        store = Store(url)
        start.wait(60)  # all four write at once
        for batch in range(40):
            rows = [(f"w{writer}", batch * 50 + i, batch * 50 + i, time.time(), (batch * 50 + i) / 7) for i in range(50)]
            store.add_metrics(run_id, rows)
            if batch % 10 == 0:
                store.heartbeat(run_id, step=batch)
                store.add_event(run_id, "progress", {"writer": writer, "batch": batch})
        store.close()
    except BaseException as e:  # report, don't just die
        errors.put(f"writer {writer}: {type(e).__name__}: {e}")
        raise


def test_concurrent_writers(store, url):
    run_id = store.create_run(SPEC, status="running")
    run_together(_write_metrics, [(url, run_id, w) for w in range(4)])
    rows = store.metrics(run_id)
    assert len(rows) == 8000
    for w in range(4):
        mine = [r for r in rows if r["name"] == f"w{w}"]
        assert [r["step"] for r in mine] == list(range(2000))  # each writer's rows in its order
        assert mine[-1]["value"] == 1999 / 7
    assert len(store.events(run_id, kinds=["progress"])) == 16


def _child_uses_inherited_store(store: Store, run_id: int) -> None:
    store.add_metrics(run_id, [("child", i, i, 0.0, float(i)) for i in range(10)])
    store.heartbeat(run_id, step=10)
    os._exit(0 if store.get_run(run_id)["step"] == 10 else 1)


def test_store_survives_fork(store):
    run_id = store.create_run(SPEC)
    store.add_metrics(run_id, [("parent", 0, 0, 0.0, 1.0)])  # the parent's pool holds a connection
    proc = mp.get_context("fork").Process(target=_child_uses_inherited_store, args=(store, run_id))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    store.add_metrics(run_id, [("parent", 1, 1, 0.0, 2.0)])  # the parent's connection still works
    assert [r["name"] for r in store.metrics(run_id)] == ["parent"] + ["child"] * 10 + ["parent"]


def test_store_pickles_as_its_settings(store):
    run_id = store.create_run(SPEC)
    copy = pickle.loads(pickle.dumps(store))
    assert (copy.url, copy.heartbeat_timeout, copy.check_interval) == (store.url, 120.0, None)
    copy.add_metrics(run_id, [("loss", 1, 1, 0.0, 0.5)])
    assert store.series(run_id, "loss") == [(1, 0.5)]
    copy.close()


def test_unreachable_database_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match=r"the store at postgresql\+psycopg://u:\*\*\*@127.0.0.1:9/db failed"):
        Store("postgresql://u:secret@127.0.0.1:9/db")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="unable to open database file"):
        Store(tmp_path / "dir.db")


# ------------------------------------------------------------------ where the database is


def test_url_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("LAYERLAB_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_url() == f"sqlite:///{tmp_path}/xdg/layerlab/runs.db"
    assert (tmp_path / "xdg" / "layerlab").is_dir()
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_url() == f"sqlite:///{tmp_path}/home/.local/share/layerlab/runs.db"
    monkeypatch.setenv("LAYERLAB_DB", str(tmp_path / "env" / "deep" / "r.db"))
    assert resolve_url() == f"sqlite:///{tmp_path}/env/deep/r.db"
    assert (tmp_path / "env" / "deep").is_dir()
    monkeypatch.setenv("LAYERLAB_DB", f"sqlite:///{tmp_path}/u/x.db")
    assert resolve_url() == f"sqlite:///{tmp_path}/u/x.db" and (tmp_path / "u").is_dir()
    assert resolve_url(tmp_path / "arg.db") == f"sqlite:///{tmp_path}/arg.db"  # the argument wins
    assert resolve_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert resolve_url("postgresql+psycopg://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    with pytest.raises(StoreError, match="supports SQLite and PostgreSQL"):
        Store("mysql://u:p@h/db")


def test_store_opens_from_env_and_uses_wal(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_DB", str(tmp_path / "a" / "runs.db"))
    with Store() as store:
        run_id = store.create_run(SPEC)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    assert (tmp_path / "a" / "runs.db").is_file()
    with Store(tmp_path / "a" / "runs.db") as again:  # reopening keeps the data
        assert again.get_run(run_id)["spec"] == SPEC


def test_repr_hides_the_password():
    store = Store.__new__(Store)
    store.url = "postgresql+psycopg://layerlab:secret@127.0.0.1/db"
    assert "secret" not in repr(store) and "***" in repr(store)
