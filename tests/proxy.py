"""A loopback TCP proxy that can be paused: an endpoint outage on demand, for tests.

::

    with PausableProxy(("127.0.0.1", moto_port)) as proxy:
        ...                          # point clients at proxy.endpoint_url
        proxy.pause()                # open connections are cut, new ones refused
        proxy.resume()               # listening again, on the same port

``pause("refuse")`` stops listening, so connecting fails with "connection
refused"; ``pause("drop")`` keeps listening but resets every connection as soon
as it is accepted.  Either way the connections that were open are reset, so a
client's pooled keep-alive connections fail too.  Standard library only: one
thread accepts, two threads per connection copy bytes.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Literal, Self

__all__ = ["PausableProxy"]

Mode = Literal["refuse", "drop"]
_HOST = "127.0.0.1"


def _reset(sock: socket.socket) -> None:
    """Close with an RST rather than a FIN (SO_LINGER 0), so the peer sees the cut at once.

    ``shutdown(SHUT_RD)`` first wakes a thread of ours blocked in ``recv`` on it.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class PausableProxy:
    """Forwards ``127.0.0.1:port`` to ``target`` until paused."""

    def __init__(self, target: tuple[str, int], *, port: int = 0) -> None:
        self.target = target
        self._requested_port = port
        self._port: int | None = None
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._paused: Mode | None = None
        self._closed = False
        self.accepted = 0
        self.refused = 0

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy has not been started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def paused(self) -> bool:
        return self._paused is not None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> Self:
        self._listen(self._requested_port)
        return self

    def stop(self) -> None:
        """Stop listening and reset every connection; idempotent."""
        with self._lock:
            self._closed = True
        self._stop_listening()
        self._cut_all()

    def pause(self, mode: Mode = "refuse") -> None:
        """Start an outage: reset the open connections; refuse or drop new ones."""
        with self._lock:
            if self._paused is not None:
                return
            self._paused = mode
        if mode == "refuse":
            self._stop_listening()
        self._cut_all()

    def resume(self) -> None:
        """End the outage: forward again, on the same port."""
        with self._lock:
            mode, self._paused = self._paused, None
        if mode == "refuse":
            self._listen(self.port)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------

    def _listen(self, port: int) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((_HOST, port))
        listener.listen(64)
        self._port = listener.getsockname()[1]
        acceptor = threading.Thread(target=self._accept, args=(listener,), name="proxy-accept", daemon=True)
        with self._lock:
            self._listener, self._acceptor = listener, acceptor
        acceptor.start()

    def _stop_listening(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            acceptor, self._acceptor = self._acceptor, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept() on Linux; close() alone may not.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if acceptor is not None:
            acceptor.join(timeout=5)

    def _cut_all(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, set()
        for sock in connections:
            _reset(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            with self._lock:
                dropping = self._paused is not None or self._closed
            if dropping:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                self.refused += 1
                _reset(client)
                continue
            self.accepted += 1
            with self._lock:
                self._connections.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), name="proxy-pump", daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        # One side is done: end both (HTTP clients do not half-close).
        with self._lock:
            self._connections.discard(source)
            self._connections.discard(sink)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
