"""Personal data in dataset versions: find direct identifiers, tag columns, pseudonymise.

``scan_dataset`` looks for direct identifiers two ways:

- ``pattern``: Presidio's pattern recognizers (emails, phone numbers, card numbers with their
  Luhn check, IBANs with their mod-97 check, IP and MAC addresses, and national ids such as
  the US SSN and ITIN, UK NINO and NHS number, and those of a dozen more countries; see
  ``_presidio.RECOGNIZERS``) over each text or integer column. Large datasets are sampled:
  at most ``sample_rows`` rows, then at most ``max_values`` distinct values per column, so a
  scan costs about the same for a thousand rows or a billion. The column name is handed to
  Presidio as context, which raises the score of, e.g., a phone number in a column ``phone``.
  An entity is reported for a column when its score reaches ``min_score`` and it matches at
  least ``min_fraction`` of the sampled rows: a check digit passes one random number in ten,
  so a column of arbitrary numbers is not reported as card numbers, while a column of cards
  or a free-text column in which a third of the notes carry an email is.
- ``column_name``: hints in the column's name (``email``, ``phone``, ``ssn``, ``first_name``,
  ``address``, ``dob``, ``iban``, ``card_number``, ``passport``, ...). Names and addresses in
  free text need a language model and are out of scope: their columns are found by name.

Findings replace the version's previous scan in ``mw_pii_findings``; flagged columns get the
``identifier`` tag; one ``dataset.scanned`` audit event records the outcome, all in one
transaction.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, delete, insert, select

from .. import audit
from ..context import Context
from ..errors import InvalidInput
from ..store.tables import dataset_column_tags, dataset_versions, utcnow
from ..store.tables import pii_findings as findings_table
from .column_tags import add_tags, column_tags, dataset_id, tag_columns, untag_columns
from .pseudonyms import PseudonymKeys, load_keys, pseudonym, pseudonymize, verify_token

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "IDENTIFIER_TAGS",
    "PiiFinding",
    "PiiScan",
    "PseudonymKeys",
    "column_tags",
    "identifier_columns",
    "load_keys",
    "pii_findings",
    "pseudonym",
    "pseudonymize",
    "scan_dataset",
    "tag_columns",
    "untag_columns",
    "verify_token",
]

IDENTIFIER_TAGS = ("identifier", "sensitive")
NAME_HINT_SCORE = 0.6
_MAX_TEXT = 2_000  # characters of one value handed to the analyzer


class PiiFinding(BaseModel):
    """One kind of identifier in one column.

    ``matches`` counts the sampled rows whose value holds the entity (0 for a name hint);
    ``score`` is the best Presidio score among them (a fixed 0.6 for a name hint).
    """

    model_config = ConfigDict(frozen=True)

    column: str
    entity_type: str
    detector: Literal["pattern", "column_name"]
    matches: int
    score: float


class PiiScan(BaseModel):
    """The outcome of scanning one dataset version."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    version: int
    dataset_version_id: int
    rows_scanned: int
    findings: list[PiiFinding]
    created_at: datetime
    created_by: str

    @property
    def identifier_columns(self) -> list[str]:
        return sorted({f.column for f in self.findings})


# -- column-name hints --------------------------------------------------------------------

_PERSON_QUALIFIERS = {
    "first", "last", "full", "given", "family", "middle", "maiden", "customer", "client",
    "patient", "user", "person", "contact", "holder", "owner", "employee", "member",
    "applicant", "insured", "claimant", "policyholder", "account", "card", "legal",
}
_NAME_TOKENS: list[tuple[str, set[str]]] = [
    ("EMAIL_ADDRESS", {"email", "emailaddress", "mail_address"}),
    ("PHONE_NUMBER", {"phone", "telephone", "tel", "mobile", "cell", "cellphone", "fax",
                      "msisdn", "phonenumber"}),
    ("NATIONAL_ID", {"ssn", "nino", "nin", "sin", "nhs", "aadhaar", "pesel", "nif", "nie",
                     "tfn", "bsn", "cpf", "personnummer", "nationalid", "national_id",
                     "social_security", "socialsecurity", "tax_id", "taxid", "itin"}),
    ("DATE_OF_BIRTH", {"dob", "birth", "birthdate", "birthday", "date_of_birth"}),
    ("IBAN_CODE", {"iban"}),
    ("CREDIT_CARD", {"creditcard", "cardnumber", "credit_card", "debit_card", "card_number",
                     "card_no", "ccn", "cc_number", "pan"}),
    ("PASSPORT", {"passport"}),
    ("DRIVER_LICENSE", {"driver_license", "driving_licence", "drivers_license",
                        "driving_license", "driver_licence"}),
    ("IP_ADDRESS", {"ip", "ipaddress", "ip_address", "ipv4", "ipv6"}),
    ("MAC_ADDRESS", {"mac_address", "macaddress"}),
    ("BANK_ACCOUNT", {"account_number", "bank_account", "account_no", "sort_code"}),
    ("ADDRESS", {"address", "street", "postcode", "zipcode", "zip", "postal_code"}),
    ("PERSON", {"surname", "firstname", "lastname", "fullname", "forename", "givenname"}),
]


