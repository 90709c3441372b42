"""PNG images of data-set examples, written with zlib and struct (no imaging library needed)."""
from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["png_bytes", "example_png"]


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_bytes(img: np.ndarray) -> bytes:
    """An 8-bit greyscale (H, W) or RGB (H, W, 3) array as PNG bytes."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    if img.ndim == 2:
        color = 0
    elif img.ndim == 3 and img.shape[2] == 3:
        color = 2
    else:
        raise ValueError(f"png_bytes needs (H, W) or (H, W, 3), got {img.shape}")
    h, w = img.shape[:2]
    rows = img.reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter byte 0 per row
    header = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")


def example_png(x, pixel_range: tuple[float, float] | None) -> bytes:
    """One raw example (C, H, W) — uint8 or float — scaled from ``pixel_range`` to 0..255."""
    arr = np.asarray(x.cpu() if hasattr(x, "cpu") else x, dtype=np.float64)
    lo, hi = pixel_range if pixel_range is not None else (float(arr.min()), float(arr.max()))
    width = (hi - lo) or 1.0
    arr = np.clip((arr - lo) * (255.0 / width), 0, 255).round().astype(np.uint8)
    if arr.shape[0] == 1:
        return png_bytes(arr[0])            # (H, W)
    return png_bytes(arr.transpose(1, 2, 0))  # (C, H, W) -> (H, W, C)
