import { test, expect, signIn, ADMIN_EMAIL, open } from "./fixtures";

test("signing in through the real page shows the empty delivery log", async ({ page }) => {
  await open(page, "/");
  await expect(page).toHaveURL(/\/login\?next=%2F$/);

  await signIn(page, ADMIN_EMAIL, "not the password");
  await expect(page.getByTestId("login-error")).toContainText("do not match");

  await signIn(page);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("heading", { name: "Delivery log" })).toBeVisible();
  await expect(page.getByTestId("current-user")).toHaveText(ADMIN_EMAIL);

  const table = page.getByTestId("delivery-table");
  for (const column of ["Webhook", "Event", "Status", "Result", "Created", "Last attempt", "Duration", "Actions"]) {
    await expect(table.getByRole("columnheader", { name: column })).toBeVisible();
  }
  await expect(page.getByTestId("delivery-log-empty")).toContainText("No deliveries yet");
  await expect(page.getByTestId("log-count")).toHaveText("0 deliveries");

  // The WASM bundle loaded and took over the server-rendered page.
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
});

test("signing out ends the session", async ({ page }) => {
  await signIn(page);
  await expect(page.getByTestId("delivery-log")).toBeVisible();
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/login$/);
  await open(page, "/");
  await expect(page).toHaveURL(/\/login\?next=/);
});

test("every page runs under a strict Content-Security-Policy without a violation", async ({ page }) => {
  const violations: string[] = [];
  await page.exposeFunction("reportCspViolation", (v: string) => violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      (window as any).reportCspViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`),
    );
  });
  await signIn(page);
  for (const path of ["/", "/webhooks", "/webhooks/new", "/dashboard", "/settings", "/recover"]) {
    const res = await page.goto(path);
    const csp = res!.headers()["content-security-policy"];
    expect(csp, path).toContain("script-src 'self' 'nonce-");
    expect(csp, path).not.toContain("unsafe-inline");
    expect(res!.headers()["x-frame-options"], path).toBe("DENY");
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  }
  // The page's own scripts (hydration, streamed resources, lazily loaded routes) all ran.
  await open(page, "/webhooks");
  await page.getByRole("link", { name: "Dashboard" }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
  expect(violations, "the browser reported no CSP violation").toEqual([]);
});
