"""Warm workers: the pool's processes are started ahead of time, reused, and keep their data.

Real worker processes over a real SQLite store (the app under TestClient, as in
test_server_api.py). What is checked: a worker is ready before any run exists; two runs in a
row go to the same process and the second finds its data set resident; the stages each run
passed are stored in order; a queued run's place is told again when the queue moves; a worker
killed mid-run leaves its run interrupted and is replaced; cold mode starts one process per run.
"""
from __future__ import annotations

import signal
import time

import psutil
import pytest
from fastapi.testclient import TestClient

from layerlab.server import create_app
from layerlab.server.pool import POOL_EVENT
from layerlab.stages import STAGE_EVENT, STAGES
from layerlab.store import Store

pytestmark = pytest.mark.slow  # worker processes import torch

ACT = {"X-Layerlab": "1"}
TINY = {"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
        "train": {"examples": 2000, "batch_size": 64}}
LONG = {**TINY, "train": {"examples": 10_000_000, "batch_size": 16}}
OVER = ("finished", "stopped", "diverged", "failed", "interrupted")


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "runs.db")
    yield s
    s.close()


def wait_for(what, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)
    return value


def finish(client, run_id, statuses=OVER):
    return wait_for(f"run {run_id} to end", lambda: (r := client.get(f"/api/runs/{run_id}").json())["status"]
                    in statuses and r)


def stages(store, run_id) -> list[dict]:
    return [e["payload"] for e in store.events(run_id, kinds=[STAGE_EVENT])]


def worker_pid(store, run_id) -> int:
    return [e["payload"]["worker_pid"] for e in store.events(run_id, kinds=[POOL_EVENT])
            if e["payload"]["action"] == "launched"][-1]


def test_a_warm_worker_is_reused_and_keeps_the_data(store):
    with TestClient(create_app(store, workers=1), base_url="http://127.0.0.1") as client:
        pool = client.app.state.pool
        assert pool.warm
        wait_for("the worker to be warm", lambda: pool.warm_workers() == 1)
        first = client.post("/api/runs", json={"spec": TINY}).json()["id"]
        assert finish(client, first)["status"] == "finished"
        second = client.post("/api/runs", json={"spec": {**TINY, "train": {**TINY["train"], "seed": 1}}}).json()["id"]
        assert finish(client, second)["status"] == "finished"
        assert worker_pid(store, first) == worker_pid(store, second)  # one process trained both
        wait_for("the worker to be idle again", lambda: pool.warm_workers() == 1)

    for run_id, resident in ((first, False), (second, True)):
        seen = stages(store, run_id)
        assert [s["stage"] for s in seen] == list(STAGES), seen
        assert seen[0] == {"stage": "queued", "position": 1, "of": 1}
        assert seen[1]["warm"] is True and seen[1]["worker"] == worker_pid(store, run_id)
        assert seen[2] == {"stage": "loading_data", "resident": resident}
    assert [e["payload"]["status"] for e in store.events(second, kinds=["status"])] == ["queued", "running", "finished"]


def test_a_queued_run_is_told_its_new_place(store):
    with TestClient(create_app(store, workers=1), base_url="http://127.0.0.1") as client:
        blocker = client.post("/api/runs", json={"spec": LONG}).json()["id"]
        finish(client, blocker, statuses=("running",))
        middle = client.post("/api/runs", json={"spec": TINY}).json()["id"]
        last = client.post("/api/runs", json={"spec": TINY}).json()["id"]
        assert client.post(f"/api/runs/{middle}/stop", headers=ACT).json()["status"] == "stopped"
        wait_for("the new place to be stored", lambda: len(stages(store, last)) == 2)
        assert stages(store, last) == [{"stage": "queued", "position": 2, "of": 2},
                                       {"stage": "queued", "position": 1, "of": 1}]
        client.post(f"/api/runs/{blocker}/stop", headers=ACT)
        assert finish(client, last)["status"] == "finished"
    assert [s["stage"] for s in stages(store, middle)] == ["queued"]  # it never reached a worker


def test_a_worker_killed_mid_run_is_replaced(store):
    with TestClient(create_app(store, workers=1), base_url="http://127.0.0.1") as client:
        pool = client.app.state.pool
        victim = client.post("/api/runs", json={"spec": LONG}).json()["id"]
        finish(client, victim, statuses=("running",))
        pid = worker_pid(store, victim)
        psutil.Process(pid).send_signal(signal.SIGKILL)  # as the kernel's OOM killer would
        assert finish(client, victim)["status"] == "interrupted"  # resumable, not lost
        wait_for("a fresh worker", lambda: pool.warm_workers() == 1)
        after = client.post("/api/runs", json={"spec": TINY}).json()["id"]
        assert finish(client, after)["status"] == "finished"
        assert worker_pid(store, after) != pid


def test_cold_workers_start_one_process_per_run(store, monkeypatch):
    monkeypatch.setenv("LAYERLAB_WARM_WORKERS", "0")
    with TestClient(create_app(store, workers=1), base_url="http://127.0.0.1") as client:
        pool = client.app.state.pool
        assert not pool.warm and pool.warm_workers() == 0  # nothing started ahead
        runs = [client.post("/api/runs", json={"spec": TINY}).json()["id"] for _ in range(2)]
        assert [finish(client, r)["status"] for r in runs] == ["finished", "finished"]
    assert worker_pid(store, runs[0]) != worker_pid(store, runs[1])
    assert [s.get("warm") for r in runs for s in stages(store, r) if s["stage"] == "starting"] == [False, False]


def test_a_workers_data_cache_keys_by_device_and_data_path_and_never_refuses(tmp_path, monkeypatch):
    from layerlab.server.datacache import DataCache, data_key, resident_bytes
    from layerlab.spec import DataSpec

    small, other = DataSpec(dataset="digits", train_size=300, test_size=50), DataSpec(dataset="digits", test_size=60)
    one = resident_bytes(small.load(device="cpu"))
    cache = DataCache(size=2, max_bytes=int(1.5 * one), refuse_larger=False)
    data = cache.for_data_spec(small, device="cpu")
    assert cache.holds(small, device="cpu") and cache.resident() == [data_key(small)]
    assert cache.for_data_spec(small, device="cpu") is data  # resident: not loaded again
    big = cache.for_data_spec(other, device="cpu")  # over the bound: its caller's, not kept
    assert len(big.test) == 60 and not cache.holds(other, device="cpu") and cache.resident() == [data_key(small)]
    monkeypatch.setenv("LAYERLAB_DATA", str(tmp_path))  # other files could answer to the same spec now
    assert not cache.holds(small, device="cpu")
