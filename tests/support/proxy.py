"""A TCP proxy a test can cut and restore: a server that becomes unreachable for one client
while everyone else keeps using it."""

from __future__ import annotations

import contextlib
import gc
import socket
import threading
import warnings
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._open = True
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self._open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:  # a cut() since the accept must not miss this pair
                kept = self._open
                if kept:
                    self._sockets += [client, upstream]
            if not kept:
                client.close()
                upstream.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection and refuse new ones until restore()."""
        with self._lock:
            self._open = False
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        with self._lock:
            self._open = True

    def close(self) -> None:
        """Stop proxying. Then collect garbage: a client whose connection was cut under it may
        (rarely, in a reset race) drop its socket unclosed inside a reference cycle. That is
        expected here, so it is collected here, quietly, and not reported against whichever
        later test the garbage collector happens to run in."""
        self.cut()
        self.listener.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


@contextlib.contextmanager
def proxied(url: str, default_port: int) -> Iterator[TcpProxy]:
    """A TcpProxy in front of the server of `url` (a Redis or Postgres URL), closed after."""
    parts = urlsplit(url)
    found = TcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        yield found
    finally:
        found.close()


def through(url: str, port: int) -> str:
    """`url` with the proxy on 127.0.0.1:`port` in place of its server (user kept)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))
