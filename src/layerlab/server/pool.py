"""The worker pool: queued runs wait here, at most ``workers`` train at once, each in its own process.

``submit(run_id)`` queues a run the server created (status ``queued`` in the store). A
dispatcher thread starts ``python -m layerlab.worker RUN_ID --db URL`` for the oldest queued
run whenever a slot is free, and reaps processes that ended. A run stopped while it waited
(the store set it ``stopped``) is skipped. A process that dies without its trainer ending
the run is reported: still ``queued`` -> ``failed`` with the process's last words; still
``running`` -> the store's own check marks it ``interrupted``.

Only runs submitted here are started: a run queued by another client of the same store (the
CLI's ``layerlab train`` creates its run ``queued`` and starts it itself) is left alone.
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["WorkerPool"]

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, store, *, workers: int = 2, python: str = sys.executable, threads: int | None = None,
                 poll: float = 0.2):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.store, self.workers, self.python, self.poll = store, workers, python, poll
        # torch threads per worker: the cores shared by the workers and the server itself (OpenMP
        # threads that outnumber free cores spin and slow everything down).
        self.threads = threads or max(1, (os.cpu_count() or 1) // (workers + 1))
        self._queue: collections.deque[int] = collections.deque()
        self._procs: dict[int, tuple[subprocess.Popen, object]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ public

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="layerlab-worker-pool", daemon=True)
            self._thread.start()

    def submit(self, run_id: int) -> None:
        with self._lock:
            self._queue.append(run_id)
        self._wake.set()

    def state(self) -> dict:
        with self._lock:
            return {"workers": self.workers, "running": sorted(self._procs), "queued": list(self._queue)}

    def position(self, run_id: int) -> int | None:
        """1-based place of a waiting run in the queue, None if it is not waiting here."""
        with self._lock:
            return self._queue.index(run_id) + 1 if run_id in self._queue else None

    def shutdown(self, timeout: float = 10.0) -> None:
        """Interrupt running workers (their runs become ``interrupted``, resumable) and stop dispatching."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with self._lock:
            procs = list(self._procs.items())
        for _, (proc, _) in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for run_id, (proc, log_file) in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._reap(run_id, proc, log_file)

    # ------------------------------------------------------------------ dispatcher

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._reap_finished()
                self._dispatch()
            except Exception:  # noqa: BLE001 - the dispatcher must survive a store hiccup
                log.exception("worker pool dispatch failed")
            self._wake.wait(self.poll)
            self._wake.clear()

    def _reap_finished(self) -> None:
        with self._lock:
            done = [(rid, p, f) for rid, (p, f) in self._procs.items() if p.poll() is not None]
        for run_id, proc, log_file in done:
            self._reap(run_id, proc, log_file)

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if len(self._procs) >= self.workers or not self._queue:
                    return
                run_id = self._queue.popleft()
            try:
                status = self.store.get_run(run_id)["status"]
            except Exception as exc:  # noqa: BLE001 - deleted while queued, or the store failed
                log.warning("skipping run %s: %s", run_id, exc)
                continue
            if status != "queued":
                continue  # stopped (or deleted) while it waited
            self._launch(run_id)

    def _launch(self, run_id: int) -> None:
        log_file = tempfile.TemporaryFile()
        cmd = [self.python, "-m", "layerlab.worker", str(run_id), "--db", self.store.url,
               "--threads", str(self.threads)]
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # Ctrl-C at the server's terminal is the server's
        log.info("run %s: worker process %s started", run_id, proc.pid)
        with self._lock:
            self._procs[run_id] = (proc, log_file)

    def _reap(self, run_id: int, proc: subprocess.Popen, log_file) -> None:
        with self._lock:
            if self._procs.get(run_id, (None,))[0] is not proc:
                return
            del self._procs[run_id]
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
                log.info("run %s (%s): worker process exited with code %s", run_id, status, rc)
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
