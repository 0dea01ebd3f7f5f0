import { test as base, expect, Page } from "@playwright/test";
import { ADMIN_EMAIL, ADMIN_PASSWORD } from "../constants";

export { expect, ADMIN_EMAIL, ADMIN_PASSWORD };

/** Fails the test on any console error or uncaught exception in the page. */
export const test = base.extend<{ failOnConsoleErrors: void }>({
  failOnConsoleErrors: [
    async ({ page }, use) => {
      const problems: string[] = [];
      page.on("console", (msg) => {
        // A server function that answers an error (invalid input, a conflict, a refusal) makes
        // Chromium log the status; the page shows those errors and the tests check them.
        const handled = msg.text().startsWith("Failed to load resource") && msg.location().url.includes("/rpc/");
        if (msg.type() === "error" && !handled) problems.push(`console: ${msg.text()}`);
      });
      page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
      await use();
      expect(problems, "the browser reported errors").toEqual([]);
    },
    { auto: true },
  ],
});

/**
 * Waits until the browser has hydrated the page: until the WASM bundle has taken over, the
 * server-rendered page shows but does not react (a choice made in a filter is lost).
 */
export async function hydrated(page: Page) {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

/** Opens `url` and waits until the page reacts. */
export async function open(page: Page, url: string) {
  await page.goto(url);
  await hydrated(page);
}

/** Signs in through the sign-in form (a real form post) and waits for the page it lands on. */
export async function signIn(page: Page, email = ADMIN_EMAIL, password = ADMIN_PASSWORD) {
  await open(page, "/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  const landed = page.waitForEvent("load");
  await page.getByTestId("login-submit").click();
  await landed;
  await hydrated(page);
}

import { execFileSync } from "node:child_process";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** Runs the `herald` CLI against the server's database; answers its stdout. */
export function herald(...args: string[]): string {
  return execFileSync(process.env.HERALD_E2E_BIN!, args, {
    env: { ...process.env, HERALD_DATABASE_URL: process.env.HERALD_E2E_DATABASE_URL!, HERALD_LOG: "error" },
    encoding: "utf8",
  }).trim();
}

let apiKey: string | undefined;

/** Calls `/api/v1` of the server under test with an API key made by the CLI. */
export async function api(baseURL: string, method: string, path: string, body?: unknown): Promise<any> {
  apiKey ??= herald("api-key", "create", "--name", "e2e").split("\n").pop()!;
  const res = await fetch(`${baseURL}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/**
 * A real HTTP receiver on a local port: `/ok` answers 200, `/fail` answers 500 with a JSON
 * body, `/switch` answers 503 while `down` and 200 otherwise. It counts what it received.
 */
export class Receiver {
  down = false;
  received: { path: string; body: string; headers: http.IncomingHttpHeaders }[] = [];
  private server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const path = req.url ?? "/";
      this.received.push({ path, body, headers: req.headers });
      if (path.startsWith("/fail")) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "database unavailable", hint: "try again later" }));
      } else if (path.startsWith("/busy")) {
        res.writeHead(429, { "content-type": "text/plain", "retry-after": "120" });
        res.end("slow down");
      } else if (path.startsWith("/switch") && this.down) {
        res.writeHead(503, { "content-type": "text/plain" });
        res.end("maintenance");
      } else {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"received":true}');
      }
    });
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return this;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** Stops at once: Herald keeps connections alive and may be mid-request (a retry, a
   *  `webhook.deactivated` event), which would otherwise hold `close` open. */
  async stop() {
    const closed = new Promise((resolve) => this.server.close(resolve));
    this.server.closeAllConnections();
    await closed;
  }
}

/** Waits until `check` answers something truthy. */
export async function until<T>(what: string, check: () => Promise<T>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
