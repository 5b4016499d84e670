"""A TCP pass-through that rewrites bytes the server sends: a compromised server, or a man in the middle.

Tests put it between a module and a MariaDB server to make the server answer what no honest one would,
e.g. a row literal that is an expression. The replacement has the marker's length, so that the MySQL
protocol's length headers stay right. Without a marker it only forwards, and with ``rate`` it is a slow
link: a phase that reads that many bytes lasts at least a known time, however fast the machine.
"""

from __future__ import annotations

import socket
import threading
import time


class RewritingProxy:
    """Listens on a free loopback port; forwards to ``(host, port)``; in what comes back, ``marker`` -> ``replacement``.

    ``rate``: at most that many bytes a second come back on each connection."""

    def __init__(self, host, port, marker=b"", replacement=b"", rate=None):
        if len(marker) != len(replacement):
            raise ValueError("the replacement must have the marker's length")
        self.target = (host, port)
        self.marker, self.replacement = marker, replacement
        self.rate = rate
        self.rewrites = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source, sink, from_server):
        held = b""  # the end of what was read, which may hold the start of a marker
        keep = len(self.marker) - 1
        due = time.monotonic()  # when what came so far has passed at ``rate``; an idle link saves up no burst
        source.settimeout(0.02)
        try:
            while True:
                try:
                    data = source.recv(65536)
                except socket.timeout:
                    # the server paused: what is held is not the start of a marker after all
                    if held:
                        sink.sendall(held)
                        held = b""
                    continue
                if not data:
                    break
                if from_server and self.rate:
                    now = time.monotonic()
                    due = max(due, now) + len(data) / self.rate
                    time.sleep(due - now)
                if not from_server or not self.marker:
                    sink.sendall(data)
                    continue
                data = held + data
                self.rewrites += data.count(self.marker)
                data = data.replace(self.marker, self.replacement)
                held, data = (data[-keep:], data[:-keep]) if len(data) > keep else (data, b"")
                if data:
                    sink.sendall(data)
            if held:
                sink.sendall(held)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self):
        self._closed = True
        self._listener.close()
