"""Who may talk to the API at all, before any route runs.

- Without API_KEY, only clients on this machine (loopback addresses): 403 for the rest, whatever
  address the server listens on.
- A state-changing request (POST, PUT, PATCH, DELETE) that carries an `Origin` header must come from
  the service's own pages (same scheme, host and port as the request, or one of ALLOWED_ORIGINS): a
  web page elsewhere cannot submit or cancel jobs through the user's browser, even without a key.
- The `Host` header must be one of ALLOWED_HOSTS (Starlette's TrustedHostMiddleware, installed
  beside this one), so a DNS-rebinding page cannot reach the API under a name it controls.
"""

import ipaddress
import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


class AccessMiddleware:
    def __init__(self, app: ASGIApp, api_key_set: bool, allowed_origins: frozenset[str]) -> None:
        self.app, self.api_key_set, self.allowed_origins = app, api_key_set, allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                await _forbidden(send, refusal)
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


async def _forbidden(send: Send, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
