#!/usr/bin/env python3
"""HTTP/3 WebSocket peer for tests/interop_http3.rs, on aioquic (RFC 9220).

    h3peer.py client PORT PATH CAFILE   extended CONNECT to 127.0.0.1:PORT
                                        (server name localhost), then the
                                        message sequence as a WebSocket client
    h3peer.py server CERT KEY           listen on 127.0.0.1:0, print `PORT <n>`,
                                        echo WebSockets, exit after the first
                                        one closes

The WebSocket frames (RFC 6455) are written and parsed here: aioquic carries
HTTP/3 only. No compression.

Client: prints `STATUS <code>`, then, for 200, sends each message of
`messages()` and checks its echo (same opcode, same bytes), sends a 1000
close, expects the close back and the end of the stream, prints `OK <count>`
and exits 0; on any mismatch prints `FAIL <why>` and exits 1.

Server: answers extended CONNECT with :protocol websocket and
sec-websocket-version 13 with 200 (echoing `chat` as sec-websocket-protocol
when offered), `/refuse` with 403, anything else with 400; echoes text and
binary messages, answers a close with the same code and ends the stream,
then prints `CLOSED <code>` and exits 0 (1 for a code other than 1000).
After 60 s it prints `TIMEOUT` and exits 2.
"""

import asyncio
import os
import ssl
import struct
import sys
import traceback

from aioquic.asyncio import connect, serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent

LIFETIME = 60.0


def messages():
    """The sequence: (opcode, payload)."""
    out = [(1, b"hello over http/3"), (1, "sn\u00f6wman \u2603 and \U0001f600".encode()), (2, bytes(range(256)))]
    out.append((2, bytes((i * 31 + 7) % 251 for i in range(200_000))))
    out.append((1, b"x" * 70_000))
    out.append((2, b""))
    return out


def frame(opcode, payload, mask):
    """One final frame; masked with a random key when `mask`."""
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Frames:
    """Parses frames from a byte stream (fragments joined into messages)."""

    def __init__(self):
        self.buf = b""
        self.parts = []
        self.first = None

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            if len(self.buf) < 2:
                return out
            b0, b1 = self.buf[0], self.buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return out
                n, at = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return out
                n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
            key = None
            if b1 & 0x80:
                if len(self.buf) < at + 4:
                    return out
                key, at = self.buf[at:at + 4], at + 4
            if len(self.buf) < at + n:
                return out
            payload = self.buf[at:at + n]
            self.buf = self.buf[at + n:]
            if key:
                payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            opcode, fin = b0 & 0x0F, b0 & 0x80
            if opcode >= 8:
                out.append((opcode, payload))
                continue
            if opcode != 0:
                self.first = opcode
            self.parts.append(payload)
            if fin:
                out.append((self.first, b"".join(self.parts)))
                self.parts = []


