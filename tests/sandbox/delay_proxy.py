"""A pass-through HTTP proxy that adds a fixed delay to every request, and can answer some with 503 SlowDown.

The local S3 servers answer in well under a millisecond; S3 itself takes tens of
milliseconds per request, and then the wall time of a mirror is set by how many
requests are in flight, not by client CPU. ``DelayProxy`` stands between any
S3 client and a local server: each request on a client connection is held for
``delay`` seconds, then forwarded on that connection's own upstream connection
(keep-alive is kept on both sides), and the answers flow back byte for byte.
Request bodies are streamed after the delay, so ``Expect: 100-continue`` works.

``slowdown`` is the fraction of requests (chosen at random, ``seed``) answered
``503 SlowDown`` by the proxy itself, as S3 does when a prefix gets more
requests than it takes; the request is then not forwarded.

Used by ``bench/bench_s3.py --latency`` and by the tests. Runs its own asyncio
loop in a daemon thread; ``python -m sandbox.delay_proxy UPSTREAM --delay 0.05``
runs one in the foreground.
"""

from __future__ import annotations

import asyncio
import random
import threading
from urllib.parse import urlsplit

SLOWDOWN_BODY = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                 b"<Message>Please reduce your request rate.</Message><RequestId>delayproxy</RequestId></Error>")
CHUNK = 256 * 1024


def parse_head(head):
    """(method, {lowercase header: value}) of a request head (bytes up to the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ", 1)[0]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return method, headers


class DelayProxy:
    def __init__(self, upstream_url, delay=0.05, slowdown=0.0, seed=0):
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port or 80)
        self.delay = delay
        self.slowdown = slowdown
        self.requests = 0
        self.slowdowns = 0
        self._random = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._server = None
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), name="delay-proxy", daemon=True)
        self.thread.start()
        started.wait(10)
        if self._server is None:
            raise RuntimeError("the delay proxy did not start")

    def _run(self, started):
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, limit=1 << 20, backlog=1024))
        started.set()
        self._loop.run_forever()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.sockets[0].getsockname()[1]

    def set_slowdown(self, fraction):
        self.slowdown = fraction

    async def _pipe(self, reader, writer):
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _forward_body(self, reader, writer, headers):
        """Copy one request body from the client to ``writer`` (None: discard it)."""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                line = await reader.readuntil(b"\r\n")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                data = line + (await reader.readexactly(size + 2) if size else b"")
                if writer:
                    writer.write(data)
                if size == 0:
                    while True:  # trailers, up to the blank line
                        trailer = await reader.readuntil(b"\r\n")
                        if writer:
                            writer.write(trailer)
                        if trailer == b"\r\n":
                            break
                    break
                if writer:
                    await writer.drain()
            return
        remaining = int(headers.get("content-length") or 0)
        while remaining:
            data = await reader.readexactly(min(remaining, CHUNK))
            remaining -= len(data)
            if writer:
                writer.write(data)
                await writer.drain()

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=1 << 20)
        except OSError:
            writer.close()
            return
        pump = asyncio.ensure_future(self._pipe(up_reader, writer))
        try:
            while not pump.done():
                head = await reader.readuntil(b"\r\n\r\n")
                method, headers = parse_head(head)
                self.requests += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                if self.slowdown and "expect" not in headers and self._random.random() < self.slowdown:
                    self.slowdowns += 1
                    await self._forward_body(reader, None, headers)
                    writer.write(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
                                 b"x-amz-request-id: delayproxy\r\n\r\n%s" % (
                                     len(SLOWDOWN_BODY), b"" if method == "HEAD" else SLOWDOWN_BODY))
                    await writer.drain()
                    continue
                up_writer.write(head)
                await self._forward_body(reader, up_writer, headers)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError, ValueError):
            pass
        finally:
            up_writer.close()
            try:
                await pump
            except (ConnectionError, OSError):
                pass
            writer.close()

    def close(self):
        async def stop():
            self._server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self.thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main():
    import argparse
    import time

    parser = argparse.ArgumentParser(description="HTTP pass-through that delays every request")
    parser.add_argument("upstream")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds added to every request")
    parser.add_argument("--slowdown", type=float, default=0.0, help="fraction of requests answered 503 SlowDown")
    opts = parser.parse_args()
    with DelayProxy(opts.upstream, opts.delay, opts.slowdown) as proxy:
        print(proxy.url, flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