def _tokens(column: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def name_hints(column: str) -> list[str]:
    """Entity types the column's name suggests, e.g. ``customer_email`` -> EMAIL_ADDRESS."""
    tokens = _tokens(column)
    words = set(tokens) | {f"{a}_{b}" for a, b in itertools.pairwise(tokens)}
    words |= {f"{a}_{b}_{c}" for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)}
    found = [entity for entity, hints in _NAME_TOKENS if words & hints]
    if "ADDRESS" in found and (words & {"ip_address", "mac_address", "email_address"}):
        found.remove("ADDRESS")  # an IP, MAC or email address is not a postal one
    if tokens in (["card"], ["cc"]):
        found.append("CREDIT_CARD")
    if "name" in tokens:
        i = tokens.index("name")
        if tokens == ["name"] or (i > 0 and tokens[i - 1] in _PERSON_QUALIFIERS):
            found.append("PERSON")
    return list(dict.fromkeys(found))


# -- pattern scan -------------------------------------------------------------------------

def _scannable(series: pd.Series) -> bool:
    kind = series.dtype.kind
    return kind in "iuOSU" or str(series.dtype).startswith("string")


def _values(series: pd.Series, max_values: int, rng: random.Random) -> tuple[dict[str, int], int]:
    """Distinct text values of a column (capped) with their row counts, and the rows they hold."""
    counts = series.dropna().astype(str).value_counts(sort=False)
    items = [(str(v), int(n)) for v, n in counts.items() if str(v).strip()]
    if len(items) > max_values:
        items = rng.sample(items, max_values)
    return dict(items), sum(n for _, n in items)


def _scan_column(name: str, series: pd.Series, *, max_values: int, min_score: float,
                 min_fraction: float, rng: random.Random) -> list[PiiFinding]:
    from ._presidio import LANGUAGE, analyzer

    engine = analyzer()
    values, rows = _values(series, max_values, rng)
    if not rows:
        return []
    context = _tokens(name)
    hits: dict[str, tuple[int, float]] = {}
    for value, count in values.items():
        seen: dict[str, float] = {}
        for result in engine.analyze(value[:_MAX_TEXT], language=LANGUAGE, context=context):
            if result.score >= min_score:
                seen[result.entity_type] = max(result.score, seen.get(result.entity_type, 0))
        for entity, score in seen.items():
            n, best = hits.get(entity, (0, 0.0))
            hits[entity] = (n + count, max(best, score))
    return [PiiFinding(column=name, entity_type=entity, detector="pattern", matches=n,
                       score=round(best, 3))
            for entity, (n, best) in sorted(hits.items()) if n / rows >= min_fraction]


