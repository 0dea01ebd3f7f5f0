import { test as base, expect, Page } from "@playwright/test";
import { ADMIN_EMAIL, ADMIN_PASSWORD } from "../constants";

export { expect, ADMIN_EMAIL, ADMIN_PASSWORD };

/** Fails the test on any console error or uncaught exception in the page. */
export const test = base.extend<{ failOnConsoleErrors: void }>({
  failOnConsoleErrors: [
    async ({ page }, use) => {
      const problems: string[] = [];
      page.on("console", (msg) => {
        if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
      });
      page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
      await use();
      expect(problems, "the browser reported errors").toEqual([]);
    },
    { auto: true },
  ],
});

export async function signIn(page: Page, email = ADMIN_EMAIL, password = ADMIN_PASSWORD) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByTestId("login-submit").click();
}
