// The admin app's workflows, end to end: a real Herald, a real receiver on a local port,
// Chromium. Seeded through the JSON API like an integrator would. Named to run after
// sign-in.spec.ts, which checks the empty log of the fresh server.
import * as path from "node:path";
import { test, expect, signIn, api, herald, Receiver, until, ADMIN_EMAIL, open } from "./fixtures";

const shots = path.resolve(__dirname, "../../docs/screenshots");
let rx: Receiver;

test.beforeAll(async () => {
  rx = await new Receiver().start();
});
test.afterAll(async () => {
  await rx.stop();
});

async function deliveriesOf(baseURL: string, webhookId: string): Promise<any[]> {
  return (await api(baseURL, "GET", `/deliveries?webhook_id=${webhookId}&limit=250`)).items;
}

test("troubleshoot a 500: filter failed, find it, read the response body, check the payload", async ({ page, baseURL }) => {
  const ok = await api(baseURL!, "POST", "/webhooks", { name: "Fulfilment", url: rx.url("/ok"), event_types: ["order.*"] });
  const bad = await api(baseURL!, "POST", "/webhooks", { name: "Billing", url: rx.url("/fail"), event_types: ["invoice.*"] });
  await api(baseURL!, "POST", "/events", { type: "order.placed", payload: { order: 1 } });
  await api(baseURL!, "POST", "/events", { type: "invoice.paid", payload: { invoice: "INV-42", amount: 1999 } });
  await until("both delivered or failed", async () => {
    const [a, b] = [await deliveriesOf(baseURL!, ok.id), await deliveriesOf(baseURL!, bad.id)];
    return a[0]?.status === "succeeded" && b[0]?.status === "failed";
  });

  await signIn(page);
  await expect(page.getByTestId("delivery-row")).toHaveCount(2);
  await page.screenshot({ path: path.join(shots, "delivery-log.png"), fullPage: true });

  await page.getByTestId("filter-status").selectOption("failed");
  await expect(page).toHaveURL(/status=failed/);
  const rows = page.getByTestId("delivery-row");
  await expect(rows).toHaveCount(1);
  await expect(rows.first().getByTestId("result")).toHaveText("HTTP 500");
  await expect(rows.first()).toContainText("Billing");

  // The view is in the URL: a reload (or a shared link) shows the same rows.
  await page.reload();
  await expect(page.getByTestId("delivery-row")).toHaveCount(1);

  await rows.first().getByTestId("view").click();
  await expect(page).toHaveURL(/\/deliveries\//);
  await expect(page.getByTestId("response-status")).toHaveText("HTTP 500");
  await expect(page.getByTestId("response-body")).toContainText('"error": "database unavailable"');
  await expect(page.getByTestId("payload")).toContainText('"invoice": "INV-42"');
  await page.getByTestId("tab-request").click();
  const request = page.getByTestId("request-panel");
  await expect(request).toContainText("webhook-signature");
  await expect(request).toContainText(rx.url("/fail"));
  await page.screenshot({ path: path.join(shots, "delivery-detail.png"), fullPage: true });

  // The failure deactivated the webhook, and an event since is held: no dead-end Re-send, but an
  // offer to reactivate and re-send that says what else would go. After it, the new attempt's
  // result shows up without a reload.
  await api(baseURL!, "POST", "/events", { type: "invoice.paid", payload: { invoice: "INV-43", amount: 5 } });
  await until("the second invoice held", async () => (await deliveriesOf(baseURL!, bad.id)).some((d) => d.status === "held"));
  await page.reload();
  await expect(page.getByTestId("resend")).toHaveCount(0);
  const offer = page.getByTestId("reactivate-resend");
  await expect(offer).toContainText("was deactivated after too many errors");
  await expect(offer).toContainText("Also send its 1 held and 0 failed deliveries since");
  await expect(offer.getByTestId("also-recover")).toBeChecked();
  await offer.getByTestId("reactivate-and-resend").click();
  await expect(page.getByTestId("resend-feedback")).toContainText(
    "Webhook reactivated; 1 other held or failed delivery is being sent again. New attempt: 500");
  await expect(page.getByTestId("attempt")).toHaveCount(2);
  await until("the held invoice sent too", async () =>
    rx.received.some((r) => r.path === "/fail" && r.body.includes("INV-43")));

  // Retry in the log on a delivery whose webhook is deactivated (the held invoice failed too)
  // says why, and leads to the delivery's page, where it can be reactivated and re-sent.
  await until("Billing deactivated again", async () => (await api(baseURL!, "GET", `/webhooks/${bad.id}`)).state === "too_many_errors");
  await open(page, "/?status=failed");
  const billing = page.getByTestId("delivery-row").filter({ hasText: "Billing" }).first();
  await billing.getByTestId("retry").click();
  const refused = page.getByTestId("retry-error");
  await expect(refused).toContainText("Its webhook was deactivated after too many errors");
  await refused.getByRole("link", { name: "Open the delivery" }).click();
  await expect(page.getByTestId("reactivate-resend")).toBeVisible();

  // A search that matches nothing says so, and Clear filters shows everything again.
  await open(page, "/?q=no-such-thing");
  await expect(page.getByTestId("delivery-log-empty")).toContainText("No deliveries match this search");
  await page.getByTestId("clear-filters").click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId("delivery-row").first()).toBeVisible();

  // Find a delivery by its id, and by its event's id (what support is given first).
  const failed = (await deliveriesOf(baseURL!, bad.id)).find((d) => d.status === "failed" || d.attempt_count > 0)!;
  await open(page, "/");
  for (const id of [failed.id, failed.event_id]) {
    await page.getByTestId("log-search").fill(id);
    await page.getByTestId("log-search").press("Enter");
    await expect(page.getByTestId("delivery-row")).toHaveCount(1);
    await expect(page.getByTestId("delivery-row").first()).toContainText("Billing");
  }

  // Search by webhook name, then by event type.
  await open(page, "/");
  await page.getByTestId("log-search").fill("fulfil");
  await page.getByTestId("log-search").press("Enter");
  await expect(page).toHaveURL(/q=fulfil/);
  await expect(page.getByTestId("delivery-row")).toHaveCount(1);
  await expect(page.getByTestId("delivery-row").first()).toContainText("order.placed");
});

