"""Data-set downloads the browser asks for: one background job per data set, polled for progress.

The builder's **Download** button posts ``/api/datasets/{name}/download`` and then polls the
same path for the job's state and byte counts, which it draws as a progress bar. The work is
``data.fetch.fetch`` — the mirrors in order, each file hashed while it streams into a temp file
and moved into place only once its size and sha256 verify — run in a thread, so the event loop
never waits on the network. What the page is told names no folder of the server
(``fetch.public_text``).
"""
from __future__ import annotations

import threading
import time

from ..data import get_info
from ..data.fetch import FetchFailed, fetch, public_text
from ..errors import Conflict, LayerlabError

__all__ = ["Downloads", "STATES"]

STATES = ("idle", "running", "done", "failed")


class _Job:
    """One data set's download: which file, how many bytes of how many, and how it ended."""

    def __init__(self, name: str):
        info = get_info(name)
        self.name = name
        self.state = "idle"
        self.sizes = {sf.name: sf.size or 0 for sf in info.files}  # the catalogue's, until a server says more
        self.done: dict[str, int] = {}
        self.file: str | None = None
        self.error: str | None = None
        self.started = self.ended = None

    def progress(self, file: str, done: int, total: int | None) -> None:
        self.file = file
        self.done[file] = done
        if total:
            self.sizes[file] = total

    def to_json(self) -> dict:
        total = sum(self.sizes.values())
        done = sum(min(self.done.get(f, 0), size) if size else self.done.get(f, 0) for f, size in self.sizes.items())
        if self.state == "done":
            done = total
        return {"dataset": self.name, "state": self.state, "file": self.file,
                "files": len(self.sizes), "bytes_done": done, "bytes_total": total or None,
                "fraction": (done / total) if total else (1.0 if self.state == "done" else 0.0),
                "error": self.error,
                "seconds": round((self.ended or time.time()) - self.started, 3) if self.started else None}


class Downloads:
    """The server's download jobs: at most one running per data set; the last one's state is kept."""

    def __init__(self):
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def status(self, name: str) -> dict:
        """The state of ``name``'s download ("idle" when none was asked for since the server started)."""
        get_info(name)  # UnknownDataset: 404
        with self._lock:
            job = self._jobs.get(name) or _Job(name)
            return job.to_json()

    def start(self, name: str) -> dict:
        """Start fetching ``name`` (or return the running job); a data set with no files is a ``Conflict``."""
        info = get_info(name)
        if not info.files:
            raise Conflict(f"data set {name!r} is {info.source}: it is always available, there is nothing to download")
        with self._lock:
            job = self._jobs.get(name)
            if job is not None and job.state == "running":
                return job.to_json()
            job = self._jobs[name] = _Job(name)
            job.state, job.started = "running", time.time()
        threading.Thread(target=self._run, args=(job,), name=f"download-{name}", daemon=True).start()
        with self._lock:
            return job.to_json()

    def _run(self, job: _Job) -> None:
        try:
            fetch(job.name, progress=lambda f, done, total: self._progress(job, f, done, total))
        except FetchFailed as exc:
            self._end(job, "failed", exc.summary)
        except LayerlabError as exc:  # a file here that fails its checksum, a folder that cannot be made
            self._end(job, "failed", public_text(str(exc), job.name))
        except Exception as exc:  # noqa: BLE001 - a bug or an OS error: said, not raised in a thread nobody reads
            self._end(job, "failed", public_text(f"{type(exc).__name__}: {exc}", job.name))
        else:
            self._end(job, "done", None)

    def _progress(self, job: _Job, file: str, done: int, total: int | None) -> None:
        with self._lock:
            job.progress(file, done, total)

    def _end(self, job: _Job, state: str, error: str | None) -> None:
        with self._lock:
            job.state, job.error, job.ended = state, error, time.time()
