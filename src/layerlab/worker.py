"""``python -m layerlab.worker RUN_ID --db URL [--resume]``: execute one run of a store.

The server's worker pool starts one of these per run, so training never runs in the web
server's process. Without ``--resume`` the run must be ``queued``: its spec comes from the
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
import logging
import os
import signal
import sys
import threading
import time

__all__ = ["main", "execute", "PARENT_POLL_S"]

log = logging.getLogger("layerlab.worker")

PARENT_POLL_S = 0.5  # how often a worker looks whether its server is still there


_interrupted = threading.Event()  # set once a signal (or the parent watch) asked this worker to stop
_defer = True                     # until training steps: note the signal, raise it later (module doc)


def _interrupt(signum, frame):
    _interrupted.set()
    if not _defer:
        raise KeyboardInterrupt


def _on_event(message: dict) -> None:
    """The trainer's first step ends the deferral (after set-up: data loaded, model built)."""
    global _defer
    if _defer and message.get("type") not in ("status", "note"):
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


def execute(run_id: int, db: str | None, *, threads: int | None = None, resume: bool = False) -> int:
    """Train queued run ``run_id`` (or, with ``resume``, continue it) of the store at ``db``; return the exit code."""
    from .errors import LayerlabError
    from .store import Store

    store = Store(db)
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
        prepared = None if resume else prepare_run(run["spec"])
        if _interrupted.is_set():  # asked to stop while starting: the run stays as it was
            log.info("run %s: interrupted before training started", run_id)
            return 130
        if resume:
            resume_run(run_id, store=store, on_event=_on_event)
        else:
            train(prepared, store=store, run_id=run_id, on_event=_on_event)
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


def _fail_if_queued(store, run_id: int, error: str) -> None:
    """The trainer marks runs it started; a run that never started is marked here."""
    try:
        if store.get_run(run_id)["status"] == "queued":
            store.set_status(run_id, "failed", error=error)
    except Exception:  # noqa: BLE001
        log.exception("could not mark run %s failed", run_id)


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C, SIGTERM and a gone server all interrupt, from the first line on (a worker stopped
    # while it still imports torch leaves its run as it found it).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        parser = argparse.ArgumentParser(prog="python -m layerlab.worker", description=__doc__.splitlines()[0])
        parser.add_argument("run_id", type=int, help="id of the run in the store")
        parser.add_argument("--db", default=None,
                            help="store URL or SQLite path (default: $LAYERLAB_DB, then the user store)")
        parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for this run")
        parser.add_argument("--resume", action="store_true",
                            help="continue an interrupted or stopped run from its last checkpoint")
        parser.add_argument("--parent", type=int, default=None,
                            help="stop (like Ctrl-C) when this process, the server, is gone")
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
        if args.parent is not None:
            _watch_parent(args.parent)
        return execute(args.run_id, args.db, threads=args.threads, resume=args.resume)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
