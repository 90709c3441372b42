"""Readers for the on-disk formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10 binary.

Every reader checks the bytes against the format before NumPy sees them, so a truncated or
foreign file is a DataError naming the file, never a reshape traceback. Nothing here is
unpickled: CIFAR-10 is read from the binary distribution's fixed-length records, and the
tar archive is read member by member in memory (nothing is extracted to disk).
"""
from __future__ import annotations

import gzip
import io
import math
import tarfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["read_bytes", "decompress", "parse_idx", "read_idx",
           "CIFAR_RECORD", "parse_cifar_records", "read_cifar10_tar"]

# IDX type byte -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

CIFAR_RECORD = 1 + 3 * 32 * 32  # 1 label byte + 1024 red, 1024 green, 1024 blue bytes
CIFAR_TRAIN_MEMBERS = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_MEMBER = "test_batch.bin"


def read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def decompress(data: bytes, path: Path | str) -> bytes:
    """The content of a gzip file's bytes; a DataError naming ``path`` if it is corrupt or cut short."""
    try:
        d = zlib.decompressobj(wbits=31)  # gzip wrapper; faster than gzip.decompress here
        content = d.decompress(data)
        if not d.eof:
            raise EOFError("compressed data ended before the end-of-stream marker")
        if d.unused_data:  # a multi-member gzip file: let the gzip module walk the members
            content = gzip.decompress(data)
        return content
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a valid gzip file (truncated or corrupt): {e}") from None


def parse_idx(data: bytes, path: Path | str, *, ndim: int | None = None) -> np.ndarray:
    """An IDX file's decompressed bytes as an array of the shape its header declares.

    Checks the magic (two zero bytes, a known type byte, the number of dimensions), that
    ``ndim`` matches when given, and that the payload is exactly as long as the header says.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}; "
                        "expected 0000 followed by a type byte such as 08 and the number of dimensions)")
    dtype, nd = _IDX_DTYPES[data[2]], data[3]
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


def read_idx(path: Path, *, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file, gzipped (by the .gz suffix or the gzip magic) or not."""
    data = read_bytes(path)
    if data[:2] == b"\x1f\x8b":
        data = decompress(data, path)
    return parse_idx(data, path, ndim=ndim)


def parse_cifar_records(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N,3,32,32) uint8, labels (N,) uint8) from CIFAR-10 binary records."""
    if len(data) == 0 or len(data) % CIFAR_RECORD:
        raise DataError(f"{where}: {len(data)} bytes is not a whole number of CIFAR-10 records "
                        f"({CIFAR_RECORD} bytes each: 1 label byte + 3072 pixel bytes)")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)  # (N, 3073)
    labels = records[:, 0]
    if labels.max() > 9:
        raise DataError(f"{where}: label {int(labels.max())} out of range 0..9; not CIFAR-10 records")
    images = records[:, 1:].reshape(-1, 3, 32, 32)  # (N, C, H, W): channel planes, rows of 32
    return images, labels


def read_cifar10_tar(path: Path, data: bytes | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) from ``cifar-10-binary.tar.gz``, read in memory.

    ``data``: the archive's bytes when already read (to verify them); else read from ``path``.
    """
    wanted = set(CIFAR_TRAIN_MEMBERS) | {CIFAR_TEST_MEMBER}
    found: dict[str, bytes] = {}
    try:
        source = {"fileobj": io.BytesIO(data)} if data is not None else {"name": path}
        with tarfile.open(mode="r:*", **source) as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    f = tar.extractfile(member)
                    found[base] = f.read() if f is not None else b""
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
