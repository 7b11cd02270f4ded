"""What the API's services refuse about a request; `app.errors` alone maps each to an HTTP status.

Each message names the field or file it is about."""


class RequestRefused(Exception):
    # refused before its body was read to the end: the answer closes the connection rather than the server
    # reading and dropping the rest
    body_left_unread = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(RequestRefused):
    """A field with a bad value (422, in the shape of every other validation error)."""

    def __init__(self, field: str, problem: str, location: str = "body") -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem, self.location = field, problem, location


class NotBase64(RequestRefused):
    """A base64 image that does not decode."""


class TooLarge(RequestRefused):
    """Too many images, or one too large in bytes or pixels; too many jobs for one CSV."""


class UnsupportedMedia(RequestRefused):
    """A file that is not a decodable image, or a body neither multipart nor JSON."""


class Busy(RequestRefused):
    """The service is at a limit for now (open event streams): try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(RequestRefused):
    """The caller's role or ownership does not allow this (403); the message says what would."""


class OverQuota(RequestRefused):
    """A quota is used up (429): the message names it, the usage and when it frees; `retry_after` seconds
    when it is a rate."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
