import { test, expect, signIn } from "./fixtures";

// Each page's code is a chunk of the WASM bundle of its own (app/src/lib.rs, scripts/build.sh).

test("a page's code is preloaded when the server renders it and fetched on demand otherwise", async ({ page }) => {
  await signIn(page);
  await expect(page.getByRole("heading", { name: "Delivery log" })).toBeVisible();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");

  // The server-rendered delivery log names its own chunks for the browser to fetch early.
  const preloaded = await page
    .locator('head link[rel="preload"][href$=".wasm"]')
    .evaluateAll((links) => links.map((l) => l.getAttribute("href")!));
  expect(preloaded).toContain("/pkg/herald_bg.wasm");
  const chunks = preloaded.filter((href) => href !== "/pkg/herald_bg.wasm");
  expect(chunks.length, "the delivery log's chunks are preloaded").toBeGreaterThan(0);

  const fetched: string[] = [];
  page.on("request", (r) => {
    if (r.url().endsWith(".wasm")) fetched.push(new URL(r.url()).pathname);
  });

  // Another page's code was not part of the first download: it comes when the page is opened.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Settings" }).click();
  await expect(page.getByRole("heading", { name: "Settings" })).toBeVisible();
  expect(fetched.length, "the settings page's chunks were fetched on demand").toBeGreaterThan(0);
  expect(fetched).not.toContain("/pkg/herald_bg.wasm");
  for (const href of fetched) expect(chunks).not.toContain(href);

  // Back to a page whose code is already loaded: nothing more to fetch, and it still works.
  const before = fetched.length;
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Delivery log" }).click();
  await expect(page.getByTestId("delivery-log")).toBeVisible();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Settings" }).click();
  await expect(page.getByRole("heading", { name: "Settings" })).toBeVisible();
  expect(fetched.length).toBe(before);
});

test("opening a page directly hydrates it from its chunk, with its actions working", async ({ page }) => {
  await signIn(page);
  await expect(page.getByTestId("delivery-log")).toBeVisible();
  await page.goto("/webhooks/new");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  // Only the hydrated page answers the form with an error next to the field (a server
  // function call); without its code the browser would post the form and leave the page.
  await page.getByLabel("Name").fill("Direct");
  await page.getByLabel("URL").fill("ftp://example.com/hook");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("error-url")).toContainText("http or https");
  await expect(page).toHaveURL(/\/webhooks\/new$/);
});
