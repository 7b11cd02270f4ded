"""/users and /audit: an admin creates users (each answered with a first token) and reads the audit log; every
user creates, lists and revokes their own tokens and reads their usage against their quotas."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.access.auth import PrincipalDep, audit
from app.access.permissions import ADMINS, OWN_ACCOUNT
from app.http.deps import MAX_ID, SessionDep, UnitOfWorkDep
from app.http.refusals import InvalidField
from app.users.quotas import quotas_of, usage_now
from app.users.schemas import (
    AuditEntryPublic,
    AuditPublic,
    CreatedToken,
    CreatedUser,
    Me,
    NewToken,
    NewUser,
    QuotaOverrides,
    TokenPublic,
    TokensPublic,
    UsageLine,
    UsagePublic,
    UserChange,
    UserPublic,
    UsersPublic,
)
from store.audit import audit_page
from store.tables import Role, Token, User, utcnow
from store.tokens import create_token, list_tokens, revoke_token
from store.unit_of_work import after_commit
from store.users import create_user, find_user, list_users, remove_user, set_quotas, update_user

router = APIRouter(tags=["users"])


def _public(user: User) -> UserPublic:
    return UserPublic(id=user.id, name=user.name, role=user.role, created_at=user.created_at, quotas=user.quotas or {},
                      disabled=user.disabled_at is not None, removed=user.removed_at is not None)  # fmt: skip


def _token_public(token: Token) -> TokenPublic:
    return TokenPublic(id=token.id, label=token.label, created_at=token.created_at, revoked_at=token.revoked_at,
                       expires_at=token.expires_at)  # fmt: skip


def _expiry(new: NewToken) -> datetime | None:
    return None if new.expires_in_days is None else utcnow() + timedelta(days=new.expires_in_days)


UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="The user's id.")]


def _own_id(principal: PrincipalDep) -> int:
    if principal.user_id is None:
        raise InvalidField(
            "Authorization", f"{principal.name} is not a user: sign in with a user's token (POST /users)", "header"
        )
    return principal.user_id


@router.post("/users", status_code=201, response_model=CreatedUser, dependencies=[ADMINS])
def add_user(request: Request, session: UnitOfWorkDep, new: NewUser) -> CreatedUser:
    """(Admins) A new user, answered with their first token: hand it over, it is not shown again. The first admin
    created becomes the owner of every job and sweep from before there were users."""
    user, token = create_user(session, new.name, new.role)
    after_commit(session, request.app.state.principals.forget)
    audit(request, session, "user.create", f"user {user.id}", {"name": user.name, "role": user.role})
    return CreatedUser(**_public(user).model_dump(), token=token)


@router.get("/users", response_model=UsersPublic, dependencies=[ADMINS])
def get_users(session: SessionDep) -> UsersPublic:
    """(Admins) Every user, oldest first."""
    return UsersPublic(data=[_public(user) for user in list_users(session)])


@router.put("/users/{user_id}/quotas", response_model=UserPublic, dependencies=[ADMINS])
def put_quotas(
    request: Request,
    session: UnitOfWorkDep,
    user_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    quotas: QuotaOverrides,
) -> UserPublic:
    """(Admins) The user's own quotas; a quota left out (or null) is the default again (QUOTA_* settings)."""
    user = set_quotas(session, user_id, quotas.model_dump())
    after_commit(session, request.app.state.principals.forget)  # the others within PRINCIPAL_CACHE_SECONDS
    audit(request, session, "user.quotas", f"user {user_id}", quotas.model_dump(exclude_none=True))
    return _public(user)


@router.get("/users/me", response_model=Me, dependencies=[OWN_ACCOUNT])
def me(principal: PrincipalDep) -> Me:
    """Who the token is: a user, the API_KEY (`api-key`, an admin) or the single-user mode (`local`)."""
    return Me(id=principal.user_id, name=principal.name, role=principal.role)


@router.post("/users/me/tokens", status_code=201, response_model=CreatedToken, dependencies=[OWN_ACCOUNT])
def add_token(request: Request, session: UnitOfWorkDep, principal: PrincipalDep, new: NewToken) -> CreatedToken:
    """A new token of yours: shown this once (stored only as its SHA-256)."""
    row, token = create_token(session, _own_id(principal), new.label, _expiry(new))
    audit(request, session, "token.create", f"token {row.id}", {"label": new.label})
    return CreatedToken(**_token_public(row).model_dump(), token=token)


@router.get("/users/me/tokens", response_model=TokensPublic, dependencies=[OWN_ACCOUNT])
def get_tokens(session: SessionDep, principal: PrincipalDep) -> TokensPublic:
    """Your tokens (never the tokens themselves), revoked ones too."""
    return TokensPublic(data=[_token_public(t) for t in list_tokens(session, _own_id(principal))])


