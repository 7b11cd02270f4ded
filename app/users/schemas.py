"""Users, tokens, quotas and the audit log as the API shows them. A token is shown once, at creation."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.kinds.common import NO_CONTROL_CHARACTERS
from store.tables import Role

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"
# a user's name, or a removed user's (`store.users.removed_name`: `NAME (removed #ID)`)
OWNER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}( \(removed #[0-9]+\))?$"


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="Letters, digits, `.`, `_`, `@`, `-`; up to 100.")
    role: Role = Field(Role.member, description="`admin`, `member` (the default) or `viewer`.")


class UserPublic(BaseModel):
    id: int
    name: str
    role: Role
    created_at: datetime
    disabled: bool = Field(False, description="An admin disabled the user: their tokens are refused.")
    removed: bool = Field(
        False, description="An admin removed the user (named `NAME (removed #ID)` from then on); their runs stay."
    )
    quotas: dict[str, Any] = Field({}, description="The quotas an admin set for this user (the rest: the defaults).")


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = Field(None, description="The user's new role.")
    disabled: bool | None = Field(
        None, description="`true`: their tokens are refused from now on (within a second on every API process)."
    )


class UsersPublic(BaseModel):
    data: list[UserPublic]


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str | None = Field(None, max_length=100, pattern=NO_CONTROL_CHARACTERS, description="Where it is used.")
    expires_in_days: float | None = Field(
        None, gt=0, le=3650, description="Refused after this many days (default: valid until revoked)."
    )


class TokenPublic(BaseModel):
    id: int
    label: str | None
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = Field(None, description="When it stops working; null: when revoked.")


class TokensPublic(BaseModel):
    data: list[TokenPublic]


class CreatedToken(TokenPublic):
    token: str = Field(description="The token itself: shown this once, stored only as its SHA-256.")


class CreatedUser(UserPublic):
    token: str = Field(description="The user's first token: shown this once, stored only as its SHA-256.")


class Me(BaseModel):
    id: int | None = Field(description="None for the API_KEY and the single-user mode.")
    name: str
    role: Role


class QuotaOverrides(BaseModel):
    model_config = ConfigDict(extra="forbid")
    running_jobs: int | None = Field(None, ge=1, description="Jobs running at once; more wait queued.")
    queued_jobs: int | None = Field(None, ge=0)
    submissions_per_minute: int | None = Field(None, ge=0)
    cpu_hours: float | None = Field(None, ge=0)
    gpu_hours: float | None = Field(None, ge=0)


class UsageLine(BaseModel):
    used: float
    quota: float


class UsagePublic(BaseModel):
    queued_jobs: UsageLine
    submissions_per_minute: UsageLine
    cpu_hours: UsageLine = Field(description="cpus x running time of your jobs in the last 7 days.")
    gpu_hours: UsageLine = Field(description="gpus x running time of your jobs in the last 7 days.")
    running_jobs: UsageLine = Field(description="Your jobs running now; at the quota, the next ones wait queued.")


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    user_id: int | None
    actor: str
    action: str
    target: str
    client: str | None
    detail: dict[str, Any] | None


class AuditPublic(BaseModel):
    data: list[AuditEntryPublic]
    count: int