class Peer(QuicConnectionProtocol):
    """An H3Connection over the QUIC connection; per-stream event queues."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.queues = {}
        self.new_streams = asyncio.Queue()

    def queue(self, stream_id):
        if stream_id not in self.queues:
            self.queues[stream_id] = asyncio.Queue()
            self.new_streams.put_nowait(stream_id)
        return self.queues[stream_id]

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, (HeadersReceived, DataReceived)):
                self.queue(h3_event.stream_id).put_nowait(h3_event)


async def read_messages(peer, stream_id, frames):
    """Reads events of the stream until some messages are parsed: (messages, ended)."""
    while True:
        event = await peer.queue(stream_id).get()
        got = frames.feed(event.data) if isinstance(event, DataReceived) else []
        if got or event.stream_ended:
            return got, event.stream_ended


async def client(port, path, cafile):
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
    config.load_verify_locations(cafile)
    async with connect("127.0.0.1", port, configuration=config, create_protocol=Peer) as peer:
        # RFC 9220 §3: wait for SETTINGS_ENABLE_CONNECT_PROTOCOL.
        for _ in range(500):
            if peer.h3.received_settings is not None:
                break
            await asyncio.sleep(0.01)
        if (peer.h3.received_settings or {}).get(0x8) != 1:
            print(f"FAIL no extended CONNECT in settings {peer.h3.received_settings}", flush=True)
            return 1
        stream_id = peer._quic.get_next_available_stream_id()
        peer.queue(stream_id)
        peer.h3.send_headers(stream_id, [
            (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
            (b":authority", f"localhost:{port}".encode()), (b":path", path.encode()),
            (b"sec-websocket-version", b"13"), (b"sec-websocket-protocol", b"chat"),
        ])
        peer.transmit()
        event = await peer.queue(stream_id).get()
        headers = dict(event.headers)
        status = headers.get(b":status", b"").decode()
        print(f"STATUS {status}", flush=True)
        if status != "200":
            return 0
        frames = Frames()
        for i, (opcode, payload) in enumerate(messages()):
            peer.h3.send_data(stream_id, frame(opcode, payload, True), end_stream=False)
            peer.transmit()
            got, ended = [], False
            while not got and not ended:
                got, ended = await read_messages(peer, stream_id, frames)
            if not got or got[0] != (opcode, payload):
                print(f"FAIL echo of message {i}: {got[:1]!r:.200}", flush=True)
                return 1
        peer.h3.send_data(stream_id, frame(8, struct.pack("!H", 1000), True), end_stream=False)
        peer.transmit()
        got, ended = await read_messages(peer, stream_id, frames)
        if not got or got[0][0] != 8 or struct.unpack("!H", got[0][1][:2])[0] != 1000:
            print(f"FAIL close answer {got!r:.200}", flush=True)
            return 1
        # The server ends its side after its close (RFC 6455 §7.1.1: the
        # server closes first), then may stop reading ours (STOP_SENDING
        # with H3_NO_ERROR), so our FIN is a courtesy.
        while not ended:
            _, ended = await read_messages(peer, stream_id, frames)
        try:
            peer._quic.send_stream_data(stream_id, b"", end_stream=True)
            peer.transmit()
        except RuntimeError:
            pass
        print(f"OK {len(messages())}", flush=True)
        return 0


async def serve_websocket(peer, stream_id, done):
    """Answers one request stream."""
    event = await peer.queue(stream_id).get()
    headers = dict(event.headers)
    good = (headers.get(b":method") == b"CONNECT" and headers.get(b":protocol") == b"websocket"
            and headers.get(b"sec-websocket-version") == b"13")
    if headers.get(b":path") == b"/refuse":
        peer.h3.send_headers(stream_id, [(b":status", b"403")], end_stream=True)
        peer.transmit()
        return
    if not good:
        peer.h3.send_headers(stream_id, [(b":status", b"400")], end_stream=True)
        peer.transmit()
        return
    response = [(b":status", b"200")]
    offered = [p.strip() for p in headers.get(b"sec-websocket-protocol", b"").split(b",")]
    if b"chat" in offered:
        response.append((b"sec-websocket-protocol", b"chat"))
    peer.h3.send_headers(stream_id, response)
    peer.transmit()
    frames = Frames()
    ended = False
    while not ended:
        got, ended = await read_messages(peer, stream_id, frames)
        for opcode, payload in got:
            if opcode in (1, 2):
                peer.h3.send_data(stream_id, frame(opcode, payload, False), end_stream=False)
            elif opcode == 9:
                peer.h3.send_data(stream_id, frame(10, payload, False), end_stream=False)
            elif opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                peer.h3.send_data(stream_id, frame(8, payload[:2], False), end_stream=True)
                peer.transmit()
                done.set_result(code)
                return
            peer.transmit()


async def server(cert, key):
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    peers = asyncio.Queue()

    def make(*args, **kwargs):
        peer = Peer(*args, **kwargs)
        peers.put_nowait(peer)
        return peer

    quic_server = await serve("127.0.0.1", 0, configuration=config, create_protocol=make)
    port = quic_server._transport.get_extra_info("sockname")[1]
    print(f"PORT {port}", flush=True)

    async def each_peer():
        while True:
            peer = await peers.get()
            loop.create_task(each_stream(peer))

    async def each_stream(peer):
        while True:
            stream_id = await peer.new_streams.get()
            loop.create_task(serve_websocket(peer, stream_id, done))

    loop.create_task(each_peer())
    try:
        code = await asyncio.wait_for(done, LIFETIME)
    except asyncio.TimeoutError:
        print("TIMEOUT", flush=True)
        return 2
    await asyncio.sleep(0.2)  # let the close and FIN leave
    print(f"CLOSED {code}", flush=True)
    quic_server.close()
    return 0 if code == 1000 else 1


def main():
    args = sys.argv[1:]
    if args[:1] == ["client"] and len(args) == 4:
        run = client(int(args[1]), args[2], args[3])
    elif args[:1] == ["server"] and len(args) == 3:
        run = server(args[1], args[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return asyncio.run(asyncio.wait_for(run, LIFETIME + 5))
    except Exception as exc:  # noqa: BLE001 - the test reads the reason
        traceback.print_exc()
        print(f"FAIL {type(exc).__name__}: {exc}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
