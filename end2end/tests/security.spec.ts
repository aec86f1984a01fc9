import { test, expect, gotoHydrated, signUp, cspViolations, PASSWORD } from "./fixtures";

test("the CSP is enforced with a fresh nonce, and a whole session runs without a violation", async ({ page }) => {
  const first = await page.goto("/login");
  const csp = first!.headers()["content-security-policy"];
  expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9_-]{22,}' 'wasm-unsafe-eval'/);
  expect(csp).not.toContain("unsafe-inline");
  const second = await page.goto("/login");
  expect(second!.headers()["content-security-policy"]).not.toBe(csp);
  await page.waitForSelector("body[data-hydrated=true]");
  expect(await cspViolations(page)).toEqual([]);

  // Sign up, land inside, reload (hydrating a guarded page), read the secret, log out.
  await signUp(page);
  expect(await cspViolations(page)).toEqual([]);
  await page.reload();
  await page.waitForSelector("body[data-hydrated=true]");
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText("Only a logged-in user");
  expect(await cspViolations(page)).toEqual([]);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  expect(await cspViolations(page)).toEqual([]);
});

test.describe("injected code", () => {
  test.use({ provokesCspViolations: true });

  test("an inline script or handler without the nonce does not run", async ({ page }) => {
    await gotoHydrated(page, "/login");
    await page.evaluate(() => {
      const script = document.createElement("script");
      script.textContent = "window.__injected = true";
      document.head.appendChild(script);
      const img = document.createElement("img");
      img.setAttribute("onerror", "window.__injected = true");
      img.src = "data:,not-an-image";
      document.body.appendChild(img);
    });
    await expect.poll(() => cspViolations(page)).toHaveLength(2);
    expect((await cspViolations(page)).every((v) => v.startsWith("script-src"))).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { __injected?: boolean }).__injected)).toBeUndefined();
  });
});

test("repeated wrong passwords make the account wait, and the form says how long", async ({ page }) => {
  const username = await signUp(page);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await gotoHydrated(page, "/login");
  await page.getByLabel("Username").fill(username);
  const error = page.getByTestId("form-error");
  // The default policy checks five failures freely, then asks for a wait.
  for (let attempt = 1; attempt <= 5; attempt++) {
    await page.getByLabel("Password").fill(`wrong password ${attempt}`);
    await page.getByRole("button", { name: "Log in" }).click();
    await expect(error).toHaveText("Wrong username or password.");
    await page.getByLabel("Password").fill("");
  }
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(error).toHaveText(/^Too many attempts\. Try again in \d+ seconds?\.$/);
  await expect(page).toHaveURL(/\/login$/);
});