test("recover after downtime: receiver down, events fail, receiver up, bulk recover, all succeed", async ({ page, baseURL }) => {
  rx.down = true;
  const shop = await api(baseURL!, "POST", "/webhooks", { name: "Shop", url: rx.url("/switch"), event_types: ["cart.*"] });
  const started = new Date(Date.now() - 60_000).toISOString().slice(0, 16);
  for (let n = 0; n < 5; n++) await api(baseURL!, "POST", "/events", { type: "cart.updated", payload: { n } });
  await until("five failed or held", async () => {
    const rows = await deliveriesOf(baseURL!, shop.id);
    return rows.length === 5 && rows.every((d) => d.status === "failed" || d.status === "held");
  });
  rx.down = false;

  await signIn(page);
  // The webhook was deactivated by the failures: reactivate it, without recovery for now.
  await open(page, `/webhooks/${shop.id}`);
  await expect(page.getByTestId("webhook-state").first()).toHaveText("Too many errors");
  await page.getByTestId("recover").uncheck();
  await page.getByTestId("reactivate").click();
  await expect(page.getByTestId("notice")).toHaveText("Reactivated.");
  await expect(page.getByTestId("webhook-state").first()).toHaveText("Active");

  await page.getByRole("link", { name: "Recover" }).click();
  await expect(page).toHaveURL(/\/recover$/);
  await page.getByTestId("recover-webhook").selectOption(shop.id);
  await page.getByTestId("recover-since").fill(started);
  await page.getByLabel("Held").check();
  await page.getByTestId("recover-count").click();
  await expect(page.getByTestId("recover-matching")).toHaveText("5 deliveries match.");
  await page.screenshot({ path: path.join(shots, "recover.png"), fullPage: true });
  await page.getByTestId("recover-start").click();
  await expect(page.getByTestId("recover-progress")).toHaveText("5 of 5 queued again");
  // Followed live until nothing it queued waits: what was delivered, what failed again.
  await expect(page.getByTestId("recover-outcome")).toHaveText("5 delivered · 0 failed again · 0 waiting");
  // "Still failing" is this webhook and this window, not the whole log.
  const link = await page.getByTestId("still-failing").getAttribute("href");
  expect(link).toContain(`webhook_id=${shop.id}`);
  expect(link).toContain("since=");
  await page.getByTestId("still-failing").click();
  await expect(page.getByTestId("delivery-log-empty")).toContainText("No deliveries match");

  await until("all five delivered", async () => (await deliveriesOf(baseURL!, shop.id)).every((d) => d.status === "succeeded"));
  await open(page, `/?q=Shop`);
  await expect(page.getByTestId("delivery-row")).toHaveCount(5);
  for (const status of await page.getByTestId("delivery-row").getByTestId("status").allTextContents()) {
    expect(status).toBe("Succeeded");
  }
});

