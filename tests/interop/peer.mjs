#!/usr/bin/env node
// Interop peer for tests/interop.rs: Node `ws` 8.x.
//
//     node peer.mjs server [FLAGS]        listen on 127.0.0.1:0, print `PORT <n>`, echo
//     node peer.mjs client URL [FLAGS]    send the fixed message sequence, check echoes
//
// FLAGS: --compress off|on, --server-no-context-takeover,
// --client-no-context-takeover, --server-max-window-bits N,
// --client-max-window-bits N (permessage-deflate, RFC 7692; ignored when off).
// Compression uses `threshold: 0`, so even 1-byte messages are compressed.
//
// Same output contract as peer.py: the server prints `PORT <n>`, answers the
// text message `?extensions` with the Sec-WebSocket-Extensions value it sent
// ("" if none), echoes everything else (text as text, binary as binary),
// serves one connection, then prints `CLOSED <code> [<reason>]` and exits 0 for 1000
// (1 otherwise; `TIMEOUT` and 2 after 60 s). The client prints `EXT <value>`,
// sends each message and checks its echo, closes with 1000, prints
// `OK <count>` and exits 0, or prints `FAIL <why>` and exits 1.
//
// `ws` is loaded from $INTEROP_NODE_PREFIX/node_modules (set by
// tests/interop.rs from setup.sh's NODE_PREFIX line), else from
// ${CARGO_TARGET_DIR:-<repo>/target}/interop/node/node_modules.

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const PREFIX =
  process.env.INTEROP_NODE_PREFIX ||
  path.join(path.resolve(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target')), 'interop', 'node');
const require = createRequire(path.join(PREFIX, 'package.json'));
const { WebSocket, WebSocketServer } = require('ws');

const MAX_PAYLOAD = 64 * 1024 * 1024;
const LIFETIME_MS = 60_000;
const STEP_MS = 20_000;

function out(line) {
  process.stdout.write(line + '\n');
}

// Exit only after stdout has drained (it may be a pipe).
function exit(code) {
  process.stdout.write('', () => process.exit(code));
}

// ---------------------------------------------------------------- messages

const CHARS = ['a', '\u00e9', '\u20ac', '\u{1F600}', ' ', 'b', '\u00df', '\u4e2d'];

// A string of exactly n UTF-8 bytes mixing 1- to 4-byte characters.
function textOfBytes(n) {
  const parts = [];
  let size = 0;
  let i = 0;
  while (size < n) {
    let c = CHARS[i % CHARS.length];
    i += 1;
    let b = Buffer.byteLength(c, 'utf8');
    if (size + b > n) {
      c = 'x';
      b = 1;
    }
    parts.push(c);
    size += b;
  }
  return parts.join('');
}

// Compressible ASCII JSON-ish text of exactly n bytes.
function jsonLike(n) {
  const parts = ['['];
  let size = 1;
  for (let i = 0; size < n; i++) {
    const item = `{"id":${i},"name":"user-${i}","tags":["alpha","beta","gamma"],"active":${i % 2 === 0},"score":${(i * 7919) % 1000}},`;
    parts.push(item);
    size += item.length;
  }
  return parts.join('').slice(0, n);
}

// n deterministic pseudo-random bytes (xorshift32, seed 0x9E3779B9).
function randomIsh(n) {
  let x = 0x9e3779b9;
  const data = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    data[i] = x & 0xff;
  }
  return data;
}

// n highly compressible bytes: a repeated phrase.
function compressible(n) {
  const phrase = Buffer.from('silverback permessage-deflate interop ');
  const data = Buffer.alloc(n);
  for (let i = 0; i < n; i += phrase.length) phrase.copy(data, i, 0, Math.min(phrase.length, n - i));
  return data;
}

function messages() {
  const base = [
    textOfBytes(0),
    textOfBytes(1),
    textOfBytes(125),
    textOfBytes(126),
    textOfBytes(1000),
    textOfBytes(70_000),
    jsonLike(16 * 1024),
    randomIsh(16 * 1024),
    compressible(1024 * 1024),
  ];
  return base.flatMap((m) => [m, m]);
}

function describe(data, isBinary) {
  return `${isBinary ? 'binary' : 'text'}[${data.length}]`;
}

// ---------------------------------------------------------------- args

function parseArgs(argv) {
  const args = {
    mode: argv[0],
    url: null,
    compress: 'off',
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const usage = (why) => {
    process.stderr.write(`peer.mjs: ${why}\nusage: peer.mjs server|client [URL] [--compress off|on] ` +
      '[--server-no-context-takeover] [--client-no-context-takeover] ' +
      '[--server-max-window-bits N] [--client-max-window-bits N]\n');
    process.exit(2);
  };
  if (args.mode !== 'server' && args.mode !== 'client') usage('mode must be server or client');
  const bits = (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 8 || n > 15) usage(`bad window bits: ${v}`);
    return n;
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--compress':
        args.compress = argv[++i];
        if (args.compress !== 'on' && args.compress !== 'off') usage('--compress off|on');
        break;
      case '--server-no-context-takeover':
        args.serverNoContextTakeover = true;
        break;
      case '--client-no-context-takeover':
        args.clientNoContextTakeover = true;
        break;
      case '--server-max-window-bits':
        args.serverMaxWindowBits = bits(argv[++i]);
        break;
      case '--client-max-window-bits':
        args.clientMaxWindowBits = bits(argv[++i]);
        break;
      default:
        if (a.startsWith('--') || args.mode !== 'client' || args.url) usage(`unexpected argument ${a}`);
        args.url = a;
    }
  }
  if (args.mode === 'client' && !args.url) usage('client mode needs a URL');
  return args;
}

