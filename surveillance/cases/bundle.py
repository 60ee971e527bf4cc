"""Case bundles: a zip of a case's media, a manifest, and the node's signature over it.

Layout::

    manifest.json       the case, its timeline, items with hashes, custody log, exporter
    manifest.json.sig   Ed25519 signature of manifest.json's exact bytes, base64
    media/<sha256>.<ext>
    README.txt          how to check it (its SHA-256 in the manifest since format 1's
                        ``readme`` key; older bundles leave it unsigned, and say so)

The signature covers the manifest, and the manifest covers every media file by its
SHA-256, so one changed byte in either fails :func:`verify_bundle`. The manifest carries
the public key; a key inside the file proves only that the bundle is intact, so the report
names the key's fingerprint for a person to compare with the node's (or pass
``--expect-fingerprint``; without it the report says the signer was not checked). The zip
must hold exactly these members, each name once, and nothing between or before them: a
second member of one name, or one hidden outside the central directory, could be the copy
another unzip tool extracts. The manifest's items and case state are held to the
custody entries that bound them (:mod:`.binding`), so a database row edited before the
export fails here even though the node signed it. Zip metadata such as member dates is
not part of the evidence. A bundle of a cluster (``cluster_keys``, signed with the rest of
the manifest) lists every node's public key, since its entries may be signed by any of them
(:mod:`.key_ring`); the report names their fingerprints too. Verification needs nothing
but this module, :mod:`.custody`, :mod:`.binding` and ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from surveillance.cases import custody
from surveillance.cases.binding import (
    CASE_KEYS,
    TIMELINE_KEYS,
    Entry,
    Keys,
    check_case,
    check_case_facts,
    item_json,
    record_json,
)
from surveillance.cases.entry_signatures import Signed, check_signatures
from surveillance.cases.errors import EvidenceMissing
from surveillance.cases.records import ExportView, ItemRecord
from surveillance.cases.signing import NodeKey, fingerprint, verify_signature
from surveillance.cases.storage import EvidenceStore, is_hash

FORMAT = "surveillance-case-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
README = "README.txt"
MEDIA_DIR = "media/"
COPY_CHUNK_BYTES = 1 << 20
# The zip format's local file header (APPNOTE.TXT 4.3.7), to find where each member ends.
LOCAL_HEADER = struct.Struct("<4s5H3L2H")
LOCAL_SIGNATURE = b"PK\x03\x04"
DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
DATA_DESCRIPTOR_FLAG = 0x08  # sizes follow the data (a zip written to a pipe)
ZIP64_EXTRA_ID = 0x0001
EXTENSIONS = {"image/jpeg": "jpg", "video/mp4": "mp4"}

# The manifest writes each record whole (``dataclasses.asdict``); these say only where its
# names differ from the record's, as format 1 has them (None: not in the manifest). A new
# record field therefore reaches the manifest by itself; tests/cases/test_bundle.py pins the
# names, because readers of format 1 may see keys added but never renamed or dropped. The
# items' names are binding.ITEM_KEYS: an attach entry binds an item in this same form.
CUSTODY_KEYS: Keys = {"item_id": "item"}

README_TEXT = """This is a case bundle exported by the surveillance service.

Check it, with no service running, with:

    surveillance verify-bundle THIS_FILE.zip --expect-fingerprint sha256:...

