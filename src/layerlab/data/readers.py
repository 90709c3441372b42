"""Readers for the on-disk formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10 binary.

Every reader checks the bytes against the format before NumPy sees them, so a truncated or
foreign file is a DataError naming the file, never a reshape traceback. Nothing here is
unpickled: CIFAR-10 is read from the binary distribution's fixed-length records, and the
tar archive is read member by member in memory (nothing is extracted to disk).
"""
from __future__ import annotations

import io
import math
import tarfile
import zlib
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import DataError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["read_bytes", "decompress", "parse_idx", "read_idx", "DEFAULT_CONTENT_LIMIT",
           "CIFAR_RECORD", "parse_cifar_records", "read_cifar10_tar"]

# Most bytes a gzip file may expand to when the catalogue says nothing tighter (fetch.content_limit
# does): a 14 MB gzip bomb of zeros would otherwise become 6.4 GB in memory before any check.
DEFAULT_CONTENT_LIMIT = 256 * 1024 * 1024
_OUT_CHUNK = 4 << 20  # bytes decompressed per step, so the limit is checked as the stream expands
_IN_CHUNK = 1 << 20  # compressed bytes handed to zlib at a time

# IDX type byte -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

CIFAR_RECORD = 1 + 3 * 32 * 32  # 1 label byte + 1024 red, 1024 green, 1024 blue bytes
CIFAR_TRAIN_MEMBERS = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_MEMBER = "test_batch.bin"


def read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def decompress(data: bytes, path: Path | str, *, limit: int | None = None, name: str = "NAME") -> bytes:
    """The content of a gzip file's bytes; a DataError naming ``path`` if it is corrupt or cut short.

    ``limit`` (default ``DEFAULT_CONTENT_LIMIT``): the most bytes the content may have. It is
    checked as the stream expands, so a gzip bomb is refused having used about ``limit`` bytes.
    Multi-member files (several gzip streams one after another, zero padding between) are read whole.
    ``name``: the data set's, for the fix the error proposes.
    """
    try:
        return _inflate(data, path, DEFAULT_CONTENT_LIMIT if limit is None else limit, name)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a valid gzip file (truncated or corrupt): {e}") from None


def _inflate(data: bytes, path: Path | str, limit: int, name: str) -> bytes:
    """``decompress`` without the wording: EOFError or zlib.error when corrupt, DataError over ``limit``."""
    pieces: list[bytes] = []
    size = 0
    view, pos = memoryview(data), 0
    while True:
        d = zlib.decompressobj(wbits=31)  # one gzip member
        tail = b""
        while not d.eof:
            if not tail and pos < len(view):  # input in slices, output in steps: memory stays near limit
                tail, pos = view[pos:pos + _IN_CHUNK], pos + _IN_CHUNK
            piece = d.decompress(tail, min(limit - size + 1, _OUT_CHUNK))
            tail = d.unconsumed_tail
            size += len(piece)
            if size > limit:
                raise DataError(f"{path}: decompresses to more than {limit:,} bytes, the most this file can "
                                "hold (a gzip bomb, or not the expected file); delete it and fetch the data set "
                                f"again (`layerlab data fetch {name}`)")
            pieces.append(piece)
            if not piece and not tail and pos >= len(view):
                break
        if not d.eof:
            raise EOFError("compressed data ended before the end-of-stream marker")
        rest = (bytes(d.unused_data) + bytes(view[pos:])).lstrip(b"\x00")  # zero padding may follow
        if not rest:
            return b"".join(pieces)
        view, pos = memoryview(rest), 0  # another member follows


def parse_idx(data: bytes, path: Path | str, *, ndim: int | None = None) -> np.ndarray:
    """An IDX file's decompressed bytes as an array of the shape its header declares.

    Checks the magic (two zero bytes, a known type byte, the number of dimensions), that
    ``ndim`` matches when given, and that the payload is exactly as long as the header says.
    """
    import numpy as np  # here, not at import: checking a spec never reads data files
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}; "
                        "expected 0000 followed by a type byte such as 08 and the number of dimensions)")
    dtype, nd = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    if ndim is not None and nd != ndim:
        raise DataError(f"{path}: IDX file has {nd} dimensions, expected {ndim} "
                        f"({'images' if ndim == 3 else 'labels'} file)")
    header = 4 + 4 * nd
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, header needs {header})")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=nd, offset=4))
    want = header + math.prod(dims) * dtype.itemsize  # exact: a hostile header cannot overflow
    if len(data) != want:
        shape = "x".join(map(str, dims))
        what = "truncated" if len(data) < want else "longer than its header says"
        raise DataError(f"{path}: IDX file is {what}: header declares {shape} values of "
                        f"{dtype.itemsize} byte(s), i.e. {want} bytes, but the file has {len(data)}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: Path, *, ndim: int | None = None, limit: int | None = None) -> np.ndarray:
    """Read an IDX file, gzipped (by the .gz suffix or the gzip magic) or not; ``limit`` as for ``decompress``."""
    data = read_bytes(path)
    if data[:2] == b"\x1f\x8b":
        data = decompress(data, path, limit=limit)
    return parse_idx(data, path, ndim=ndim)


def parse_cifar_records(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N,3,32,32) uint8, labels (N,) uint8) from CIFAR-10 binary records."""
    import numpy as np  # here, not at import: checking a spec never reads data files
    if len(data) == 0 or len(data) % CIFAR_RECORD:
        raise DataError(f"{where}: {len(data)} bytes is not a whole number of CIFAR-10 records "
                        f"({CIFAR_RECORD} bytes each: 1 label byte + 3072 pixel bytes)")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)  # (N, 3073)
    labels = records[:, 0]
    if labels.max() > 9:
        raise DataError(f"{where}: label {int(labels.max())} out of range 0..9; not CIFAR-10 records")
    images = records[:, 1:].reshape(-1, 3, 32, 32)  # (N, C, H, W): channel planes, rows of 32
    return images, labels


def read_cifar10_tar(path: Path, data: bytes | None = None, *, limit: int | None = None,
                     name: str = "cifar10") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) from ``cifar-10-binary.tar.gz``, read in memory.

    ``data``: the archive's bytes when already read (to verify them); else read from ``path``.
    ``limit``: the most bytes the tar may have once decompressed (see ``decompress``); the
    members are then views into it, not copies.
    """
    import numpy as np  # here, not at import: checking a spec never reads data files
    wanted = set(CIFAR_TRAIN_MEMBERS) | {CIFAR_TEST_MEMBER}
    found: dict[str, memoryview] = {}
    data = read_bytes(path) if data is None else data
    try:
        plain = _inflate(data, path, DEFAULT_CONTENT_LIMIT if limit is None else limit, name) \
            if data[:2] == b"\x1f\x8b" else data
        tar_bytes = memoryview(plain)
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and not member.issparse() and base in wanted:
                    found[base] = tar_bytes[member.offset_data:member.offset_data + member.size]
                    if len(found[base]) != member.size:
                        raise EOFError(f"member {member.name} is cut short")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a readable tar.gz archive (truncated or corrupt): {e}") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(f"{path}: archive lacks {', '.join(missing)} "
                        "(expected the CIFAR-10 *binary* distribution, cifar-10-binary.tar.gz)")
    parts = [parse_cifar_records(found[m], f"{path}:{m}") for m in CIFAR_TRAIN_MEMBERS]
    x_test, y_test = parse_cifar_records(found[CIFAR_TEST_MEMBER], f"{path}:{CIFAR_TEST_MEMBER}")
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    return x_train, y_train, x_test, y_test
