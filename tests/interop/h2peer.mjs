#!/usr/bin/env node
// HTTP/2 WebSocket peer for tests/http2_interop.rs: Node's own `http2`
// module speaking RFC 8441 extended CONNECT, with WebSocket frames (RFC 6455)
// written and parsed by hand below. No npm package.
//
//     node h2peer.mjs client URL N
//         one HTTP/2 connection to URL's origin (https: TLS without
//         certificate checks; http: h2c prior knowledge); waits for the
//         server's SETTINGS_ENABLE_CONNECT_PROTOCOL, then opens N WebSockets
//         at URL's path at once (`:method CONNECT`, `:protocol websocket`,
//         `sec-websocket-version: 13`). Each sends masked frames (a short
//         text, a fragmented text, a ping, a 100 000-byte binary), checks
//         the echoes (and the pong), sends a close 1000 and expects the
//         close 1000 back and the end of the stream. Prints `OK <N>` and
//         exits 0, or `FAIL <why>` and exits 1.
//     node h2peer.mjs server [--tls CERT KEY]
//         an HTTP/2 server on 127.0.0.1:0 (h2c, or TLS with ALPN h2) with
//         `enableConnectProtocol`; prints `listening on http://ADDR` (h2c)
//         or `listening on https://ADDR` (TLS). Each extended CONNECT
//         with `:protocol websocket` gets 200 and an echo: data frames back
//         unmasked, pong for ping, the close code back. Prints
//         `WS <path> session <k>` per WebSocket (k counts connections) and
//         `CLOSED <path> <code>` per close; exits after 60 s.
//
// Everything is bounded in time: 20 s a step, 60 s a run.

import http2 from 'node:http2';
import fs from 'node:fs';
import crypto from 'node:crypto';

const STEP_MS = 20_000;
const LIFETIME_MS = 60_000;

const out = (line) => process.stdout.write(line + '\n');
const exit = (code) => process.stdout.write('', () => process.exit(code));

// ---------------------------------------------------------------- frames

// One frame: FIN, opcode, payload masked with a random key when `mask`.
function frame(opcode, payload, { fin = true, mask = false } = {}) {
  const len = payload.length;
  const head = [(fin ? 0x80 : 0) | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (len < 126) {
    head.push(maskBit | len);
  } else if (len < 65536) {
    head.push(maskBit | 126, len >> 8, len & 0xff);
  } else {
    head.push(maskBit | 127, 0, 0, 0, 0, (len >>> 24) & 0xff, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]));
  return Buffer.concat([Buffer.from(head), key, body]);
}

// Parses frames out of a growing buffer: feed(chunk) returns the complete
// frames, {fin, opcode, masked, payload (unmasked)}.
function parser() {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    const frames = [];
    for (;;) {
      if (buf.length < 2) break;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      const key = masked ? buf.subarray(at, at + 4) : null;
      if (masked) at += 4;
      if (buf.length < at + len) break;
      const payload = Buffer.from(buf.subarray(at, at + len));
      if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i % 4];
      frames.push({ fin: (buf[0] & 0x80) !== 0, opcode: buf[0] & 0x0f, masked, payload });
      buf = buf.subarray(at + len);
    }
    return frames;
  };
}

const closeCode = (payload) => (payload.length >= 2 ? payload.readUInt16BE(0) : 1005);

// ---------------------------------------------------------------- client

async function client(url, n) {
  const target = new URL(url);
  const session = http2.connect(target.origin, { rejectUnauthorized: false });
  session.on('error', (e) => fail(`session error: ${e}`));
  await new Promise((resolve) => session.once('remoteSettings', resolve));
  if (!session.remoteSettings.enableConnectProtocol) fail('the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL');
  const results = await Promise.all([...Array(n).keys()].map((i) => webSocket(session, target, i)));
  session.close();
  out(`OK ${results.length}`);
  exit(0);
}

function fail(why) {
  out(`FAIL ${why}`);
  exit(1);
}

