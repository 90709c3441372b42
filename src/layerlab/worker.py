"""``python -m layerlab.worker RUN_ID --db URL [--resume]``: execute one run of a store.

``python -m layerlab.worker --serve --db URL``: a warm worker, what the server's pool starts
ahead of time, so training never runs in the web server's process and a run does not wait
for imports. It imports torch, loads the data sets of the store's latest runs (``--preload``)
into its own bounded ``DataCache``, says ``{"ready": ...}`` on its protocol pipe (its stdout;
anything else printed goes to stderr), then reads jobs, one JSON line each on stdin
(``{"run": ID, "mode": "train" | "resume", "env": {...}}``; ``env``: the server's ``job_env``
at dispatch), runs each like ``RUN_ID`` below and answers ``{"done": ID, "rc": CODE,
"resident": [...]}``. It exits when stdin closes, after ``--runs`` jobs, after a job that
ended with an unexpected error (exit code 1) or an interrupt, and on SIGINT/SIGTERM (while it
waits: at once). Without ``--resume`` the run must be ``queued``: its spec comes from the
store (it was validated when the run was created) and it trains from the start. With
``--resume`` it must be ``interrupted`` or ``stopped``: it continues from its last checkpoint
(``layerlab.train.resume``; no metric row is lost or written twice). The trainer records
everything in the store.

SIGTERM and SIGINT are treated like Ctrl-C: a run that trains is marked ``interrupted``
(resumable); one that had not started training stays as it was (``queued`` waits for the
next server). Until the trainer's first step the signal is only noted, and acted on as soon
as the imports and the set-up are done: an import cut short by KeyboardInterrupt leaves torch
half-initialised ("ImportError: initialization failed"), which would fail the run. ``--parent PID`` makes the worker stop the same way when process PID (its
server) is gone, even killed with SIGKILL, so no worker outlives its server unseen.

Exit codes: 0 finished/stopped/diverged (the store says which), 1 unexpected error,
2 user error (bad spec, missing data: a run that never started is marked ``failed`` with the
message), 3 the run was not in a status to start (nothing done), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time

__all__ = ["main", "execute", "serve", "job_env", "PARENT_POLL_S", "CACHE_BYTES", "CACHE_SIZE"]

log = logging.getLogger("layerlab.worker")

PARENT_POLL_S = 0.5  # how often a worker looks whether its server is still there
CACHE_BYTES = 512 * 2**20  # tensors of the data sets a warm worker keeps resident, all together
CACHE_SIZE = 2             # ... and at most this many data sets
ENV_PREFIX = "LAYERLAB_"   # the server's variables a job carries (where data files are, mirrors, ...)
ENV_NAMES = ("XDG_CACHE_HOME",)  # ... and these (the data cache directory)


_interrupted = threading.Event()  # set once a signal (or the parent watch) asked this worker to stop
_defer = True                     # until training steps: note the signal, raise it later (module doc)


def _interrupt(signum, frame):
    _interrupted.set()
    if not _defer:
        raise KeyboardInterrupt


def _on_event(message: dict) -> None:
    """The trainer's first step ends the deferral (after set-up: data loaded, model built)."""
    global _defer
    if _defer and message.get("type") not in ("status", "note", "stage"):
        _defer = False
        if _interrupted.is_set():
            raise KeyboardInterrupt


