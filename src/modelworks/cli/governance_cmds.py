"""Governance commands: ``policy``, ``approve``/``reject``, ``roles``, and ``models card``,
``models inventory``, ``models update``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from ..errors import InvalidInput
from . import global_options
from ._output import JsonOption, cell, console, fmt_time, print_json, table
from .models_cmds import models_app

if TYPE_CHECKING:
    from ..governance.evaluation import PolicyEvaluation

__all__ = ["register"]

policy_app = typer.Typer(help="Apply, show and evaluate policies (the promotion gate).",
                         no_args_is_help=True)
roles_app = typer.Typer(help="Grant, revoke and list roles.", no_args_is_help=True)

ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded and audited).")]


def _uri(ref: str) -> str:
    """Accept models:/NAME/V, models:/NAME@ALIAS and the short NAME/V, NAME@ALIAS."""
    from ..registry.uri import parse_model_uri

    return str(parse_model_uri(ref.strip()))


def _outcome(passed: bool) -> Text:
    return Text("pass" if passed else "FAIL", style="green" if passed else "bold red")


def _print_evaluation(evaluation: PolicyEvaluation) -> None:
    t = table("policy", "rule", "outcome", "reason",
              title=f"{evaluation.model}/{evaluation.version}: "
                    f"{'passed' if evaluation.passed else 'FAILED'}")
    for outcome in evaluation.outcomes:
        label = f"{outcome.policy} v{outcome.policy_version}" if outcome.policy else "(none)"
        for rule in outcome.rules:
            t.add_row(cell(label), cell(rule.rule), _outcome(rule.passed), cell(rule.reason))
    console().print(t)


@policy_app.command("apply")
def apply_policy(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A policy YAML file, or builtin:NAME "
                                             "(low-risk, medium-risk, high-risk).")],
    json_: JsonOption = False,
) -> None:
    """Validate and apply a policy: a new version of its name (admins only; audited)."""
    with global_options(ctx).open_workspace() as ws:
        policy = ws.apply_policy(file)
    if json_:
        print_json(policy)
        return
    console().print(Text(f"policy {policy.name} version {policy.version} "
                         f"(sha256 {policy.sha256[:12]}) applies to risk tiers "
                         f"{', '.join(policy.spec.applies_to.risk_tiers)}: "
                         f"{len(policy.spec.rules)} rules"))


@policy_app.command("show")
def show_policy(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A policy name (default: all).")] = None,
    version: Annotated[int | None, typer.Option("--version", help="That version.")] = None,
    json_: JsonOption = False,
) -> None:
    """The current policies, or one policy's YAML as applied."""
    with global_options(ctx).open_workspace() as ws:
        found = [ws.get_policy(name, version)] if name else ws.policies()
    if json_:
        print_json(found if name is None else found[0])
        return
    if name is not None:
        sys.stdout.write(found[0].content)
        return
    t = table("name", "version", "risk tiers", "models", "rules", "applied", "by",
              title=f"policies ({len(found)})")
    for p in found:
        t.add_row(cell(p.name), cell(p.version), cell(", ".join(p.spec.applies_to.risk_tiers)),
                  cell(", ".join(p.spec.applies_to.models)), cell(len(p.spec.rules)),
                  cell(fmt_time(p.created_at)), cell(p.created_by))
    console().print(t)


@policy_app.command("evaluate")
def evaluate_policy(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/...")],
    json_: JsonOption = False,
) -> None:
    """Evaluate the current policies on a version: each rule's outcome and reason (stored)."""
    with global_options(ctx).open_workspace() as ws:
        evaluation = ws.evaluate_policy(_uri(model_uri))
    if json_:
        print_json(evaluation)
        return
    _print_evaluation(evaluation)


def _decide(ctx: typer.Context, model_uri: str, reason: str, approve: bool,
            json_: bool) -> None:
    with global_options(ctx).open_workspace() as ws:
        uri = _uri(model_uri)
        decision = ws.approve(uri, reason=reason) if approve else ws.reject(uri, reason=reason)
    if json_:
        print_json(decision)
        return
    console().print(Text(f"{decision.model}/{decision.version} {decision.decision} by "
                         f"{decision.actor}: {decision.reason}"))


