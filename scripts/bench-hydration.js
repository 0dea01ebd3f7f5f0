// How long a page takes to become interactive: from navigation to `<body data-hydrated>`, cold
// (browser cache off), on three network profiles emulated by Chromium (latency added to every
// request, bandwidth capped). Prints medians; asserts nothing. See BENCHMARKS.md.
//
//   PAGES=/,/settings node scripts/bench-hydration.js URL [runs]   (a running Herald; needs scripts/setup.sh --e2e)
//
// Signs in as HERALD_ADMIN_EMAIL / HERALD_ADMIN_PASSWORD.
const path = require("node:path");
const { chromium } = require(path.join(__dirname, "../end2end/node_modules/playwright-core"));
const base = process.argv[2] ?? "http://127.0.0.1:3000";
const runs = Number(process.argv[3] ?? 7);
const email = process.env.HERALD_ADMIN_EMAIL ?? "admin@example.test";
const password = process.env.HERALD_ADMIN_PASSWORD ?? "correct horse battery";
const profiles = [
  { name: "local", latency: 0, bps: 0 },
  { name: "40 ms, 20 Mbit/s", latency: 40, bps: 20e6 / 8 },
  { name: "150 ms, 5 Mbit/s", latency: 150, bps: 5e6 / 8 },
];
const pages = (process.env.PAGES ?? "/,/settings").split(",");
(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
  const c0 = await browser.newContext();
  const p0 = await c0.newPage();
  await p0.goto(base + "/login");
  await p0.getByLabel("Email").fill(email);
  await p0.getByLabel("Password").fill(password);
  await Promise.all([p0.waitForEvent("load"), p0.click("[data-test=login-submit]")]);
  const state = await c0.storageState();
  for (const prof of profiles) {
    for (const path of pages) {
      const times = [], bytes = [], reqs = [];
      for (let i = 0; i < runs; i++) {
        const ctx = await browser.newContext({ storageState: state });
        const page = await ctx.newPage();
        const cdp = await ctx.newCDPSession(page);
        await cdp.send("Network.enable");
        await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
        if (prof.latency) await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: prof.latency, downloadThroughput: prof.bps, uploadThroughput: prof.bps });
        let b = 0, n = 0;
        cdp.on("Network.loadingFinished", (e) => { b += e.encodedDataLength; n++; });
        const t0 = Date.now();
        await page.goto(base + path, { waitUntil: "commit" });
        await page.waitForSelector("body[data-hydrated=true]", { timeout: 120000 });
        times.push(Date.now() - t0); bytes.push(b); reqs.push(n);
        await ctx.close();
      }
      const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
      console.log(`${prof.name.padEnd(18)} ${path.padEnd(10)} hydrated after ${String(med(times)).padStart(5)} ms (median of ${runs}; min ${Math.min(...times)}, max ${Math.max(...times)}), ${med(reqs)} requests, ${med(bytes)} bytes`);
    }
  }
  await browser.close();
})();
