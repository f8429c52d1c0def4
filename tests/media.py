"""Short test videos made in the test (numpy + PyAV's bundled FFmpeg): no downloads."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image


def make_video(
    path: Path, seed: int, *, seconds: int = 8, fps: int = 10, size: tuple[int, int] = (256, 192)
) -> Path:
    """Panning over a few smooth random scenes, a new scene every two seconds (H.264)."""
    rng = np.random.default_rng(seed)
    width, height = size
    scenes = [
        np.asarray(
            Image.fromarray((rng.random((12, 16, 3)) * 255).astype("uint8")).resize(
                (width * 2, height), Image.Resampling.BICUBIC
            )
        )
        for _ in range(4)
    ]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18"}
        for i in range(seconds * fps):
            scene = scenes[(i // (2 * fps)) % len(scenes)]
            x = (i % (2 * fps)) * 4
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(scene[:, x : x + width]), format="rgb24"
            )
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def reencode(src: Path, dst: Path, *, size: tuple[int, int] | None = None) -> Path:
    """Another codec (MPEG-4 part 2) at a low bit rate, optionally resized: a copy as platforms
    re-encode it."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video = inp.streams.video[0]
        stream = out.add_stream("mpeg4", rate=video.average_rate)
        stream.width, stream.height = size or (video.width, video.height)
        stream.pix_fmt, stream.bit_rate = "yuv420p", 300_000
        for frame in inp.decode(video):
            pixels = frame.to_ndarray(format="rgb24")
            if size:
                pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst
