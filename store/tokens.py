"""API tokens: a user's, stored only as their SHA-256, created, listed, revoked and looked up.

A token is 32 random bytes (256 bits) in URL-safe base64 after a `cjt_` prefix. A lookup finds the row by its
hash (an index), then compares the hashes in constant time.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.errors import TokenNotFound, UserNotFound, UserRemoved
from store.tables import Role, Token, User, utcnow

TOKEN_PREFIX = "cjt_"


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def add_token(session: Session, user_id: int, label: str | None, expires_at: datetime | None = None) -> str:
    token = new_token()
    session.add(Token(user_id=user_id, sha256=token_sha256(token), label=label, created_at=utcnow(),
                      expires_at=expires_at))  # fmt: skip
    session.flush()
    return token


def create_token(
    session: Session, user_id: int, label: str | None, expires_at: datetime | None = None
) -> tuple[Token, str]:
    """A new token for the user (the only time it is seen), valid until `expires_at` (None: until revoked);
    raises UserNotFound, or UserRemoved for a removed user."""
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"user {user_id} not found")
    if user.removed_at is not None:
        raise UserRemoved(f"user {user_id} ({user.name}) was removed: a removed user gets no token")
    token = add_token(session, user_id, label, expires_at)
    row = session.scalars(select(Token).where(Token.sha256 == token_sha256(token))).one()
    return row, token


def list_tokens(session: Session, user_id: int) -> list[Token]:
    return list(session.scalars(select(Token).where(Token.user_id == user_id).order_by(Token.id)))


def revoke_token(session: Session, user_id: int, token_id: int, whose: str = "yours") -> Token:
    """Revoke one of the user's tokens (again: no change). Raises TokenNotFound."""
    token = session.get(Token, token_id)
    if token is None or token.user_id != user_id:
        raise TokenNotFound(f"token {token_id} not found among {whose}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


@dataclass(frozen=True)
class TokenOwner:
    user_id: int
    name: str
    role: Role
    quotas: dict[str, Any]  # an admin's overrides of the default quotas


def user_of_token(session: Session, token: str) -> TokenOwner | None:
    """The user a live token belongs to (not revoked, not expired, its user not disabled), or None."""
    digest = token_sha256(token)
    live = Token.revoked_at.is_(None) & (Token.expires_at.is_(None) | (Token.expires_at > utcnow()))
    row = session.execute(
        select(Token.sha256, User.id, User.name, User.role, User.quotas)
        .join(User, User.id == Token.user_id)
        .where(Token.sha256 == digest, live, User.disabled_at.is_(None))
    ).first()
    if row is None or not secrets.compare_digest(row.sha256, digest):
        return None
    return TokenOwner(row.id, row.name, Role(row.role), row.quotas or {})
