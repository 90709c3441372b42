"""Where trials run: in this process, in a local process pool, or on Ray.

A trial is ``(store, run_id, spec data)``: the run already exists in the store (queued), and
whoever executes it calls ``layerlab.train.train`` on it, so every trial, wherever it runs,
writes its metrics to the same store (a ``Store`` pickles as its settings; each process opens
its own connections). A trial returns the run's ``RunResults``; one that fails is recorded as
``failed`` by the trainer and returned as a ``TrialFailure``; it does not stop the others.

* ``inline``: one after the other in this process (``workers=1``; no start-up cost).
* ``pool``: ``workers`` spawned processes (spawn, not fork: torch and SQLite connections do not
  survive a fork well); each sets ``torch.set_num_threads(max(1, cores // workers))`` so the
  workers share the cores instead of oversubscribing them.
* ``ray``: one Ray task per trial (``num_cpus=1`` each, one torch thread). ``ray="auto"`` starts
  a local Ray (``ray.init(num_cpus=2, include_dashboard=False)``), any other value is an address
  (``ray://host:10001`` or ``host:6379``) of a running cluster whose workers can import
  layerlab and reach the store's URL (a PostgreSQL URL for several machines). Ray is optional:
  ``pip install 'layerlab[ray]'``.
"""
from __future__ import annotations

import logging
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..errors import LayerlabError

if TYPE_CHECKING:  # layerlab.train imports torch; a trial imports it where it trains
    from ..train.results import RunResults

__all__ = ["Trial", "TrialFailure", "run_trial", "execute", "check_executor", "executor_name", "import_ray", "RAY_INSTALL_HINT"]

log = logging.getLogger(__name__)

RAY_INSTALL_HINT = "Ray is not installed; install it with `pip install 'layerlab[ray]'` (or `pip install 'ray[default]'`)"


@dataclass(frozen=True)
class Trial:
    run_id: int
    spec: dict          # spec data, parsed again where the trial runs
    label: str = ""
    options: dict | None = None   # extra keyword arguments of train() (predictions, log_every)


@dataclass(frozen=True)
class TrialFailure:
    """A trial that ended without results: train() raised, or its worker (process, Ray task) died."""

    run_id: int
    error: str              # "ValueError: ..." or "worker died: ..."
    traceback: str = ""     # the last frames, when train() raised
    status: str = "failed"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(max(1, threads))
    logging.basicConfig(level=logging.WARNING)


def run_trial(store, trial: Trial, threads: int | None = None) -> RunResults | TrialFailure:
    """Execute one queued trial run; return its results (never raises for a failed run)."""
    import torch
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    from ..train import train
    try:
        return train(trial.spec, store=store, run_id=trial.run_id, **(trial.options or {}))
    except Exception as exc:  # noqa: BLE001 — one failed trial must not sink the sweep
        log.warning("trial run %s failed: %s", trial.run_id, exc)
        try:
            run = store.get_run(trial.run_id)
            if run["status"] in ("queued", "running"):
                store.set_status(trial.run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001
            log.exception("could not mark run %s failed", trial.run_id)
        return TrialFailure(trial.run_id, f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=5))


def check_executor(workers: int, ray: str | None) -> None:
    """Fail before any run is queued: a bad worker count, or Ray asked for but not installed."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise LayerlabError(f"The 'workers' parameter must be a positive integer. Got {workers!r} instead.")
    if ray:
        import_ray()


def executor_name(workers: int, ray: str | None) -> str:
    return "ray" if ray else ("inline" if workers <= 1 else "pool")


def execute(store, trials: list[Trial], *, workers: int = 1, ray: str | None = None,
            on_done: Callable[[Trial, RunResults | TrialFailure], None] | None = None
            ) -> dict[int, RunResults | TrialFailure]:
    """Run every trial; return ``{run_id: results or failure}``. ``on_done`` is told as each one ends."""
    check_executor(workers, ray)
    kind = executor_name(workers, ray)
    if kind == "ray":
        return _execute_ray(store, trials, address=ray, on_done=on_done)
    outcomes: dict[int, RunResults | TrialFailure] = {}
    if kind == "inline":
        for t in trials:
            outcomes[t.run_id] = r = run_trial(store, t)
            if on_done:
                on_done(t, r)
        return outcomes
    import multiprocessing as mp
    threads = max(1, _cores() // workers)
    with ProcessPoolExecutor(max_workers=min(workers, len(trials)) or 1, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(run_trial, store, t, threads): t for t in trials}
        for fut in as_completed(futures):
            t = futures[fut]
            try:
                r = fut.result()
            except Exception as exc:  # noqa: BLE001 — a worker died (killed, out of memory)
                r = TrialFailure(t.run_id, f"worker died: {exc}")
                _mark_failed(store, t.run_id, r.error)
            outcomes[t.run_id] = r
            if on_done:
                on_done(t, r)
    return outcomes


def _mark_failed(store, run_id: int, error: str) -> None:
    try:
        run = store.get_run(run_id)
        if run["status"] in ("queued", "running", "interrupted"):
            store.set_status(run_id, "failed", error=error)
    except Exception:  # noqa: BLE001
        log.exception("could not mark run %s failed", run_id)


def import_ray():
    try:
        import ray
    except ImportError:
        raise LayerlabError(RAY_INSTALL_HINT) from None
    return ray


def _ray_trial(store, trial: Trial) -> RunResults | TrialFailure:
    return run_trial(store, trial, threads=1)


def _execute_ray(store, trials: list[Trial], *, address: str,
                 on_done) -> dict[int, RunResults | TrialFailure]:
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        try:
            if address == "auto-local" or address == "auto":
                ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
            else:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except ConnectionError as exc:
            raise LayerlabError(f"cannot connect to Ray at {address!r}: {exc}") from None
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_trial)
        refs = {remote.remote(store, t): t for t in trials}
        outcomes: dict[int, RunResults | TrialFailure] = {}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ref = done[0]
            t = refs[ref]
            try:
                r = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 — the task's worker died
                r = TrialFailure(t.run_id, f"Ray task failed: {exc}")
                _mark_failed(store, t.run_id, r.error)
            outcomes[t.run_id] = r
            if on_done:
                on_done(t, r)
        return outcomes
    finally:
        if started_here:
            ray.shutdown()
