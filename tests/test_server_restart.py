"""Runs survive a server restart: real ``python -m layerlab.server`` processes killed and started again.

One server (two workers) is killed while, at once, (a) a run waits queued behind the others,
(b) a run's worker process is still starting (the run is ``queued``, its worker launched), and
(c) a run trains. Killed with SIGTERM (a graceful shutdown) or SIGKILL (no shutdown at all: the
workers notice their server is gone). A new server on the same store takes over (a) and (b)
by itself; (c) is ``interrupted`` and continues through ``POST /api/runs/{id}/resume``. Every
run ends ``finished``, and (c)'s metric rows are all there, each exactly once.

Before: (a) stayed queued for ever, (b) was marked failed ("exited with code -2 before training
started") on SIGTERM, and (c) could be resumed only from the CLI.
"""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

import httpx
import pytest

from layerlab.prepare import prepare_run
from layerlab.server.pool import POOL_EVENT, WorkerPool
from layerlab.store import Store
from layerlab.train.plan import make_plan

pytestmark = [pytest.mark.network, pytest.mark.slow]  # real servers killed and restarted

ACT = {"X-Layerlab": "1"}  # a write without a JSON body must say it is no form
TINY = {"name": "tiny", "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
        "train": {"examples": 2000, "batch_size": 64}}
LONG = {**TINY, "name": "long", "train": {"examples": 1_000_000, "batch_size": 64}}  # ~5 s of training here
DIGITS_TRAIN = 1438


class Server:
    """``python -m layerlab.server --port 0 --db DB --workers N`` in a subprocess, its log in a file."""

    def __init__(self, db, log_path, *, workers: int = 2, warm: bool = True):
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "layerlab.server", "--port", "0", "--db", str(db), "--workers", str(workers),
             "--log-level", "info"],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
            env=dict(os.environ, LAYERLAB_WARM_WORKERS="1" if warm else "0"))
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"the server printed no URL in 60 s:\n{self.log()}") from None
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match, (line, self.log())
        self.url = match.group(1)
        self.http = httpx.Client(base_url=self.url, headers=ACT, timeout=20)
        wait_for("the server to answer", self._answers, 30)

    def _answers(self) -> bool:
        try:
            return self.http.get("/api/health").status_code == 200
        except httpx.TransportError:
            return False

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-4000:]

    def stop(self, sig: int, timeout: float = 30) -> None:
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the server did not exit {timeout} s after {signal.Signals(sig).name}") from None
        finally:
            self.http.close()
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def wait_for(what: str, predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)
    return value


def status_of(store: Store, run_id: int) -> str:
    return store.get_run(run_id)["status"]


def assert_rows_once_and_complete(store: Store, run_id: int, spec: dict) -> None:
    """Per metric name, steps strictly increase (none twice) and every log point of the plan is there."""
    by_name: dict[str, list[int]] = defaultdict(list)
    for row in store.metrics(run_id):  # in row-id order: the order they were written
        by_name[row["name"]].append(row["step"])
    for name, steps in by_name.items():
        assert all(a < b for a, b in zip(steps, steps[1:])), (name, [s for s in steps if steps.count(s) > 1][:10])
    plan = make_plan(prepare_run(spec).spec.train, DIGITS_TRAIN)
    expected = set(range(plan.log_every, plan.total_steps + 1, plan.log_every))
    missing = sorted(expected - set(by_name["cost"]))
    assert not missing, f"{len(missing)} log points lost, first {missing[:10]}"
    assert by_name["cost"][-1] == plan.total_steps
    assert store.get_run(run_id)["examples"] == plan.total_examples


@pytest.mark.parametrize("sig", [pytest.param(signal.SIGTERM, id="SIGTERM"),
                                 pytest.param(signal.SIGKILL, id="SIGKILL", marks=pytest.mark.slow)])