test("deactivate and reactivate a webhook, recovering what was held", async ({ page, baseURL }) => {
  rx.down = true;
  const crm = await api(baseURL!, "POST", "/webhooks", { name: "CRM", url: rx.url("/switch"), event_types: ["lead.*"] });
  for (let n = 0; n < 3; n++) await api(baseURL!, "POST", "/events", { type: "lead.created", payload: { n } });
  await until("deactivated", async () => {
    const rows = await deliveriesOf(baseURL!, crm.id);
    return rows.length === 3 && rows.every((d) => d.status === "failed" || d.status === "held");
  });

  await signIn(page);
  // Every page says which webhooks are deactivated.
  await expect(page.getByTestId("deactivated-banner").getByRole("link", { name: "CRM" })).toBeVisible();
  await page.getByRole("link", { name: "Webhooks" }).click();
  const row = page.getByTestId("webhook-row").filter({ hasText: "CRM" });
  await expect(row.getByTestId("webhook-state")).toHaveText("Too many errors");
  await page.screenshot({ path: path.join(shots, "webhooks.png"), fullPage: true });
  await row.getByRole("link", { name: "CRM" }).click();
  await expect(page.getByTestId("mark").filter({ hasText: "Error" }).first()).toBeVisible();
  await page.screenshot({ path: path.join(shots, "webhook.png"), fullPage: true });
  // Its edit form offers no "Active" tick that saving would not honour; it points to Reactivate.
  await page.getByTestId("edit-webhook").click();
  await expect(page.getByTestId("deactivated-note")).toContainText("Reactivate it from its page");
  await expect(page.getByTestId("active")).toHaveCount(0);

  // The deactivation was mailed to the API users and is in the activity log.
  await open(page, "/settings");
  await expect(page.getByTestId("activity-row").filter({ hasText: "webhook.deactivated" }).first()).toBeVisible();

  rx.down = false;
  await open(page, `/webhooks/${crm.id}`);
  await expect(page.getByTestId("recover")).toBeChecked();
  // Reactivate says what recovery would send: the three, held or failed.
  const counts = (await page.getByTestId("recover-counts").textContent())!.match(/(\d+) held and (\d+) failed/)!;
  expect(Number(counts[1]) + Number(counts[2])).toBe(3);
  await page.getByTestId("recover-since").fill(new Date(Date.now() - 3600_000).toISOString().slice(0, 16));
  await page.getByTestId("reactivate").click();
  await expect(page.getByTestId("notice")).toContainText("3 held or failed deliveries are being sent again");
  // The page follows the recovery until it is done, the table with it, without a reload.
  await expect(page.getByTestId("recovery-progress")).toContainText(
    "3 delivered, 0 failed, 0 being retried, 0 still to send. Done.");
  await expect(page.getByTestId("mark").filter({ hasText: "Success" })).toHaveCount(3);
  await expect(page.getByTestId("webhook-state").first()).toHaveText("Active");
  await page.reload();
  await expect(page.getByTestId("deactivated-banner").getByRole("link", { name: "CRM" })).toHaveCount(0);
});

test("a viewer sees everything but cannot retry", async ({ page, baseURL }) => {
  const w = await api(baseURL!, "POST", "/webhooks", { name: "Audit", url: rx.url("/fail"), event_types: ["audit.*"] });
  await api(baseURL!, "POST", "/events", { type: "audit.logged", payload: { who: "x" } });
  await until("failed", async () => (await deliveriesOf(baseURL!, w.id))[0]?.status === "failed");
  herald("user", "create", "--email", "viewer@example.test", "--password", "viewer-password-1", "--role", "viewer");

  await signIn(page, "viewer@example.test", "viewer-password-1");
  await expect(page.getByTestId("current-role")).toHaveText("Viewer");
  await page.getByTestId("filter-status").selectOption("failed");
  await expect(page.getByTestId("delivery-row").first()).toBeVisible();
  await expect(page.getByTestId("retry")).toHaveCount(0);
  await page.getByTestId("delivery-row").filter({ hasText: "Audit" }).getByTestId("view").click();
  await expect(page.getByTestId("response-status")).toHaveText("HTTP 500");
  await expect(page.getByTestId("resend")).toHaveCount(0);
  await open(page, "/settings");
  await expect(page.getByTestId("retention")).toBeVisible();
  await expect(page.getByTestId("save-retention")).toHaveCount(0);
  await expect(page.getByTestId("api-keys")).toHaveCount(0);

  // And the server refuses, whatever the page shows.
  const id = (await deliveriesOf(baseURL!, w.id))[0].id;
  const res = await page.request.post("/rpc/retry_delivery", { form: { id } });
  expect(res.ok()).toBe(false);
  expect(await res.text()).toContain("Forbidden");
});

