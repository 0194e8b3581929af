#!/usr/bin/env python3
"""Writes the committed seed corpus, fuzz/corpus/<target>/<name>.

Run from anywhere: python3 fuzz/make_corpus.py. Deterministic, so the seeds
can be regenerated after an input format changes.

`inflate` and `stream_ops` take structured input through `arbitrary` 1.x;
the helpers below write bytes that `arbitrary` reads back as the wanted
values: integers little-endian, `bool` as one byte (& 1), an enum variant as
a u32 scaled to the variant count, `Option` as a bool then the value, and a
`Vec` as a "continue" byte (1) before each element and a 0 after the last.
"""

import os
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    path = os.path.join(ROOT, target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(bytes(data))


# ----- `arbitrary` encoding -----

def u8(v):
    return bytes([v & 0xFF])


def u16(v):
    return (v & 0xFFFF).to_bytes(2, "little")


def boolean(v):
    return b"\x01" if v else b"\x00"


def variant(index, count):
    """The u32 whose `(u32 * count) >> 32` is `index`."""
    return (-(-(index << 32) // count)).to_bytes(4, "little")


def vec(items, enc):
    return b"".join(b"\x01" + enc(item) for item in items) + b"\x00"


def vbytes(data):
    return vec(data, u8)


def option(value, enc):
    return boolean(False) if value is None else boolean(True) + enc(value)


def deflate(data, wbits=15, level=6):
    """permessage-deflate payload: raw DEFLATE, sync flush, tail removed."""
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def mask(payload, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(opcode, payload, fin=True, rsv1=False, key=None):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    m = 0x80 if key else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, m | 127]) + n.to_bytes(8, "big")
    if key:
        return head + bytes(key) + mask(payload, key)
    return head + payload


KEY = [0x37, 0xFA, 0x21, 0x3D]  # RFC 6455 §5.7
HELLO_DEFLATE = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])  # RFC 7692 §7.2.3.1