giving the exporting node's key fingerprint, obtained from the node itself (shown at
/api/node/key), never from this bundle or a message that came with it. It checks the
signature over manifest.json, the SHA-256 of every media file and of this README against
it, the custody log, and that the signing key is the one expected. Without
--expect-fingerprint it shows only that the bundle is intact, not who signed it.
"""
END_RECORD = struct.Struct("<4s4H2LH")  # APPNOTE.TXT 4.3.16, without the comment
END_SIGNATURE = b"PK\x05\x06"
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # APPNOTE.TXT 4.3.14
ZIP64_END_SIGNATURE = b"PK\x06\x06"
ZIP64_LOCATOR_SIZE = 20


def media_name(item: ItemRecord) -> str:
    return f"{MEDIA_DIR}{item.sha256}.{EXTENSIONS.get(item.media_type, 'bin')}"


def build_manifest(
    view: ExportView,
    key: NodeKey,
    node_name: str,
    operator: str,
    exported_at: datetime,
    signing_start: Mapping[str, Any] | None = None,
    cluster_keys: Sequence[Mapping[str, str]] = (),
) -> bytes:
    """``cluster_keys``: the other nodes' keys (:func:`.key_ring.described`), in cluster
    mode only: a single node's manifest has no such key."""
    case = view.detail.case
    manifest = {
        "format": FORMAT,
        "exported_at": custody.iso(exported_at),
        "exported_by": operator,
        "node": {
            "name": node_name,
            "fingerprint": key.fingerprint,
            "public_key": base64.b64encode(key.public_raw).decode(),
            "algorithm": "ed25519",
        },
        "case": record_json(case, CASE_KEYS)
        | {"timeline": [record_json(t, TIMELINE_KEYS) for t in view.detail.timeline]},
        "items": [item_json(item) | {"file": media_name(item)} for item in view.items],
        "custody": [record_json(entry, CUSTODY_KEYS) for entry in view.custody],
        "custody_head": {"seq": case.custody_seq, "hash": case.custody_head},
        "readme": {"file": README, "sha256": hashlib.sha256(README_TEXT.encode()).hexdigest()},
        # When the node began signing custody entries (see .entry_signatures).
        "custody_signing": dict(signing_start) if signing_start else None,
    }
    if cluster_keys:
        manifest["cluster_keys"] = [dict(k) for k in cluster_keys]
    return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def write_bundle(
    out: IO[bytes],
    view: ExportView,
    store: EvidenceStore,
    key: NodeKey,
    node_name: str,
    operator: str,
    exported_at: datetime,
    signing_start: Mapping[str, Any] | None = None,
    cluster_keys: Sequence[Mapping[str, str]] = (),
) -> None:
    manifest = build_manifest(
        view, key, node_name, operator, exported_at, signing_start, cluster_keys
    )
    signature = base64.b64encode(key.sign(manifest)) + b"\n"
    stamp = exported_at.timetuple()[:6]
    # Stored, not deflated: media is compressed already, and it keeps the zip seekable.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo(MANIFEST, stamp), manifest)
        archive.writestr(zipfile.ZipInfo(SIGNATURE, stamp), signature)
        archive.writestr(zipfile.ZipInfo(README, stamp), README_TEXT)
        written: set[str] = set()
        for item in view.items:
            name = media_name(item)
            if name in written:
                continue  # the same bytes attached twice: one file serves both items
            written.add(name)
            try:
                source = store.open(item.sha256)
            except KeyError:
                raise EvidenceMissing.of(item) from None
            with (
                source,
                archive.open(zipfile.ZipInfo(name, stamp), "w", force_zip64=True) as target,
            ):
                while chunk := source.read(COPY_CHUNK_BYTES):
                    target.write(chunk)


# -- verification ---------------------------------------------------------------------------
@dataclass
class BundleReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    node_name: str | None = None
    case_number: str | None = None
    items: int = 0
    custody_entries: int = 0
    unbound_items: int = 0  # attached before item records were bound (see .binding)
    fingerprint_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_bundle(path: str, expect_fingerprint: str | None = None) -> BundleReport:
    """Check a bundle's signature, every media hash and the custody chain, offline."""
    report = BundleReport()
    try:
        with zipfile.ZipFile(path) as archive:
            _verify_archive(archive, report, expect_fingerprint)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        report.problems.append(f"not a readable bundle: {exc}")
    return report


def _read(archive: zipfile.ZipFile, name: str, report: BundleReport) -> bytes | None:
    try:
        return archive.read(name)
    except KeyError:
        report.problems.append(f"{name} is missing")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        report.problems.append(f"{name} cannot be read intact: {exc}")
    return None


