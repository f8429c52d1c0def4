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
