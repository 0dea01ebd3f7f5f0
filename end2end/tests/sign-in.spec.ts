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
  for (const column of ["Webhook", "Event", "Status", "Response code", "Attempted at", "Duration", "Actions"]) {
    await expect(table.getByRole("columnheader", { name: column })).toBeVisible();
  }
  await expect(page.getByTestId("delivery-log-empty")).toContainText("No deliveries yet");

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