test("a payload holding <script> renders as inert text", async ({ page, baseURL }) => {
  const w = await api(baseURL!, "POST", "/webhooks", { name: "Inert", url: rx.url("/ok"), event_types: ["xss.*"] });
  const evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
  await api(baseURL!, "POST", "/events", { type: "xss.attempt", payload: { comment: evil } });
  const d = await until("delivered", async () => (await deliveriesOf(baseURL!, w.id)).find((x) => x.status === "succeeded"));

  await signIn(page);
  await open(page, `/deliveries/${d.id}`);
  await expect(page.getByTestId("payload")).toContainText("<script>window.__pwned = 1</script>");
  await expect(page.getByTestId("payload").locator("script, img")).toHaveCount(0);
  expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined();
});

test("create and edit a webhook in the form: errors next to the field, the secret shown once", async ({ page, baseURL }) => {
  await signIn(page);
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.getByTestId("new-webhook").click();
  await page.getByLabel("Name").fill("Form-made");
  await page.getByLabel("URL").fill("ftp://example.com/hook");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("error-url")).toContainText("http or https");
  await expect(page.getByLabel("URL")).toHaveAttribute("aria-describedby", "url-error");
  await page.getByLabel("URL").fill(rx.url("/ok"));
  await page.getByLabel("Event types").fill("form.*");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("new-secret")).toHaveText(/^whsec_/);
  await page.getByTestId("open-webhook").click();
  await expect(page.getByTestId("webhook-name")).toContainText("Form-made");
  await expect(page.getByTestId("webhook-state").first()).toHaveText("Active");
  const id = page.url().split("/").pop()!;

  // Edit: a bad timeout is refused next to its field and nothing is stored; a good one is saved.
  await page.getByTestId("edit-webhook").click();
  await expect(page.getByLabel("Name")).toHaveValue("Form-made");
  await page.getByLabel("Timeout (ms)").fill("99");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("error-timeout_ms")).toContainText("between 1000 and 30000");
  expect((await api(baseURL!, "GET", `/webhooks/${id}`)).timeout_ms).toBe(15000);
  await page.getByLabel("Timeout (ms)").fill("5000");
  // Who hears of its failures: a bad address is refused next to its field, good ones are kept.
  await page.getByLabel("Email when it is deactivated").fill("ops@example.test, not-an-address");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("error-notify_emails")).toContainText("not-an-address");
  await page.getByLabel("Email when it is deactivated").fill("ops@example.test, oncall@example.test");
  await page.getByTestId("notify-on-failing").check();
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("saved")).toBeVisible();
  await page.getByTestId("saved").getByRole("link").click();
  await expect(page.getByText("5000 ms")).toBeVisible();
  const saved = await api(baseURL!, "GET", `/webhooks/${id}`);
  expect(saved.timeout_ms).toBe(5000);
  expect(saved.notify_emails).toEqual(["ops@example.test", "oncall@example.test"]);
  expect(saved.notify_on_failing).toBe(true);
  await page.getByTestId("edit-webhook").click();
  await expect(page.getByLabel("Email when it is deactivated")).toHaveValue("ops@example.test, oncall@example.test");
  // A rate limit: what is not a whole number is refused next to its box, so is 0; 25 is kept.
  const rate = page.getByLabel("Rate limit (requests per second)");
  await expect(rate).toHaveValue("");
  await rate.fill("fast");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("error-rate_limit")).toContainText("whole number");
  await rate.fill("0");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("error-rate_limit")).toContainText("between 1 and 10000");
  expect((await api(baseURL!, "GET", `/webhooks/${id}`)).rate_limit).toBe(null);
  await rate.fill("25");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("saved")).toBeVisible();
  expect((await api(baseURL!, "GET", `/webhooks/${id}`)).rate_limit).toBe(25);
});

