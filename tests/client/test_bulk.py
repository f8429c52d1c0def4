"""Reading signal files: local hashing, and raw identifiers refused before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path

from client.bulk import InputOptions, count_rows, read_items
from client.normalize import identifier_digest

GMAIL_DIGEST = "92ee26057ed9dea2535d6c8b141d48373932476599196e00352254896db5888f"


def write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def test_csv_rows_become_items_with_defaults_and_local_hashing(tmp_path: Path) -> None:
    source = write(
        tmp_path / "emails.csv",
        "email,category,tags,confidence,notes\n"
        "Jane.Saoirse@gmail.com,,fin;urgent,90,internal note\n"
        "x@example.com,csea.grooming,,,\n",
    )
    options = InputOptions(
        type="email",
        value_column="email",
        hash_raw=True,
        defaults={"category": "csea.sextortion", "audience": "all", "tags": []},
    )
    rows = list(read_items(source, options))
    assert [r.line for r in rows] == [2, 3]
    assert rows[0].item == {
        "category": "csea.sextortion",
        "audience": "all",
        "tags": ["fin", "urgent"],
        "confidence": 90,
        "type": "email",
        "value": GMAIL_DIGEST,
    }
    assert rows[1].item is not None and rows[1].item["category"] == "csea.grooming"
    assert rows[1].item["value"] == identifier_digest("email", "x@example.com")
    assert "notes" not in rows[0].item and "email" not in rows[0].item
    assert count_rows(source, "csv") == 2


def test_raw_identifiers_are_refused_without_hash_raw(tmp_path: Path) -> None:
    source = write(
        tmp_path / "mixed.csv",
        f"type,value\nemail,jane@example.com\nemail,{GMAIL_DIGEST.upper()}\nmd5,{'a' * 32}\n",
    )
    rows = list(read_items(source, InputOptions()))
    assert rows[0].item is None and rows[0].rejection is not None
    assert "raw identifier" in rows[0].rejection.reason and rows[0].rejection.line == 2
    assert rows[1].item == {"type": "email", "value": GMAIL_DIGEST}  # hex is lowercased
    assert rows[2].item == {"type": "md5", "value": "a" * 32}


def test_identifiers_that_do_not_normalise_are_rejected_with_the_reason(tmp_path: Path) -> None:
    source = write(
        tmp_path / "ids.ndjson",
        "\n".join(
            [
                json.dumps({"type": "phone", "value": "020 7946 0958"}),
                json.dumps({"type": "phone", "value": "12"}),
                json.dumps({"type": "username", "value": "@Jane", "platform": "Instagram"}),
                json.dumps({"type": "username", "value": "@Jane"}),
                "not json",
                json.dumps({"value": "abc"}),
            ]
        )
        + "\n",
    )
    rows = list(read_items(source, InputOptions(hash_raw=True, region="GB")))
    assert rows[0].item == {
        "type": "phone",
        "value": identifier_digest("phone", "+442079460958", region="US"),
    }
    assert rows[1].rejection is not None and "valid phone number" in rows[1].rejection.reason
    assert rows[2].item == {
        "type": "username",
        "value": identifier_digest("username", "jane", platform="instagram"),
    }
    assert rows[3].rejection is not None and "platform" in rows[3].rejection.reason
    assert rows[4].rejection is not None and rows[4].rejection.line == 5
    assert rows[5].rejection is not None and "no type" in rows[5].rejection.reason


def test_ndjson_items_pass_through_unknown_fields(tmp_path: Path) -> None:
    item = {
        "type": "pdq",
        "value": "f" * 64,
        "quality": 90,
        "category": "csea.csam",
        "bundle": "b1",
    }
    source = write(tmp_path / "media.ndjson", json.dumps(item) + "\n")
    (row,) = read_items(source, InputOptions(defaults={"audience": "group:pilot"}))
    assert row.item == {**item, "audience": "group:pilot"}
