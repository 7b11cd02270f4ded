"""The one shape of every error the API answers with."""

from pydantic import BaseModel, Field


class ErrorMessage(BaseModel):
    """Every error the API answers (but 422): `message` says what is wrong, naming the field, file or job,
    and what the client can do; `detail` repeats it (FastAPI's field, which older clients read)."""

    message: str
    detail: str


class FieldError(BaseModel):
    type: str
    loc: list[str | int] = Field(description="Where: `body`/`query`/`path`/`header`, then the field's path.")
    msg: str


class ValidationErrorMessage(BaseModel):
    """A 422: `message` names each refused field (`hidden_units[0]: ...`); `detail` lists them one by one."""

    message: str
    detail: list[FieldError]
