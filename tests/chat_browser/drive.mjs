// Drives two headless Chromium pages through the chat example, for
// tests/chat_browser.rs:
//
//   node drive.mjs URL MESSAGE_A MESSAGE_B [URL_B]
//
// Page A loads URL (the chat page), page B loads URL_B (default URL: the
// same server; tests/chat_redis.rs passes another chat process), and each
// waits for its WebSocket to open;
// page A then sends MESSAGE_A (typed, Enter) and page B sends MESSAGE_B
// (typed, Send button). Each page waits until its log shows both messages.
// Prints one JSON line, {"a": [...], "b": [...], "error": null | "..."}:
// the messages each page's log shows. Exits 0 when both pages saw both
// messages, 1 otherwise. Page console output goes to stderr.
//
// Environment: PLAYWRIGHT, the playwright-core package directory (from
// setup.sh); CHROMIUM, the browser (default /usr/bin/chromium);
// SCREENSHOT, a path to save page A as a PNG (optional).

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT || 'playwright-core');

const [url, msgA, msgB, urlB] = process.argv.slice(2);
if (!url || !msgA || !msgB) {
  console.error('usage: node drive.mjs URL MESSAGE_A MESSAGE_B [URL_B]');
  process.exit(2);
}
const STEP = 20000; // ms, for each wait

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
  timeout: STEP,
});
let failed = true;
try {
  const pages = {};
  for (const name of ['a', 'b']) {
    // One context each: two independent browser sessions.
    const page = await (await browser.newContext()).newPage();
    page.on('console', (m) => console.error(`[page ${name}] console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => console.error(`[page ${name}] error: ${e}`));
    await page.goto(name === 'b' && urlB ? urlB : url, { timeout: STEP });
    await page.waitForSelector('body[data-state="open"]', { timeout: STEP });
    pages[name] = page;
  }

  await pages.a.fill('#msg', msgA);
  await pages.a.press('#msg', 'Enter');
  await pages.b.fill('#msg', msgB);
  await pages.b.click('#send');

  const shows = (page, text) =>
    page.waitForFunction(
      (t) => [...document.querySelectorAll('#log .msg')].some((d) => d.textContent === t),
      text,
      { timeout: STEP },
    );
  let error = null;
  try {
    await Promise.all([shows(pages.a, msgA), shows(pages.a, msgB), shows(pages.b, msgA), shows(pages.b, msgB)]);
    failed = false;
  } catch (e) {
    error = String(e);
  }
  const logOf = (page) => page.$$eval('#log .msg', (ds) => ds.map((d) => d.textContent));
  if (process.env.SCREENSHOT) await pages.a.screenshot({ path: process.env.SCREENSHOT });
  console.log(JSON.stringify({ a: await logOf(pages.a), b: await logOf(pages.b), error }));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
