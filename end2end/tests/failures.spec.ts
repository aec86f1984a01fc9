import { Page } from "@playwright/test";
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
  const asked: string[] = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/api/fn/refresh_state")) asked.push(r.url());
  });
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret-error")).toContainText("Could not reach Baton");
  await expect(page).toHaveURL(/\/inside$/);
  // The request may have reached the server: the token is kept, marked until the server says
  // what became of it (here: it never arrived, so it was tried once more).
  const kept = (await storedTokens(page)) as unknown as { refresh_token: string; unsettled: boolean };
  expect(kept.refresh_token).toBe(before?.refresh_token);
  expect(kept.unsettled).toBe(true);
  expect(asked.length).toBe(1);
  // Back online: the server says the token is unspent, and the same session carries on.
  await page.unroute(REFRESH);
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  expect(asked.length).toBe(2);
  expect(((await storedTokens(page)) as unknown as { unsettled: boolean }).unsettled).toBe(false);
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
  await expect(page.getByTestId("secret-error")).toContainText("The server is busy");
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

test("with site storage blocked the app works in the tab, says what ends it, and no token crosses in the tab's name", async ({
  context,
}) => {
  await context.addInitScript(() => {
    Object.defineProperty(window, "localStorage", {
      get() {
        throw new DOMException("The operation is insecure.", "SecurityError");
      },
    });
    // What the previous page left in the tab's name, as the next page finds it.
    (window as unknown as { __nameOnArrival: string }).__nameOnArrival = window.name;
  });
  const nameOnArrival = (page: Page) => page.evaluate(() => (window as unknown as { __nameOnArrival: string }).__nameOnArrival);
  const page = await context.newPage();
  const name = await signUp(page, uniqueName());
  await expect(page.getByTestId("storage-blocked")).toContainText("reloading the page");
  // The signup handed the session to /inside by a one-time code: never the tokens themselves.
  const handed = await nameOnArrival(page);
  expect(handed).toContain('"code":');
  expect(handed).not.toMatch(/brt_|eyJ|access_token|refresh_token/);
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  // A plain link of the site (the logo) keeps the session too: / sends it inside.
  await page.getByRole("link", { name: "Baton" }).first().click();
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("username")).toHaveText(name);
  // A reload ends it, as the page said.
  await page.reload();
  await expect(page).toHaveURL(/\/login/);
  await signUp(page, uniqueName());
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

test("a failed Load secret is an alert of its own, in words a person can act on", async ({ page }) => {
  await signUp(page);
  // A proxy's error page where Baton's answer should be.
  await page.route("**/api/fn/get_secret", (route) =>
    route.fulfill({ status: 200, contentType: "text/html", body: "<html><body>Bad gateway</body></html>" }),
  );
  await page.getByTestId("load-secret").click();
  const error = page.getByTestId("secret-error");
  await expect(error).toContainText("did not arrive whole");
  await expect(error).toHaveAttribute("role", "alert");
  await expect(error).not.toContainText(/could not be read|expected|serde|line \d/i);
  await expect(page.getByTestId("secret")).toBeEmpty();
  await page.unroute("**/api/fn/get_secret");
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText("Only a logged-in user");
  await expect(error).toBeEmpty();
});
