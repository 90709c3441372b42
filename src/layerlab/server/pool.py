"""The worker pool: queued runs wait here, at most ``workers`` train at once, each in its own process.

``submit(run_id)`` queues a run the server created (status ``queued`` in the store);
``submit(run_id, resume=True)`` queues an ``interrupted`` or ``stopped`` run to continue from
its last checkpoint. A run stopped while it waited is skipped.

**Warm workers.** The pool keeps ``workers`` processes ``python -m layerlab.worker --serve
--db URL --parent PID`` started ahead of time: each imports torch, loads the data sets of the
store's latest runs, and then trains the runs it is handed, one at a time, keeping the data
sets they used resident (bounded: ``worker.CACHE_SIZE`` sets, ``worker.CACHE_BYTES`` bytes).
A dispatcher thread hands the oldest waiting run to an idle worker, preferring one that holds
its data set, and a worker that exits (after ``RUNS_PER_WORKER`` runs, after a run that ended
in an unexpected error, or dead) is replaced by a fresh one. With ``warm=False`` (or
``LAYERLAB_WARM_WORKERS=0``) a worker is started for each run when a slot is free and exits
after it: the cold start, kept to measure against. A worker watches its server (``--parent``):
if the server dies, even by SIGKILL, the worker stops like on Ctrl-C. Each run's stages
(``layerlab.stages``) are stored as it goes: ``queued`` with its place, then ``starting``.

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
import fcntl
import json
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
from ..spec import DataSpec
from ..stages import record_stage
from ..worker import job_env
from ..store.liveness import process_gone
from .datacache import data_key

__all__ = ["WorkerPool", "POOL_EVENT"]

log = logging.getLogger(__name__)

POOL_EVENT = "pool"      # the event kind that says which server owns a waiting run
ADOPT_EVERY_S = 1.0      # how often a starting pool looks again at orphans whose old worker still lives
ADOPT_FOR_S = 120.0      # ... and for how long at most
_MODES = {"train": ("queued",), "resume": ("interrupted", "stopped")}  # statuses a waiting run must still have
RUNS_PER_WORKER = 50     # runs before a warm worker is replaced (its memory back to the OS)
RESPAWN_MAX_S = 30.0     # longest wait before starting a worker again after one died before it was ready
LOG_TAIL = 4000          # bytes of a worker's log kept as a failed run's last words
ANNOUNCED_PLACES = 20    # queue places told again at each move (further back: the place on arrival)


def _warm_default() -> bool:
    return os.environ.get("LAYERLAB_WARM_WORKERS", "1").strip().lower() not in ("0", "false", "no", "off")


class _Worker:
    """One worker process, and what the pool knows about it (changed under the pool's lock)."""

    def __init__(self, proc: subprocess.Popen, log_file, since: float, warm: bool):
        self.proc, self.log, self.since, self.warm = proc, log_file, since, warm
        self.ready = False                     # torch imported, data preloaded: said so on its pipe
        self.job: tuple[int, str] | None = None  # (run id, mode) it trains now
        self.job_log_at = 0                    # where the current job's log lines start
        self.handed_at = 0.0                   # when it was handed the current job (time.time())
        self.resident: set[str] = set()        # data_key of the data sets it holds
        self.runs = 0
        self.closing = False                   # it said it exits after its last run: hand it nothing
        self.reader: threading.Thread | None = None

    def tail(self) -> str:
        """The current job's log lines (the last ``LOG_TAIL`` bytes)."""
        try:
            fd = self.log.fileno()
            size = os.fstat(fd).st_size
            start = max(self.job_log_at, size - LOG_TAIL)
            return os.pread(fd, size - start, start).decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""


class WorkerPool:
    def __init__(self, store, *, workers: int = 2, python: str = sys.executable, threads: int | None = None,
                 poll: float = 0.2, adopt: bool = True, warm: bool | None = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.store, self.workers, self.python, self.poll, self.adopt = store, workers, python, poll, adopt
        self.warm = _warm_default() if warm is None else warm
        # torch threads per worker: the cores shared by the workers and the server itself (OpenMP
        # threads that outnumber free cores spin and slow everything down).
        self.threads = threads or max(1, (os.cpu_count() or 1) // (workers + 1))
        self.host, self.pid, self.since = socket.gethostname(), os.getpid(), time.time()
        self._queue: collections.deque[tuple[int, str]] = collections.deque()   # (run id, mode)
        self._procs: dict[int, _Worker] = {}      # run id -> the worker training it
        self._pool: list[_Worker] = []            # every worker process not yet reaped
        self._positions: dict[int, int] = {}      # run id -> the queue place its last stage event said
        self._lock = threading.Lock()
        self._announce = threading.Lock()  # queue changes and the stage events that tell them, in order
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._adopt_until: float | None = None
        self._respawn_at, self._backoff = 0.0, 0.5
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
            busy = self._procs.get(run_id)
            handed = busy.handed_at if busy is not None else None
        # A stopped run's worker may still be on its way out (it trained since it was handed the run):
        # the resume waits until that one is done. One not started yet already has it.
        started = self.store.get_run(run_id).get("started_at") if handed is not None and resume else None
        claim = {"action": "adopted" if _adopted_from else "queued", "mode": mode, **self._owner()}
        if _adopted_from:
            claim["from_pid"] = _adopted_from
        with self._announce:  # its claim and place are stored before the dispatcher can take it
            with self._lock:
                if any(rid == run_id for rid, _ in self._queue) or \
                        (run_id in self._procs and (not resume or started is None or started < handed)):
                    raise RunConflict(f"run {run_id} already waits for a worker")
                self._queue.append((run_id, mode))
            self._claim(run_id, claim)
            self._announce_positions()
        self._wake.set()

    def cancel(self, run_id: int) -> bool:
        """Take a waiting run out of the queue; False if it is not waiting here."""
        with self._announce:
            with self._lock:
                for entry in self._queue:
                    if entry[0] == run_id:
                        self._queue.remove(entry)
                        break
                else:
                    return False
            self._announce_positions()
        return True

    def state(self) -> dict:
        with self._lock:
            return {"workers": self.workers, "running": sorted(self._procs), "queued": [rid for rid, _ in self._queue]}

    def warm_workers(self) -> int:
        """Worker processes ready for a run now (torch imported, data preloaded, no run)."""
        with self._lock:
            return sum(1 for w in self._pool if w.ready and w.job is None and not w.closing and w.proc.poll() is None)

    def position(self, run_id: int) -> int | None:
        """1-based place of a waiting run in the queue, None if it is not waiting here."""
        with self._lock:
            ids = [rid for rid, _ in self._queue]
        return ids.index(run_id) + 1 if run_id in ids else None

    def shutdown(self, timeout: float = 10.0) -> None:
        """Interrupt the workers (runs training become ``interrupted``, resumable) and stop dispatching.

        Runs still waiting, or whose worker had not started training, stay ``queued``: the next
        server on this store takes them over.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with self._lock:
            pool = list(self._pool)
            idle = {w for w in pool if w.job is None}
        for w in pool:
            if w.proc.poll() is None:
                # a worker with no run holds nothing to save: end it now rather than after its torch import
                # (it acts on SIGINT only once warm, about 1.5 s); one with a run is interrupted (resumable)
                w.proc.send_signal(signal.SIGKILL if w in idle else signal.SIGINT)
        deadline = time.monotonic() + timeout
        for w in pool:
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
        for w in pool:  # each reader records how its worker's run ended
            if w.reader is not None:
                w.reader.join(timeout=max(1.0, deadline - time.monotonic()))
            self._gone(w)

    # ------------------------------------------------------------------ ownership

    def _owner(self) -> dict:
        return {"host": self.host, "pid": self.pid, "since": self.since}

    def _claim(self, run_id: int, payload: dict) -> None:
        try:
            self.store.add_event(run_id, POOL_EVENT, payload)
        except Exception:  # noqa: BLE001 - without the mark only the take-over after a restart is lost
            log.exception("could not record that this server owns run %s", run_id)

    def _announce_positions(self) -> None:
        """A ``queued`` stage event for each waiting run whose place in the queue changed.

        Only the first ``ANNOUNCED_PLACES`` places are told each move (and every run once, on arrival):
        telling all N waiting runs at each dispatch would write N²/2 events for a long queue. A run
        further back shows its place on arrival until it moves up into the first places.
        """
        with self._lock:
            now = {rid: i + 1 for i, (rid, _) in enumerate(self._queue)}
            changed = [(rid, pos) for rid, pos in now.items()
                       if self._positions.get(rid) != pos and (pos <= ANNOUNCED_PLACES or rid not in self._positions)]
            self._positions = now
            total = len(now)
        for run_id, pos in changed:
            record_stage(self.store, run_id, "queued", position=pos, of=total)

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
                if self.warm:
                    self._top_up()
                self._dispatch()
            except Exception:  # noqa: BLE001 - the dispatcher must survive a store hiccup
                log.exception("worker pool dispatch failed")
            self._wake.wait(self.poll)
            self._wake.clear()

    def _top_up(self) -> None:
        """Keep ``workers`` warm worker processes (after a backoff when the last died before it was ready)."""
        while not self._stopping.is_set() and time.monotonic() >= self._respawn_at:
            with self._lock:
                if len(self._pool) >= self.workers:
                    return
            self._spawn()

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            with self._announce:
                with self._lock:
                    ready = [e for e in self._queue if e[0] not in self._procs]  # one process per run at a time
                    idle = [w for w in self._pool if w.job is None and w.warm and not w.closing]
                    if not ready or (not idle if self.warm else len(self._procs) >= self.workers):
                        return
                    run_id, mode = ready[0]
                    self._queue.remove(ready[0])
                self._announce_positions()
            try:
                run = self.store.get_run(run_id)
            except Exception as exc:  # noqa: BLE001 - deleted while queued, or the store failed
                log.warning("skipping run %s: %s", run_id, exc)
                continue
            if run["status"] not in _MODES[mode]:
                continue  # stopped (or deleted, or resumed elsewhere) while it waited
            worker = self._pick(idle, _run_data_key(run)) if self.warm else self._spawn()
            if worker is None or not self._hand(worker, run_id, mode):
                with self._announce:
                    with self._lock:
                        self._queue.appendleft((run_id, mode))  # no worker after all: first in line again
                    self._announce_positions()
                return

    def _pick(self, idle: list[_Worker], key: str | None) -> _Worker:
        """An idle worker: ready and holding the run's data if any is, else ready, else still warming up."""
        with self._lock:
            return max(idle, key=lambda w: (w.ready, key in w.resident, -w.runs))

    def _spawn(self) -> _Worker | None:
        log_file = tempfile.TemporaryFile()
        fd = log_file.fileno()  # appended to by the worker while the pool reads it (pread): no shared offset
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        cmd = [self.python, "-m", "layerlab.worker", "--serve", "--db", self.store.url,
               "--threads", str(self.threads), "--parent", str(self.pid),
               "--runs", str(RUNS_PER_WORKER if self.warm else 1)]
        if not self.warm:
            cmd += ["--preload", "0"]
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), PYTHONUNBUFFERED="1")
        since = time.time()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, env=env,
                                    start_new_session=True)  # Ctrl-C at the server's terminal is the server's
        except OSError as exc:
            log.error("could not start a worker process: %s", exc)
            log_file.close()
            self._respawn_at = time.monotonic() + RESPAWN_MAX_S
            return None
        worker = _Worker(proc, log_file, since, self.warm)
        with self._lock:
            self._pool.append(worker)
        worker.reader = threading.Thread(target=self._read, args=(worker,), name=f"layerlab-worker-{proc.pid}",
                                         daemon=True)
        worker.reader.start()
        log.info("worker process %s started (%s)", proc.pid, "warm" if self.warm else "for one run")
        return worker

    def _hand(self, worker: _Worker, run_id: int, mode: str) -> bool:
        """Give ``run_id`` to ``worker``; False if the worker is gone (the run waits for another)."""
        env = job_env()  # where the server would look for data files now
        with self._lock:
            if worker not in self._pool:
                return False  # it died while we looked
            worker.job, worker.job_log_at, worker.handed_at = (run_id, mode), _size(worker.log), time.time()
            self._procs[run_id] = worker
            warm = worker.ready
        # Stored before the worker can write its own (its stages follow this one).
        self._claim(run_id, {"action": "launched", "mode": mode, **self._owner(), "worker_pid": worker.proc.pid,
                             "worker_since": worker.since})
        record_stage(self.store, run_id, "starting", warm=warm, worker=worker.proc.pid)
        try:
            worker.proc.stdin.write((json.dumps({"run": run_id, "mode": mode, "env": env}) + "\n").encode())
            worker.proc.stdin.flush()
        except (OSError, ValueError):
            with self._lock:
                if worker.job != (run_id, mode):
                    return True  # its reader saw it die with the run: that recorded the end
                worker.job = None
                self._procs.pop(run_id, None)
            return False
        log.info("run %s: handed to worker process %s (%s, %s)", run_id, worker.proc.pid, mode,
                 "warm" if warm else "starting")
        return True

    # ------------------------------------------------------------------ what the workers say

    def _read(self, worker: _Worker) -> None:
        """The worker's protocol pipe, until it closes: readiness, and the end of each run."""
        for line in worker.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("ready"):
                with self._lock:
                    worker.ready, worker.resident = True, set(message.get("resident") or ())
                self._backoff = 0.5
            elif "done" in message:
                with self._lock:
                    job = worker.job if worker.job and worker.job[0] == message["done"] else None
                    if job is not None:
                        worker.job = None
                        worker.runs += 1
                        self._procs.pop(job[0], None)
                    worker.resident = set(message.get("resident") or ())
                    worker.closing = bool(message.get("exiting"))
                    tail = worker.tail()
                if job is not None:
                    self._ended(job[0], job[1], int(message.get("rc", 1)), tail)
            self._wake.set()
        worker.proc.wait()
        self._gone(worker)
        self._wake.set()

    def _gone(self, worker: _Worker) -> None:
        """A worker process ended: the end of the run it had, if any; once per worker."""
        with self._lock:
            if worker not in self._pool:
                return
            self._pool.remove(worker)
            job, worker.job = worker.job, None
            if job is not None:
                self._procs.pop(job[0], None)
            tail = worker.tail()
            if not worker.ready and self.warm and not self._stopping.is_set():
                self._respawn_at = time.monotonic() + self._backoff  # it died warming up: do not spin
                self._backoff = min(RESPAWN_MAX_S, self._backoff * 2)
        if worker.proc.stdin is not None:
            try:
                worker.proc.stdin.close()
            except OSError:
                pass
        worker.log.close()
        rc = worker.proc.returncode
        if job is not None:
            self._ended(job[0], job[1], rc if rc is not None else 1, tail)
        elif rc not in (0, 130, -signal.SIGINT, None) and not self._stopping.is_set():
            log.warning("worker process %s exited with code %s\n%s", worker.proc.pid, rc, tail[-2000:])

    def _ended(self, run_id: int, mode: str, rc: int, tail: str) -> None:
        """What a run's end (exit code ``rc``, the worker's last words ``tail``) leaves in the store (module doc)."""
        if rc == 0:
            return
        try:
            status = self.store.get_run(run_id)["status"]
            if status not in ("queued", "running"):  # its trainer ended the run (e.g. interrupted on shutdown)
                level = logging.WARNING if mode == "resume" and status in _MODES["resume"] else logging.INFO
                log.log(level, "run %s (%s): worker ended it with code %s\n%s", run_id, status, rc,
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


def _size(log_file) -> int:
    try:
        return os.fstat(log_file.fileno()).st_size
    except (OSError, ValueError):
        return 0


def _run_data_key(run: dict) -> str | None:
    """The ``data_key`` of a stored run's data set (None if its spec does not read)."""
    try:
        return data_key(DataSpec.model_validate((run.get("spec") or {}).get("data") or {}))
    except Exception:  # noqa: BLE001 - the worker reports a bad spec properly
        return None
