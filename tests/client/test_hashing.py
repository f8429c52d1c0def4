"""File hashes match hashlib and, for PDQ, the threatexchange library (and so HMA)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image
from threatexchange.signal_type.pdq.signal import PdqSignal
from typer.testing import CliRunner

from client.cli import app
from client.hashing import hash_file, pdq_hex


def make_image(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    blocks = (rng.random((32, 32, 3)) * 255).astype("uint8")
    Image.fromarray(np.kron(blocks, np.ones((8, 8, 1), dtype="uint8"))).save(path)
    return path


def test_file_hashes_match_hashlib_and_threatexchange_pdq(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.png", 1)
    hashes = hash_file(image)
    data = image.read_bytes()
    assert hashes.md5 == hashlib.md5(data).hexdigest()  # noqa: S324
    assert hashes.sha256 == hashlib.sha256(data).hexdigest()
    assert hashes.size == len(data)
    assert hashes.pdq == PdqSignal.hash_from_file(image)
    assert hashes.pdq_quality is not None and 0 <= hashes.pdq_quality <= 100


def test_non_images_have_no_pdq_but_still_their_digests(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    hashes = hash_file(text)
    assert hashes.pdq is None and hashes.pdq_error
    assert hashes.sha256 == hashlib.sha256(b"hello").hexdigest()


def test_pdq_hex_is_most_significant_bit_first() -> None:
    bits = [1] + [0] * 254 + [1]
    assert pdq_hex(bits) == "8" + "0" * 62 + "1"


def test_cli_hashes_identifiers_and_files(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["hash", "email", "Jane.Saoirse@gmail.com", "JaneSaoirse+Work@gmail.com"]
    )
    assert result.exit_code == 0
    assert (
        result.output.split()
        == ["92ee26057ed9dea2535d6c8b141d48373932476599196e00352254896db5888f"] * 2
    )
    result = runner.invoke(
        app, ["hash", "phone", "020 7946 0958", "--region", "GB", "--normalised"]
    )
    assert result.output.split()[1] == "+442079460958"
    result = runner.invoke(app, ["hash", "username", "@JaneSaoirse", "--platform", "Instagram"])
    assert result.output.strip() == hashlib.sha256(b"instagram:janesaoirse").hexdigest()
    result = runner.invoke(app, ["hash", "phone", "12", "--region", "GB"])
    assert result.exit_code == 3

    image = make_image(tmp_path / "b.png", 2)
    result = runner.invoke(app, ["hash", "file", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in result.output.splitlines()]
    assert record["path"] == str(image) and record["pdq"] == PdqSignal.hash_from_file(image)


def make_photo(path: Path, seed: int, size: int = 320) -> Path:
    """A photo-like picture: random colours interpolated smoothly over a 24 x 24 grid."""
    rng = np.random.default_rng(seed)
    blocks = (rng.random((24, 24, 3)) * 255).astype("uint8")
    Image.fromarray(blocks).resize((size, size), Image.Resampling.BICUBIC).save(path)
    return path


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def test_jpeg_reencode_and_small_resize_stay_within_31_bits(tmp_path: Path) -> None:
    for seed in range(3):
        original = make_photo(tmp_path / f"o{seed}.png", seed)
        with Image.open(original) as image:
            image.save(tmp_path / f"q{seed}.jpg", quality=70)
            image.resize((288, 288), Image.Resampling.BILINEAR).save(tmp_path / f"r{seed}.png")
            image.resize((288, 288), Image.Resampling.LANCZOS).save(
                tmp_path / f"rq{seed}.jpg", quality=85
            )
        base = hash_file(original)
        assert base.pdq is not None
        for copy in (f"q{seed}.jpg", f"r{seed}.png", f"rq{seed}.jpg"):
            other = hash_file(tmp_path / copy)
            assert other.pdq is not None
            assert other.md5 != base.md5
            assert hamming(base.pdq, other.pdq) <= 31, (seed, copy)
        unrelated = hash_file(make_photo(tmp_path / f"u{seed}.png", seed + 100))
        assert unrelated.pdq is not None and hamming(base.pdq, unrelated.pdq) > 31


def test_videos_get_vpdq_and_a_reencoded_copy_keeps_its_frames_not_its_md5(
    tmp_path: Path,
) -> None:
    from client.hashing import vpdq_from_video
    from tests.media import make_video, reencode

    original = make_video(tmp_path / "v.mp4", 3)
    copy = reencode(original, tmp_path / "v2.mp4", size=(224, 168))
    a, b = vpdq_from_video(original), vpdq_from_video(copy)
    assert [f[0] for f in a] == list(range(0, 80, 10))  # one frame per second at 10 fps
    assert [f[3] for f in a] == [float(s) for s in range(8)]
    assert all(min(hamming(x[2], y[2]) for y in a) <= 31 for x in b)
    hashes = hash_file(copy)
    assert hashes.pdq is None and hashes.vpdq is not None and hashes.md5 != hash_file(original).md5
    result = CliRunner().invoke(app, ["hash", "file", "--json", str(copy)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["video_md5"] == hashes.md5
    assert body["vpdq"].splitlines()[0].split(",")[0] == "0"
    text = CliRunner().invoke(app, ["hash", "file", str(copy)])
    assert "vpdq" in text.output and "8 frames" in text.output