// One WebSocket on `session`: the exchange above; resolves when the stream ended cleanly.
function webSocket(session, target, i) {
  return new Promise((resolve, reject) => {
    const stream = session.request(
      {
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': target.protocol.replace(':', ''),
        ':path': target.pathname,
        ':authority': target.host,
        'sec-websocket-version': '13',
      },
      { endStream: false },
    );
    const timer = setTimeout(() => reject(new Error(`stream ${i} timed out`)), STEP_MS);
    const big = Buffer.from([...Array(100_000).keys()].map((k) => (k * 31 + i) & 0xff));
    // What the server must send back, in order: [opcode, payload].
    const expected = [
      [0x1, Buffer.from(`hello ${i} över h2`)],
      [0x1, Buffer.from(`frag-${i}-one frag-${i}-two`)],
      [0xa, Buffer.from(`ping ${i}`)],
      [0x2, big],
    ];
    const feed = parser();
    let message = null; // fragments of the message being read
    let got = 0;
    let closed = null;
    stream.on('response', (headers) => {
      if (headers[':status'] !== 200) return reject(new Error(`stream ${i}: status ${headers[':status']}`));
      stream.write(frame(0x1, expected[0][1], { mask: true }));
      stream.write(frame(0x1, Buffer.from(`frag-${i}-one `), { fin: false, mask: true }));
      stream.write(frame(0x0, Buffer.from(`frag-${i}-two`), { mask: true }));
      stream.write(frame(0x9, expected[2][1], { mask: true }));
      stream.write(frame(0x2, big, { mask: true }));
    });
    stream.on('data', (chunk) => {
      for (const f of feed(chunk)) {
        if (f.masked) return reject(new Error(`stream ${i}: the server masked a frame`));
        if (f.opcode === 0x8) {
          closed = closeCode(f.payload);
          continue;
        }
        let whole;
        if (f.opcode >= 0x8) {
          whole = [f.opcode, f.payload];
        } else {
          message = message ? [message[0], Buffer.concat([message[1], f.payload])] : [f.opcode, f.payload];
          if (!f.fin) continue;
          whole = message;
          message = null;
        }
        const want = expected[got];
        if (!want || whole[0] !== want[0] || !whole[1].equals(want[1])) {
          return reject(new Error(`stream ${i}: reply ${got} was opcode ${whole[0]}, ${whole[1].length} bytes`));
        }
        got += 1;
        if (got === expected.length) {
          const code = Buffer.alloc(2);
          code.writeUInt16BE(1000);
          stream.write(frame(0x8, code, { mask: true }));
          stream.end();
        }
      }
    });
    stream.on('error', (e) => reject(new Error(`stream ${i}: ${e}`)));
    stream.on('end', () => {
      clearTimeout(timer);
      if (got !== expected.length) reject(new Error(`stream ${i} ended after ${got} replies`));
      else if (closed !== 1000) reject(new Error(`stream ${i}: close ${closed}, want 1000`));
      else resolve(i);
    });
  }).catch((e) => fail(String(e.message || e)));
}

// ---------------------------------------------------------------- server

function server(args) {
  const settings = { enableConnectProtocol: true };
  let srv;
  const tls = args[0] === '--tls';
  if (tls) {
    const [cert, key] = [fs.readFileSync(args[1]), fs.readFileSync(args[2])];
    srv = http2.createSecureServer({ cert, key, settings, ALPNProtocols: ['h2'] });
  } else {
    srv = http2.createServer({ settings });
  }
  let sessions = 0;
  srv.on('session', (session) => {
    session.number = ++sessions;
  });
  srv.on('stream', (stream, headers) => {
    const path = headers[':path'];
    if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
      stream.respond({ ':status': 400 }, { endStream: true });
      return;
    }
    if (headers['sec-websocket-version'] !== '13') {
      stream.respond({ ':status': 400, 'sec-websocket-version': '13' }, { endStream: true });
      return;
    }
    out(`WS ${path} session ${stream.session.number}`);
    stream.respond({ ':status': 200 });
    const feed = parser();
    stream.on('data', (chunk) => {
      for (const f of feed(chunk)) {
        if (!f.masked) {
          stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
          return;
        }
        if (f.opcode === 0x8) {
          out(`CLOSED ${path} ${closeCode(f.payload)}`);
          stream.end(frame(0x8, f.payload.subarray(0, 2)));
          return;
        }
        const opcode = f.opcode === 0x9 ? 0xa : f.opcode;
        if (f.opcode !== 0xa) stream.write(frame(opcode, f.payload, { fin: f.fin }));
      }
    });
    stream.on('error', () => {});
  });
  srv.listen(0, '127.0.0.1', () => out(`listening on ${tls ? 'https' : 'http'}://127.0.0.1:${srv.address().port}`));
  setTimeout(() => exit(0), LIFETIME_MS);
}

// ---------------------------------------------------------------- main

const [mode, ...args] = process.argv.slice(2);
if (mode === 'client') {
  setTimeout(() => fail('TIMEOUT'), LIFETIME_MS).unref();
  await client(args[0], Number(args[1] || 1));
} else if (mode === 'server') {
  server(args);
} else {
  console.error('usage: node h2peer.mjs client URL N | server [--tls CERT KEY]');
  process.exit(2);
}
