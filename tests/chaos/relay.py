#!/usr/bin/env python3
"""A delaying TCP relay: the slow link of the chaos verifier's partitions.

    relay.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_FILE

Accepts connections on LISTEN and opens one to TARGET for each; every chunk
of bytes read from either side is written to the other DELAY ms after it
was read, in order, where DELAY is the number in DELAY_FILE (read every
100 ms; missing or empty: 0).

What it models: a link whose one-way latency rises and falls while the
connections on it stay up, as a congested or rerouted path looks to the
two ends. What it does not: loss, reordering, a bandwidth cap, or TCP's own
reaction to them (the relay's sockets are local and fast, so neither end
retransmits or shrinks its window; it only sees the bytes late)."""
import asyncio
import os
import signal
import sys
import time

delay = 0.0


async def watch(path):
    global delay
    while True:
        try:
            with open(path) as f:
                delay = float(f.read().strip() or 0) / 1000
        except (OSError, ValueError):
            delay = 0.0
        await asyncio.sleep(0.1)


async def pipe(reader, writer):
    """Copies reader to writer, each chunk delay seconds after it was read."""
    queue = asyncio.Queue()

    async def pump():
        while True:
            chunk = await reader.read(65536)
            await queue.put((time.monotonic() + delay, chunk))
            if not chunk:
                return

    task = asyncio.ensure_future(pump())
    try:
        while True:
            at, chunk = await queue.get()
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        task.cancel()
        try:
            writer.write_eof() if not writer.is_closing() else None
        except (OSError, RuntimeError):
            pass


async def serve(listen, target):
    """Relays every connection to listen to a new one to target."""
    thost, tport = target.rsplit(":", 1)

    async def accept(r1, w1):
        try:
            r2, w2 = await asyncio.open_connection(thost, int(tport))
        except OSError:
            w1.close()
            return
        try:
            await asyncio.gather(pipe(r1, w2), pipe(r2, w1), return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the relay stops with the connection open
        w1.close()
        w2.close()

    host, port = listen.rsplit(":", 1)
    server = await asyncio.start_server(accept, host, int(port))
    async with server:
        await server.serve_forever()


async def main(listen, target, path):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    asyncio.ensure_future(watch(path))
    asyncio.ensure_future(serve(listen, target))
    await stop


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(*sys.argv[1:]))
    os._exit(0)  # connections still open are dropped
