# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TCP pass-through that tests put in front of a server: it rewrites what the server sends, or slows it."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sandbox.tcp_rewrite import RewritingProxy

PAYLOAD = b"".join(b"%08d|" % i for i in range(200_000))   # 1.8 MB with a marker in it somewhere
MARKER = b"00123456"


@pytest.fixture
def server(request):
    """A one-shot server on a loopback port: sends PAYLOAD to whoever connects (after a pause), then closes."""
    pause = getattr(request, "param", 0.0)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _addr = listener.accept()
        with conn:
            time.sleep(pause)
            conn.sendall(PAYLOAD)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()


def fetch(port):
    started = time.monotonic()
    chunks = []
    with socket.create_connection(("127.0.0.1", port)) as conn:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks), time.monotonic() - started


@pytest.mark.parametrize("server, rate, at_least", [
    (0.0, None, 0.0),
    (0.0, 3_000_000, 0.55),   # 1.8 MB at 3 MB/s: 0.6 s
    (0.6, 3_000_000, 1.15),   # an idle link saves up no burst: the pause, then 0.6 s
], indirect=["server"])
def test_without_a_marker_every_byte_comes_through_at_most_at_the_rate(server, rate, at_least):
    proxy = RewritingProxy("127.0.0.1", server, rate=rate)
    try:
        data, elapsed = fetch(proxy.port)
    finally:
        proxy.close()
    assert data == PAYLOAD and proxy.rewrites == 0
    assert elapsed >= at_least


def test_the_marker_is_rewritten_across_reads(server):
    proxy = RewritingProxy("127.0.0.1", server, MARKER, b"XXXXXXXX", rate=20_000_000)
    try:
        data, _elapsed = fetch(proxy.port)
    finally:
        proxy.close()
    assert proxy.rewrites == 1 and data == PAYLOAD.replace(MARKER, b"XXXXXXXX")