@router.delete("/users/me/tokens/{token_id}", status_code=204, response_class=Response, dependencies=[OWN_ACCOUNT])
def delete_token(
    request: Request,
    session: UnitOfWorkDep,
    principal: PrincipalDep,
    token_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    """Revoke one of your tokens: every API process refuses it within a second."""
    revoke_token(session, _own_id(principal), token_id)
    after_commit(session, request.app.state.principals.forget)  # the others within PRINCIPAL_CACHE_SECONDS
    audit(request, session, "token.revoke", f"token {token_id}")
    return Response(status_code=204)


@router.get("/users/me/usage", response_model=UsagePublic, dependencies=[OWN_ACCOUNT])
def get_usage(request: Request, session: SessionDep, principal: PrincipalDep) -> UsagePublic:
    """What your jobs hold and used, against your quotas (admins' quotas are not enforced)."""
    user_id = _own_id(principal)
    overrides = find_user(session, user_id).quotas or {}  # read afresh: the principal's may be a second old
    quotas, usage = quotas_of(request.app.state.settings, overrides), usage_now(session, user_id)
    return UsagePublic(
        queued_jobs=UsageLine(used=usage.queued, quota=quotas.queued_jobs),
        submissions_per_minute=UsageLine(used=usage.submitted_last_minute, quota=quotas.submissions_per_minute),
        cpu_hours=UsageLine(used=round(usage.cpu_hours, 4), quota=quotas.cpu_hours),
        gpu_hours=UsageLine(used=round(usage.gpu_hours, 4), quota=quotas.gpu_hours),
        running_jobs=UsageLine(used=usage.running, quota=quotas.running_jobs),
    )


# after /users/me...: a path of the user's id would otherwise take `me` for one (a 422)
@router.patch("/users/{user_id}", response_model=UserPublic, dependencies=[ADMINS])
def change_user(
    request: Request, session: UnitOfWorkDep, principal: PrincipalDep, user_id: UserId, change: UserChange
) -> UserPublic:
    """(Admins) A user's role, or `disabled`: a disabled user's tokens are refused from now on (on every API
    process within PRINCIPAL_CACHE_SECONDS); `"disabled": false` lets them in again. Only what is sent changes."""
    if user_id == principal.user_id and (change.disabled or (change.role not in (None, Role.admin))):
        raise InvalidField("user_id", "you cannot disable yourself or give up your own admin role: ask another admin",
                           location="path")  # fmt: skip
    user = update_user(session, user_id, change.role, change.disabled)
    after_commit(session, request.app.state.principals.forget)  # the others within PRINCIPAL_CACHE_SECONDS
    audit(request, session, "user.update", f"user {user_id}", change.model_dump(exclude_none=True, mode="json"))
    return _public(user)


@router.delete("/users/{user_id}", response_model=UserPublic, dependencies=[ADMINS])
def delete_user(request: Request, session: UnitOfWorkDep, principal: PrincipalDep, user_id: UserId) -> UserPublic:
    """(Admins) Remove a user and keep their runs: they are named `NAME (removed #ID)` from now on (the name is
    free for a new user), their tokens are revoked, their running sweeps and queued or running jobs cancelled; their
    jobs, curves and models stay, still theirs. Answers the user as they are now; a second removal is a 409."""
    if user_id == principal.user_id:
        raise InvalidField("user_id", "you cannot remove yourself: ask another admin", location="path")
    name = find_user(session, user_id).name
    user = remove_user(session, user_id)
    after_commit(session, request.app.state.principals.forget)  # the others within PRINCIPAL_CACHE_SECONDS
    audit(request, session, "user.remove", f"user {user_id}", {"name": name})
    return _public(user)


@router.post("/users/{user_id}/tokens", status_code=201, response_model=CreatedToken, dependencies=[ADMINS])
def add_token_for(request: Request, session: UnitOfWorkDep, user_id: UserId, new: NewToken) -> CreatedToken:
    """(Admins) A new token for the user (say, theirs was lost): shown this once."""
    row, token = create_token(session, user_id, new.label, _expiry(new))
    audit(request, session, "token.create", f"token {row.id}", {"label": new.label, "user": user_id})
    return CreatedToken(**_token_public(row).model_dump(), token=token)


@router.get("/users/{user_id}/tokens", response_model=TokensPublic, dependencies=[ADMINS])
def get_tokens_of(session: SessionDep, user_id: UserId) -> TokensPublic:
    """(Admins) The user's tokens (never the tokens themselves), revoked ones too."""
    find_user(session, user_id)
    return TokensPublic(data=[_token_public(t) for t in list_tokens(session, user_id)])


@router.delete("/users/{user_id}/tokens/{token_id}", status_code=204, response_class=Response, dependencies=[ADMINS])
def delete_token_of(
    request: Request, session: UnitOfWorkDep, user_id: UserId, token_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    """(Admins) Revoke one of the user's tokens: every API process refuses it within a second."""
    revoke_token(session, user_id, token_id, whose=f"user {user_id}'s")
    after_commit(session, request.app.state.principals.forget)
    audit(request, session, "token.revoke", f"token {token_id}", {"user": user_id})
    return Response(status_code=204)


@router.get("/audit", response_model=AuditPublic, dependencies=[ADMINS])
def get_audit(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> AuditPublic:
    """(Admins) Who created, cancelled, deleted, changed or revoked what, when and from where; newest first."""
    entries, count = audit_page(session, limit, offset)
    return AuditPublic(
        data=[AuditEntryPublic.model_validate(entry, from_attributes=True) for entry in entries], count=count
    )
