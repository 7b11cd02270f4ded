"""Who may talk to the API at all, before any route runs.

- Without API_KEY, only clients on this machine (loopback addresses): 403 for the rest, whatever
  address the server listens on.
- A state-changing request (POST, PUT, PATCH, DELETE) that carries an `Origin` header must come from
  the service's own pages (same scheme, host and port as the request, or one of ALLOWED_ORIGINS): a
  web page elsewhere cannot submit or cancel jobs through the user's browser, even without a key.
- The `Host` header must be one of ALLOWED_HOSTS (a name, `*.domain`, or `*`), so a DNS-rebinding
  page cannot reach the API under a name it controls (Starlette's TrustedHostMiddleware does the same,
  but answers in plain text and cuts `[::1]:8000` at its first colon).
"""

import ipaddress
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.errors import send_error

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def host_name(host_header: str) -> str:
    """`example.org:8000` -> `example.org`; `[::1]:8000` -> `[::1]`."""
    if host_header.startswith("["):
        return host_header[: host_header.find("]") + 1] if "]" in host_header else host_header
    return host_header.split(":", 1)[0]


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    return (
        "*" in allowed
        or host in allowed
        or any(pattern.startswith("*.") and host.endswith(pattern[1:]) for pattern in allowed)
    )


class AccessMiddleware:
    def __init__(
        self, app: ASGIApp, api_key_set: bool, allowed_origins: frozenset[str], allowed_hosts: frozenset[str]
    ) -> None:
        self.app, self.api_key_set = app, api_key_set
        self.allowed_origins, self.allowed_hosts = allowed_origins, allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers", []))
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            if not host_allowed(host, self.allowed_hosts):
                message = f"Host {host!r} is not one this service answers: add it to ALLOWED_HOSTS on the server"
                await send_error(send, 400, message)
                return
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                await send_error(send, 403, refusal)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> str | None:
        client = scope.get("client")
        if not self.api_key_set and not is_loopback(client[0] if client else None):
            return "this service accepts requests from its own machine only: set API_KEY to open it to others"
        if scope["method"] in SAFE_METHODS:
            return None
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin")
        if origin is None:
            return None  # not a browser (curl, the CLI): nothing to guard against
        origin_text = origin.decode("latin-1")
        own = f"{scope.get('scheme', 'http')}://{headers.get(b'host', b'').decode('latin-1')}"
        if origin_text == own or origin_text in self.allowed_origins:
            return None
        parsed = urlsplit(origin_text)
        return f"cross-origin request refused: Origin {parsed.scheme}://{parsed.netloc} is not this service"