test("look a delivery up: webhook picker, time range, category in any case, the count, where it went", async ({ page, baseURL }) => {
  const a = await api(baseURL!, "POST", "/webhooks", { name: "Lookup A", url: rx.url("/ok"), event_types: ["lookup.*"] });
  const b = await api(baseURL!, "POST", "/webhooks", { name: "Lookup B", url: rx.url("/ok"), event_types: ["lookup.paid"] });
  for (const type of ["lookup.placed", "lookup.placed", "lookup.paid"]) {
    await api(baseURL!, "POST", "/events", { type, payload: {} });
  }
  await until("the lookups delivered", async () =>
    (await deliveriesOf(baseURL!, a.id)).filter((d) => d.status === "succeeded").length === 3 &&
    (await deliveriesOf(baseURL!, b.id)).filter((d) => d.status === "succeeded").length === 1);
  // A's URL changes afterwards: its rows still say where they were sent, and where it points now.
  await api(baseURL!, "PATCH", `/webhooks/${a.id}`, { url: rx.url("/ok?moved=1") });

  await signIn(page);
  await page.getByTestId("filter-webhook").selectOption({ label: "Lookup A" });
  await expect(page).toHaveURL(new RegExp(`webhook_id=${a.id}`));
  await expect(page.getByTestId("delivery-row")).toHaveCount(3);
  await expect(page.getByTestId("log-count")).toHaveText("3 deliveries");
  const first = page.getByTestId("delivery-row").first();
  await expect(first.getByTestId("url")).toHaveText(rx.url("/ok"));
  await expect(first.getByTestId("url-now")).toHaveText(`Now: ${rx.url("/ok?moved=1")}`);
  // The category box ignores case and offers the categories Herald has seen.
  await page.getByTestId("filter-category").fill("LOOKUP");
  await page.getByTestId("filter-category").dispatchEvent("change");
  await expect(page).toHaveURL(/category=LOOKUP/);
  await expect(page.getByTestId("log-count")).toHaveText("3 deliveries");
  await expect(page.locator("#log-categories option[value='lookup']")).toHaveCount(1);
  // A time range: the last 15 minutes hold them all; a range that ended an hour ago holds none.
  await page.getByTestId("filter-range").selectOption({ label: "Last 15 minutes" });
  await expect(page).toHaveURL(/range=15/);
  await expect(page.getByTestId("delivery-row")).toHaveCount(3);
  await expect(page.getByTestId("filter-since")).not.toHaveValue("");
  const hourAgo = new Date(Date.now() - 3600_000).toISOString().slice(0, 16);
  await page.getByTestId("filter-until").fill(hourAgo);
  await page.getByTestId("filter-until").dispatchEvent("change");
  await expect(page).toHaveURL(/until=/);
  await expect(page.getByTestId("delivery-log-empty")).toContainText("No deliveries match");
  await expect(page.getByTestId("log-count")).toHaveText("0 deliveries");
  await page.getByTestId("clear-filters").click();
  await expect(page.getByTestId("filter-webhook")).toHaveValue("");
  // Newest first is by creation, and the Created column shows what it sorts by.
  await expect(page.getByTestId("sort").locator("option:checked")).toHaveText("Newest first (created)");
});

