"""Case bundles: signed, checked offline, and failing loudly on one flipped byte."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from surveillance.cases.bundle import MANIFEST, README, verify_bundle, write_bundle
from surveillance.cases.commands import verify_bundle_command
from surveillance.cases.signing import KEY_FILE, NodeKey
from surveillance.cases.storage import LocalEvidenceStore
from surveillance.cases.store import CaseStores
from tests.cases.helpers import export_view, footage


@pytest.fixture
def bundle(stores: CaseStores, tmp_path: Path) -> tuple[Path, NodeKey, bytes]:
    evidence = LocalEvidenceStore(tmp_path / "ev")
    evidence.prepare()
    number = stores.cases.create(title="bundle", reporter="ann").number
    media = bytes(range(256)) * 40
    stores.items.add(number, footage(media), evidence.put(media), "bob")
    stores.items.add(number, footage(media), evidence.put(media), "carl")  # same bytes twice
    key = NodeKey.load_or_create(tmp_path / "data")
    view = export_view(stores, number, "dora", {"node": "n1"})
    out = io.BytesIO()
    write_bundle(out, view, evidence, key, "n1", "dora", datetime.now(UTC))
    path = tmp_path / "case.zip"
    path.write_bytes(out.getvalue())
    return path, key, media


def test_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = NodeKey.load_or_create(tmp_path)
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert NodeKey.load_or_create(tmp_path).fingerprint == key.fingerprint
    assert key.fingerprint.startswith("sha256:") and len(key.fingerprint) == 7 + 64


def test_bundle_verifies_and_names_its_signer(bundle: tuple[Path, NodeKey, bytes]) -> None:
    path, key, _ = bundle
    report = verify_bundle(str(path))
    assert report.problems == []
    assert report.fingerprint == key.fingerprint and report.items == 2
    manifest = json.loads(zipfile.ZipFile(path).read(MANIFEST))
    assert [e["action"] for e in manifest["custody"]] == ["create", "attach", "attach", "export"]
    assert manifest["exported_by"] == "dora"
    assert verify_bundle(str(path), "sha256:" + "0" * 64).problems[-1].startswith("signed by")


def flipped(path: Path, offset: int) -> Path:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    copy = path.with_name(f"flipped-{offset}.zip")
    copy.write_bytes(bytes(data))
    return copy


def test_one_flipped_byte_anywhere_in_content_fails(bundle: tuple[Path, NodeKey, bytes]) -> None:
    path, _, media = bundle
    data = path.read_bytes()
    archive = zipfile.ZipFile(path)
    offsets = {
        "media": data.index(media) + len(media) // 2,
        "manifest": data.index(b'"exported_by"'),
        "signature": data.index(archive.read("manifest.json.sig")[:20]) + 5,
        "central directory": data.rindex(b"media/") + 3,
    }
    for where, offset in offsets.items():
        report = verify_bundle(str(flipped(path, offset)))
        assert report.problems, f"a flipped byte in the {where} went unnoticed"


def test_manifest_keeps_the_field_names_of_format_1(bundle: tuple[Path, NodeKey, bytes]) -> None:
    """The manifest is written from the records generically; old bundles and other tools
    read these names, so a record change must not rename or drop one."""
    path, _, _ = bundle
    manifest = json.loads(zipfile.ZipFile(path).read(MANIFEST))
    assert set(manifest) == {
        "format", "exported_at", "exported_by", "node", "case", "items", "custody",
        "custody_head", "custody_signing", "readme",
    }  # fmt: skip
    assert set(manifest["case"]) == {
        "number", "title", "description", "place", "reporter", "assignee", "state", "tags",
        "cameras", "created_at", "updated_at", "timeline",
    }  # fmt: skip
    assert set(manifest["case"]["timeline"][0]) == {
        "at", "actor", "kind", "text", "from_state", "to_state", "item",
    }  # fmt: skip
    assert set(manifest["items"][0]) == {
        "id", "kind", "file", "sha256", "size", "media_type", "camera", "platform",
        "captured_at", "stream_time_s", "attached_at", "attached_by", "codec", "width",
        "height", "duration_s", "frames", "note", "camera_clock_offset_s",
    }  # fmt: skip
    assert set(manifest["custody"][0]) == {
        "seq", "at", "actor", "action", "item", "detail", "prev_hash", "entry_hash",
        "signature",
    }  # fmt: skip
    assert manifest["case"]["state"] == "reported" and manifest["case"]["cameras"] == ["cam01"]
    assert manifest["items"][0]["camera"] == "cam01"
    assert manifest["custody_head"]["seq"] == len(manifest["custody"])


def rezipped(path: Path, name: str, members: list[tuple[str, bytes]]) -> Path:
    """The bundle's members in their order, with ``members`` put in front of them."""
    source = zipfile.ZipFile(path)
    copy = path.with_name(name)
    with zipfile.ZipFile(copy, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it writes
        for member, data in members:
            archive.writestr(member, data)
        for info in source.infolist():
            archive.writestr(info, source.read(info.filename))
    return copy


def test_a_second_member_of_one_name_fails(bundle: tuple[Path, NodeKey, bytes]) -> None:
    """Python's zipfile reads the last of two same-named members, other tools may extract
    the first: a tampered copy first must not pass behind the genuine one."""
    path, key, media = bundle
    name = next(n for n in zipfile.ZipFile(path).namelist() if n.startswith("media/"))
    tampered = rezipped(path, "dup.zip", [(name, b"tampered" + media[8:])])
    report = verify_bundle(str(tampered), key.fingerprint)
    assert f"{name} appears 2 times in the zip (readers may take either copy)" in report.problems
    manifest = rezipped(path, "dup-manifest.zip", [(MANIFEST, b"{}")])
    assert any("manifest.json appears 2 times" in p for p in verify_bundle(str(manifest)).problems)


def test_members_must_be_exactly_the_expected_set(bundle: tuple[Path, NodeKey, bytes]) -> None:
    path, key, _ = bundle
    extra = rezipped(path, "extra.zip", [("media/../evil.sh", b"#!/bin/sh\n")])
    problems = verify_bundle(str(extra), key.fingerprint).problems
    assert problems == ["media/../evil.sh: not listed in the manifest"]
    source = zipfile.ZipFile(path)
    without = path.with_name("no-readme.zip")
    with zipfile.ZipFile(without, "w") as archive:
        for info in source.infolist():
            if info.filename != README:
                archive.writestr(info, source.read(info.filename))
    assert verify_bundle(str(without), key.fingerprint).problems == [f"{README} is missing"]


def test_the_ok_line_says_when_the_signer_was_not_checked(
    bundle: tuple[Path, NodeKey, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    path, key, _ = bundle
    assert verify_bundle_command(path, None) == 0
    unchecked = capsys.readouterr().out.splitlines()[0]
    assert unchecked.startswith("OK:") and "signer NOT checked" in unchecked
    assert key.fingerprint in unchecked
    assert verify_bundle_command(path, key.fingerprint) == 0
    checked = capsys.readouterr().out.splitlines()[0]
    assert checked.startswith("OK:") and "NOT" not in checked and "the expected key" in checked


def test_bytes_outside_every_member_fail(bundle: tuple[Path, NodeKey, bytes]) -> None:
    """A tampered member put before the zip: Python's zipfile (and this check's reading)
    skips it by the central directory's offsets, a streaming unzip extracts it first."""
    path, key, media = bundle
    name = next(n for n in zipfile.ZipFile(path).namelist() if n.startswith("media/"))
    decoy = io.BytesIO()
    with zipfile.ZipFile(decoy, "w") as archive:
        archive.writestr(name, b"tampered" + media[8:])
    hidden = decoy.getvalue()[: zipfile.ZipFile(decoy).start_dir]  # its member, no directory
    prefixed = path.with_name("prefixed.zip")
    prefixed.write_bytes(hidden + path.read_bytes())
    assert zipfile.ZipFile(prefixed).read(name) == media  # the central directory's copy
    problems = verify_bundle(str(prefixed), key.fingerprint).problems
    assert problems == [f"bytes 0 to {len(hidden)} of the zip belong to no member"]


def test_bytes_after_the_end_or_a_comment_fail(bundle: tuple[Path, NodeKey, bytes]) -> None:
    path, key, _ = bundle
    appended = path.with_name("appended.zip")
    appended.write_bytes(path.read_bytes() + b"PK\x03\x04 a second zip follows")
    problems = verify_bundle(str(appended), key.fingerprint).problems
    assert any("bytes follow the zip's end record" in p for p in problems), problems

    commented = path.with_name("commented.zip")
    commented.write_bytes(path.read_bytes())
    with zipfile.ZipFile(commented, "a") as archive:
        archive.comment = b"signed by sha256:attacker"
    problems = verify_bundle(str(commented), key.fingerprint).problems
    assert any("the zip carries a comment (25 bytes)" in p for p in problems), problems


def test_the_readme_is_signed_and_names_expect_fingerprint(
    bundle: tuple[Path, NodeKey, bytes],
) -> None:
    path, key, _ = bundle
    readme = zipfile.ZipFile(path).read(README).decode()
    assert "--expect-fingerprint" in readme
    source = zipfile.ZipFile(path)
    changed = path.with_name("readme.zip")
    with zipfile.ZipFile(changed, "w") as archive:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == README:
                data = data.replace(
                    b"--expect-fingerprint sha256:...", b"--expect-fingerprint sha256:e5a1"
                )
            archive.writestr(info, data)
    problems = verify_bundle(str(changed), key.fingerprint).problems
    assert problems == [f"{README}: SHA-256 differs from the manifest's (altered)"]


def test_an_old_bundle_says_its_readme_is_not_signed() -> None:
    from tests.cases.test_binding import DATA, V1_FINGERPRINT

    report = verify_bundle(str(DATA / "bundle-v1.zip"), V1_FINGERPRINT)
    assert report.problems == []
    assert any(f"{README} is not covered by the signature" in n for n in report.notes)
