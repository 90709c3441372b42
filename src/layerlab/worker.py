"""``python -m layerlab.worker RUN_ID --db URL``: execute one queued run of a store.

The server's worker pool starts one of these per run, so training never runs in the web
server's process. The run's spec comes from the store (it was validated when the run was
created); the trainer records everything there. SIGTERM is treated like Ctrl-C: the trainer
marks the run ``interrupted`` (resumable) and the process exits 130.

Exit codes: 0 finished/stopped/diverged (the store says which), 1 unexpected error,
2 user error (bad spec, missing data: the run is marked ``failed`` with the message),
3 the run was not ``queued`` (nothing done), 130 interrupted.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys

__all__ = ["main", "execute"]

log = logging.getLogger("layerlab.worker")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def execute(run_id: int, db: str | None, *, threads: int | None = None) -> int:
    """Train queued run ``run_id`` of the store at ``db``; return the exit code (see module doc)."""
    from .errors import LayerlabError
    from .store import Store

    store = Store(db)
    run = store.get_run(run_id)
    if run["status"] != "queued":
        log.warning("run %s is %s, not queued; nothing to do", run_id, run["status"])
        return 3
    if threads:
        import torch
        torch.set_num_threads(threads)
    try:
        from .prepare import prepare_run
        from .train import train
        train(prepare_run(run["spec"]), store=store, run_id=run_id)
        return 0
    except KeyboardInterrupt:
        return 130
    except LayerlabError as exc:
        _fail_if_queued(store, run_id, str(exc))
        log.error("run %s failed: %s", run_id, exc)
        return 2
    except Exception as exc:  # noqa: BLE001 - recorded in the store, then reported by the exit code
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
    parser = argparse.ArgumentParser(prog="python -m layerlab.worker", description=__doc__.splitlines()[0])
    parser.add_argument("run_id", type=int, help="id of a queued run in the store")
    parser.add_argument("--db", default=None, help="store URL or SQLite path (default: $LAYERLAB_DB, then the user store)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for this run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    return execute(args.run_id, args.db, threads=args.threads)


if __name__ == "__main__":
    sys.exit(main())
