"""Data protection: personal-data scans, column tags and keyed pseudonyms, on every backend."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

import modelworks as mw
from modelworks.config import Settings
from modelworks.errors import InvalidInput, NotFound
from modelworks.governance import _presidio
from modelworks.governance.pii import identifier_columns, name_hints
from modelworks.governance.pseudonyms import (
    load_keys,
    normalise,
    parse_token,
    pseudonym,
    verify_token,
)
from modelworks.store.tables import metadata

pytest.importorskip("presidio_analyzer")

# Two 32-byte secrets, one written as hex and one as base64, so the leak check covers both.
SECRET_1 = hashlib.sha256(b"test key one").digest()
SECRET_2 = hashlib.sha256(b"test key two").digest()
KEY_1 = f"k1:{SECRET_1.hex()}"
KEY_2_B64 = base64.b64encode(SECRET_2).decode()
TOKEN = re.compile(r"^pt1\.(?P<kid>[A-Za-z0-9_-]+)\.(?P<purpose>[A-Za-z0-9_-]+)\.[a-z2-7]{32}$")

INNOCUOUS = ["customer_ref", "amount", "region", "visits", "opened"]


def _luhn(rng: random.Random, prefix: str, length: int) -> str:
    digits = [int(d) for d in prefix] + [rng.randint(0, 9) for _ in range(length - len(prefix) - 1)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def _iban(country: str, bban: str) -> str:
    number = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


def people(n: int = 30, seed: int = 1) -> pd.DataFrame:
    """Synthetic customers: one column per kind of identifier, free text, innocuous columns."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        card = _luhn(rng, rng.choice(["4", "51", "37"]), 15 if i % 3 == 2 else 16)
        broken = card[:-1] + str((int(card[-1]) + rng.randint(1, 9)) % 10)  # fails Luhn
        rows.append({
            "customer_ref": f"C{i:05d}",
            "contact_email": f"user{i}@example.com",
            "phone": f"+1 {rng.choice([212, 415, 617, 312])}-{rng.randint(200, 899)}-"
                     f"{rng.randint(1000, 9999)}",
            "ssn": f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
            "card": " ".join(card[j:j + 4] for j in range(0, len(card), 4)),
            "bad_card": broken,
            "iban": _iban(rng.choice(["DE", "FR"]), f"{rng.randint(10**17, 10**18 - 1)}"),
            "ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "notes": (f"asked to be called back, wrote from user{i}@example.org" if i % 2
                      else "claim paid in full"),
            "amount": round(rng.uniform(10, 5000), 2),
            "region": rng.choice(["north", "south", "east", "west"]),
            "visits": rng.randint(0, 40),
            "opened": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        })
    frame = pd.DataFrame(rows)
    frame.loc[3, "contact_email"] = None  # nulls stay null when pseudonymized
    return frame


def _settings(**keys: Any) -> Settings:
    return Settings(pseudonym_key=keys.get("pseudonym_key"),
                    pseudonym_key_file=keys.get("pseudonym_key_file"))


@pytest.fixture
def ws(db_location: tuple[str, str]) -> Iterator[mw.Workspace]:
    location, artifacts = db_location
    with mw.Workspace(location, artifacts=artifacts, user="dana",
                      settings=_settings(pseudonym_key=KEY_1)) as workspace:
        yield workspace


@pytest.fixture
def local_ws(tmp_path: Path) -> Iterator[mw.Workspace]:
    """For backend-neutral checks: one SQLite workspace with no pseudonym key."""
    with mw.Workspace(tmp_path / "ws", user="dana", settings=_settings()) as workspace:
        workspace.log_dataset(people(8), name="people")
        yield workspace


