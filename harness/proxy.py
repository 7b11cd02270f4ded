"""A loopback TCP proxy that cuts connections: a client's view of a network that drops a stream mid-way."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from harness.net import free_port


class CuttingProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port`. The first `cuts` requests whose request
    line holds `path_part` have their connection closed `cut_after` bytes into the answer (a client may
    send it on a connection it used before: keep-alive); everything else passes whole."""

    def __init__(self, upstream_port: int, path_part: str, cut_after: int, cuts: int = 1) -> None:
        self.upstream_port, self.path_part, self.cut_after, self.cuts_left = upstream_port, path_part, cut_after, cuts
        self.port = free_port()
        self.cut = 0  # connections cut so far
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._closing = False

    def serve(self) -> None:
        while not self._closing:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        state = {"sent": 0, "limit": -1}  # bytes sent to the client; where to cut (-1: nowhere)

        def requests() -> None:
            try:
                while data := client.recv(65536):
                    request_lines = [line for line in data.split(b"\r\n") if line.startswith((b"GET ", b"POST "))]
                    with self._lock:
                        if self.cuts_left > 0 and any(self.path_part.encode() in line for line in request_lines):
                            self.cuts_left -= 1
                            state["limit"] = state["sent"] + self.cut_after
                    upstream.sendall(data)
            except OSError:
                pass

        threading.Thread(target=requests, daemon=True).start()
        try:
            while data := upstream.recv(4096):
                limit = state["limit"]
                if limit >= 0 and state["sent"] + len(data) >= limit:
                    client.sendall(data[: limit - state["sent"]])
                    with self._lock:
                        self.cut += 1
                    break
                client.sendall(data)
                state["sent"] += len(data)
        except OSError:
            pass
        finally:
            for end in (client, upstream):
                _close(end)

    def close(self) -> None:
        self._closing = True
        _close(self._server)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@contextmanager
def cutting_proxy(upstream_port: int, path_part: str, cut_after: int, cuts: int = 1) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(upstream_port, path_part, cut_after, cuts)
    thread = threading.Thread(target=proxy.serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.close()
        thread.join(5)