def test_runs_survive_a_server_restart(tmp_path, sig):
    db = tmp_path / "runs.db"
    store = Store(db)
    server = Server(db, tmp_path / "server-1.log", warm=False)  # cold workers: (b)'s is still starting
    try:
        # (c) trains ...
        training = server.http.post("/api/runs", json={"spec": LONG}).json()["id"]
        wait_for("run (c) to log metric rows", lambda: len(server.http.get(
            f"/api/runs/{training}/metrics?names=cost").json()["rows"]) >= 2, 60)
        # ... (b)'s worker is starting and (a) waits behind both.
        starting = server.http.post("/api/runs", json={"spec": {**TINY, "name": "starting"}}).json()["id"]
        waiting = server.http.post("/api/runs", json={"spec": {**TINY, "name": "waiting"}}).json()["id"]
        wait_for("run (b)'s worker to be launched", lambda: starting in server.http.get(
            "/api/health").json()["pool"]["running"], 10)
        pool = server.http.get("/api/health").json()["pool"]
        assert (pool["running"], pool["queued"]) == ([training, starting], [waiting]), pool
        assert [status_of(store, r) for r in (training, starting, waiting)] == ["running", "queued", "queued"]
        rows_before = {(r["name"], r["step"]) for r in store.metrics(training)}
        server.stop(sig)
    finally:
        server.kill()

    # What the dead server left: nothing failed; the training run is (or soon becomes) interrupted.
    assert status_of(store, starting) == "queued", store.get_run(starting)["error"]
    assert status_of(store, waiting) == "queued"
    wait_for("run (c) to be interrupted", lambda: status_of(store, training) == "interrupted", 30)

    again = Server(db, tmp_path / "server-2.log")
    try:
        for run_id in (starting, waiting):  # taken over by the new server, nobody asks
            wait_for(f"run {run_id} to be taken over", lambda: status_of(store, run_id) != "queued", 30)
        resumed = again.http.post(f"/api/runs/{training}/resume")
        assert resumed.status_code == 200, resumed.text
        # waiting, or (an idle warm worker took it at once) already on a worker
        assert resumed.json()["queue_position"] is not None or \
            training in again.http.get("/api/health").json()["pool"]["running"] or \
            status_of(store, training) != "interrupted"
        for run_id in (starting, waiting, training):
            wait_for(f"run {run_id} to finish", lambda: status_of(store, run_id) not in
                     ("queued", "running", "interrupted"), 90)
        assert {r: store.get_run(r)["status"] for r in (training, starting, waiting)} == \
            {r: "finished" for r in (training, starting, waiting)}, again.log()
        assert again.http.post(f"/api/runs/{training}/resume").status_code == 409  # finished: nothing to resume
        again.stop(signal.SIGTERM)
    finally:
        again.kill()
    assert rows_before <= {(r["name"], r["step"]) for r in store.metrics(training)}
    assert_rows_once_and_complete(store, training, LONG)
    takeovers = [e["payload"] for r in (starting, waiting) for e in store.events(r, kinds=[POOL_EVENT])
                 if e["payload"]["action"] == "adopted"]
    assert len(takeovers) == 2 and all(p["from_pid"] == server.proc.pid for p in takeovers), takeovers
    statuses = [e["payload"]["status"] for e in store.events(training, kinds=["status"])]
    assert statuses == ["queued", "running", "interrupted", "running", "finished"], statuses
    store.close()


def test_a_new_pool_takes_over_only_runs_whose_server_is_gone(tmp_path):
    """The rule: a queued run whose latest ``pool`` event names a server (and worker) process that is
    gone. A CLI's or a sweep's queued run (no such event), a live server's and another host's stay."""
    store = Store(tmp_path / "runs.db")
    alive, worker = (subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        import socket
        host, now = socket.gethostname(), time.time()

        def run(name, claim=None):
            run_id = store.create_run({**TINY, "name": name})
            if claim is not None:
                store.add_event(run_id, POOL_EVENT, {"action": "queued", "mode": "train", "since": now, **claim})
            return run_id

        cli = run("from the CLI or a sweep")
        live = run("a live server's", {"host": host, "pid": alive.pid})
        elsewhere = run("another host's", {"host": host + "-other", "pid": dead.pid})
        orphan = run("a dead server's", {"host": host, "pid": dead.pid})
        starting = run("a dead server's, its worker still alive", {"host": host, "pid": dead.pid})
        store.add_event(starting, POOL_EVENT, {"action": "launched", "mode": "train", "host": host, "pid": dead.pid,
                                               "since": now, "worker_pid": worker.pid, "worker_since": now})
        finished = run("a dead server's, over", {"host": host, "pid": dead.pid})
        store.request_stop(finished)

        pool = WorkerPool(store, workers=1)
        pool._adopt_until = time.monotonic() + 60  # what start() sets; the dispatcher thread is not started
        pool._adopt_orphans()
        assert pool.state()["queued"] == [orphan] and pool.adopted == [orphan]
        worker.kill()
        worker.wait()
        pool._adopt_orphans()  # the old worker is gone now: its run too
        assert pool.state()["queued"] == [orphan, starting]
        assert pool._adopt_until is None  # nothing left to settle: it stops looking
        assert [status_of(store, r) for r in (cli, live, elsewhere)] == ["queued"] * 3
        claim = store.events(orphan, kinds=[POOL_EVENT])[-1]["payload"]
        assert (claim["action"], claim["pid"], claim["from_pid"]) == ("adopted", os.getpid(), dead.pid)
    finally:
        for proc in (alive, worker):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        store.close()
