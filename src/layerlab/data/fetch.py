"""Finding, verifying and downloading a data set's files.

Search order for data set ``<name>``: ``$LAYERLAB_DATA/<name>/``, then
``$XDG_CACHE_HOME/layerlab/<name>/`` (``~/.cache/layerlab/<name>/`` when XDG_CACHE_HOME is
unset), then ``/usr/share/datasets/<name>/`` (where Debian's dataset packages install).

Downloads try the mirrors in order: the ``mirrors=`` argument, else ``$LAYERLAB_MIRRORS``
(comma- or space-separated base URLs), else the catalogue's. Each file streams into a temp
file in the destination directory while being hashed, and is moved into place with
``os.replace`` only once its size and sha256 verify, so an interrupted or corrupt download
never leaves a file that looks valid. Library code does not print: progress goes to an
optional ``progress(file_name, bytes_done, bytes_total_or_None)`` callback.
"""
from __future__ import annotations

import hashlib
import http.client
import math
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from ..errors import DataError
from .catalogue import DatasetInfo, SourceFile, get_info
from .readers import CIFAR_RECORD, DEFAULT_CONTENT_LIMIT, decompress, read_bytes

__all__ = ["SYSTEM_DATA_DIR", "search_dirs", "candidates", "locate", "find_file", "file_problems", "default_dest",
           "resolve_mirrors", "content_limit", "verify_file", "verify_bytes", "fetch", "missing_message",
           "Progress", "FetchFailed", "public_text"]

Progress = Callable[[str, int, "int | None"], None]

SYSTEM_DATA_DIR = Path("/usr/share/datasets")
_CHUNK = 1 << 20
DEFAULT_TIMEOUT = 30.0  # seconds per connect/read; tests pass much less


def _cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "layerlab"


def search_dirs(name: str) -> list[Path]:
    """The directories looked in for data set ``name``, in order."""
    dirs = []
    if os.environ.get("LAYERLAB_DATA"):
        dirs.append(Path(os.environ["LAYERLAB_DATA"]) / name)
    dirs.append(_cache_root() / name)
    dirs.append(SYSTEM_DATA_DIR / name)
    return dirs


def default_dest(name: str) -> Path:
    """Where ``fetch`` writes by default: ``$LAYERLAB_DATA/<name>`` if set, else the cache."""
    return search_dirs(name)[0]


def candidates(sf: SourceFile) -> list[str]:
    """File names that can stand for ``sf``: as distributed, or decompressed (``x.gz`` -> ``x``)."""
    names = [sf.name]
    if sf.name.endswith(".gz") and not sf.name.endswith(".tar.gz"):
        names.append(sf.name[:-3])
    return names


def find_file(directory: Path, sf: SourceFile) -> Path | None:
    """The file standing for ``sf`` in ``directory``; None if there is none, or it cannot be looked at."""
    for n in candidates(sf):
        p = directory / n
        try:
            if p.is_file():
                return p
        except (OSError, ValueError):  # a folder we may not enter, a name too long: not here (file_problems says why)
            pass
    return None


def file_problems(name: str, *, info: DatasetInfo | None = None) -> list[str]:
    """Why files of ``name`` that seem to be present cannot be used: an unreadable search
    directory, a folder or a broken link where a file is expected. Empty when nothing is odd."""
    info = info or get_info(name)
    out: list[str] = []
    for d in search_dirs(name):
        try:
            if not d.exists():
                continue
            if not d.is_dir():
                out.append(f"{d} is not a directory")
                continue
            os.listdir(d)  # raises if we may not look inside
        except (OSError, ValueError) as e:
            out.append(f"cannot look in {d}: {getattr(e, 'strerror', None) or e}")
            continue
        for sf in info.files:
            for n in candidates(sf):
                p = d / n
                try:
                    st = p.lstat()
                except FileNotFoundError:
                    continue
                except (OSError, ValueError) as e:
                    out.append(f"cannot look at {p}: {getattr(e, 'strerror', None) or e}")
                    continue
                if p.is_symlink() and not p.exists():
                    out.append(f"{p} is a broken symbolic link (to {os.readlink(p)})")
                elif p.is_dir():
                    out.append(f"{p} is a directory, not a file")
                elif not p.is_file():
                    out.append(f"{p} is not a regular file (mode {st.st_mode:o})")
                elif not os.access(p, os.R_OK):
                    out.append(f"{p} cannot be read (permission denied)")
    return out


def locate(name: str) -> Path | None:
    """The first search directory holding every file of ``name`` (not yet verified), else None.

    Data sets with no files (bundled or generated) are never located: None.
    """
    info = get_info(name)
    if not info.files:
        return None
    for d in search_dirs(name):
        if all(find_file(d, sf) is not None for sf in info.files):
            return d
    return None  # never an OSError: an unreadable directory is one that does not hold the set


