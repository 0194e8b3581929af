#!/usr/bin/env python3
"""Interop peer for tests/interop.rs: Python `websockets` 17.x (asyncio API).

    peer.py server [FLAGS]        listen on 127.0.0.1:0, print `PORT <n>`, echo
    peer.py client URL [FLAGS]    send the fixed message sequence, check echoes

FLAGS: --compress off|on, --server-no-context-takeover,
--client-no-context-takeover, --server-max-window-bits N,
--client-max-window-bits N (permessage-deflate, RFC 7692; ignored when off).

Server: echoes every text message as text and every binary one as binary,
except the text message `?extensions`, answered with the
Sec-WebSocket-Extensions value it sent ("" if none). Serves one connection,
then prints `CLOSED <code> [<reason>]` and exits 0 if the peer closed with 1000, else 1;
after 60 s without that, prints `TIMEOUT` and exits 2.

Client: prints `EXT <Sec-WebSocket-Extensions of the 101 response>`, sends
each message of the sequence and waits for its echo (same type, same bytes),
closes with 1000, prints `OK <count>` and exits 0; on any mismatch or error
prints `FAIL <why>` and exits 1.

The sequence (the same in peer.mjs and tests/interop.rs) is built by
`messages()`: each message is sent twice in a row, so the second copy can be
compressed against the first when context takeover is on.
"""

import argparse
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

MAX_SIZE = 64 * 1024 * 1024
LIFETIME = 60.0
EXT_HEADER = "Sec-WebSocket-Extensions"

# Characters of 1, 2, 3 and 4 UTF-8 bytes, cycled by text_of_bytes().
CHARS = ["a", "\u00e9", "\u20ac", "\U0001f600", " ", "b", "\u00df", "\u4e2d"]


def out(line):
    print(line, flush=True)


def text_of_bytes(n):
    """A string of exactly n UTF-8 bytes mixing 1- to 4-byte characters."""
    parts, size, i = [], 0, 0
    while size < n:
        c = CHARS[i % len(CHARS)]
        i += 1
        b = len(c.encode("utf-8"))
        if size + b > n:
            c, b = "x", 1
        parts.append(c)
        size += b
    return "".join(parts)


def json_like(n):
    """Compressible ASCII JSON-ish text of exactly n bytes."""
    parts, size, i = ["["], 1, 0
    while size < n:
        item = '{"id":%d,"name":"user-%d","tags":["alpha","beta","gamma"],"active":%s,"score":%d},' % (
            i, i, "true" if i % 2 == 0 else "false", (i * 7919) % 1000)
        parts.append(item)
        size += len(item)
        i += 1
    return "".join(parts)[:n]


def random_ish(n):
    """n deterministic pseudo-random bytes (xorshift32, seed 0x9E3779B9)."""
    x = 0x9E3779B9
    data = bytearray(n)
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        data[i] = x & 0xFF
    return bytes(data)


def compressible(n):
    """n highly compressible bytes: a repeated phrase."""
    phrase = b"silverback permessage-deflate interop "
    return (phrase * (n // len(phrase) + 1))[:n]


def messages():
    base = [
        text_of_bytes(0),
        text_of_bytes(1),
        text_of_bytes(125),
        text_of_bytes(126),
        text_of_bytes(1000),
        text_of_bytes(70_000),
        json_like(16 * 1024),
        random_ish(16 * 1024),
        compressible(1024 * 1024),
    ]
    return [m for m in base for _ in range(2)]


def describe(m):
    kind = "text" if isinstance(m, str) else "binary"
    size = len(m.encode("utf-8")) if isinstance(m, str) else len(m)
    return f"{kind}[{size}]"


def parse_args(argv):
    p = argparse.ArgumentParser(description="websockets interop peer")
    p.add_argument("mode", choices=["server", "client"])
    p.add_argument("url", nargs="?")
    p.add_argument("--compress", choices=["off", "on"], default="off")
    p.add_argument("--server-no-context-takeover", action="store_true")
    p.add_argument("--client-no-context-takeover", action="store_true")
    p.add_argument("--server-max-window-bits", type=int, default=None)
    p.add_argument("--client-max-window-bits", type=int, default=None)
    args = p.parse_args(argv)
    if args.mode == "client" and not args.url:
        p.error("client mode needs a URL")
    return args


def server_extensions(args):
    if args.compress == "off":
        return None
    return [
        ServerPerMessageDeflateFactory(
            server_no_context_takeover=args.server_no_context_takeover,
            client_no_context_takeover=args.client_no_context_takeover,
            server_max_window_bits=args.server_max_window_bits,
            client_max_window_bits=args.client_max_window_bits,
        )
    ]


def client_extensions(args):
    if args.compress == "off":
        return None
    return [
        ClientPerMessageDeflateFactory(
            server_no_context_takeover=args.server_no_context_takeover,
            client_no_context_takeover=args.client_no_context_takeover,
            server_max_window_bits=args.server_max_window_bits,
            # True offers a bare `client_max_window_bits` (the library default).
            client_max_window_bits=args.client_max_window_bits
            if args.client_max_window_bits is not None
            else True,
        )
    ]


async def run_server(args):
    done = asyncio.get_running_loop().create_future()

    async def handler(ws):
        ext = ws.response.headers.get(EXT_HEADER, "") if ws.response else ""
        try:
            async for msg in ws:
                if msg == "?extensions":
                    await ws.send(ext)
                else:
                    await ws.send(msg)
        except ConnectionClosed:
            pass
        finally:
            if not done.done():
                done.set_result((ws.close_code, ws.close_reason or ""))

    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        extensions=server_extensions(args),
        max_size=MAX_SIZE,
        ping_interval=None,
        close_timeout=5,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        out(f"PORT {port}")
        try:
            code, reason = await asyncio.wait_for(done, LIFETIME)
        except asyncio.TimeoutError:
            out("TIMEOUT")
            return 2
    out(f"CLOSED {code} {reason}".rstrip())
    return 0 if code == 1000 else 1


async def run_client(args):
    try:
        async with connect(
            args.url,
            compression=None,
            extensions=client_extensions(args),
            max_size=MAX_SIZE,
            ping_interval=None,
            proxy=None,
            open_timeout=10,
            close_timeout=5,
        ) as ws:
            out(f"EXT {ws.response.headers.get(EXT_HEADER, '')}")
            msgs = messages()
            for i, m in enumerate(msgs):
                await ws.send(m)
                echo = await asyncio.wait_for(ws.recv(), 20)
                if type(echo) is not type(m) or echo != m:
                    out(f"FAIL message {i}: sent {describe(m)}, got {describe(echo)}"
                        + (" (same size, different content)" if len(echo) == len(m) else ""))
                    await ws.close(1000)
                    return 1
            await ws.close(1000)
            out(f"OK {len(msgs)}")
            return 0
    except Exception as e:  # noqa: BLE001 -- any error is a failed run
        out(f"FAIL {type(e).__name__}: {e}")
        return 1


def main():
    args = parse_args(sys.argv[1:])
    coro = run_server(args) if args.mode == "server" else run_client(args)
    try:
        rc = asyncio.run(asyncio.wait_for(coro, LIFETIME + 10))
    except asyncio.TimeoutError:
        out("FAIL timed out")
        rc = 1
    sys.exit(rc)


if __name__ == "__main__":
    main()
