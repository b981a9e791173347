"""A TCP relay between the service and one of its parts, which a test can cut and restore.

Cutting it is what the service sees when the part stops: every open connection is reset and
new ones are refused, until the part (the relay) listens again on the same port. Freezing it is
what the service sees when the part hangs (a stopped process, a lost network path): connections
are accepted and kept, but nothing passes either way until it thaws.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

__all__ = ["Relay"]


class Relay:
    """Relays ``127.0.0.1:<port>`` to ``target`` until cut; ``restore`` listens again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._flowing = threading.Event()
        self._flowing.set()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and reset every open one, as a stopped server does."""
        if self._listener is not None:
            # As below: shutdown() ends the accept() that close() alone would leave listening.
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            # shutdown() wakes the pump blocked in recv(), which close() alone would not.
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def freeze(self) -> None:
        """Hold every byte from now on, in both directions, on open and new connections."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Let the held bytes and those that follow pass again."""
        self._flowing.set()

    def close(self) -> None:
        self.thaw()
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