def available(name: str) -> bool:
    """Whether data set ``name`` can be loaded without downloading (bundled, generated, or its files found)."""
    info = get_info(name)
    return not info.files or locate(name) is not None


class FetchFailed(DataError):
    """Files of a data set that are neither here nor downloadable; ``attempts`` lists what was tried.

    ``str()`` is the full message for the CLI (where it looked, how to install by hand);
    ``summary`` is the short, path-free one a web page shows.
    """

    def __init__(self, message: str, *, name: str, attempts: list[str]):
        super().__init__(message)
        self.name, self.attempts = name, list(attempts)

    @property
    def summary(self) -> str:
        tried = "; ".join(public_text(a, self.name) for a in self.attempts) or "no mirror was tried"
        return f"data set {self.name!r} could not be downloaded: {tried}"


def public_text(text: str, name: str) -> str:
    """``text`` with this machine's data folders for ``name`` (and the home folder) left out: for web pages."""
    for d in sorted({str(p) for p in search_dirs(name)} | {str(default_dest(name))}, key=len, reverse=True):
        text = text.replace(d, "the server's data folder")
    home = str(Path.home())
    return text.replace(home + "/", "~/") if len(home) > 1 else text


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_limit(info: DatasetInfo, sf: SourceFile) -> int:
    """The most bytes ``sf`` of data set ``info`` may decompress to; more is a gzip bomb or a foreign file.

    ``sf.content_size`` where the catalogue knows it; else, for IDX files, the header plus the
    expected example count times the example size; for the CIFAR-10 tar, its records plus room
    for the tar's headers and small members; else ``DEFAULT_CONTENT_LIMIT``.
    """
    if sf.content_size is not None:
        return sf.content_size
    if info.loader == "idx" and info.train_size and info.test_size:
        count = info.train_size if sf.name.startswith("train") else info.test_size
        if "images" in sf.name:
            dims, example = 1 + len(info.input_shape[1:]), math.prod(info.input_shape)  # (N, H, W), H*W*C
        else:
            dims, example = 1, 1  # (N,) one label byte each
        return 4 + 4 * dims + count * example
    if info.loader == "cifar10-binary" and info.train_size and info.test_size:
        return (info.train_size + info.test_size) * CIFAR_RECORD + (4 << 20)
    return DEFAULT_CONTENT_LIMIT


def verify_bytes(data: bytes, sf: SourceFile, where: Path | str, *,
                 allow_plain: bool = True, limit: int | None = None, name: str = "NAME") -> bytes:
    """Check a file's raw bytes against ``sf``; return its content (decompressed if gzip).

    Accepts the published hash of the distributed file, or, for gzip files, the hash of the
    decompressed content (so a recompressed copy, such as Debian's, verifies). A
    decompressed copy verifies against ``content_sha256``; where none is known it passes
    (if ``allow_plain``) and the format reader's structural checks are what guard it.
    Errors name ``where``. ``limit``: the most bytes the content may have (``content_limit``;
    default ``sf.content_size``), checked while decompressing, before any hash of the content.
    """
    single_gz = sf.name.endswith(".gz") and not sf.name.endswith(".tar.gz")
    is_gz = single_gz and data[:2] == b"\x1f\x8b"
    limit = limit if limit is not None else sf.content_size
    if _sha(data) == sf.sha256:
        return decompress(data, where, limit=limit, name=name) if is_gz else data
    content = decompress(data, where, limit=limit, name=name) if is_gz else data
    if sf.content_sha256 is not None and (is_gz or single_gz) and _sha(content) == sf.content_sha256:
        return content
    if allow_plain and single_gz and not is_gz and sf.content_sha256 is None:
        return content  # a decompressed copy with no published content hash
    expected = sf.sha256 + (f" (or {sf.content_sha256} for the decompressed content)"
                            if sf.content_sha256 else "")
    raise DataError(f"{where}: checksum mismatch: sha256 is {_sha(data)}, expected {expected}; "
                    "the file is corrupt or not the expected one (delete it and fetch again)")


def verify_file(path: Path, sf: SourceFile, *, info: DatasetInfo | None = None) -> bytes:
    """Read and verify one file of data set ``info``; its (decompressed) content, at most ``content_limit``."""
    limit = content_limit(info, sf) if info is not None else None
    return verify_bytes(read_bytes(path), sf, Path(path), limit=limit, name=info.name if info else "NAME")


def resolve_mirrors(info: DatasetInfo, mirrors: list[str] | tuple[str, ...] | None) -> list[str]:
    if mirrors is not None:
        return [m for m in mirrors if m]
    env = os.environ.get("LAYERLAB_MIRRORS", "").replace(",", " ").split()
    return env or list(info.mirrors)


