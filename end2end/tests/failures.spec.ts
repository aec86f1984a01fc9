import { test, expect, gotoHydrated, signUp, setStoredExpiry, storedTokens, REFRESH, uniqueName, PASSWORD, logInElsewhere } from "./fixtures";

// Only the server saying the session ended ends it. Everything else is shown for what it is, and
// the user stays logged in.
test.use({ provokesNetworkFailures: true });

const busy = {
  status: 503,
  contentType: "application/json",
  headers: { "retry-after": "1" },
  body: JSON.stringify({ error: "server_busy", message: "The server is busy. Try again in 1 second.", retryAfter: 1 }),
};

test("a refresh that cannot reach the server says so and keeps the session", async ({ page }) => {
  const name = await signUp(page);
  const before = await storedTokens(page);
  await setStoredExpiry(page, -1000);
  await page.route(REFRESH, (route) => route.abort("internetdisconnected"));
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText("Could not reach Baton");
  await expect(page).toHaveURL(/\/inside$/);
  expect((await storedTokens(page))?.refresh_token).toBe(before?.refresh_token);
  // Back online: the same session carries on.
  await page.unroute(REFRESH);
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
});

test("a busy server is waited out once, then reported, and the session stays", async ({ page }) => {
  const name = await signUp(page);
  await setStoredExpiry(page, -1000);
  let attempts = 0;
  await page.route(REFRESH, (route) => {
    attempts++;
    return route.fulfill(busy);
  });
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText("The server is busy");
  expect(attempts).toBe(2);
  await expect(page).toHaveURL(/\/inside$/);
  await page.unroute(REFRESH);
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
});

test("a logout that fails is shown, and the user stays logged in until it works", async ({ page }) => {
  await signUp(page);
  await page.route("**/api/fn/logout", (route) => route.abort("internetdisconnected"));
  await page.getByTestId("logout").click();
  await expect(page.getByTestId("logout-error")).toContainText("You are still logged in");
  await expect(page).toHaveURL(/\/inside$/);
  expect(await storedTokens(page)).not.toBeNull();
  await page.unroute("**/api/fn/logout");
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  expect(await storedTokens(page)).toBeNull();
});

test("a failed log out everywhere and a failed revoke are shown", async ({ page, browser }) => {
  await signUp(page);
  await page.route("**/api/fn/logout_all", (route) => route.fulfill(busy));
  await page.getByTestId("logout-all").click();
  await page.getByTestId("confirm-logout-all").click();
  await expect(page.getByTestId("logout-error")).toContainText("The server is busy");
  await expect(page).toHaveURL(/\/inside$/);

  // A second device, so there is a session to revoke.
  const username = (await page.getByTestId("username").textContent())!;
  const { context: other } = await logInElsewhere(browser, username);
  await page.reload();
  await page.waitForSelector("body[data-hydrated=true]");
  await page.route("**/api/fn/revoke_session", (route) => route.abort("internetdisconnected"));
  await page.getByRole("button", { name: /^Revoke / }).click();
  await expect(page.getByTestId("revoke-error")).toContainText("Could not revoke that session");
  await other.close();
});

test("with site storage blocked the app works in the tab and says so", async ({ context }) => {
  await context.addInitScript(() => {
    Object.defineProperty(window, "localStorage", {
      get() {
        throw new DOMException("The operation is insecure.", "SecurityError");
      },
    });
  });
  const page = await context.newPage();
  const name = await signUp(page, uniqueName());
  await expect(page.getByTestId("storage-blocked")).toContainText("blocks site storage");
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
});

test("while the server asks to wait, the login button counts down", async ({ page }) => {
  await gotoHydrated(page, "/login");
  await page.route("**/api/fn/login", (route) =>
    route.fulfill({
      status: 429,
      contentType: "application/json",
      headers: { "retry-after": "3" },
      body: JSON.stringify({ error: "too_many_requests", message: "Too many attempts. Try again in 3 seconds.", retryAfter: 3 }),
    }),
  );
  await page.getByLabel("Username").fill(uniqueName());
  await page.getByLabel("Password").fill(PASSWORD);
  const button = page.getByRole("button", { name: /^Log in/ });
  await button.click();
  await expect(page.getByTestId("form-error")).toContainText("Too many attempts");
  await expect(page.getByTestId("countdown")).toContainText(/wait [123] s/);
  await expect(button).toBeDisabled();
  await expect(button).toBeEnabled({ timeout: 5000 });
  await expect(page.getByTestId("countdown")).toHaveCount(0);
});