def _verify_archive(
    archive: zipfile.ZipFile, report: BundleReport, expect_fingerprint: str | None
) -> None:
    _check_layout(archive, report)
    _check_end(archive, report)
    # Two members of one name: this module reads one copy, `unzip` and others may take
    # the other, so a tampered copy could hide behind a genuine one. None is allowed.
    for name, count in Counter(archive.namelist()).items():
        if count > 1:
            report.problems.append(
                f"{name} appears {count} times in the zip (readers may take either copy)"
            )
    manifest_bytes = _read(archive, MANIFEST, report)
    signature_text = _read(archive, SIGNATURE, report)
    if manifest_bytes is None or signature_text is None:
        return
    try:
        manifest = json.loads(manifest_bytes)
        node = manifest["node"]
        public = base64.b64decode(node["public_key"], validate=True)
        signature = base64.b64decode(signature_text.strip(), validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        report.problems.append(f"manifest or signature is malformed: {exc!r}")
        return
    report.fingerprint = fingerprint(public)
    report.node_name = str(node.get("name"))
    if not verify_signature(public, signature, manifest_bytes):
        report.problems.append("the signature does not match manifest.json (altered or forged)")
    if node.get("fingerprint") != report.fingerprint:
        report.problems.append("the manifest's key fingerprint does not match its public key")
    if expect_fingerprint:
        report.fingerprint_checked = True
        if expect_fingerprint != report.fingerprint:
            report.problems.append(
                f"signed by {report.fingerprint}, not by the expected {expect_fingerprint}"
            )
    if manifest.get("format") != FORMAT:
        report.problems.append(f"unknown bundle format {manifest.get('format')!r}")
    try:
        _verify_contents(archive, manifest, report)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        report.problems.append(f"manifest is incomplete: {exc!r}")


def _verify_contents(
    archive: zipfile.ZipFile, manifest: dict[str, Any], report: BundleReport
) -> None:
    report.case_number = number = str(manifest["case"]["number"])
    expected_files = {MANIFEST, SIGNATURE, README}
    for item in manifest["items"]:
        report.items += 1
        name, digest = str(item["file"]), str(item["sha256"])
        expected_files.add(name)
        label = f"item {item['id']} ({item['kind']}, {name})"
        if not is_hash(digest) or name != f"{MEDIA_DIR}{digest}.{name.rsplit('.', 1)[-1]}":
            report.problems.append(f"{label}: file name does not match its SHA-256")
            continue
        actual = _hash_member(archive, name, report)
        if actual is None:
            continue
        if actual[0] != digest:
            report.problems.append(f"{label}: SHA-256 is {actual[0]}, manifest says {digest}")
        if actual[1] != item["size"]:
            report.problems.append(f"{label}: {actual[1]} bytes, manifest says {item['size']}")
    _check_readme(archive, manifest, report)
    names = set(archive.namelist())
    for name in sorted(names - expected_files):
        report.problems.append(f"{name}: not listed in the manifest")
    if README not in names:
        report.problems.append(f"{README} is missing")
    entries = manifest["custody"]
    report.custody_entries = len(entries)
    links = [
        (
            custody.Link(
                case_number=number,
                seq=int(e["seq"]),
                at=str(e["at"]),
                actor=str(e["actor"]),
                action=str(e["action"]),
                item_id=e["item"],
                detail=e["detail"],
                prev_hash=str(e["prev_hash"]),
            ),
            str(e["entry_hash"]),
        )
        for e in entries
    ]
    head = manifest["custody_head"]
    report.problems += custody.check_chain(number, links, (int(head["seq"]), str(head["hash"])))
    # The items and state the manifest lists come from the node's rows; the chain holds
    # what was bound when each happened. A row edited before the export shows here.
    chain = [
        Entry(link.seq, link.action, link.item_id, link.detail, link.actor, link.at)
        for link, _ in links
    ]
    bound = check_case(number, str(manifest["case"]["state"]), manifest["items"], chain)
    report.problems += bound.problems
    report.unbound_items = bound.unbound_items
    facts = check_case_facts(number, manifest["case"], manifest["case"]["timeline"], chain)
    report.problems += facts.problems
    report.notes += facts.partly_bound
    signed = [
        Signed(link.seq, link.action, link.at, stored, e.get("signature"))
        for (link, stored), e in zip(links, entries, strict=True)
    ]
    public = base64.b64decode(manifest["node"]["public_key"])
    also = _cluster_keys(manifest, report)
    problems, notes = check_signatures(
        number, signed, public, manifest.get("custody_signing"), also
    )
    report.problems += problems
    report.notes += notes


def _cluster_keys(manifest: dict[str, Any], report: BundleReport) -> list[bytes]:
    """The other nodes' keys a cluster's bundle lists (signed with the manifest), each
    checked against the fingerprint beside it and named in a note."""
    keys: list[bytes] = []
    for listed in manifest.get("cluster_keys") or []:
        try:
            raw = base64.b64decode(listed["public_key"], validate=True)
            node, claimed = str(listed["node"]), str(listed["fingerprint"])
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            report.problems.append(f"a cluster key in the manifest is malformed: {exc!r}")
            continue
        if fingerprint(raw) != claimed:
            report.problems.append(f"cluster key of node {node!r} does not match its fingerprint")
            continue
        keys.append(raw)
        report.notes.append(f"custody entries may be signed by node {node!r}, key {claimed}")
    return keys


def _check_readme(archive: zipfile.ZipFile, manifest: dict[str, Any], report: BundleReport) -> None:
    """README.txt tells a person what to compare: a changed one could name another key.
    Bundles since the ``readme`` key sign its hash; older ones are said to leave it out."""
    readme = manifest.get("readme")
    if readme is None:
        report.notes.append(
            f"{README} is not covered by the signature (a bundle made before it was): "
            "trust no instruction or fingerprint in it"
        )
        return
    if README not in archive.namelist():
        return  # reported as missing
    actual = _hash_member(archive, README, report)
    if actual is not None and actual[0] != readme.get("sha256"):
        report.problems.append(f"{README}: SHA-256 differs from the manifest's (altered)")


def _check_end(archive: zipfile.ZipFile, report: BundleReport) -> None:
    """The zip must end with its end record, right after its central directory: no
    comment (the node writes none; some tools show it as if part of the bundle) and no
    bytes appended after the end, which a reader scanning from the end may take for a
    second zip."""
    fp = archive.fp
    if fp is None:
        return
    size = fp.seek(0, 2)
    if archive.comment:
        report.problems.append(
            f"the zip carries a comment ({len(archive.comment)} bytes) the node never writes"
        )
    if size < END_RECORD.size:
        return
    fp.seek(size - END_RECORD.size)
    end = END_RECORD.unpack(fp.read(END_RECORD.size))
    if end[0] != END_SIGNATURE or end[-1] != 0:
        report.problems.append(
            "bytes follow the zip's end record (appended data, or a comment): the zip "
            "must end where its end record does"
        )
        return
    end_at = size - END_RECORD.size
    directory_size = end[5]
    if 0xFFFFFFFF in (end[5], end[6]) or 0xFFFF in (end[3], end[4]):
        end_at -= ZIP64_LOCATOR_SIZE + ZIP64_END_RECORD.size
        fp.seek(end_at)
        record = fp.read(ZIP64_END_RECORD.size)
        if len(record) != ZIP64_END_RECORD.size or record[:4] != ZIP64_END_SIGNATURE:
            report.problems.append("the zip64 end record is not where the zip says")
            return
        directory_size = ZIP64_END_RECORD.unpack(record)[-2]
    if archive.start_dir + directory_size != end_at:
        report.problems.append(
            f"bytes {archive.start_dir + directory_size} to {end_at} of the zip lie between "
            "its central directory and its end record"
        )


def _check_layout(archive: zipfile.ZipFile, report: BundleReport) -> None:
    """The members must fill the zip from its first byte to its central directory.

    Readers that use the central directory (this one) skip bytes no member covers, but a
    reader that streams the file from the start takes a local header found there for a
    member: data put before or between the members could be what such a reader extracts.
    """
    fp = archive.fp
    if fp is None:
        return
    position = 0
    for info in sorted(archive.infolist(), key=lambda i: i.header_offset):
        if info.header_offset != position:
            report.problems.append(
                f"bytes {position} to {info.header_offset} of the zip belong to no member"
            )
        fp.seek(info.header_offset)
        header = fp.read(LOCAL_HEADER.size)
        if len(header) != LOCAL_HEADER.size or header[:4] != LOCAL_SIGNATURE:
            report.problems.append(f"{info.filename}: no local header where the zip says")
            return
        fields = LOCAL_HEADER.unpack(header)
        name_length, extra_length = fields[-2], fields[-1]
        fp.seek(name_length, 1)
        zip64 = _has_zip64_extra(fp.read(extra_length))
        position = (
            info.header_offset + LOCAL_HEADER.size + name_length + extra_length
        ) + info.compress_size
        if info.flag_bits & DATA_DESCRIPTOR_FLAG:
            # CRC and both sizes, 8 bytes each for a zip64 member (APPNOTE.TXT 4.3.9).
            fp.seek(position)
            signature = 4 if fp.read(4) == DESCRIPTOR_SIGNATURE else 0
            position += signature + (20 if zip64 else 12)
    if position != archive.start_dir:
        report.problems.append(
            f"bytes {position} to {archive.start_dir} of the zip belong to no member"
        )


def _has_zip64_extra(extra: bytes) -> bool:
    while len(extra) >= 4:
        header_id, size = struct.unpack("<2H", extra[:4])
        if header_id == ZIP64_EXTRA_ID:
            return True
        extra = extra[4 + size :]
    return False


def _hash_member(
    archive: zipfile.ZipFile, name: str, report: BundleReport
) -> tuple[str, int] | None:
    digest = hashlib.sha256()
    size = 0
    try:
        with archive.open(name) as member:
            while chunk := member.read(COPY_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except KeyError:
        report.problems.append(f"{name} is missing")
        return None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        report.problems.append(f"{name} cannot be read intact: {exc}")
        return None
    return digest.hexdigest(), size
