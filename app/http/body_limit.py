"""ASGI middleware: a cap on request bodies that fits each route, enforced before the route parses.

`POST /predict` takes up to MAX_REQUEST_BYTES (images); every other route takes a few KB at most (a
job spec), so it gets SMALL_BODY_BYTES. A declared Content-Length over the cap is refused at once; a
chunked body is read up to the cap first and refused when it goes over (the route never sees a
body it would only half parse, which FastAPI answers with 400). Before a refusal the rest of the body is
read within bounds (`app.http.drain`), so that a client still sending reads the answer.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.drain import declared_length, drain
from app.http.errors import send_error

SMALL_BODY_BYTES = 64 * 1024
LARGE_BODY_PATHS = ("/predict",)


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def cap_for(self, path: str) -> int:
        return self.max_bytes if path in LARGE_BODY_PATHS else SMALL_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope["path"])
        declared = declared_length(scope)
        if declared is not None:
            if declared > cap:
                await self._refuse(send, cap, await drain(scope, receive))
                return
            await self.app(scope, self._counting(receive, cap), send)
            return
        body, over = await self._read_up_to(receive, cap)  # chunked: the whole body first, within the cap
        if over:
            await self._refuse(send, cap, await drain(scope, receive))
            return
        await self.app(scope, self._replay(body, receive), send)

    def _counting(self, receive: Receive, cap: int) -> Receive:
        """A declared length is a claim: count what actually comes (the server cuts at the length anyway)."""
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    return {"type": "http.disconnect"}
            return message

        return counting_receive

    @staticmethod
    async def _read_up_to(receive: Receive, cap: int) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # a disconnect, when the client goes away
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    @staticmethod
    async def _refuse(send: Send, cap: int, drained: bool) -> None:
        """`drained`: the rest of the body was read (app.http.drain), the connection can stay open."""
        message = f"request body over the limit of {cap:,} bytes for this route"
        await send_error(send, 413, message, close=not drained)
