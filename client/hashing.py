"""Hashes of media files computed on the member's side: MD5, SHA-256 and PDQ with quality.

PDQ hex strings are produced exactly as the ``threatexchange`` library (and so
Hasher-Matcher-Actioner) produces them, so a hash from ``beacon hash file`` matches the same
image hashed by HMA.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FileHashes", "hash_file", "pdq_from_image", "pdq_hex"]

_BLOCK = 1 << 20


@dataclass(frozen=True)
class FileHashes:
    """The hashes of one file. ``pdq``/``pdq_quality`` are ``None`` for non-images."""

    path: str
    size: int
    md5: str
    sha256: str
    pdq: str | None = None
    pdq_quality: int | None = None
    pdq_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "md5": self.md5,
            "sha256": self.sha256,
            "pdq": self.pdq,
            "pdq_quality": self.pdq_quality,
            **({"pdq_error": self.pdq_error} if self.pdq_error else {}),
        }


def pdq_hex(bits: Any) -> str:
    """64 hex chars from pdqhash's 256-element bit vector (most significant bit first)."""
    values = [int(b) for b in bits]
    if len(values) != 256:
        raise ValueError("a PDQ hash has 256 bits")
    as_int = 0
    for bit in values:
        as_int = (as_int << 1) | (1 if bit else 0)
    return f"{as_int:064x}"


def pdq_from_image(path: Path) -> tuple[str, int]:
    """PDQ hash (64 hex) and quality (0–100) of an image file; raises ``ValueError`` if unreadable."""
    import numpy as np
    import pdqhash
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not an image PDQ can hash: {exc}") from None
    bits, quality = pdqhash.compute(pixels)
    return pdq_hex(bits), int(quality)


def hash_file(path: Path, *, pdq: bool = True) -> FileHashes:
    """MD5 and SHA-256 of the file's bytes (streamed), and PDQ when it is an image."""
    md5 = hashlib.md5()  # noqa: S324 - MD5 is a signal type here, not a security primitive
    sha256 = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            md5.update(block)
            sha256.update(block)
            size += len(block)
    pdq_value: str | None = None
    quality: int | None = None
    error: str | None = None
    if pdq:
        try:
            pdq_value, quality = pdq_from_image(path)
        except ValueError as exc:
            error = str(exc)
    return FileHashes(
        path=str(path),
        size=size,
        md5=md5.hexdigest(),
        sha256=sha256.hexdigest(),
        pdq=pdq_value,
        pdq_quality=quality,
        pdq_error=error,
    )
