import { test, expect, gotoHydrated } from "./fixtures";

// Without JavaScript, or with WebAssembly refused (iOS Lockdown Mode, a corporate filter), the
// pages say what is needed instead of spinning or answering an empty 405.

test("without JavaScript the pages say it is needed, and a posted form gets a page that says so", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false, ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto("/login");
  await expect(page.getByTestId("needs-script")).toContainText("Baton needs JavaScript");
  await page.getByLabel("Username").fill("nobody-without-script");
  await page.getByLabel("Password").fill("correct horse battery staple");
  const answer = page.waitForResponse((r) => r.request().method() === "POST");
  await page.getByRole("button", { name: "Log in" }).click();
  const res = await answer;
  expect(res.status()).toBe(200);
  await expect(page).toHaveTitle("JavaScript needed · Baton");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("JavaScript needed");
  await expect(page.getByRole("link", { name: "Back to log in" })).toBeVisible();
  // The signup form too.
  await page.goto("/signup");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("JavaScript needed");
  await context.close();
});

test("with WebAssembly refused, / and /inside say the page could not start instead of spinning", async ({ browser }) => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  await context.addInitScript(() => {
    // As in iOS Lockdown Mode: no WebAssembly at all.
    delete (window as unknown as { WebAssembly?: unknown }).WebAssembly;
  });
  const page = await context.newPage();
  for (const path of ["/", "/inside"]) {
    await page.goto(path);
    await expect(page.getByTestId("load-failed")).toBeVisible();
    await expect(page.getByRole("alert")).toContainText("this browser does not run WebAssembly");
    await expect(page.locator(".placeholder")).toBeHidden();
  }
  await context.close();
});

test("a page whose code loads says nothing of the kind", async ({ page }) => {
  await gotoHydrated(page, "/login");
  await expect(page.getByTestId("load-failed")).toBeHidden();
  await expect(page.getByTestId("needs-script")).toBeHidden();
});
