"""HTTP/2 WebSocket client for tests/http2_interop.rs: the Python `h2` 4.x
state machine on a TLS socket (ALPN h2, no certificate checks), speaking
RFC 8441 extended CONNECT, with WebSocket frames (RFC 6455) written and
parsed by hand.

    python h2peer.py URL N

Waits for the server's SETTINGS_ENABLE_CONNECT_PROTOCOL, then opens N
WebSockets at URL's path on the one connection (`:method CONNECT`,
`:protocol websocket`, `sec-websocket-version: 13`). Each sends masked
frames (a text, a ping, a 70 000-byte binary), checks the echoes and the
pong, sends a close 1000, and expects the close 1000 back and the end of
the stream. Prints `OK <N>` and exits 0, or `FAIL <why>` and exits 1.
Every wait is bounded (20 s a read, 60 s in all).
"""

import os
import socket
import ssl
import struct
import sys
import time
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
from h2.settings import SettingCodes

STEP = 20.0
LIFETIME = 60.0


def frame(opcode, payload, fin=True):
    """A masked frame, as a client sends it."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def parse(buf):
    """The complete frames at the start of buf, and the rest:
    ([(fin, opcode, masked, payload)], rest)."""
    frames = []
    while len(buf) >= 2:
        masked = buf[1] & 0x80 != 0
        n, at = buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        key = buf[at:at + 4] if masked else None
        at += 4 if masked else 0
        if len(buf) < at + n:
            break
        payload = buf[at:at + n]
        if masked:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        frames.append((buf[0] & 0x80 != 0, buf[0] & 0x0F, masked, bytes(payload)))
        buf = buf[at + n:]
    return frames, buf


class WebSocket:
    """One WebSocket on a stream: what it must get back, what it got."""

    def __init__(self, index):
        big = bytes((k * 31 + index) & 0xFF for k in range(70_000))
        self.sends = [
            frame(0x1, f"hello {index} from python h2".encode()),
            frame(0x9, f"ping {index}".encode()),
            frame(0x2, big),
        ]
        self.expected = [
            (0x1, f"hello {index} from python h2".encode()),
            (0xA, f"ping {index}".encode()),
            (0x2, big),
        ]
        self.index = index
        self.got = 0
        self.buf = b""
        self.close_code = None
        self.ended = False
        # Bytes waiting for flow-control window, and whether the stream
        # ends after them.
        self.pending = b""
        self.end_after = False

    def flush(self, conn, stream_id):
        """Sends what the windows and the frame size allow of `pending`."""
        while self.pending:
            room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if room <= 0:
                return
            chunk, self.pending = self.pending[:room], self.pending[room:]
            conn.send_data(stream_id, chunk, end_stream=self.end_after and not self.pending)

    def on_data(self, data):
        """Feeds stream data; answers the frames to send next."""
        frames, self.buf = parse(self.buf + data)
        replies = []
        for fin, opcode, masked, payload in frames:
            if masked:
                raise RuntimeError(f"stream {self.index}: the server masked a frame")
            if not fin:
                raise RuntimeError(f"stream {self.index}: unexpected fragment")
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                continue
            want = self.expected[self.got] if self.got < len(self.expected) else None
            if want != (opcode, payload):
                raise RuntimeError(f"stream {self.index}: reply {self.got} was opcode {opcode}, {len(payload)} bytes")
            self.got += 1
            if self.got == len(self.expected):
                replies.append(frame(0x8, struct.pack("!H", 1000)))
        return replies


def main():
    url = urlsplit(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    deadline = time.monotonic() + LIFETIME
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(socket.create_connection((url.hostname, url.port), timeout=STEP),
                               server_hostname=url.hostname)
    if sock.selected_alpn_protocol() != "h2":
        raise RuntimeError(f"ALPN chose {sock.selected_alpn_protocol()!r}")
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())

    sockets = {}
    while len(sockets) < count or not all(ws.ended for ws in sockets.values()):
        if time.monotonic() > deadline:
            raise RuntimeError("TIMEOUT")
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("the server closed the connection")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged) and not sockets:
                if conn.remote_settings.get(SettingCodes.ENABLE_CONNECT_PROTOCOL) != 1:
                    raise RuntimeError("the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL")
                for i in range(count):
                    stream_id = conn.get_next_available_stream_id()
                    conn.send_headers(stream_id, [
                        (":method", "CONNECT"),
                        (":protocol", "websocket"),
                        (":scheme", "https"),
                        (":path", url.path or "/"),
                        (":authority", url.netloc),
                        ("sec-websocket-version", "13"),
                    ])
                    sockets[stream_id] = WebSocket(i)
            elif isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(b":status")
                if status != b"200":
                    raise RuntimeError(f"stream {event.stream_id}: status {status!r}")
                ws = sockets[event.stream_id]
                ws.pending += b"".join(ws.sends)
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                ws = sockets[event.stream_id]
                for reply in ws.on_data(event.data):
                    ws.pending += reply
                    ws.end_after = True
            elif isinstance(event, h2.events.StreamEnded):
                sockets[event.stream_id].ended = True
            elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise RuntimeError(f"unexpected {event}")
        for stream_id, ws in sockets.items():
            ws.flush(conn, stream_id)
        sock.sendall(conn.data_to_send())

    for ws in sockets.values():
        if ws.got != len(ws.expected) or ws.close_code != 1000:
            raise RuntimeError(f"stream {ws.index}: {ws.got} replies, close {ws.close_code}")
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()
    print(f"OK {count}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure is reported the same way
        print(f"FAIL {e}", flush=True)
        sys.exit(1)
