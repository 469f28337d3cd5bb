// Drives the gateway's cluster page in Debian's headless chromium, for
// tests/integration/test_cluster_page.py. Opens the page once (never
// reloads it) and answers commands read from stdin, one per line:
//   snapshot         -> one JSON line: what the page shows now
//   screenshot PATH  -> saves a PNG of the page, answers "ok"
//   quit
// Usage: node cluster_page.mjs URL [CHROMIUM]
import { chromium } from "playwright-core";
import readline from "node:readline";

const [url, executable = "/usr/bin/chromium"] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: executable, args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
const errors = [];
page.on("pageerror", e => errors.push(String(e)));
page.on("requestfailed", r => { if (!r.url().includes("/api/") && !r.url().includes("/metrics")) errors.push("failed: " + r.url()); });
await page.goto(url);

async function snapshot() {
  return page.evaluate(() => ({
    status: document.getElementById("status").textContent,
    refreshes: Number(document.getElementById("status").dataset.refreshes || 0),
    nodes: [...document.querySelectorAll("#nodes tbody tr")].map(tr => ({
      id: tr.dataset.node,
      state: tr.querySelector(".state").textContent,
      owned: tr.querySelector(".owned").textContent,
    })),
    partitions: [...document.querySelectorAll("#partitions tbody tr")].map(tr => ({
      partition: Number(tr.dataset.partition),
      owner: tr.querySelector(".owner").textContent,
      state: tr.querySelector(".state").textContent,
    })),
    gatewayRate: document.getElementById("gateway-rate").textContent,
  }));
}

const lines = readline.createInterface({ input: process.stdin });
console.log(JSON.stringify({ ready: true }));
for await (const line of lines) {
  const [cmd, arg] = line.trim().split(/\s+/, 2);
  if (cmd === "snapshot") {
    console.log(JSON.stringify({ ...(await snapshot()), errors }));
  } else if (cmd === "screenshot") {
    await page.screenshot({ path: arg, fullPage: true });
    console.log(JSON.stringify({ ok: true }));
  } else if (cmd === "quit") {
    break;
  } else {
    console.log(JSON.stringify({ error: "unknown command " + cmd }));
  }
}
await browser.close();
