import { defineConfig } from "@playwright/test";
import * as os from "node:os";
import * as path from "node:path";
import * as fs from "node:fs";
import { ADMIN_EMAIL, ADMIN_PASSWORD } from "./constants";

// The server under test: a fresh Herald on its own SQLite file, started by Playwright.
// scripts/test.sh passes the binary it just built in HERALD_BIN.
const port = process.env.HERALD_E2E_PORT ?? "3917";
const baseURL = `http://127.0.0.1:${port}`;
// Workers load this file again: they inherit the runner's directory through the environment.
const dataDir = (process.env.HERALD_E2E_DATA_DIR ??= fs.mkdtempSync(path.join(os.tmpdir(), "herald-e2e-")));
const repo = path.resolve(__dirname, "..");
// The tests seed through the CLI and the JSON API of the same server: they need its database.
process.env.HERALD_E2E_DATABASE_URL = `sqlite://${path.join(dataDir, "herald.db")}?mode=rwc`;
process.env.HERALD_E2E_BIN = process.env.HERALD_BIN ?? path.join(repo, "target/debug/herald");

export default defineConfig({
  testDir: "./tests",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  forbidOnly: !!process.env.CI,
  use: {
    baseURL,
    testIdAttribute: "data-test",
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      // Debian's Chromium: Playwright's own browser download is not reachable here.
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: {
    command: `${process.env.HERALD_BIN ?? path.join(repo, "target/debug/herald")} serve`,
    url: `${baseURL}/api/v1/health`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      HERALD_LISTEN: `127.0.0.1:${port}`,
      HERALD_DATABASE_URL: process.env.HERALD_E2E_DATABASE_URL,
      // The tests' receiver listens on 127.0.0.1, which the SSRF guard refuses by default.
      HERALD_DESTINATION_ALLOWLIST: "127.0.0.1",
      // One attempt, then the delivery has failed: the workflows need failures fast.
      HERALD_RETRY_SCHEDULE: "0",
      HERALD_SITE_ROOT: path.join(repo, "target/site"),
      HERALD_ADMIN_EMAIL: ADMIN_EMAIL,
      HERALD_ADMIN_PASSWORD: ADMIN_PASSWORD,
      HERALD_LOG: "warn",
    },
  },
});