test("the webhook form: every problem at once, seen event types, headers, a retry schedule, delete", async ({ page, baseURL }) => {
  await api(baseURL!, "POST", "/events", { type: "shipment.sent", payload: {} });
  await signIn(page);
  await open(page, "/webhooks/new");
  // Everything wrong at once is said at once, each under its field, and nothing is created.
  await page.getByLabel("URL").fill("ftp://example.com");
  await page.getByLabel("Timeout (ms)").fill("99");
  await page.getByLabel("Retry schedule").fill("10s, soon");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("form-problems")).toHaveText("Please check the 4 fields marked below.");
  await expect(page.getByTestId("error-name")).toContainText("must not be empty");
  await expect(page.getByTestId("error-url")).toContainText("http or https");
  await expect(page.getByTestId("error-timeout_ms")).toContainText("between 1000 and 30000");
  await expect(page.getByTestId("error-retry_schedule")).toContainText("`soon` is not a delay");
  // Event types are picked from those Herald has seen (the wildcard goes when one is picked).
  await page.getByTestId("type-chip").filter({ hasText: "shipment.sent" }).click();
  await expect(page.getByLabel("Event types")).toHaveValue("shipment.sent");
  await expect(page.getByTestId("type-chip").filter({ hasText: "shipment.sent" })).toHaveAttribute("aria-pressed", "true");
  await page.getByLabel("Name").fill("Shipping");
  await page.getByLabel("URL").fill(rx.url("/ok"));
  await page.getByLabel("Timeout (ms)").fill("5000");
  await page.getByLabel("Retry schedule").fill("10s, 5m, 2h");
  await page.getByTestId("add-header").click();
  await page.getByTestId("header-name").fill("X-Tenant");
  await page.getByTestId("header-value").fill("acme");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("new-secret")).toHaveText(/^whsec_/);
  await page.getByTestId("open-webhook").click();
  await expect(page.getByTestId("webhook-name")).toContainText("Shipping");
  const id = page.url().split("/").pop()!;
  let saved = await api(baseURL!, "GET", `/webhooks/${id}`);
  expect([saved.event_types, saved.retry_schedule, saved.header_names]).toEqual([["shipment.sent"], [10, 300, 7200], ["X-Tenant"]]);

  // Editing shows the schedule as typed and the header by name; its value, write-only, is kept
  // when left empty. A test event carries it.
  await page.getByTestId("edit-webhook").click();
  await expect(page.getByLabel("Retry schedule")).toHaveValue("10s, 5m, 2h");
  await expect(page.getByTestId("header-name")).toHaveValue("X-Tenant");
  await expect(page.getByTestId("header-value")).toHaveAttribute("placeholder", "unchanged");
  await page.getByTestId("add-header").click();
  await page.getByTestId("header-name").nth(1).fill("X-Region");
  await page.getByTestId("header-value").nth(1).fill("eu");
  await page.getByTestId("save-webhook").click();
  await expect(page.getByTestId("saved")).toBeVisible();
  saved = await api(baseURL!, "GET", `/webhooks/${id}`);
  expect(saved.header_names).toEqual(["X-Region", "X-Tenant"]);
  await open(page, `/webhooks/${id}`);
  await page.getByTestId("send-test").click();
  await until("the test event with both headers", async () =>
    rx.received.some((r) => r.body.includes(id) && r.headers["x-tenant"] === "acme" && r.headers["x-region"] === "eu"));

  // Delete asks first; declined, nothing happens; confirmed, back to the list, which says so.
  await page.getByTestId("edit-webhook").click();
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.dismiss(); });
  await page.getByTestId("delete-webhook").click();
  await expect.poll(() => asked).toContain("Delete the webhook Shipping?");
  expect((await api(baseURL!, "GET", `/webhooks/${id}`)).name).toBe("Shipping");
  page.once("dialog", (d) => d.accept());
  await page.getByTestId("delete-webhook").click();
  await expect(page.getByTestId("deleted")).toContainText("The webhook Shipping was deleted, with its deliveries.");
  await expect(page.getByTestId("delete-webhook")).toBeDisabled();
  await page.getByTestId("deleted").getByRole("link", { name: "Back to the webhooks" }).click();
  await expect(page.getByRole("heading", { name: "Webhooks" })).toBeVisible();
  await expect(page.getByTestId("webhook-row").filter({ hasText: "Shipping" })).toHaveCount(0);
  await expect(api(baseURL!, "GET", `/webhooks/${id}`)).rejects.toThrow(" 404 ");
});

test("a receiver that asks for a pause: the webhook's page says until when, and why", async ({ page, baseURL }) => {
  const w = await api(baseURL!, "POST", "/webhooks", { name: "Busy", url: rx.url("/busy"), event_types: ["busy.*"] });
  await api(baseURL!, "POST", "/events", { type: "busy.tick", payload: {} });
  await until("the 429 recorded", async () => (await api(baseURL!, "GET", `/webhooks/${w.id}/usage`)).paused_until);
  await signIn(page);
  await open(page, `/webhooks/${w.id}`);
  const paused = page.getByTestId("paused");
  await expect(paused).toContainText("Paused by the receiver until");
  await expect(paused).toContainText("429 with Retry-After: 120 s");
});

test("an ordered webhook blocked by a failed delivery: the page names it, and Skip lets the rest go", async ({ page, baseURL }) => {
  const w = await api(baseURL!, "POST", "/webhooks", { name: "Ledger", url: rx.url("/fail"), event_types: ["ledger.*"], ordered: true });
  await api(baseURL!, "POST", "/events", { type: "ledger.entry", payload: { n: 0 } });
  await until("the first entry failed", async () => (await deliveriesOf(baseURL!, w.id))[0]?.status === "failed");
  // The receiver is fixed and the webhook reactivated without recovery: the failed entry still
  // blocks the line, and the next two wait behind it.
  await api(baseURL!, "PATCH", `/webhooks/${w.id}`, { url: rx.url("/ledger") });
  await api(baseURL!, "POST", `/webhooks/${w.id}/reactivate`, {});
  await api(baseURL!, "POST", "/events", { type: "ledger.entry", payload: { n: 1 } });
  await api(baseURL!, "POST", "/events", { type: "ledger.entry", payload: { n: 2 } });
  await signIn(page);
  await open(page, `/webhooks/${w.id}`);
  await expect(page.getByTestId("order")).toHaveText("in order, one at a time");
  const blocked = page.getByTestId("line-blocked");
  await expect(blocked).toContainText("blocked by the failed delivery");
  await expect(blocked).toContainText("2 wait behind it");
  expect((await deliveriesOf(baseURL!, w.id)).filter((d) => d.status === "succeeded")).toHaveLength(0);
  await blocked.getByTestId("skip-blocker").click();
  await expect(page.getByTestId("notice")).toHaveText("Skipped; the 2 deliveries behind it are on their way.");
  await expect(page.getByTestId("line-blocked")).toHaveCount(0);
  await until("both delivered", async () =>
    (await deliveriesOf(baseURL!, w.id)).filter((d) => d.status === "succeeded").length === 2);
  const bodies = rx.received.filter((r) => r.path === "/ledger").map((r) => JSON.parse(r.body).n);
  expect(bodies).toEqual([1, 2]);
  await page.getByTestId("edit-webhook").click();
  await expect(page.getByTestId("ordered")).toBeChecked();
});