def _watch_parent(parent: int) -> None:
    """Interrupt this process (SIGTERM to itself) once ``parent`` is no longer its parent."""
    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        log.warning("the server (process %s) is gone; stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="layerlab-parent-watch", daemon=True).start()


def execute(run_id: int, db: str | None, *, threads: int | None = None, resume: bool = False, store=None,
            cache=None) -> int:
    """Train queued run ``run_id`` (or, with ``resume``, continue it) of the store at ``db``; return the exit code.

    ``store``: an open store (instead of ``db``); ``cache``: a warm worker's ``DataCache``, which
    the run's data come from (and stay in).
    """
    from .errors import LayerlabError
    from .store import Store

    store = store if store is not None else Store(db)
    run = store.get_run(run_id)
    wanted = ("interrupted", "stopped") if resume else ("queued",)
    if run["status"] not in wanted:
        log.warning("run %s is %s, not %s; nothing to do", run_id, run["status"], " or ".join(wanted))
        return 3
    try:
        import torch
        if threads:
            torch.set_num_threads(threads)
        from .prepare import prepare_run
        from .train import resume as resume_run
        from .train import train
        prepared = prepare_run(run["spec"], need_data=cache is None)
        data = _resident_data(cache, store, run, prepared, resume) if cache is not None else None
        if _interrupted.is_set():  # asked to stop while starting: the run stays as it was
            log.info("run %s: interrupted before training started", run_id)
            return 130
        if resume:
            resume_run(run_id, store=store, on_event=_on_event, data=data)
        else:
            train(prepared, store=store, run_id=run_id, on_event=_on_event, data=data)
        return 0
    except KeyboardInterrupt:
        return 130
    except LayerlabError as exc:
        if _interrupted.is_set():
            log.warning("run %s: interrupted (%s)", run_id, exc)
            return 130
        _fail_if_queued(store, run_id, str(exc))
        log.error("run %s failed: %s", run_id, exc)
        return 2
    except Exception as exc:  # noqa: BLE001 - recorded in the store, then reported by the exit code
        if _interrupted.is_set():  # an import cut short by the interrupt fails oddly later: it is the interrupt
            log.warning("run %s: interrupted (%s: %s)", run_id, type(exc).__name__, exc)
            return 130
        _fail_if_queued(store, run_id, f"{type(exc).__name__}: {exc}")
        log.exception("run %s failed", run_id)
        return 1


def _resident_data(cache, store, run: dict, prepared, resume: bool):
    """The run's data from the worker's cache (loaded into it first if need be), on the run's device."""
    from .stages import record_stage
    from .train.trainer import resolve_device

    device = resolve_device((run.get("device") if resume else None) or prepared.spec.train.device)
    resident = cache.holds(prepared.spec.data, device=device)
    record_stage(store, run["id"], "loading_data", resident=resident)
    return cache.for_data_spec(prepared.spec.data, device=device)


def _fail_if_queued(store, run_id: int, error: str) -> None:
    """The trainer marks runs it started; a run that never started is marked here."""
    try:
        if store.get_run(run_id)["status"] == "queued":
            store.set_status(run_id, "failed", error=error)
    except Exception:  # noqa: BLE001
        log.exception("could not mark run %s failed", run_id)


def serve(db: str | None, *, threads: int | None = None, runs: int | None = None, preload: int = CACHE_SIZE,
          jobs=None, answers=None) -> int:
    """The warm worker's loop (module doc): warm up, then run the jobs read from ``jobs``; return the exit code."""
    global _defer
    jobs = jobs if jobs is not None else sys.stdin
    if answers is None:  # the protocol keeps the real stdout; a stray print goes to the log
        answers = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
    _defer = True  # an interrupt while importing is acted on once the imports are done
    import torch
    if threads:
        torch.set_num_threads(threads)
    from .prepare import prepare_run  # noqa: F401 - what the first run would otherwise import
    from .server.datacache import DataCache
    from .store import Store
    from .train import train  # noqa: F401

    store = Store(db)
    cache = DataCache(size=CACHE_SIZE, max_bytes=CACHE_BYTES, refuse_larger=False)
    if preload and not _interrupted.is_set():
        _preload(store, cache, preload)

    def say(message: dict) -> None:
        answers.write(json.dumps(message) + "\n")

    say({"ready": True, "pid": os.getpid(), "resident": cache.resident()})
    done = 0
    while runs is None or done < runs:
        _defer = False  # waiting: a signal ends the worker at once
        if _interrupted.is_set():
            return 130
        line = jobs.readline()
        if not line:
            return 0  # the pool closed the pipe
        job = json.loads(line)
        _defer = True
        _apply_env(job.get("env"))
        rc = execute(int(job["run"]), None, resume=job.get("mode") == "resume", store=store, cache=cache)
        done += 1
        # after an unexpected error (the process state may be broken) or an interrupt: a fresh worker
        # takes the next run; ``exiting`` tells the pool to hand this one nothing more
        last = rc in (1, 130) or (runs is not None and done >= runs)
        say({"done": int(job["run"]), "rc": rc, "resident": cache.resident(), "exiting": last})
        if last:
            return rc if rc in (1, 130) else 0
    return 0


def job_env(environ=None) -> dict:
    """The variables a job carries from the server: those that say where data files are, and LAYERLAB_*."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX) or k in ENV_NAMES}


def _apply_env(env: dict | None) -> None:
    """The server's variables at dispatch (``job_env``; a test or a user may have changed them since we started)."""
    if env is None:
        return
    for name in list(job_env()):
        if name not in env:
            del os.environ[name]
    os.environ.update({k: str(v) for k, v in job_env(env).items()})


def _preload(store, cache, count: int) -> None:
    """Load the data sets of the store's latest runs (up to ``count`` different ones) that are here."""
    from .prepare import prepare_run
    from .train.trainer import resolve_device

    seen: list[str] = []
    for run in store.list_runs(limit=50):
        try:
            spec = prepare_run(run["spec"], need_data=False).spec
            key = spec.data.model_dump_json()
            if key in seen or spec.data.problems():
                continue
            seen.append(key)
            cache.for_data_spec(spec.data, device=resolve_device(spec.train.device))
        except Exception as exc:  # noqa: BLE001 - a warm-up: an odd old run is skipped
            log.info("not preloading the data of run %s: %s", run["id"], exc)
        if len(seen) >= count or _interrupted.is_set():
            return


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C, SIGTERM and a gone server all interrupt, from the first line on (a worker stopped
    # while it still imports torch leaves its run as it found it).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        parser = argparse.ArgumentParser(prog="python -m layerlab.worker", description=__doc__.splitlines()[0])
        parser.add_argument("run_id", type=int, nargs="?", help="id of the run in the store (not with --serve)")
        parser.add_argument("--serve", action="store_true",
                            help="a warm worker: run the jobs read from stdin, one JSON line each (module doc)")
        parser.add_argument("--runs", type=int, default=None, help="--serve: exit after this many runs")
        parser.add_argument("--preload", type=int, default=CACHE_SIZE,
                            help="--serve: load the data sets of this many of the store's latest runs first")
        parser.add_argument("--db", default=None,
                            help="store URL or SQLite path (default: $LAYERLAB_DB, then the user store)")
        parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for this run")
        parser.add_argument("--resume", action="store_true",
                            help="continue an interrupted or stopped run from its last checkpoint")
        parser.add_argument("--parent", type=int, default=None,
                            help="stop (like Ctrl-C) when this process, the server, is gone")
        args = parser.parse_args(argv)
        if (args.run_id is None) != args.serve:
            parser.error("give a RUN_ID, or --serve (not both)")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
        if args.parent is not None:
            _watch_parent(args.parent)
        if args.serve:
            return serve(args.db, threads=args.threads, runs=args.runs, preload=args.preload)
        return execute(args.run_id, args.db, threads=args.threads, resume=args.resume)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