def _check_params(sample_rows: int, max_values: int, min_score: float, min_fraction: float
                  ) -> None:
    for field, value in (("sample_rows", sample_rows), ("max_values", max_values)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{field} must be a positive integer, got {value!r}", field=field)
    for field, number in (("min_score", min_score), ("min_fraction", min_fraction)):
        if isinstance(number, bool) or not isinstance(number, int | float) \
                or not 0 <= number <= 1:
            raise InvalidInput(f"{field} must be between 0 and 1, got {number!r}", field=field)


def scan_dataset(
    ctx: Context,
    dataset: str,
    version: int | None = None,
    *,
    sample_rows: int = 10_000,
    seed: int = 0,
    max_values: int = 200,
    min_score: float = 0.5,
    min_fraction: float = 0.3,
) -> PiiScan:
    """Find direct identifiers in a dataset version (the latest by default) and record them.

    Raises:
        NotFound: no such dataset or version.
        InvalidInput: a bad parameter, or Presidio is not installed (``modelworks[pii]``).
    """
    from ..data.datasets import get_dataset_version, load_dataset
    from ._presidio import analyzer

    _check_params(sample_rows, max_values, min_score, min_fraction)
    analyzer()  # fail early, before reading data, when the extra is missing
    with ctx.db.read() as conn:
        dv = get_dataset_version(conn, dataset, version)
    df = load_dataset(ctx, dv)
    if len(df) > sample_rows:
        df = df.sample(n=sample_rows, random_state=seed)
    rng = random.Random(seed)
    findings: list[PiiFinding] = []
    for column in df.columns:
        name = str(column)
        findings += [PiiFinding(column=name, entity_type=e, detector="column_name", matches=0,
                                score=NAME_HINT_SCORE) for e in name_hints(name)]
        if _scannable(df[column]):
            findings += _scan_column(name, df[column], max_values=max_values,
                                     min_score=min_score, min_fraction=min_fraction, rng=rng)
    rows_scanned = len(df)

    def work(conn: Connection) -> PiiScan:
        now = utcnow()
        conn.execute(delete(findings_table)
                     .where(findings_table.c.dataset_version_id == dv.id))
        if findings:
            conn.execute(insert(findings_table), [
                {"dataset_version_id": dv.id, "column": f.column, "entity_type": f.entity_type,
                 "detector": f.detector, "matches": f.matches, "rows_scanned": rows_scanned,
                 "score": f.score, "created_at": now, "created_by": ctx.actor}
                for f in findings])
        flagged = sorted({f.column for f in findings})
        tagged = add_tags(conn, dataset_id(conn, dv.name), flagged, "identifier", ctx.actor)
        audit.append(ctx.db, conn, actor=ctx.actor, action="dataset.scanned",
                     entity_type="dataset_version", entity_id=dv.id,
                     payload={"dataset": dv.name, "version": dv.version,
                              "rows_scanned": rows_scanned, "sample_rows": sample_rows,
                              "seed": seed, "min_score": min_score,
                              "min_fraction": min_fraction,
                              "findings": [f.model_dump() for f in findings],
                              "tagged_identifier": tagged})
        return PiiScan(dataset=dv.name, version=dv.version, dataset_version_id=dv.id,
                       rows_scanned=rows_scanned, findings=findings, created_at=now,
                       created_by=ctx.actor)

    return ctx.db.write_retrying(work)


def pii_findings(conn: Connection, dataset: str, version: int | None = None
                 ) -> list[PiiFinding]:
    """The findings of the last scan of a dataset version (empty if never scanned)."""
    from ..data.datasets import get_dataset_version

    dv = get_dataset_version(conn, dataset, version)
    t = findings_table
    rows = conn.execute(select(t).where(t.c.dataset_version_id == dv.id)
                        .order_by(t.c.column, t.c.detector, t.c.entity_type)).all()
    return [PiiFinding(column=r.column, entity_type=r.entity_type, detector=r.detector,
                       matches=r.matches, score=r.score) for r in rows]


def identifier_columns(conn: Connection, dataset_version_ids: Sequence[int]
                       ) -> dict[str, list[str]]:
    """Columns of these dataset versions flagged as identifiers, with the reasons.

    A column is flagged by a scan finding of its version (reason: the entity type, e.g.
    ``EMAIL_ADDRESS``) or by an ``identifier`` or ``sensitive`` tag on its dataset (reason:
    ``tag:identifier``, ``tag:sensitive``). Columns of several versions merge by name.
    """
    ids = sorted({int(i) for i in dataset_version_ids})
    if not ids:
        return {}
    reasons: dict[str, set[str]] = {}
    f = findings_table
    for found in conn.execute(select(f.c.column, f.c.entity_type)
                              .where(f.c.dataset_version_id.in_(ids))):
        reasons.setdefault(found.column, set()).add(found.entity_type)
    versions = conn.execute(select(dataset_versions.c.dataset_id, dataset_versions.c.schema)
                            .where(dataset_versions.c.id.in_(ids))).all()
    columns_by_dataset: dict[int, set[str]] = {}
    for v in versions:
        columns_by_dataset.setdefault(v.dataset_id, set()).update(v.schema)
    if columns_by_dataset:
        t = dataset_column_tags
        for row in conn.execute(select(t.c.dataset_id, t.c.column, t.c.tag).where(
                t.c.dataset_id.in_(list(columns_by_dataset)), t.c.tag.in_(IDENTIFIER_TAGS))):
            if row.column in columns_by_dataset[row.dataset_id]:
                reasons.setdefault(row.column, set()).add(f"tag:{row.tag}")
    return {column: sorted(why) for column, why in sorted(reasons.items())}
