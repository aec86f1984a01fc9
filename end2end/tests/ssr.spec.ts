import { test, expect, gotoHydrated } from "./fixtures";

test("the page arrives server-rendered, then hydrates and responds", async ({ page, request }) => {
  // The HTML itself already holds the page's content, before any script runs.
  const html = await (await request.get("/login")).text();
  // (A debug build marks view boundaries with `<!>` comments; a release build does not.)
  expect(html).toMatch(/<h1>Log in(<!>)?<\/h1>/);
  expect(html).toContain('autocomplete="username"');
  expect(html).toMatch(/\/pkg\/baton\.[0-9a-f]{16}(_bg)?\.wasm/);

  const wasm = page.waitForResponse((r) => r.url().endsWith(".wasm") && r.ok());
  await gotoHydrated(page, "/login");
  await wasm;

  // Inline validation only works once hydrated.
  await page.getByLabel("Username").fill("a!");
  await page.getByLabel("Password").focus();
  await expect(page.locator("#username-error")).toContainText("3 to 32 characters");
  await page.getByLabel("Username").fill("alice");
  await expect(page.locator("#username-error")).toHaveText("");
});

test.describe("a 404", () => {
  test.use({ expected404s: ["/no/such/page"] });

  test("unknown pages are a real 404", async ({ page }) => {
    const res = await page.goto("/no/such/page");
    expect(res?.status()).toBe(404);
    await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
  });
});
