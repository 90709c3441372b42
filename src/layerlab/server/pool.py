"""The worker pool: queued runs wait here, at most ``workers`` train at once, each in its own process.

``submit(run_id)`` queues a run the server created (status ``queued`` in the store);
``submit(run_id, resume=True)`` queues an ``interrupted`` or ``stopped`` run to continue from
its last checkpoint. A dispatcher thread starts ``python -m layerlab.worker RUN_ID --db URL
[--resume] --parent PID`` for the oldest waiting run whenever a slot is free, and reaps
processes that ended. A run stopped while it waited is skipped. A worker watches its server
(``--parent``): if the server dies, even by SIGKILL, the worker stops like on Ctrl-C.

What a dying worker leaves:

* its trainer ended the run (finished, stopped, diverged, failed, interrupted): that stays;
* still ``running``: the store's own liveness check marks it ``interrupted`` (resumable);
* still ``queued`` because the server is shutting down (it never reached ``running``): it
  stays ``queued``, and the next server start picks it up (below);
* still ``queued`` for any other reason (a crash before training): ``failed`` with the
  process's last words.

**Which queued runs a starting server takes over.** Every run this pool accepts gets a
``pool`` event naming the server's host, pid and start time (and, once launched, its worker's
pid). On start, and again while some are still settling, the pool submits, oldest first,
every ``queued`` run whose latest ``pool`` event names a server process on this host that is
gone, and no worker that is still alive. Runs without a ``pool`` event (``layerlab train``
starts its own; a sweep's members wait for the sweep's executor) and runs of a server on
another host (whose processes cannot be checked) are left alone.
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from ..errors import RunConflict
from ..store.liveness import process_gone

__all__ = ["WorkerPool", "POOL_EVENT"]

log = logging.getLogger(__name__)

POOL_EVENT = "pool"      # the event kind that says which server owns a waiting run
ADOPT_EVERY_S = 1.0      # how often a starting pool looks again at orphans whose old worker still lives
ADOPT_FOR_S = 120.0      # ... and for how long at most
_MODES = {"train": ("queued",), "resume": ("interrupted", "stopped")}  # statuses a waiting run must still have


class WorkerPool:
    def __init__(self, store, *, workers: int = 2, python: str = sys.executable, threads: int | None = None,
                 poll: float = 0.2, adopt: bool = True):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.store, self.workers, self.python, self.poll, self.adopt = store, workers, python, poll, adopt
        # torch threads per worker: the cores shared by the workers and the server itself (OpenMP
        # threads that outnumber free cores spin and slow everything down).
        self.threads = threads or max(1, (os.cpu_count() or 1) // (workers + 1))
        self.host, self.pid, self.since = socket.gethostname(), os.getpid(), time.time()
        self._queue: collections.deque[tuple[int, str]] = collections.deque()   # (run id, mode)
        self._procs: dict[int, tuple[subprocess.Popen, object, str]] = {}        # run id -> (process, log, mode)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._adopt_until: float | None = None
        self.adopted: list[int] = []  # runs taken over from a server that is gone, in order

    # ------------------------------------------------------------------ public

    def start(self) -> None:
        if self._thread is None:
            self._adopt_until = time.monotonic() + ADOPT_FOR_S if self.adopt else None
            self._thread = threading.Thread(target=self._loop, name="layerlab-worker-pool", daemon=True)
            self._thread.start()

    def submit(self, run_id: int, *, resume: bool = False, _adopted_from: int | None = None) -> None:
        """Queue ``run_id`` for a worker: a new (``queued``) run, or with ``resume`` one to continue."""
        mode = "resume" if resume else "train"
        with self._lock:
            # (a stopped run's worker may still be on its way out: it waits until that one is reaped)
            if any(rid == run_id for rid, _ in self._queue) or (run_id in self._procs and not resume):
                raise RunConflict(f"run {run_id} already waits for a worker")
            self._queue.append((run_id, mode))
        claim = {"action": "adopted" if _adopted_from else "queued", "mode": mode, **self._owner()}
        if _adopted_from:
            claim["from_pid"] = _adopted_from
        self._claim(run_id, claim)
        self._wake.set()

    def cancel(self, run_id: int) -> bool:
        """Take a waiting run out of the queue; False if it is not waiting here."""
        with self._lock:
            for entry in self._queue:
                if entry[0] == run_id:
                    self._queue.remove(entry)
                    return True
        return False

    def state(self) -> dict:
        with self._lock:
            return {"workers": self.workers, "running": sorted(self._procs), "queued": [rid for rid, _ in self._queue]}

    def position(self, run_id: int) -> int | None:
        """1-based place of a waiting run in the queue, None if it is not waiting here."""
        with self._lock:
            ids = [rid for rid, _ in self._queue]
        return ids.index(run_id) + 1 if run_id in ids else None

    def shutdown(self, timeout: float = 10.0) -> None:
        """Interrupt running workers (their runs become ``interrupted``, resumable) and stop dispatching.

        Runs still waiting, or whose worker had not started training, stay ``queued``: the next
        server on this store takes them over.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with self._lock:
            procs = list(self._procs.items())
        for _, (proc, _, _) in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for run_id, (proc, log_file, _) in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._reap(run_id, proc, log_file)

    # ------------------------------------------------------------------ ownership

    def _owner(self) -> dict:
        return {"host": self.host, "pid": self.pid, "since": self.since}

    def _claim(self, run_id: int, payload: dict) -> None:
        try:
            self.store.add_event(run_id, POOL_EVENT, payload)
        except Exception:  # noqa: BLE001 - without the mark only the take-over after a restart is lost
            log.exception("could not record that this server owns run %s", run_id)

    def _adopt_orphans(self) -> None:
        """Submit the store's queued runs whose server is gone (see the module doc); oldest first."""
        if self._adopt_until is None:
            return
        waiting = False
        queued = self.store.list_runs(status="queued", limit=1000)
        with self._lock:
            mine = set(self._procs) | {rid for rid, _ in self._queue}
        for run in sorted(queued, key=lambda r: r["id"]):
            if run["id"] in mine:
                continue
            claims = self.store.events(run["id"], kinds=[POOL_EVENT])
            claim = claims[-1]["payload"] if claims else None
            if not isinstance(claim, dict) or claim.get("host") != self.host or claim.get("pid") == self.pid:
                continue  # not a server's run, another host's, or our own
            if not process_gone(int(claim["pid"]), claim.get("since")):
                continue  # its server is alive: its run
            worker = claim.get("worker_pid")
            if worker and not process_gone(int(worker), claim.get("worker_since")):
                waiting = True  # the dead server's worker is still on its way out: look again soon
                continue
            log.info("run %s: taking it over from server process %s, which is gone", run["id"], claim["pid"])
            try:
                self.submit(run["id"], _adopted_from=int(claim["pid"]))
            except RunConflict:
                continue
            self.adopted.append(run["id"])
        if not waiting or time.monotonic() > self._adopt_until:
            self._adopt_until = None

    # ------------------------------------------------------------------ dispatcher

    def _loop(self) -> None:
        next_adopt = 0.0
        while not self._stopping.is_set():
            if self._adopt_until is not None and time.monotonic() >= next_adopt:
                next_adopt = time.monotonic() + ADOPT_EVERY_S
                try:
                    self._adopt_orphans()
                except Exception as exc:  # noqa: BLE001 - a store hiccup: try again, for a while
                    log.warning("could not look for queued runs to take over: %s", exc)
                    if self._adopt_until is not None and time.monotonic() > self._adopt_until:
                        self._adopt_until = None
            try:
                self._reap_finished()
                self._dispatch()
            except Exception:  # noqa: BLE001 - the dispatcher must survive a store hiccup
                log.exception("worker pool dispatch failed")
            self._wake.wait(self.poll)
            self._wake.clear()

    def _reap_finished(self) -> None:
        with self._lock:
            done = [(rid, p, f) for rid, (p, f, _) in self._procs.items() if p.poll() is not None]
        for run_id, proc, log_file in done:
            self._reap(run_id, proc, log_file)

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                ready = [e for e in self._queue if e[0] not in self._procs]  # one process per run at a time
                if len(self._procs) >= self.workers or not ready:
                    return
                run_id, mode = ready[0]
                self._queue.remove(ready[0])
            try:
                status = self.store.get_run(run_id)["status"]
            except Exception as exc:  # noqa: BLE001 - deleted while queued, or the store failed
                log.warning("skipping run %s: %s", run_id, exc)
                continue
            if status not in _MODES[mode]:
                continue  # stopped (or deleted, or resumed elsewhere) while it waited
            self._launch(run_id, mode)

    def _launch(self, run_id: int, mode: str) -> None:
        log_file = tempfile.TemporaryFile()
        cmd = [self.python, "-m", "layerlab.worker", str(run_id), "--db", self.store.url,
               "--threads", str(self.threads), "--parent", str(self.pid)]
        if mode == "resume":
            cmd.append("--resume")
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), PYTHONUNBUFFERED="1")
        since = time.time()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # Ctrl-C at the server's terminal is the server's
        log.info("run %s: worker process %s started (%s)", run_id, proc.pid, mode)
        with self._lock:
            self._procs[run_id] = (proc, log_file, mode)
        self._claim(run_id, {"action": "launched", "mode": mode, **self._owner(), "worker_pid": proc.pid,
                             "worker_since": since})

    def _reap(self, run_id: int, proc: subprocess.Popen, log_file) -> None:
        with self._lock:
            entry = self._procs.get(run_id)
            if entry is None or entry[0] is not proc:
                return
            del self._procs[run_id]
        mode = entry[2]
        rc = proc.returncode
        tail = ""
        try:
            log_file.seek(0, os.SEEK_END)
            size = log_file.tell()
            log_file.seek(max(0, size - 4000))
            tail = log_file.read().decode("utf-8", "replace").strip()
            log_file.close()
        except (OSError, ValueError):
            pass
        if rc == 0:
            return
        try:
            status = self.store.get_run(run_id)["status"]
            if status not in ("queued", "running"):  # its trainer ended the run (e.g. interrupted on shutdown)
                level = logging.WARNING if mode == "resume" and status in _MODES["resume"] else logging.INFO
                log.log(level, "run %s (%s): worker process exited with code %s\n%s", run_id, status, rc,
                        tail[-2000:] if level == logging.WARNING else "")
                return
            if status == "queued" and self._stopping.is_set():
                # Killed on the way up by our own shutdown: it never trained, so it waits for the next start.
                log.info("run %s stays queued: its worker was stopped with the server before training", run_id)
                return
            log.warning("run %s: worker process exited with code %s\n%s", run_id, rc, tail[-2000:])
            if status == "queued":
                last = tail.splitlines()[-1] if tail else ""
                self.store.set_status(run_id, "failed", error=f"the worker process exited with code {rc} before "
                                                              f"training started: {last}".strip())
            elif status == "running":
                self.store.mark_interrupted()
        except Exception:  # noqa: BLE001 - deleted meanwhile, or the store failed
            log.exception("could not record the end of run %s's worker", run_id)
