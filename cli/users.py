"""`cifar-jobs login`, `logout`, `whoami`, and `cifar-jobs admin`: users, their tokens and the audit log."""

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cifar_jobs.settings import ClientSettings
from cli.output import console, fail, service

admin = typer.Typer(help="(Admins) Users, their quotas and the audit log.", no_args_is_help=True)


def login(
    token: Annotated[str | None, typer.Option(help="The token; asked for (not echoed) when omitted.")] = None,
) -> None:
    """Keep a token for the next commands, in a file only you may read (0600, in CIFAR_JOBS_CONFIG_DIR)."""
    settings = ClientSettings()
    token = token or typer.prompt("Token", hide_input=True)
    with service(token=token) as api:
        me = api.call("GET", "/users/me")
    settings.config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(settings.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    os.chmod(settings.token_file, 0o600)  # an older file of wider mode, too
    console.print(f"signed in as {me['name']} ({me['role']}); the token is in {settings.token_file}", markup=False)


def logout() -> None:
    """Forget the token `login` kept."""
    settings = ClientSettings()
    settings.token_file.unlink(missing_ok=True)
    console.print("signed out", markup=False)


def whoami() -> None:
    """Who the token (or API_KEY) is."""
    with service() as api:
        me = api.call("GET", "/users/me")
    console.print(f"{me['name']} ({me['role']})", markup=False)


@admin.command("add-user")
def add_user(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    role: Annotated[str, typer.Option(help="admin, member or viewer.")] = "member",
) -> None:
    """Create a user; prints their first token (shown once: hand it over)."""
    if role not in ("admin", "member", "viewer"):
        raise fail(f"--role {role!r}: one of admin, member, viewer")
    with service() as api:
        made = api.call("POST", "/users", json={"name": name, "role": role})
    console.print(f"user {made['id']}: {made['name']} ({made['role']})", markup=False)
    console.print(f"token {made['token']} (shown once)", markup=False, soft_wrap=True)


@admin.command("users")
def users() -> None:
    """Every user: id, name, role, whether disabled or removed, their own quotas."""
    with service() as api:
        listed = api.call("GET", "/users")["data"]
    table = Table("id", "name", "role", "state", "since", "quotas")
    for user in listed:
        quotas = ", ".join(f"{key} {value}" for key, value in (user["quotas"] or {}).items() if value is not None)
        state = "removed" if user.get("removed") else "disabled" if user["disabled"] else "enabled"
        table.add_row(str(user["id"]), user["name"], user["role"], state,
                      user["created_at"][:10], quotas or "the defaults")  # fmt: skip
    console.print(table)


@admin.command("quotas")
def quotas(
    user_id: Annotated[int, typer.Argument(help="The user's id.")],
    running_jobs: Annotated[int | None, typer.Option(help="Jobs running at once (more wait queued).")] = None,
    queued_jobs: Annotated[int | None, typer.Option(help="Queued jobs at most.")] = None,
    submissions_per_minute: Annotated[int | None, typer.Option(help="Submissions in any 60 s.")] = None,
    cpu_hours: Annotated[float | None, typer.Option(help="CPU-hours in 7 days.")] = None,
    gpu_hours: Annotated[float | None, typer.Option(help="GPU-hours in 7 days.")] = None,
) -> None:
    """Set a user's quotas (those not given: the defaults)."""
    body = {"running_jobs": running_jobs, "queued_jobs": queued_jobs, "submissions_per_minute": submissions_per_minute,
            "cpu_hours": cpu_hours, "gpu_hours": gpu_hours}  # fmt: skip
    with service() as api:
        user = api.call("PUT", f"/users/{user_id}/quotas", json=body)
    console.print(f"user {user['id']} ({user['name']}): {user['quotas'] or 'the defaults'}", markup=False)


@admin.command("user")
def change_user(
    user_id: Annotated[int, typer.Argument(help="The user's id.")],
    role: Annotated[str | None, typer.Option(help="Their new role: admin, member or viewer.")] = None,
    disable: Annotated[bool, typer.Option("--disable", help="Refuse their tokens from now on.")] = False,
    enable: Annotated[bool, typer.Option("--enable", help="Let a disabled user in again.")] = False,
) -> None:
    """Change a user's role, or disable them (their tokens are refused) or enable them again."""
    if role is not None and role not in ("admin", "member", "viewer"):
        raise fail(f"--role {role!r}: one of admin, member, viewer")
    if disable and enable:
        raise fail("--disable or --enable, not both")
    body: dict[str, object] = {"role": role} if role else {}
    if disable or enable:
        body["disabled"] = disable
    if not body:
        raise fail("nothing to change: give --role, --disable or --enable")
    with service() as api:
        user = api.call("PATCH", f"/users/{user_id}", json=body)
    state = "disabled" if user["disabled"] else "enabled"
    console.print(f"user {user['id']}: {user['name']} ({user['role']}, {state})", markup=False)


@admin.command("remove")
def remove(
    user_id: Annotated[int, typer.Argument(help="The user's id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask first.")] = False,
) -> None:
    """Remove a user and keep their runs (named `NAME (removed #ID)` from then on); their tokens are revoked, their
    queued and running jobs and running sweeps cancelled."""
    with service() as api:
        user = next((u for u in api.call("GET", "/users")["data"] if u["id"] == user_id), None)
        if user is None:
            raise fail(f"user {user_id} not found (`cifar-jobs admin users` lists them)")
        if not yes and not typer.confirm(f"Remove user {user_id} ({user['name']})? Their runs stay"):
            raise typer.Exit(1)
        removed = api.call("DELETE", f"/users/{user_id}")
    console.print(f"user {removed['id']} removed: their runs stay, owned by {removed['name']}", markup=False)


@admin.command("token")
def issue_token(
    user_id: Annotated[int, typer.Argument(help="The user's id.")],
    label: Annotated[str | None, typer.Option(help="Where it is used.")] = None,
    days: Annotated[float | None, typer.Option(help="Refused after this many days (default: until revoked).")] = None,
) -> None:
    """Issue a new token for a user (say, theirs was lost); prints it (shown once: hand it over)."""
    with service() as api:
        made = api.call("POST", f"/users/{user_id}/tokens", json={"label": label, "expires_in_days": days})
    until = f", until {made['expires_at']}" if made["expires_at"] else ""
    console.print(f"token {made['id']} of user {user_id}{until}: {made['token']} (shown once)", markup=False,
                  soft_wrap=True)  # fmt: skip


@admin.command("reset-token")
def reset_token(
    user_id: Annotated[int, typer.Argument(help="The user's id.")],
    label: Annotated[str | None, typer.Option(help="Where the new one is used.")] = None,
) -> None:
    """A user lost their token: issue a new one and revoke every other (prints the new one, shown once)."""
    with service() as api:
        made = api.call("POST", f"/users/{user_id}/tokens", json={"label": label})
        old = [token for token in api.call("GET", f"/users/{user_id}/tokens")["data"]
               if token["id"] != made["id"] and token["revoked_at"] is None]  # fmt: skip
        for token in old:
            api.call("DELETE", f"/users/{user_id}/tokens/{token['id']}")
    console.print(f"token {made['id']} of user {user_id}: {made['token']} (shown once); {len(old)} revoked",
                  markup=False, soft_wrap=True)  # a token is never cut across lines  # fmt: skip


@admin.command("revoke")
def revoke(
    user_id: Annotated[int, typer.Argument(help="The user's id.")],
    token_id: Annotated[int, typer.Argument(help="The token's id (GET /users/{id}/tokens lists them).")],
) -> None:
    """Revoke one of a user's tokens: every API process refuses it within a second."""
    with service() as api:
        api.call("DELETE", f"/users/{user_id}/tokens/{token_id}")
    console.print(f"token {token_id} of user {user_id} revoked", markup=False)


@admin.command("audit")
def audit(limit: Annotated[int, typer.Option(help="How many entries, newest first.")] = 20) -> None:
    """The audit log: who did what, when, from where."""
    with service() as api:
        page = api.call("GET", "/audit", params={"limit": limit})
    for entry in page["data"]:
        console.print(f"{entry['at']} {entry['actor']} {entry['action']} {entry['target']} from {entry['client']}",
                      markup=False)  # fmt: skip


@admin.command("backup")
def backup(file: Annotated[Path, typer.Argument(help="Where to write the copy (a SQLite file).")]) -> None:
    """A consistent copy of the whole database (jobs, curves, models, users), taken while jobs train (SQLite; on
    PostgreSQL it says how pg_dump does it)."""
    with service() as api:
        written = api.backup(file)
    console.print(f"{written} ({written.stat().st_size:,} bytes): restore by stopping the service and putting it "
                  "where DATABASE_URL points (README, \"Backups\")", markup=False)  # fmt: skip