def _patterns(findings: list[Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in findings:
        if f.detector == "pattern":
            out.setdefault(f.column, set()).add(f.entity_type)
    return out


# -- scanning -----------------------------------------------------------------------------

def test_scan_finds_each_identifier_and_flags_nothing_innocuous(ws: mw.Workspace) -> None:
    dv = ws.log_dataset(people(), name="people")
    scan = ws.scan_dataset("people")
    assert (scan.dataset, scan.version, scan.rows_scanned) == ("people", 1, 30)
    found = _patterns(scan.findings)
    assert found["contact_email"] == {"EMAIL_ADDRESS"}
    assert "PHONE_NUMBER" in found["phone"]
    assert "US_SSN" in found["ssn"]
    assert "CREDIT_CARD" in found["card"]
    assert "IBAN_CODE" in found["iban"]
    assert found["ip"] == {"IP_ADDRESS"}
    assert found["notes"] == {"EMAIL_ADDRESS"}  # half of the notes quote an address
    assert "bad_card" not in found  # the Luhn check rejects every one of them
    flagged = set(scan.identifier_columns)
    assert not flagged & set(INNOCUOUS), flagged
    card = next(f for f in scan.findings if f.column == "card" and f.detector == "pattern"
                and f.entity_type == "CREDIT_CARD")
    assert (card.matches, card.score) == (30, 1.0)
    email = next(f for f in scan.findings if f.column == "contact_email"
                 and f.detector == "pattern")
    assert email.matches == 29  # one null
    hints = {(f.column, f.entity_type) for f in scan.findings if f.detector == "column_name"}
    assert {("contact_email", "EMAIL_ADDRESS"), ("phone", "PHONE_NUMBER"),
            ("ssn", "NATIONAL_ID"), ("iban", "IBAN_CODE"), ("ip", "IP_ADDRESS"),
            ("card", "CREDIT_CARD")} <= hints

    # recorded: findings, identifier tags and one audit event
    assert sorted(ws.pii_findings("people", 1), key=repr) == sorted(scan.findings, key=repr)
    tags = ws.column_tags("people")
    assert {c for c, t in tags.items() if "identifier" in t} == flagged
    events = ws.audit_log(action="dataset.scanned")
    assert len(events) == 1 and events[0].entity_id == str(dv.id)
    assert events[0].payload["rows_scanned"] == 30
    assert sorted(events[0].payload["tagged_identifier"]) == sorted(flagged)

    # the policy rule's question: which columns are identifiers, and why
    ws.tag_columns("people", ["region"], tag="sensitive")
    with ws.db.read() as conn:
        flagged_cols = identifier_columns(conn, [dv.id])
    assert "EMAIL_ADDRESS" in flagged_cols["contact_email"]
    assert "tag:identifier" in flagged_cols["contact_email"]
    assert flagged_cols["region"] == ["tag:sensitive"]
    assert "amount" not in flagged_cols and "bad_card" not in flagged_cols


def test_scan_samples_large_data_and_replaces_the_previous_scan(ws: mw.Workspace) -> None:
    n = 2_500
    frame = pd.DataFrame({"email": [f"person{i}@example.net" for i in range(n)],
                          "score": [i % 7 for i in range(n)]})
    ws.log_dataset(frame, name="big")
    first = ws.scan_dataset("big", sample_rows=400, seed=3)
    assert first.rows_scanned == 400
    pattern = [f for f in first.findings if f.detector == "pattern"]
    # 200 distinct values are analysed (the cap), each one row of the 400 sampled
    assert [(f.column, f.entity_type, f.matches) for f in pattern] == [
        ("email", "EMAIL_ADDRESS", 200)]
    second = ws.scan_dataset("big", 1, sample_rows=400, seed=3)
    assert second.findings == first.findings
    stored = ws.pii_findings("big")
    assert len(stored) == len(first.findings)  # replaced, not appended
    assert len(ws.audit_log(action="dataset.scanned")) == 2


def test_scan_makes_no_network_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Presidio's email check uses tldextract, which downloads the suffix list by default."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network disabled in this test")

    import tldextract.tldextract as tld

    # As on a fresh machine: tldextract's default extractor, with an empty cache, would fetch.
    monkeypatch.setattr(tld, "TLD_EXTRACTOR", tld.TLDExtract(cache_dir=str(tmp_path / "tld")))
    with mw.Workspace(tmp_path / "ws", user="dana") as offline:
        offline.log_dataset(pd.DataFrame({"contact": [f"a{i}@example.co.uk" for i in range(5)]}),
                            name="mail")
        _presidio.analyzer.cache_clear()  # build the engine with the network down, too
        monkeypatch.setattr(socket, "getaddrinfo", refuse)
        monkeypatch.setattr(socket, "create_connection", refuse)
        monkeypatch.setattr(socket.socket, "connect", refuse)
        try:
            scan = offline.scan_dataset("mail")
        finally:
            monkeypatch.undo()
            _presidio.analyzer.cache_clear()
    assert attempts == []
    assert _patterns(scan.findings) == {"contact": {"EMAIL_ADDRESS"}}


def test_presidio_is_optional(local_ws: mw.Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    code = ("import sys, modelworks, modelworks.governance.pii, modelworks.workspace; "
            "assert 'presidio_analyzer' not in sys.modules, 'imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)  # as if not installed
    _presidio.analyzer.cache_clear()
    try:
        with pytest.raises(InvalidInput, match=re.escape("pip install 'modelworks[pii]'")):
            local_ws.scan_dataset("people")
    finally:
        monkeypatch.undo()
        _presidio.analyzer.cache_clear()


def test_column_name_hints() -> None:
    assert name_hints("customerEmail") == ["EMAIL_ADDRESS"]
    assert name_hints("first_name") == ["PERSON"]
    assert name_hints("name") == ["PERSON"]
    assert name_hints("product_name") == []
    assert name_hints("ip_address") == ["IP_ADDRESS"]
    assert name_hints("home_address") == ["ADDRESS"]
    assert name_hints("date_of_birth") == ["DATE_OF_BIRTH"]
    assert name_hints("DOB") == ["DATE_OF_BIRTH"]
    assert name_hints("passport_no") == ["PASSPORT"]
    assert name_hints("card_number") == ["CREDIT_CARD"]
    for innocuous in ("amount", "region", "scorecard", "card_type", "visits", "filename"):
        assert name_hints(innocuous) == [], innocuous


def test_tags_are_audited_and_checked(local_ws: mw.Workspace) -> None:
    assert local_ws.tag_columns("people", ["region", "visits"]) == {
        "region": ["sensitive"], "visits": ["sensitive"]}
    local_ws.tag_columns("people", "visits", tag="reviewed")
    assert local_ws.untag_columns("people", ["visits"]) == {
        "region": ["sensitive"], "visits": ["reviewed"]}
    actions = [e.action for e in local_ws.audit_log(entity_type="dataset")]
    assert actions[:3] == ["dataset.columns_untagged", "dataset.columns_tagged",
                           "dataset.columns_tagged"]
    with pytest.raises(InvalidInput, match="'nope'"):
        local_ws.tag_columns("people", ["region", "nope"])
    with pytest.raises(InvalidInput, match="tag"):
        local_ws.tag_columns("people", ["region"], tag="Not A Tag")
    with pytest.raises(NotFound):
        local_ws.column_tags("missing")


# -- pseudonymisation ---------------------------------------------------------------------

def test_pseudonymize_writes_a_linked_tokenised_version(ws: mw.Workspace) -> None:
    raw = people()
    parent = ws.log_dataset(raw, name="people")
    child = ws.pseudonymize_dataset("people", columns=["contact_email", "phone"],
                                    purpose="analytics")
    assert (child.name, child.version, child.row_count) == ("people", 2, 30)
    out = ws.load_dataset("people", 2)
    assert list(out.columns) == list(raw.columns)
    for column in ("contact_email", "phone"):
        for token, value in zip(out[column], raw[column], strict=True):
            if pd.isna(value):
                assert pd.isna(token)  # nulls stay null
                continue
            m = TOKEN.match(token)
            assert m and (m["kid"], m["purpose"]) == ("k1", "analytics"), token
            assert verify_token(token, value, "analytics", ws.settings)
            assert not verify_token(token, value + "x", "analytics", ws.settings)
            assert not verify_token(token, value, "support", ws.settings)
    assert out["contact_email"].isna().sum() == 1
    assert out["contact_email"].nunique() == 29
    pd.testing.assert_frame_equal(out.drop(columns=["contact_email", "phone"]),
                                  raw.drop(columns=["contact_email", "phone"]))

    # lineage: child -> parent, with what was done (and no key)
    graph = ws.lineage("dataset_version", str(child.id))
    edges = [(e.child.id, e.parent.id, e.relation) for e in graph.edges]
    assert (str(child.id), str(parent.id), "pseudonymized_from") in edges
    # audit: the version's own log entry and the pseudonymisation, key id but never the key
    event = ws.audit_log(action="dataset.pseudonymized")[0]
    assert event.entity_id == str(child.id)
    assert event.payload["columns"] == ["contact_email", "phone"]
    assert (event.payload["purpose"], event.payload["key_id"]) == ("analytics", "k1")
    assert ws.column_tags("people")["phone"] == ["pseudonymized"]
    assert ws.audit_log(action="dataset_version.logged")[0].entity_id == str(child.id)

    # deterministic per key and purpose: the same request is the same version
    again = ws.pseudonymize_dataset("people", 1, columns=["contact_email", "phone"])
    assert again.id == child.id
    # another purpose: other tokens, which do not link to the first ones
    support = ws.pseudonymize_dataset("people", 1, columns="contact_email", purpose="support")
    other = ws.load_dataset(support)["contact_email"].dropna()
    assert support.version == 3
    assert not set(other) & set(out["contact_email"].dropna())
    assert all(TOKEN.match(t)["purpose"] == "support" for t in other)  # type: ignore[index]


def test_tokens_normalise_values_and_carry_160_bits() -> None:
    keys = load_keys(_settings(pseudonym_key=KEY_1))
    token = pseudonym(" Ann.Lee@Example.COM ", purpose="crm", keys=keys)
    assert token == pseudonym("ann.lee@example.com", purpose="crm", keys=keys)
    assert pseudonym("+1 (415) 555-2671", purpose="crm", keys=keys) == pseudonym(
        "14155552671", purpose="crm", keys=keys)
    fullwidth = "\uff21\uff22\uff23"  # "ABC" in fullwidth forms: NFKC makes them ASCII
    assert pseudonym(fullwidth, purpose="crm", keys=keys) == pseudonym("abc", purpose="crm",
                                                                       keys=keys)
    assert normalise("1234567.5") == "1234567.5"  # a decimal is not a phone number
    assert normalise(-1234567) == "-1234567"  # nor is a negative number
    assert normalise("2024-01-15") == normalise("20240115")
    assert normalise(True) == "true" and normalise(42) == "42"
    kid, purpose, mac = parse_token(token)
    assert (kid, purpose) == ("k1", "crm")
    assert len(base64.b32decode(mac.upper())) * 8 == 160
    # the MAC is HMAC-SHA256(key, purpose || 0x00 || value), truncated: check it independently
    import hmac

    expected = hmac.new(SECRET_1, b"crm\x00ann.lee@example.com", "sha256").digest()[:20]
    assert base64.b32decode(mac.upper()) == expected
    other_key = load_keys(_settings(pseudonym_key=f"k1:{SECRET_2.hex()}"))
    assert pseudonym("ann.lee@example.com", purpose="crm", keys=other_key) != token


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_rotation_keeps_old_tokens_verifiable(tmp_path: Path, fmt: str) -> None:
    def write(doc: dict[str, Any]) -> Settings:
        path = tmp_path / f"keys.{fmt}"
        if fmt == "json":
            path.write_text(json.dumps(doc))
        else:
            path.write_text("active: {}\nkeys:\n{}".format(
                doc["active"], "".join(f"  {k}: \"{v}\"\n" for k, v in doc["keys"].items())))
        return _settings(pseudonym_key_file=str(path))

    before = write({"active": "k1", "keys": {"k1": SECRET_1.hex()}})
    old = pseudonym("ann@example.com", purpose="crm", keys=load_keys(before))
    after = write({"active": "k2", "keys": {"k1": SECRET_1.hex(), "k2": KEY_2_B64}})
    new = pseudonym("ann@example.com", purpose="crm", keys=load_keys(after))
    assert parse_token(new)[0] == "k2" and new != old
    assert verify_token(old, "ann@example.com", "crm", after)
    assert verify_token(new, "ann@example.com", "crm", after)
    assert old == pseudonym("ann@example.com", purpose="crm", keys=load_keys(after),
                            key_id="k1")
    retired = write({"active": "k2", "keys": {"k2": KEY_2_B64}})
    with pytest.raises(NotFound, match="'k1'"):
        verify_token(old, "ann@example.com", "crm", retired)


def test_pseudonymize_bad_input(local_ws: mw.Workspace, tmp_path: Path) -> None:
    keyed = _settings(pseudonym_key=KEY_1)
    from modelworks.governance.pseudonyms import pseudonymize

    def run(settings: Settings = keyed, **kwargs: Any) -> Any:
        args = {"columns": ["contact_email"], "purpose": "analytics", **kwargs}
        return pseudonymize(local_ws.ctx, "people", keys=settings, **args)

    with pytest.raises(InvalidInput, match="MODELWORKS_PSEUDONYM_KEY"):
        local_ws.pseudonymize_dataset("people", columns=["contact_email"])  # no key set
    with pytest.raises(InvalidInput, match="'nope'"):
        run(columns=["contact_email", "nope"])
    with pytest.raises(InvalidInput, match="at least one column"):
        run(columns=[])
    with pytest.raises(InvalidInput, match="at least 32"):
        run(_settings(pseudonym_key="k1:" + "ab" * 16))
    with pytest.raises(InvalidInput, match="KEY_ID:SECRET"):
        run(_settings(pseudonym_key=SECRET_1.hex()))
    with pytest.raises(InvalidInput, match="purpose"):
        run(purpose="a.b")
    with pytest.raises(NotFound, match="'k9'"):
        run(key_id="k9")
    bad_file = tmp_path / "keys.yaml"
    bad_file.write_text("active: k3\nkeys:\n  k1: " + SECRET_1.hex() + "\n")
    with pytest.raises(InvalidInput, match="active"):
        run(_settings(pseudonym_key_file=str(bad_file)))
    with pytest.raises(NotFound, match="no dataset"):
        pseudonymize(local_ws.ctx, "missing", columns=["a"], purpose="x", keys=keyed)
    assert [d.version for d in local_ws.dataset_versions("people")] == [1]


def test_the_key_is_never_stored(ws: mw.Workspace, db_location: tuple[str, str]) -> None:
    ws.log_dataset(people(), name="people")
    ws.scan_dataset("people")
    ws.pseudonymize_dataset("people", columns=["contact_email", "ssn"], purpose="analytics")
    forms = [SECRET_1.hex(), SECRET_1.hex().upper(), base64.b64encode(SECRET_1).decode(),
             base64.urlsafe_b64encode(SECRET_1).decode()]
    rows: list[str] = []
    with ws.db.read() as conn:  # every row of every table, whatever the backend
        for table in metadata.sorted_tables:
            rows += [repr(tuple(r)) for r in conn.execute(select(table))]
    text = "\n".join(rows)
    assert "pseudonymized_from" in text and "k1" in text  # the check sees the records
    for form in forms:
        assert form not in text
    files = [p for p in Path(db_location[1]).rglob("*") if p.is_file()]
    location = Path(db_location[0])
    if location.is_dir():  # SQLite: the database file and its WAL as well
        files += [p for p in location.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert SECRET_1 not in data, path
        for form in forms:
            assert form.encode() not in data, path