def _url(base: str, file_name: str) -> str:
    return base.rstrip("/") + "/" + file_name


def _download_limit(sf: SourceFile, limit: int) -> int:
    """The most bytes a download of ``sf`` may have: the published size, or a recompressed copy
    of content of at most ``limit`` bytes (gzip adds well under 1% to incompressible data)."""
    return max(sf.size or 0, limit + limit // 100 + (64 << 10))


def _download_one(url: str, sf: SourceFile, dest: Path, progress: Progress | None,
                  timeout: float, info: DatasetInfo) -> None:
    """Download ``url`` to ``dest/sf.name``, verified; raises OSError/DataError on failure."""
    limit = content_limit(info, sf)
    most = _download_limit(sf, limit)
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{sf.name}.", suffix=".part")
    try:
        h = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else sf.size
            if progress:
                progress(sf.name, 0, total)
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if done > most:  # a mirror that never stops must not fill the disk
                    raise DataError(f"the download is larger than {most:,} bytes, more than {sf.name} can be")
                if progress:
                    progress(sf.name, done, total)
            out.flush()
            os.fsync(out.fileno())
        if length and length.isdigit() and done != int(length):
            raise DataError(f"truncated download: got {done} of {length} bytes")
        if h.hexdigest() != sf.sha256:
            # Not the published file; still fine if it is a recompressed copy of the content.
            verify_bytes(Path(tmp).read_bytes(), sf, "downloaded file", allow_plain=False, limit=limit,
                         name=info.name)
        os.replace(tmp, dest / sf.name)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _describe(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"unreachable ({e.reason})"
    if isinstance(e, DataError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def missing_message(info: DatasetInfo, attempts: list[str] | None = None) -> str:
    """The one message for files that are neither found nor downloadable."""
    dirs = search_dirs(info.name)
    files = ", ".join(sf.name for sf in info.files)
    plain = any(len(candidates(sf)) > 1 for sf in info.files)
    lines = [f"data set {info.name!r} is not available: its files were not found and could not be downloaded.",
             f"  looked for: {files}" + (" (or their decompressed forms, without .gz)" if plain else ""),
             "  in: " + "; ".join(str(d) for d in dirs)]
    odd = file_problems(info.name, info=info)
    if odd:
        lines.append("  found but unusable:")
        lines.extend(f"    {p}" for p in odd)
    if attempts:
        lines.append("  download attempts:")
        lines.extend(f"    {a}" for a in attempts)
    base = info.mirrors[0] if info.mirrors else "<a mirror>"
    lines.append(f"  to install by hand: download {files} from {base} (or another mirror) "
                 f"and put them in {dirs[0]}/ (set LAYERLAB_DATA to choose another root), "
                 f"then run `layerlab data show {info.name}`")
    return "\n".join(lines)


def fetch(name: str, *, mirrors: list[str] | None = None, dest: Path | str | None = None,
          progress: Progress | None = None, timeout: float = DEFAULT_TIMEOUT,
          info: DatasetInfo | None = None) -> Path:
    """Make every file of ``name`` present and verified in one directory; return it.

    A complete set already in a search directory is verified there and returned. Otherwise
    missing files are downloaded to ``dest`` (default: ``default_dest``) from the mirrors in
    order. ``info`` overrides the catalogue entry (tests use it for
    tiny stand-in files).
    """
    info = info or get_info(name)
    if not info.files:
        raise DataError(f"data set {name!r} has no files to fetch ({info.source}: "
                        "it is always available)")
    if dest is None:
        found = locate(name) if info is get_info(name) else None
        if found is not None:
            for sf in info.files:  # present: verify in place (DataError names a bad file)
                verify_file(find_file(found, sf), sf, info=info)
            return found
    dest = Path(dest) if dest is not None else default_dest(name)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {dest}: {e.strerror or e}") from None
    bases = resolve_mirrors(info, mirrors)
    attempts: list[str] = []
    for sf in info.files:
        have = find_file(dest, sf)
        if have is not None:
            try:
                verify_file(have, sf, info=info)
                continue
            except DataError as e:
                attempts.append(f"{have}: present but {e}")
        for base in bases:
            url = _url(base, sf.name)
            try:
                _download_one(url, sf, dest, progress, timeout, info)
                break
            # URLError/HTTPError/timeouts are OSError; IncompleteRead (chunked) is HTTPException
            except (OSError, DataError, ValueError, http.client.HTTPException) as e:
                attempts.append(f"{url}: {_describe(e)}")
        else:
            if not bases:
                attempts.append("no mirrors configured")
            raise FetchFailed(missing_message(info, attempts), name=name, attempts=attempts)
    return dest