test("destructive actions ask first: Stop, Rotate (with the old secret's grace period), Revoke", async ({ page, baseURL }) => {
  const w = await api(baseURL!, "POST", "/webhooks", { name: "Careful", url: rx.url("/ok"), event_types: ["careful.*"] });
  await signIn(page);
  await open(page, `/webhooks/${w.id}`);
  // A test event goes to this webhook alone (it subscribes to careful.* only) and is a delivery
  // like any other.
  await page.getByTestId("send-test").click();
  await expect(page.getByTestId("notice")).toContainText("Test event sent");
  await until("the test event delivered", async () =>
    (await deliveriesOf(baseURL!, w.id)).some((d) => d.event_type === "herald.test" && d.status === "succeeded"));
  expect(rx.received.some((r) => r.body.includes(w.id) && r.body.includes("herald.test"))).toBe(true);
  // Stop: declined, nothing changes; confirmed, the webhook stops.
  page.once("dialog", (d) => d.dismiss());
  await page.getByTestId("stop-webhook").click();
  await expect(page.getByTestId("notice")).not.toContainText("stopped");
  expect((await api(baseURL!, "GET", `/webhooks/${w.id}`)).state).toBe("active");
  page.once("dialog", (d) => d.accept());
  await page.getByTestId("stop-webhook").click();
  await expect(page.getByTestId("notice")).toContainText("Careful is now stopped");
  expect((await api(baseURL!, "GET", `/webhooks/${w.id}`)).state).toBe("stopped");
  // Rotate: the old secret's grace period is chosen, and the dialog says it.
  const before = (await api(baseURL!, "GET", `/webhooks/${w.id}/secret`)).secret;
  await page.getByTestId("grace").selectOption("1");
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.dismiss(); });
  await page.getByTestId("rotate-secret").click();
  await expect.poll(() => asked).toContain("within 1 hours");
  expect((await api(baseURL!, "GET", `/webhooks/${w.id}/secret`)).secret).toBe(before);
  page.once("dialog", (d) => d.accept());
  await page.getByTestId("rotate-secret").click();
  await expect(page.getByTestId("notice")).toHaveText("New secret; the old one keeps signing beside it for 1 hours.");
  expect((await api(baseURL!, "GET", `/webhooks/${w.id}/secret`)).secret).not.toBe(before);
  // Revoke: declined, the key stays; confirmed, it is revoked and its "shown once" text goes.
  await open(page, "/settings");
  await page.getByLabel("New key's name").fill("temporary");
  await page.getByTestId("create-key").click();
  await expect(page.getByTestId("new-key")).toContainText("Shown once");
  const row = page.getByTestId("key-row").filter({ hasText: "temporary" });
  page.once("dialog", (d) => d.dismiss());
  await row.getByTestId("revoke").click();
  await expect(row.getByTestId("revoke")).toBeVisible();
  page.once("dialog", (d) => d.accept());
  await row.getByTestId("revoke").click();
  await expect(row).toContainText("revoked");
  await expect(page.getByTestId("new-key")).toHaveCount(0);
});

