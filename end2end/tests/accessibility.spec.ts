import AxeBuilder from "@axe-core/playwright";
import { Page } from "@playwright/test";
import { test, expect, gotoHydrated, signUp, uniqueName, logInElsewhere } from "./fixtures";

async function seriousViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

for (const colorScheme of ["light", "dark"] as const) {
  test(`axe finds no serious or critical violation on /login, /signup and /inside (${colorScheme})`, async ({ page }) => {
    await page.emulateMedia({ colorScheme });
    for (const path of ["/login", "/signup"]) {
      await gotoHydrated(page, path);
      // With the form's errors showing too: they have their own colours.
      await page.getByRole("button", { name: path === "/login" ? "Log in" : "Create account" }).click();
      await expect(page.getByText(/Username must be/)).toBeVisible();
      expect(await seriousViolations(page), path).toEqual([]);
    }
    await signUp(page);
    await expect(page.getByTestId("sessions")).not.toContainText("Loading");
    expect(await seriousViolations(page), "/inside").toEqual([]);
  });
}

// A first visit in dark mode, scanned as soon as the page is live, with nothing clicked or hovered
// (the scans above click first, and so hover the form's button).
test("axe finds no serious or critical violation on a fresh /login, /signup and the mailed links' pages in dark mode", async ({ browser }) => {
  const context = await browser.newContext({ colorScheme: "dark", ignoreHTTPSErrors: true });
  const page = await context.newPage();
  for (const path of ["/login", "/signup", "/forgot", "/reset?token=blk_x", "/verify?token=blk_x"]) {
    await gotoHydrated(page, path);
    // The verify page has said what became of its link.
    if (path.startsWith("/verify")) await expect(page.getByTestId("link-error")).toBeVisible();
    expect(await seriousViolations(page), path).toEqual([]);
  }
  await context.close();
});

test("a failed submit moves focus to what needs fixing", async ({ page }) => {
  await gotoHydrated(page, "/login");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByLabel("Username")).toBeFocused();
  await page.getByLabel("Username").fill(uniqueName());
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByLabel("Password")).toBeFocused();
  // Wrong credentials are about the whole form: focus goes to its error.
  await page.getByLabel("Password").fill("not the right password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByTestId("form-error")).toContainText("Wrong username or password");
  await expect(page.getByTestId("form-error")).toBeFocused();
});

// Pages are separate loads (islands): the browser announces the new page by its title, and
// focus starts at its form, as on any first visit.
test("a link opens the next page named by its title, focus at its first field", async ({ page }) => {
  await gotoHydrated(page, "/login");
  await page.getByRole("link", { name: "Create an account" }).click();
  await expect(page).toHaveTitle("Create your account · Baton");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Create your account");
  await expect(page.getByLabel("Username")).toBeFocused();
});

test("the password field: a show toggle, the hint in its description, no cut by maxlength", async ({ page }) => {
  await gotoHydrated(page, "/signup");
  const password = page.getByLabel("Password");
  await expect(password).toHaveAttribute("type", "password");
  const toggle = page.getByRole("button", { name: "Show password" });
  await toggle.click();
  await expect(password).toHaveAttribute("type", "text");
  await expect(page.getByRole("button", { name: "Hide password" })).toHaveAttribute("aria-pressed", "true");
  await expect(password).toHaveAccessibleDescription(/8 to 128 characters/);
  // 100 characters the server accepts are 200 UTF-16 units: a maxlength of 128 would cut them.
  const long = "🔑".repeat(100);
  await password.fill(long);
  await expect(password).toHaveValue(long);
  const name = uniqueName();
  await page.getByLabel("Username").fill(name);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/inside$/);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await gotoHydrated(page, "/login");
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(long);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/inside$/);
});

test("Caps Lock is pointed out while typing the password", async ({ page }) => {
  await gotoHydrated(page, "/login");
  // Headless Chromium keeps no Caps Lock state of its own: the key events carry it.
  const password = page.getByLabel("Password");
  await password.dispatchEvent("keydown", { key: "A", modifierCapsLock: true });
  await expect(page.getByText("Caps Lock is on.")).toBeVisible();
  await password.dispatchEvent("keyup", { key: "a", modifierCapsLock: false });
  await expect(page.getByText("Caps Lock is on.")).toHaveCount(0);
});

test("log out everywhere asks first; revoke buttons name the device", async ({ page, browser }) => {
  const name = await signUp(page);
  const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
  const { context: other, page: phone } = await logInElsewhere(browser, name, { userAgent: firefox });

  await page.reload();
  await page.waitForSelector("body[data-hydrated=true]");
  await expect(page.getByRole("button", { name: /^Revoke Firefox at 127\.0\.0\.1, last active / })).toBeVisible();

  await page.getByRole("button", { name: "Log out everywhere" }).click();
  await expect(page.getByText("This logs you out on every device")).toBeVisible();
  await expect(page).toHaveURL(/\/inside$/);
  await page.getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByText("This logs you out on every device")).toBeHidden();
  await page.getByRole("button", { name: "Log out everywhere" }).click();
  await page.getByRole("button", { name: "End all sessions" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await phone.getByTestId("load-secret").click();
  await expect(phone).toHaveURL(/\/login/);
  await other.close();
});

test("on a touch screen the login page opens no keyboard by itself", async ({ browser }) => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 800 }, hasTouch: true, isMobile: true, ignoreHTTPSErrors: true });
  const page = await phone.newPage();
  await gotoHydrated(page, "/login");
  await expect(page.getByLabel("Username")).not.toBeFocused();
  expect(await page.evaluate(() => document.activeElement?.tagName)).toBe("BODY");
  await phone.close();
});

test("a long username fits the top bar of a phone", async ({ browser }) => {
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true, ignoreHTTPSErrors: true });
  const page = await phone.newPage();
  const name = uniqueName("w").padEnd(32, "w");
  await signUp(page, name);
  await expect(page.getByTestId("nav-user")).toHaveText(name);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, "the page scrolls sideways").toBeLessThanOrEqual(0);
  const bar = await page.locator("header.topbar").boundingBox();
  const user = await page.getByTestId("nav-user").boundingBox();
  expect(user!.x + user!.width).toBeLessThanOrEqual(bar!.x + bar!.width);
  await phone.close();
});
