import { test, expect, signIn, open } from "./fixtures";

// The main WASM module holds the frame and sign-in; the pages load on demand in groups
// (app/src/lib.rs, scripts/build.sh).

const nav = (page: import("@playwright/test").Page, name: string) =>
  page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true });

test("the landing page preloads the main module and its group; other pages' code is fetched on demand, once per group", async ({ page }) => {
  await signIn(page);
  await expect(page.getByRole("heading", { name: "Delivery log" })).toBeVisible();
  const preloaded = await page
    .locator('head link[rel="preload"][href$=".wasm"]')
    .evaluateAll((links) => links.map((l) => l.getAttribute("href")!));
  expect(preloaded[0]).toBe("/pkg/herald_bg.wasm");
  expect(preloaded.length, "the delivery log's chunks are preloaded with it").toBeGreaterThan(1);

  const fetched: string[] = [];
  page.on("request", (r) => {
    if (r.url().endsWith(".wasm")) fetched.push(new URL(r.url()).pathname);
  });
  await nav(page, "Settings").click();
  await expect(page.getByRole("heading", { name: "Settings" })).toBeVisible();
  expect(fetched.length, "the settings page's chunks were fetched on demand").toBeGreaterThan(0);
  expect(fetched).not.toContain("/pkg/herald_bg.wasm");

  // The dashboard is another group, fetched when first opened; the second time, nothing is.
  const afterSettings = fetched.length;
  await nav(page, "Dashboard").click();
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  expect(fetched.length).toBeGreaterThan(afterSettings);
  await nav(page, "Settings").click();
  await expect(page.getByRole("heading", { name: "Settings" })).toBeVisible();
  const afterDashboard = fetched.length;
  await nav(page, "Dashboard").click();
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  expect(fetched.length, "a group's chunks are fetched once").toBe(afterDashboard);

  // The webhook pages are another group, fetched when first opened, and they work.
  await nav(page, "Webhooks").click();
  await expect(page.getByRole("heading", { name: "Webhooks" })).toBeVisible();
  expect(fetched.length).toBeGreaterThan(afterDashboard);
  await nav(page, "Delivery log").click();
  await expect(page.getByTestId("delivery-log")).toBeVisible();
});

test("each page that loads on demand hydrates when opened directly, its chunks preloaded", async ({ page }) => {
  await signIn(page);
  for (const [path, heading] of [
    ["/", "Delivery log"],
    ["/dashboard", "Dashboard"],
    ["/settings", "Settings"],
    ["/recover", "Recover failed deliveries"],
    ["/webhooks", "Webhooks"],
    ["/webhooks/new", "New webhook"],
  ]) {
    await open(page, path);
    await expect(page.getByRole("heading", { name: heading, exact: true }).first()).toBeVisible();
    const chunks = await page.locator('head link[rel="preload"][href^="/pkg/split_"]').count();
    expect(chunks, `${path} preloads its group's chunk`).toBeGreaterThan(0);
  }
  // Only the hydrated form answers with an error next to the field (checked in the browser).
  await page.getByLabel("Name").fill("Direct");
  await page.getByLabel("URL").fill("ftp://example.com/hook");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("error-url")).toContainText("http or https");
  await expect(page).toHaveURL(/\/webhooks\/new$/);
});