test("users from Settings: create with a role, the password shown once, change the role, disable after asking", async ({ page, browser }) => {
  await signIn(page);
  await open(page, "/settings");
  const users = page.getByTestId("users");
  await users.getByLabel("New user's email").fill("Support@Example.test");
  await users.getByLabel("Role", { exact: true }).selectOption("viewer");
  await users.getByTestId("create-user").click();
  const shown = users.getByTestId("new-user-password");
  await expect(shown).toContainText("support@example.test can sign in with this password, shown once");
  const password = (await shown.locator("code").textContent())!;
  const row = users.getByTestId("user-row").filter({ hasText: "support@example.test" });
  await expect(row.getByTestId("user-role")).toHaveValue("viewer");
  // Yourself: no role change, no disabling.
  const me = users.getByTestId("user-row").filter({ hasText: "(you)" });
  await expect(me.getByTestId("user-role")).toBeDisabled();
  await expect(me.getByTestId("disable-user")).toHaveCount(0);

  // The new user signs in with the password they were handed, and reads as a viewer.
  const other = await browser.newContext();
  const theirs = await other.newPage();
  await signIn(theirs, "support@example.test", password);
  await expect(theirs.getByTestId("current-user")).toHaveText("support@example.test");

  await row.getByTestId("user-role").selectOption("admin");
  await expect(users.getByTestId("user-outcome")).toHaveText("support@example.test is now Admin.");
  // Disable asks first; confirmed, their session ends.
  page.once("dialog", (d) => d.dismiss());
  await row.getByTestId("disable-user").click();
  await expect(row).not.toContainText("(disabled)");
  page.once("dialog", (d) => d.accept());
  await row.getByTestId("disable-user").click();
  await expect(users.getByTestId("user-outcome")).toHaveText("support@example.test is disabled; their sessions ended.");
  await expect(row).toContainText("(disabled)");
  await theirs.goto("/");
  await expect(theirs).toHaveURL(/\/login/);
  await other.close();
  await row.getByTestId("enable-user").click();
  await expect(users.getByTestId("user-outcome")).toHaveText("support@example.test can sign in again.");
  await page.reload();
  for (const kind of ["user.created", "user.role_changed", "user.disabled", "user.enabled"]) {
    await expect(page.getByTestId("activity-row").filter({ hasText: kind }).first()).toBeVisible();
  }
});

test("dashboard and settings: failing webhooks first, retention validation, activity", async ({ page, baseURL }) => {
  const w = await api(baseURL!, "POST", "/webhooks", { name: "Dash", url: rx.url("/fail"), event_types: ["dash.*"] });
  await api(baseURL!, "POST", "/events", { type: "dash.tick", payload: {} });
  await until("failed", async () => (await deliveriesOf(baseURL!, w.id))[0]?.status === "failed");
  // The failure deactivated it: the next event is held, and the dashboard counts what is held.
  await api(baseURL!, "POST", "/events", { type: "dash.tick", payload: {} });
  await until("held", async () => (await deliveriesOf(baseURL!, w.id))[0]?.status === "held");
  const held = (await api(baseURL!, "GET", "/deliveries?status=held&limit=250")).items.length;
  expect(held).toBeGreaterThan(0);
  await signIn(page);
  await page.getByRole("link", { name: "Dashboard" }).click();
  await expect(page.getByTestId("success-rate").first()).toContainText("%");
  await expect(page.getByTestId("held")).toHaveText(String(held));
  await expect(page.getByTestId("dashboard-webhooks").getByRole("row").nth(1)).toContainText("Too many errors");
  await expect(page.getByTestId("dashboard-webhooks").getByRole("row").nth(1)).toContainText(/HTTP 500 · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  // Charts over the last hour, in 5-minute steps, with their figures: for all webhooks, then
  // for Dash alone, whose attempts all failed (0% in the last step), then over a day.
  const timelines = page.getByTestId("timelines");
  await expect(timelines.getByRole("img", { name: "Success rate" })).toBeVisible();
  await expect(timelines.getByRole("img", { name: "Response time" })).toBeVisible();
  await expect(timelines.locator("path.chart-line.line-ok")).toHaveAttribute("d", /^M/);
  const steps = timelines.getByTestId("timeline-row");
  await expect(steps).toHaveCount(12);
  await timelines.getByTestId("chart-webhook").selectOption({ label: "Dash" });
  await expect(steps.last().locator("td").nth(1)).not.toHaveText("0");
  await expect(steps.last().locator("td").nth(2)).toHaveText("0.0%");
  await timelines.getByTestId("chart-span").selectOption("day");
  await expect(steps).toHaveCount(24);
  await expect(steps.last().locator("td").nth(2)).toHaveText("0.0%");
  await page.screenshot({ path: path.join(shots, "dashboard.png"), fullPage: true });

  await open(page, "/settings");
  await page.getByLabel("Deliveries and attempts (days)").fill("0");
  await page.getByTestId("save-retention").click();
  await expect(page.getByTestId("error-deliveries_days")).toContainText("between 1 and 3650");
  await page.getByLabel("Deliveries and attempts (days)").fill("14");
  await page.getByTestId("save-retention").click();
  await expect(page.getByTestId("retention-result")).toContainText("Saved");
  await page.reload();
  await expect(page.getByLabel("Deliveries and attempts (days)")).toHaveValue("14");
  await expect(page.getByTestId("activity-row").filter({ hasText: "settings.retention" }).first()).toContainText(ADMIN_EMAIL);
  await page.screenshot({ path: path.join(shots, "settings.png"), fullPage: true });
});
