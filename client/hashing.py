"""Hashes of media files computed on the member's side: MD5, SHA-256, PDQ with quality for
images, and vPDQ (PDQ of one frame per second) for videos.

PDQ hex strings are produced exactly as the ``threatexchange`` library (and so
Hasher-Matcher-Actioner) produces them, so a hash from ``beacon hash file`` matches the same
image hashed by HMA.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FileHashes", "hash_file", "pdq_from_image", "pdq_hex", "vpdq_from_video", "vpdq_text"]

_BLOCK = 1 << 20


VpdqFrame = tuple[int, int, str, float]


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
    #: vPDQ frames ``(frame number, quality, PDQ hex, timestamp)`` when the file is a video.
    vpdq: tuple[VpdqFrame, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "md5": self.md5,
            "sha256": self.sha256,
            "pdq": self.pdq,
            "pdq_quality": self.pdq_quality,
            **({"pdq_error": self.pdq_error} if self.pdq_error else {}),
            **(
                {"video_md5": self.md5, "vpdq": vpdq_text(self.vpdq)}
                if self.vpdq is not None
                else {}
            ),
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


def vpdq_text(frames: Any) -> str:
    """Frames in the ``vpdq`` library's text format: ``frame,quality,PDQ hex,timestamp``."""
    return "".join(f"{n},{q},{h},{ts:.3f}\n" for n, q, h, ts in frames)


def vpdq_from_video(path: Path, seconds_per_hash: float = 1.0) -> list[VpdqFrame]:
    """vPDQ of a video: the PDQ hash and quality of every ``seconds_per_hash``-th second's frame.

    Uses the ``vpdq`` package when it is installed; otherwise decodes with PyAV (FFmpeg) and
    hashes the same frames the same way (frame ``n`` is hashed when ``n % int(fps *
    seconds_per_hash) == 0``, as RGB at full size; timestamp ``n / fps``). Raises
    ``ValueError`` for files that are not videos."""
    try:
        import vpdq  # type: ignore[import-not-found]
    except ImportError:
        return _vpdq_with_av(path, seconds_per_hash)
    if not hasattr(vpdq, "computeHash"):
        return _vpdq_with_av(path, seconds_per_hash)
    try:
        features = vpdq.computeHash(str(path), seconds_per_hash=seconds_per_hash)
    except Exception as exc:  # noqa: BLE001 - the extension raises plain errors
        raise ValueError(f"not a video vPDQ can hash: {exc}") from None
    return [(f.frame_number, f.quality, f.hex, round(f.timestamp, 3)) for f in features]


def _vpdq_with_av(path: Path, seconds_per_hash: float) -> list[VpdqFrame]:
    import av
    import pdqhash

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(f"not a video vPDQ can hash: {exc}") from None
    with container:
        if not container.streams.video:
            raise ValueError("not a video vPDQ can hash: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if fps <= 0:
            raise ValueError("not a video vPDQ can hash: unknown frame rate")
        every = max(1, int(seconds_per_hash * fps))
        frames: list[VpdqFrame] = []
        try:
            for n, frame in enumerate(container.decode(stream)):
                if n % every:
                    continue
                bits, quality = pdqhash.compute(frame.to_ndarray(format="rgb24"))
                frames.append((n, int(quality), pdq_hex(bits), round(n / fps, 3)))
        except av.FFmpegError as exc:
            raise ValueError(f"not a video vPDQ can hash: {exc}") from None
    if not frames:
        raise ValueError("not a video vPDQ can hash: no frames")
    return frames


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
    video: list[VpdqFrame] | None = None
    if pdq:
        try:
            pdq_value, quality = pdq_from_image(path)
        except ValueError as exc:
            error = str(exc)
            try:
                video = vpdq_from_video(path)
                error = None
            except ValueError:
                pass
    return FileHashes(
        path=str(path),
        size=size,
        md5=md5.hexdigest(),
        sha256=sha256.hexdigest(),
        pdq=pdq_value,
        pdq_quality=quality,
        pdq_error=error,
        vpdq=tuple(video) if video is not None else None,
    )
