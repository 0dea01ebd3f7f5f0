// axe-core on every page of the admin app, in the states the workflows left behind (deactivated
// webhooks and their banner, a blocked ordered line, failed deliveries, keys, jobs): zero
// violations, so a change that breaks accessibility fails the run. Named to run last, after
// workflows.spec.ts has filled the database.
import AxeBuilder from "@axe-core/playwright";
import { test, expect, signIn, api, open } from "./fixtures";

test("every page has zero axe-core violations", async ({ page, baseURL }) => {
  await page.goto("/login");
  const pages: string[] = ["/login"];
  const check = async (url: string) => {
    if (url !== "/login") await open(page, url);
    const result = await new AxeBuilder({ page }).analyze();
    const found = result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join("; ")}`);
    expect(found, `axe-core on ${url}`).toEqual([]);
  };
  await check("/login");

  await signIn(page);
  const webhooks: any[] = (await api(baseURL!, "GET", "/webhooks?limit=250")).items;
  const deactivated = webhooks.find((w) => w.state === "too_many_errors");
  const ordered = webhooks.find((w) => w.ordered);
  const failed = (await api(baseURL!, "GET", "/deliveries?status=failed&limit=1")).items[0];
  expect(deactivated && ordered && failed, "the workflows left a deactivated webhook, an ordered one, a failed delivery").toBeTruthy();
  pages.push(
    "/",
    "/?status=failed",
    "/?q=no-such-thing",
    `/deliveries/${failed.id}`,
    "/webhooks",
    "/webhooks/new",
    `/webhooks/${deactivated.id}`,
    `/webhooks/${ordered.id}`,
    `/webhooks/${ordered.id}/edit`,
    "/recover",
    "/dashboard",
    "/settings",
  );
  for (const url of pages.slice(1)) await check(url);
});

test("at 390 px wide (a phone), no page scrolls sideways and the navigation is all there", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await signIn(page);
  for (const url of ["/", "/dashboard", "/webhooks", "/recover", "/settings"]) {
    await open(page, url);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(wide, `${url} is ${wide} px wide`).toBeLessThanOrEqual(390);
    for (const name of ["Delivery log", "Dashboard", "Webhooks", "Recover", "Settings"]) {
      const link = page.getByRole("navigation", { name: "Main" }).getByRole("link", { name });
      await expect(link).toBeInViewport();
    }
  }
});