def approve(ctx: typer.Context,
            model_uri: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS")],
            reason: ReasonOption, json_: JsonOption = False) -> None:
    """Approve a version as a validator (not one you trained or registered)."""
    _decide(ctx, model_uri, reason, True, json_)


def reject(ctx: typer.Context,
           model_uri: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS")],
           reason: ReasonOption, json_: JsonOption = False) -> None:
    """Reject a version: promotion is blocked until a new approval."""
    _decide(ctx, model_uri, reason, False, json_)


@roles_app.command("grant")
def grant(ctx: typer.Context, user: Annotated[str, typer.Argument()],
          role: Annotated[str, typer.Argument(help="viewer, developer, validator or admin")],
          ) -> None:
    """Give USER a role (admins only; audited)."""
    with global_options(ctx).open_workspace() as ws:
        binding = ws.grant_role(user, role)
    console().print(Text(f"{binding.user} holds {binding.role} (granted by "
                         f"{binding.granted_by})"))


@roles_app.command("revoke")
def revoke(ctx: typer.Context, user: Annotated[str, typer.Argument()],
           role: Annotated[str, typer.Argument()]) -> None:
    """Take a role away (admins only; audited)."""
    with global_options(ctx).open_workspace() as ws:
        ws.revoke_role(user, role)
    console().print(Text(f"{user} no longer holds {role}"))


@roles_app.command("list")
def list_roles(ctx: typer.Context,
               user: Annotated[str | None, typer.Argument(help="Only this user.")] = None,
               json_: JsonOption = False) -> None:
    """Who holds which role."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.roles(user)
    if json_:
        print_json(found)
        return
    t = table("user", "role", "granted by", "granted", title=f"roles ({len(found)})")
    for b in found:
        t.add_row(cell(b.user), cell(b.role), cell(b.granted_by), cell(fmt_time(b.granted_at)))
    console().print(t)


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    console().print(Text(f"wrote {out}"))


@models_app.command("card")
def model_card(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/...")],
    format_: Annotated[str, typer.Option("--format", "-f", help="html, md or json")] = "md",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
) -> None:
    """The version's model card, generated from the record."""
    if format_ not in ("html", "md", "json"):
        raise InvalidInput("--format must be html, md or json", field="format")
    import json

    with global_options(ctx).open_workspace() as ws:
        version = ws.resolve_model(_uri(model_uri))
        card = ws.model_card(version.name, version.version, format=format_)
    _write(json.dumps(card, indent=2, default=str) if isinstance(card, dict) else card, out)


@models_app.command("inventory")
def inventory(
    ctx: typer.Context,
    format_: Annotated[str, typer.Option("--format", "-f", help="csv or json")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
) -> None:
    """The whole model inventory, one row per version (archived versions included)."""
    from ..governance.inventory import render_inventory

    if format_ not in ("csv", "json"):
        raise InvalidInput("--format must be csv or json", field="format")
    with global_options(ctx).open_workspace() as ws:
        rows = ws.inventory()
    _write(render_inventory(rows, format_), out)


@models_app.command("update")
def update_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A registered model's name.")],
    purpose: Annotated[str | None, typer.Option("--purpose", help="Business purpose.")] = None,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    risk_tier: Annotated[str | None, typer.Option("--risk-tier", help="low|medium|high")] = None,
    lifecycle: Annotated[str | None, typer.Option(
        "--lifecycle", help="development|validation|production|retired")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    vendor: Annotated[bool | None, typer.Option("--vendor/--no-vendor",
                                                help="A vendor (third-party) model?")] = None,
    json_: JsonOption = False,
) -> None:
    """Change a model's inventory fields (audited)."""
    with global_options(ctx).open_workspace() as ws:
        model = ws.update_model(name, business_purpose=purpose, owner=owner,
                                risk_tier=risk_tier, lifecycle_status=lifecycle,
                                description=description, vendor=vendor)
    if json_:
        print_json(model)
        return
    console().print(Text(f"updated {model.name}: {model.risk_tier} risk, owner {model.owner}, "
                         f"{model.lifecycle_status}"))


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
    app.add_typer(roles_app, name="roles")
    app.command("approve")(approve)
    app.command("reject")(reject)
