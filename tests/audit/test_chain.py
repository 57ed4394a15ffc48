"""The audit chain detects every kind of tampering, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

import modelworks as mw
from modelworks.store.tables import audit_events


def _events(ws: mw.Workspace, n: int = 4) -> None:
    for i in range(n):
        with ws.start_run(experiment="e", name=f"r{i}", params={"i": i}):
            pass


def test_clean_chain_verifies(workspace: mw.Workspace) -> None:
    _events(workspace)
    report = workspace.verify_audit()
    assert report.ok and report.events == len(workspace.audit_log(limit=None))
    seqs = [e.seq for e in workspace.audit_log(limit=None)]
    assert seqs == sorted(seqs, reverse=True) and seqs[-1] == 1


def test_edited_event_is_detected(workspace: mw.Workspace) -> None:
    _events(workspace)
    with workspace.db.write() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 3)
                     .values(actor="mallory"))
    report = workspace.verify_audit()
    assert not report.ok and report.first_broken_seq == 3 and "edited" in (report.problem or "")


def test_edited_payload_is_detected(workspace: mw.Workspace) -> None:
    _events(workspace)
    with workspace.db.write() as conn:
        row = conn.execute(select(audit_events).where(audit_events.c.seq == 4)).one()
        conn.execute(update(audit_events).where(audit_events.c.seq == 4)
                     .values(payload={**row.payload, "params": {"i": "999"}}))
    report = workspace.verify_audit()
    assert not report.ok and report.first_broken_seq == 4


def test_deleted_event_is_detected(workspace: mw.Workspace) -> None:
    _events(workspace)
    with workspace.db.write() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == 5))
    report = workspace.verify_audit()
    assert not report.ok and report.first_broken_seq == 5 and "missing" in (report.problem or "")


def test_deleted_tail_is_detected(workspace: mw.Workspace) -> None:
    _events(workspace)
    last = workspace.audit_log(limit=1)[0].seq
    with workspace.db.write() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == last))
    report = workspace.verify_audit()
    assert not report.ok and "end" in (report.problem or "")


def test_reordered_events_are_detected(workspace: mw.Workspace) -> None:
    _events(workspace)
    with workspace.db.write() as conn:  # swap events 3 and 4, keeping their hashes
        conn.execute(update(audit_events).where(audit_events.c.seq == 3).values(seq=-3))
        conn.execute(update(audit_events).where(audit_events.c.seq == 4).values(seq=3))
        conn.execute(update(audit_events).where(audit_events.c.seq == -3).values(seq=4))
    report = workspace.verify_audit()
    assert not report.ok and report.first_broken_seq == 3


def test_creator_is_first_admin(workspace: mw.Workspace) -> None:
    assert workspace.admins == ["alice"]
    first = workspace.audit_log(limit=None)[-1]
    assert (first.seq, first.action, first.actor) == (1, "workspace.created", "alice")


def test_audit_log_limit_validated(workspace: mw.Workspace) -> None:
    with pytest.raises(mw.InvalidInput, match="limit"):
        workspace.audit_log(limit=0)
