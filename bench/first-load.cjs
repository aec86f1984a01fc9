// The first load of /login as a new visitor sees it: headless Chromium, a fresh profile each time
// (cold cache), on loopback. Prints what /pkg put on the wire (bytes as sent, compressed) and the
// median of 10 times from the start of navigation to an interactive page (the WASM has hydrated
// it: `body[data-hydrated]`, after which a click is handled).
// Usage: node bench/first-load.cjs http://127.0.0.1:PORT
const path = require("path");
const { chromium } = require(path.join(__dirname, "../end2end/node_modules/@playwright/test"));

const base = process.argv[2];
const RUNS = 10;

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
  const times = [];
  let wire = null;
  for (let run = 0; run < RUNS; run++) {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      new MutationObserver((_, observer) => {
        if (document.body?.hasAttribute("data-hydrated")) {
          window.__interactiveAt = performance.now();
          observer.disconnect();
        }
      }).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-hydrated"] });
    });
    const page = await context.newPage();
    const assets = [];
    page.on("requestfinished", async (req) => {
      if (req.url().includes("/pkg/")) assets.push(req);
    });
    await page.goto(`${base}/login`);
    await page.waitForFunction(() => window.__interactiveAt !== undefined);
    times.push(await page.evaluate(() => window.__interactiveAt));
    if (wire === null) {
      wire = {};
      for (const req of assets) {
        const sizes = await req.sizes();
        const res = await req.response();
        const name = new URL(req.url()).pathname.split("/").pop().replace(/\.[0-9a-f]{16}\./, ".");
        wire[name] = { bytes: sizes.responseBodySize, encoding: (await res.allHeaders())["content-encoding"] ?? "none" };
      }
    }
    await context.close();
  }
  await browser.close();
  times.sort((a, b) => a - b);
  const median = (times[RUNS / 2 - 1] + times[RUNS / 2]) / 2;
  const total = Object.values(wire).reduce((s, f) => s + f.bytes, 0);
  const files = Object.entries(wire).map(([n, f]) => `${n} ${f.bytes} B ${f.encoding}`).join(", ");
  console.log(`first load of /login: /pkg on the wire ${total} B (${files}); budget 153600 B`);
  console.log(
    `navigation → interactive /login, cold cache, median of ${RUNS}: ${median.toFixed(0)} ms (min ${times[0].toFixed(0)}, max ${times[RUNS - 1].toFixed(0)})`,
  );
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