function deflateOptions(args) {
  if (args.compress === 'off') return false;
  const opts = {
    serverNoContextTakeover: args.serverNoContextTakeover,
    clientNoContextTakeover: args.clientNoContextTakeover,
    threshold: 0,
  };
  if (args.serverMaxWindowBits !== undefined) opts.serverMaxWindowBits = args.serverMaxWindowBits;
  // Left unset, a client offers a bare `client_max_window_bits`.
  if (args.clientMaxWindowBits !== undefined) opts.clientMaxWindowBits = args.clientMaxWindowBits;
  return opts;
}

// ---------------------------------------------------------------- server

function runServer(args) {
  let extensions = '';
  let served = false;
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: deflateOptions(args),
    maxPayload: MAX_PAYLOAD,
  });
  const timer = setTimeout(() => {
    out('TIMEOUT');
    exit(2);
  }, LIFETIME_MS);
  // The response head as it is about to be written: the negotiated value.
  wss.on('headers', (headers) => {
    const line = headers.find((h) => /^sec-websocket-extensions:/i.test(h));
    extensions = line ? line.slice(line.indexOf(':') + 1).trim() : '';
  });
  wss.on('listening', () => out(`PORT ${wss.address().port}`));
  wss.on('error', (e) => {
    out(`FAIL server error: ${e.message}`);
    exit(1);
  });
  wss.on('connection', (ws) => {
    if (served) {
      ws.terminate();
      return;
    }
    served = true;
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.length === 11 && data.toString('utf8') === '?extensions') {
        ws.send(extensions);
      } else {
        ws.send(data, { binary: isBinary });
      }
    });
    ws.on('error', (e) => process.stderr.write(`peer.mjs server: ${e.message}\n`));
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      out(`CLOSED ${code} ${reason.toString()}`.trimEnd());
      wss.close();
      exit(code === 1000 ? 0 : 1);
    });
  });
}

// ---------------------------------------------------------------- client

function runClient(args) {
  const ws = new WebSocket(args.url, {
    perMessageDeflate: deflateOptions(args),
    maxPayload: MAX_PAYLOAD,
    handshakeTimeout: 10_000,
  });
  const inbox = [];
  const waiters = [];
  let closed = null;
  const lifetime = setTimeout(() => fail('timed out'), LIFETIME_MS);

  function fail(why) {
    clearTimeout(lifetime);
    out(`FAIL ${why}`);
    try {
      ws.close(1000);
    } catch {
      /* not open */
    }
    exit(1);
  }

  ws.on('upgrade', (res) => out(`EXT ${res.headers['sec-websocket-extensions'] || ''}`));
  ws.on('message', (data, isBinary) => {
    const item = { data, isBinary };
    const w = waiters.shift();
    if (w) w(item);
    else inbox.push(item);
  });
  ws.on('error', (e) => fail(`error: ${e.message}`));
  ws.on('close', (code) => {
    closed = code;
    while (waiters.length) waiters.shift()(null);
  });

  const next = () =>
    new Promise((resolve, reject) => {
      if (inbox.length) return resolve(inbox.shift());
      if (closed !== null) return resolve(null);
      const t = setTimeout(() => reject(new Error('timed out waiting for an echo')), STEP_MS);
      waiters.push((item) => {
        clearTimeout(t);
        resolve(item);
      });
    });

  ws.on('open', async () => {
    try {
      const msgs = messages();
      for (let i = 0; i < msgs.length; i++) {
        const m = msgs[i];
        const isBinary = Buffer.isBuffer(m);
        const bytes = isBinary ? m : Buffer.from(m, 'utf8');
        ws.send(m, { binary: isBinary });
        const echo = await next();
        if (echo === null) return fail(`connection closed (${closed}) before echo of message ${i}`);
        if (echo.isBinary !== isBinary || !echo.data.equals(bytes)) {
          const same = echo.data.length === bytes.length ? ' (same size, different content)' : '';
          return fail(`message ${i}: sent ${describe(bytes, isBinary)}, got ${describe(echo.data, echo.isBinary)}${same}`);
        }
      }
      ws.once('close', (code) => {
        clearTimeout(lifetime);
        if (code !== 1000) return fail(`closed with ${code}`);
        out(`OK ${msgs.length}`);
        exit(0);
      });
      ws.close(1000);
    } catch (e) {
      fail(e.message);
    }
  });
}

const args = parseArgs(process.argv.slice(2));
if (args.mode === 'server') runServer(args);
else runClient(args);