# ----- decode_frames: [config, split, bytes...] -----
# config: bits 0-1 limits (3 = 64 KiB frames), bits 2-4 window (6 -> 2^15),
# bit 5 no context takeover.
BIG = 0x03 | (6 << 2)
SMALL = 0x00 | (6 << 2)
decode = {
    # RFC 6455 §5.7 examples.
    "rfc_unmasked_hello": [BIG, 3] + list(frame(1, b"Hello")),
    "masked_hello": [BIG, 5] + list(frame(1, b"Hello", key=KEY)),
    "fragmented": [BIG, 4] + list(frame(1, b"Hel", fin=False) + frame(0, b"lo")),
    "rfc_ping_pong": [BIG, 7] + list(frame(9, b"Hello") + frame(10, b"Hello", key=KEY)),
    "rfc_256_binary": [BIG, 2] + list(frame(2, bytes(range(256)))),
    "rfc_64k_header": [BIG, 10] + list(bytes([0x82, 0x7F]) + (65536).to_bytes(8, "big") + b"\x00" * 64),
    "close": [BIG, 2] + list(frame(8, (1000).to_bytes(2, "big") + b"bye")),
    "ping_between_fragments": [BIG, 9]
    + list(frame(1, b"Hel", fin=False, key=KEY) + frame(9, b"", key=KEY) + frame(0, b"lo", key=KEY)),
    # RFC 7692 §7.2.3 examples (compressed "Hello").
    "deflate_hello": [BIG, 4] + list(frame(1, HELLO_DEFLATE, rsv1=True)),
    "deflate_fragments": [BIG, 6]
    + list(frame(1, HELLO_DEFLATE[:3], fin=False, rsv1=True) + frame(0, HELLO_DEFLATE[3:])),
    "deflate_shared_window": [BIG, 9]
    + list(frame(1, HELLO_DEFLATE, rsv1=True) + frame(1, bytes([0xF2, 0x00, 0x11, 0x00, 0x00]), rsv1=True)),
    "deflate_stored_block": [BIG, 1]
    + list(frame(1, bytes([0x00, 0x05, 0x00, 0xFA, 0xFF]) + b"Hello" + b"\x00", rsv1=True)),
    "deflate_bfinal": [BIG, 1] + list(frame(1, bytes([0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00]), rsv1=True)),
    "deflate_masked": [BIG, 3] + list(frame(2, HELLO_DEFLATE, rsv1=True, key=KEY)),
    # Decompression bomb: 100 KB of zeros in ~100 bytes, past every limit.
    "deflate_bomb": [SMALL, 2] + list(frame(2, deflate(b"\x00" * 100000), rsv1=True)),
    "invalid_utf8_text": [BIG, 3] + list(frame(1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")),
}

# ----- handshake_request: [mode, chunk, request...] -----
# mode: 1 silent after the script, 2 any origin, 4..12 deflate variants,
# 0x10 small head limits, 0x20 subprotocols.
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
DEFLATE_REQUEST = (
    b"GET /ws?x=1 HTTP/1.1\r\n"
    b"Host: h\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
    b"permessage-deflate; client_no_context_takeover\r\n\r\n"
)
request = {
    "rfc_request": [0x22, 0] + list(RFC_REQUEST),
    "rfc_request_bytewise": [0x02, 1] + list(RFC_REQUEST),
    "deflate_then_frames": [0x06, 0]
    + list(DEFLATE_REQUEST + frame(1, HELLO_DEFLATE, rsv1=True, key=KEY) + frame(8, b"\x03\xe8", key=KEY)),
    "deflate_nct_silent": [0x0B, 7] + list(DEFLATE_REQUEST + frame(1, b"Hello", key=KEY)),
    "same_origin": [0x00, 0] + list(RFC_REQUEST.replace(b"http://example.com", b"http://server.example.com")),
    "post_http10": [0x02, 0] + list(b"POST / HTTP/1.0\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"),
    "small_limits": [0x12, 16] + list(RFC_REQUEST),
}

# ----- handshake_response: [mode, chunk, response...] -----
# `$A` becomes the right Sec-WebSocket-Accept; mode 1 inserts the header;
# mode 2 silent after the script, 4..12 deflate offers, 0x10 small head
# limits, 0x20 subprotocols.
R101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
response = {
    "rfc_101": [0x00, 0] + list(R101 + b"Sec-WebSocket-Accept: $A\r\n\r\n"),
    "inserted_accept": [0x01, 0] + list(R101 + b"\r\n" + frame(1, b"Hello") + frame(8, b"\x03\xe8")),
    "deflate_then_frames": [0x04, 0]
    + list(
        R101
        + b"Sec-WebSocket-Accept: $A\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        + frame(1, HELLO_DEFLATE, rsv1=True)
        + frame(1, bytes([0xF2, 0x00, 0x11, 0x00, 0x00]), rsv1=True)
        + frame(9, b"p")
        + frame(8, b"\x03\xe8")
    ),
    "deflate_params": [0x08, 5]
    + list(
        R101
        + b"Sec-WebSocket-Accept: $A\r\n"
        + b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_no_context_takeover\r\n\r\n"
        + frame(2, deflate(b"abc" * 100, wbits=10), rsv1=True)
    ),
    "subprotocol_bytewise": [0x22, 1] + list(R101 + b"Sec-WebSocket-Accept: $A\r\nSec-WebSocket-Protocol: chat\r\n\r\n"),
    "refused_400": [0x00, 0] + list(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
    "wrong_accept": [0x00, 0] + list(R101 + b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
}


# ----- inflate (arbitrary): window_bits u8, no_context_takeover bool,
# max_len u16, raw Vec<Vec<Vec<u8>>>, level u8, compressor_bits u8,
# compressor_no_context_takeover bool, plain Vec<(Vec<u8>, u16)> (take rest).
def inflate_input(window, nct, max_len, raw, level, cbits, cnct, plain):
    return (
        u8(window)
        + boolean(nct)
        + u16(max_len)
        + vec(raw, lambda msg: vec(msg, vbytes))
        + u8(level)
        + u8(cbits)
        + boolean(cnct)
        + vec(plain, lambda p: vbytes(p[0]) + u16(p[1]))
    )


RFC7692 = [
    [HELLO_DEFLATE],
    [HELLO_DEFLATE[:3], HELLO_DEFLATE[3:]],
    [bytes([0xF2, 0x00, 0x11, 0x00, 0x00])],  # §7.2.3.2: refers into the previous message
    [bytes([0x00, 0x05, 0x00, 0xFA, 0xFF]) + b"Hello" + b"\x00"],
    [bytes([0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00])],
    [bytes([0xF2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xCA, 0xC9, 0xC9, 0x07, 0x00])],
    [HELLO_DEFLATE + b"\x00\x00\xff\xff", b"\x00"],  # §7.2.3.6
]
TEXT = b'{"id":1,"name":"silverback","tags":["ws","deflate"]}' * 20
inflate = {
    "rfc7692_examples": inflate_input(15, False, 5, RFC7692, 1, 6, False, [(b"Hello", 3), (b"Hello", 0)]),
    "rfc7692_no_takeover": inflate_input(15, True, 5, RFC7692, 6, 6, True, [(b"Hello", 9)]),
    "bomb": inflate_input(9, False, 1000, [[deflate(b"\x00" * 100000)], [HELLO_DEFLATE]], 9, 0, False, []),
    "corrupt": inflate_input(12, False, 4095, [[b"\xff\xff\xff"], [HELLO_DEFLATE]], 0, 3, False, []),
    "round_trip_json": inflate_input(15, False, 4095, [], 1, 6, False, [(TEXT, 40), (TEXT[:500], 7), (b"", 0)]),
    "round_trip_small_window": inflate_input(9, True, 4095, [], 9, 0, True, [(TEXT, 100), (bytes(range(256)) * 3, 1)]),
    "stored_level_0": inflate_input(15, False, 64, [], 0, 6, False, [(bytes(range(200)), 50)]),
}

# ----- stream_ops (arbitrary) -----
OPS = [
    "PeerRaw", "PeerMessage", "PeerRead", "PeerShutdown", "PeerDrop", "Send", "Feed", "FeedPrepared",
    "Flush", "PollNext", "Drive", "Close", "Split", "Reunite", "SetCompression", "Advance",
]
KINDS = ["Text", "Binary", "Ping", "Pong", "Close"]
APP = ["Text", "Binary", "Ping", "Pong", "Close"]


def close_arg(c):
    return option(c, lambda cr: u16(cr[0]) + vbytes(cr[1]))


def app(kind, payload=b"", close=None):
    body = close_arg(close) if kind == "Close" else vbytes(payload)
    return variant(APP.index(kind), len(APP)) + body


def peer_msg(kind, payload=b"", fragments=0, compress=False, ping=None, code=1000):
    body = variant(KINDS.index(kind), len(KINDS)) + (u16(code) if kind == "Close" else b"")
    return body + vbytes(payload) + u8(fragments) + boolean(compress) + option(ping, vbytes)


def op(name, *args):
    return variant(OPS.index(name), len(OPS)) + b"".join(args)


def stream_input(server, duplex, wbuf, limits, close_ms, deflate_params, ops):
    return (
        boolean(server)
        + u16(duplex)
        + u16(wbuf)
        + u8(limits)
        + u16(close_ms)
        + option(deflate_params, lambda d: b"".join(d))
        + vec(ops, lambda o: o)
    )


DEFLATE15 = [boolean(False), boolean(False), u8(7), u8(7), u8(1), u8(16), u8(6)]
DEFLATE_NCT9 = [boolean(True), boolean(True), u8(1), u8(0), u8(9), u8(0), u8(1)]
stream = {
    "echo_and_close": stream_input(True, 1024, 4096, 0, 1000, None, [
        op("PeerMessage", peer_msg("Text", b"Hello")),
        op("Drive", u8(4)),
        op("Send", app("Text", b"Hi"), u8(2)),
        op("PeerRead", u16(100)),
        op("PeerMessage", peer_msg("Close", b"bye", code=1000)),
        op("Drive", u8(8)),
        op("Send", app("Text", b"too late"), u8(1)),
    ]),
    "deflate_fragments_ping": stream_input(False, 512, 1024, 0, 500, DEFLATE15, [
        op("PeerMessage", peer_msg("Text", b"Hello, compressed world! " * 8, fragments=2, compress=True, ping=b"p")),
        op("PeerMessage", peer_msg("Binary", bytes(range(100)), compress=True)),
        op("Drive", u8(8)),
        op("Send", app("Text", b"a message long enough to be compressed " * 4), u8(3)),
        op("SetCompression", boolean(False)),
        op("Send", app("Binary", bytes(64)), u8(3)),
        op("Close", close_arg((1000, b"done")), u8(3)),
        op("PeerMessage", peer_msg("Close", b"", code=1000)),
        op("Close", close_arg(None), u8(8)),
    ]),
    "split_reunite": stream_input(True, 64, 16, 0, 100, DEFLATE_NCT9, [
        op("Split"),
        op("Feed", app("Binary", b"x" * 40)),
        op("FeedPrepared", app("Text", b"prepared"), u8(1)),
        op("Flush", u8(1)),
        op("PollNext"),
        op("PeerMessage", peer_msg("Ping", b"are you there")),
        op("PollNext"),
        op("Reunite"),
        op("PeerRead", u16(1000)),
        op("Close", close_arg((1001, b"")), u8(2)),
        op("Advance", u16(200)),
        op("Close", close_arg(None), u8(2)),
    ]),
    "garbage_then_send": stream_input(False, 256, 1024, 0, 1000, None, [
        op("PeerRaw", vbytes(bytes([0x83, 0x00]))),
        op("Drive", u8(4)),
        op("Send", app("Text", b"after failure"), u8(1)),
        op("PollNext"),
    ]),
    "limits_exceeded": stream_input(True, 2047, 4096, 1, 1000, DEFLATE15, [
        op("PeerMessage", peer_msg("Binary", b"\x00" * 400, fragments=1, compress=True)),
        op("Drive", u8(6)),
        op("Send", app("Ping", b"p" * 130), u8(1)),
    ]),
    "backpressure_cancel": stream_input(True, 8, 1, 0, 50, None, [
        op("Send", app("Binary", b"b" * 200), u8(1)),
        op("FeedPrepared", app("Binary", b"dropped while pending"), u8(0)),
        op("PeerRead", u16(20)),
        op("PeerMessage", peer_msg("Ping", b"1")),
        op("PeerMessage", peer_msg("Ping", b"2")),
        op("PollNext"),
        op("PollNext"),
        op("PeerRead", u16(500)),
        op("Flush", u8(7)),
        op("PeerShutdown"),
        op("Drive", u8(10)),
    ]),
    "peer_vanishes": stream_input(False, 32, 64, 3, 1000, None, [
        op("Send", app("Text", b"x" * 100), u8(0)),
        op("PeerDrop"),
        op("Flush", u8(3)),
        op("Drive", u8(3)),
        op("Send", app("Text", b"y"), u8(0)),
    ]),
}

for target, seeds in [
    ("decode_frames", decode),
    ("handshake_request", request),
    ("handshake_response", response),
    ("inflate", inflate),
    ("stream_ops", stream),
]:
    for name, data in seeds.items():
        write(target, name, data)
