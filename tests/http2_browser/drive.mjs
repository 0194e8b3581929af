// Drives headless Chromium against examples/wss_server.rs, for
// tests/http2_browser.rs:
//
//   node drive.mjs URL [CHROMIUM_FLAG...]
//
// Loads URL (the example's page, over TLS with a self-signed certificate:
// --ignore-certificate-errors) and waits for the page's own WebSocket to show
// its echo. Chromium sends a WebSocket over HTTP/2 (RFC 8441) only on an
// HTTP/2 connection to the origin that already exists and whose server sent
// SETTINGS_ENABLE_CONNECT_PROTOCOL: loading the page makes that connection.
// Then the script opens one more WebSocket to /ws from the page, round-trips
// a short text, a 70 000-character text and a 100 000-byte binary message,
// closes with 1000 and waits for the close event.
//
// Prints one JSON line: {"protocol": the page's nextHopProtocol,
// "pageEcho": the page's title, "echoes": [true | "what differed", ...],
// "close": {"code", "reason", "wasClean"}, "error": null | "..."}.
// Exits 0 when every echo matched and the close was clean with 1000, 1
// otherwise. Page console output goes to stderr.
//
// Environment: PLAYWRIGHT, the playwright-core package directory (from
// tests/chat_browser/setup.sh); CHROMIUM, the browser (default
// /usr/bin/chromium). Extra arguments are passed to Chromium (the test's
// control run uses --disable-http2).

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT || 'playwright-core');

const [url, ...flags] = process.argv.slice(2);
if (!url) {
  console.error('usage: node drive.mjs URL [CHROMIUM_FLAG...]');
  process.exit(2);
}
const STEP = 20000; // ms, for each wait

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--ignore-certificate-errors', ...flags],
  timeout: STEP,
});
const report = { protocol: null, pageEcho: null, echoes: [], close: null, error: null };
let ok = false;
try {
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  page.on('console', (m) => console.error(`[page] console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`[page] error: ${e}`));
  await page.goto(url, { timeout: STEP });
  report.protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  await page.waitForFunction(() => document.title.startsWith('echo: '), null, { timeout: STEP });
  report.pageEcho = await page.title();

  const result = await page.evaluate(
    (step) =>
      new Promise((resolve, reject) => {
        setTimeout(() => reject(new Error('WebSocket scenario timed out')), step);
        const long = 'é✓ '.repeat(70000 / 3);
        const bytes = new Uint8Array(100000).map((_, i) => (i * 31 + 7) & 0xff);
        const sent = ['hello over h2', long, bytes];
        const echoes = [];
        const ws = new WebSocket(`wss://${location.host}/ws`);
        ws.binaryType = 'arraybuffer';
        ws.onopen = () => sent.forEach((m) => ws.send(m));
        ws.onmessage = (event) => {
          const want = sent[echoes.length];
          let same;
          if (typeof want === 'string') {
            same = event.data === want || `text ${echoes.length}: ${String(event.data).length} chars back`;
          } else {
            const got = new Uint8Array(event.data);
            same = (got.length === want.length && got.every((b, i) => b === want[i])) ||
              `binary ${echoes.length}: ${got.length} bytes back, differing`;
          }
          echoes.push(same);
          if (echoes.length === sent.length) ws.close(1000, 'done');
        };
        ws.onerror = () => echoes.push('error event');
        ws.onclose = (event) =>
          resolve({ echoes, close: { code: event.code, reason: event.reason, wasClean: event.wasClean } });
      }),
    STEP,
  );
  Object.assign(report, result);
  ok = report.echoes.length === 3 && report.echoes.every((e) => e === true) &&
    report.close.code === 1000 && report.close.wasClean;
} catch (e) {
  report.error = String(e);
} finally {
  console.log(JSON.stringify(report));
  await browser.close();
}
process.exit(ok ? 0 : 1);
