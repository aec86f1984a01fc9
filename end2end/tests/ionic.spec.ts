// The Ionic client (clients/ionic): its production build on its own origin, against a real Baton
// whose CORS_ORIGINS names that origin, with access tokens of ACCESS_TOKEN_TTL=3 seconds, no
// leeway (JWT_LEEWAY=0) and the grace window off. scripts/test.sh starts both and exports IONIC_URL and IONIC_API_URL.
import type { BrowserContext, Page } from "@playwright/test";
import { test, expect, gotoHydrated, uniqueName, PASSWORD } from "./fixtures";
import { Authenticator } from "./totp";

const API = process.env.IONIC_API_URL ?? "http://127.0.0.1:3000";
/** The API's access tokens live 3 s (scripts/test.sh); `exp` is in whole seconds and a token is
 * good through its `exp` second, so one issued at x.0 is refused from x + 4. */
const PAST_EXPIRY_MS = 4_500;

test.use({ restClient: true });

type Session = { accessToken: string; refreshToken: string; tokenType: string; expiresAt: number; keyX: string | null; unsettled?: boolean };

async function session(page: Page): Promise<Session | null> {
  return page.evaluate(() => JSON.parse(localStorage.getItem("baton.session") ?? "null"));
}

/** Moves the stored expiry far ahead: the app then sends a token the server refuses as expired. */
async function pretendFresh(page: Page) {
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem("baton.session")!);
    s.expiresAt = Date.now() + 3_600_000;
    localStorage.setItem("baton.session", JSON.stringify(s));
  });
}

async function signUp(page: Page, username = uniqueName("ion")): Promise<string> {
  await page.goto("/signup");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("username")).toHaveText(username);
  return username;
}

/** Counts the browser's calls to one endpoint of the API (not CORS preflights). */
function counter(context: BrowserContext, method: string, path: string) {
  const seen: string[] = [];
  context.on("request", (r) => {
    if (r.method() === method && r.url() === API + path) seen.push(r.url());
  });
  return { get count() { return seen.length; } };
}

/** Clicks "Load secret" `n` times in one task: `n` calls under way at once. */
async function loadSecretConcurrently(page: Page, n: number) {
  await page.evaluate((n) => {
    const button = [...document.querySelectorAll("ion-button")].find((b) => b.textContent?.trim() === "Load secret");
    for (let i = 0; i < n; i++) (button as HTMLElement).click();
  }, n);
}

test("sign up, reach the inside area, load the secret, stay after a reload, log out", async ({ page }) => {
  const name = await signUp(page);
  const stored = await session(page);
  // Bound to the app's WebCrypto key: the API's answer said DPoP.
  expect(stored?.tokenType).toBe("DPoP");
  await page.getByRole("button", { name: "Load secret" }).click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  await page.reload();
  await expect(page.getByTestId("username")).toHaveText(name);
  await page.getByRole("button", { name: "Log out", exact: true }).click();
  await expect(page).toHaveURL(/\/login$/);
  expect(await session(page)).toBeNull();
});

test("the guard sends a logged-out visitor of /inside to /login; a wrong password is told, and spends nothing", async ({ page, context }) => {
  // Whether the inside page was ever created, even for a moment.
  await page.addInitScript(() => {
    new MutationObserver(() => {
      if (document.querySelector("app-inside")) (window as unknown as { sawInside: boolean }).sawInside = true;
    }).observe(document, { childList: true, subtree: true });
  });
  await page.goto("/inside");
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByLabel("Username")).toBeVisible();
  expect(await page.evaluate(() => (window as unknown as { sawInside?: boolean }).sawInside ?? false)).toBe(false);
  const name = await signUp(page);
  await page.getByRole("button", { name: "Log out", exact: true }).click();
  await expect(page).toHaveURL(/\/login$/);
  const refreshes = counter(context, "POST", "/api/auth/refresh");
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("alert")).toContainText(/password/i);
  await expect(page).toHaveURL(/\/login$/);
  // The right password, sent with Enter from the field.
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByLabel("Password").press("Enter");
  await expect(page).toHaveURL(/\/inside$/);
  expect(refreshes.count).toBe(0);
  // A logged-in user who opens the login page goes straight in.
  await page.goto("/login");
  await expect(page).toHaveURL(/\/inside$/);
});

test("five concurrent calls with an expired access token make one refresh", async ({ page, context }) => {
  const name = await signUp(page);
  await page.waitForTimeout(PAST_EXPIRY_MS);
  const refreshes = counter(context, "POST", "/api/auth/refresh");
  const secrets: number[] = [];
  page.on("response", (r) => {
    if (r.request().method() === "GET" && r.url() === `${API}/api/users/secret`) secrets.push(r.status());
  });
  const before = (await session(page))!.refreshToken;
  await loadSecretConcurrently(page, 5);
  await expect.poll(() => secrets.length).toBe(5);
  expect(secrets).toEqual([200, 200, 200, 200, 200]);
  expect(refreshes.count).toBe(1);
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  // The rotated refresh token was stored with the new access token.
  expect((await session(page))!.refreshToken).not.toBe(before);
});

test("a 401 that says the access token was refused is refreshed and retried once, never twice", async ({ page, context }) => {
  const name = await signUp(page);
  const refreshes = counter(context, "POST", "/api/auth/refresh");
  const secrets: number[] = [];
  page.on("response", (r) => {
    if (r.request().method() === "GET" && r.url() === `${API}/api/users/secret`) secrets.push(r.status());
  });
  // The server's clock says expired, the app's says fresh: the first call is refused.
  await page.waitForTimeout(PAST_EXPIRY_MS);
  await pretendFresh(page);
  await page.getByRole("button", { name: "Load secret" }).click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  expect(secrets).toEqual([401, 200]);
  expect(refreshes.count).toBe(1);

  // A token the server refuses even after the refresh: one retry, then the error is shown.
  secrets.length = 0;
  await page.waitForTimeout(PAST_EXPIRY_MS);
  await pretendFresh(page);
  await page.route(`${API}/api/users/secret`, (route) =>
    route.request().method() === "GET"
      ? route.continue({ headers: { ...route.request().headers(), authorization: "DPoP not-a-token" } })
      : route.continue(),
  );
  await page.getByRole("button", { name: "Load secret" }).click();
  await expect(page.getByRole("alert")).toBeVisible();
  await page.waitForTimeout(500);
  expect(secrets).toEqual([401, 401]);
  expect(refreshes.count).toBe(2);
  await expect(page).toHaveURL(/\/inside$/);
});

test("log out everywhere in the Leptos app ends the Ionic session at its next call", async ({ page, context }) => {
  const name = await signUp(page);
  const leptos = await context.newPage();
  await gotoHydrated(leptos, `${API}/login`);
  await leptos.getByLabel("Username").fill(name);
  await leptos.getByLabel("Password").fill(PASSWORD);
  await leptos.getByRole("button", { name: "Log in" }).click();
  await expect(leptos).toHaveURL(/\/inside$/);
  await leptos.getByRole("button", { name: "Log out everywhere" }).click();
  await leptos.getByRole("button", { name: "End all sessions" }).click();
  await expect(leptos).toHaveURL(/\/login/);
  await page.getByRole("button", { name: "Load secret" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("status")).toContainText("Your session has ended");
  expect(await session(page)).toBeNull();
});

/**
 * Makes each page of `context` read the other pages' writes of the session a second late, as tabs
 * in different renderer processes may (their own writes at once): a tab that gets the refresh
 * lock then still reads the token another tab has just spent, whatever order the lock and the
 * storage event arrive in.
 */
async function lagOtherTabsWrites(context: BrowserContext) {
  await context.addInitScript(() => {
    const KEY = "baton.session";
    const { getItem, setItem, removeItem } = Storage.prototype;
    let view: string | null | undefined;
    let timer: ReturnType<typeof setTimeout> | null = null;
    Storage.prototype.getItem = function (key: string) {
      if (key !== KEY) return getItem.call(this, key);
      const actual = getItem.call(this, key);
      if (view === undefined) view = actual;
      if (actual !== view && !timer) {
        timer = setTimeout(() => {
          view = getItem.call(localStorage, KEY);
          timer = null;
        }, 1_000);
      }
      return view;
    };
    Storage.prototype.setItem = function (key: string, value: string) {
      setItem.call(this, key, value);
      if (key === KEY) view = value;
    };
    Storage.prototype.removeItem = function (key: string) {
      removeItem.call(this, key);
      if (key === KEY) view = null;
    };
  });
}

test("two tabs share one session: with the grace window off, their refreshes take turns", async ({ page, context }) => {
  // The tab that waits for the lock must learn from the lock manager, not from storage, that
  // the token was spent (see clients/ionic/src/app/auth/tab-lock.ts).
  await lagOtherTabsWrites(context);
  const name = await signUp(page);
  const second = await context.newPage();
  await second.goto("/inside");
  await expect(second.getByTestId("username")).toHaveText(name);
  const refreshes = counter(context, "POST", "/api/auth/refresh");
  for (let round = 0; round < 2; round++) {
    await page.waitForTimeout(PAST_EXPIRY_MS);
    await Promise.all([loadSecretConcurrently(page, 2), loadSecretConcurrently(second, 2)]);
    for (const tab of [page, second]) await expect(tab.getByTestId("secret")).toContainText(`Hello ${name}`);
    // One refresh per round: the tab that waited for the lock took the tokens the other stored.
    await expect.poll(() => refreshes.count).toBe(round + 1);
  }
  await page.waitForTimeout(1_000);
  expect(refreshes.count).toBe(2);
  for (const tab of [page, second]) await expect(tab).toHaveURL(/\/inside$/);
});

test("logging out in one tab sends the other to the login page", async ({ page, context }) => {
  const name = await signUp(page);
  const second = await context.newPage();
  await second.goto("/inside");
  await expect(second.getByTestId("username")).toHaveText(name);
  await second.getByRole("button", { name: "Log out", exact: true }).click();
  await expect(page).toHaveURL(/\/login$/);
});

test("DPoP-bound: the stored tokens are refused from outside, and nothing is spent", async ({ page }) => {
  const name = await signUp(page);
  const stored = (await session(page))!;
  expect(stored.tokenType).toBe("DPoP");
  const outside = page.request;
  for (const authorization of [`DPoP ${stored.accessToken}`, `Bearer ${stored.accessToken}`]) {
    const res = await outside.get(`${API}/api/users/secret`, { headers: { authorization } });
    expect(res.status(), authorization.split(" ")[0]).toBe(401);
  }
  const refresh = await outside.post(`${API}/api/auth/refresh`, { data: { refreshToken: stored.refreshToken } });
  expect(refresh.status()).toBe(401);
  expect((await refresh.json()).error).toBe("invalid_dpop_proof");
  // The app, which holds the key, goes on as before: its refresh token was not spent.
  await page.waitForTimeout(PAST_EXPIRY_MS);
  await page.getByRole("button", { name: "Load secret" }).click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
});

test("where the key cannot be kept (no IndexedDB), the session is a bearer session and works", async ({ page }) => {
  await page.addInitScript(() => Object.defineProperty(window, "indexedDB", { value: undefined }));
  const name = await signUp(page);
  expect((await session(page))?.tokenType).toBe("Bearer");
  await page.waitForTimeout(PAST_EXPIRY_MS);
  await page.getByRole("button", { name: "Load secret" }).click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
});

test("with site storage blocked, the session lives in the tab: it renews, and ends with the page", async ({ page }) => {
  await page.addInitScript(() =>
    Object.defineProperty(window, "localStorage", {
      get() {
        throw new DOMException("The operation is insecure.", "SecurityError");
      },
    }),
  );
  const name = await signUp(page);
  await page.waitForTimeout(PAST_EXPIRY_MS);
  await page.getByRole("button", { name: "Load secret" }).click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  await page.reload();
  await expect(page).toHaveURL(/\/login$/);
});

test("a login in one tab takes another tab's login page inside", async ({ page, context }) => {
  const other = await context.newPage();
  await other.goto("/login");
  await expect(other.getByLabel("Username")).toBeVisible();
  const name = await signUp(page);
  await expect(other).toHaveURL(/\/inside$/);
  await expect(other.getByTestId("username")).toHaveText(name);
});

test.describe("renewals on a bad network", () => {
  test.use({ provokesNetworkFailures: true });

  /** CORS headers for an answer the test writes in Baton's place. */
  const cors = (page: Page) => ({
    "access-control-allow-origin": new URL(page.url()).origin,
    "access-control-expose-headers": "retry-after, www-authenticate",
  });

  test("a refresh answered 503 is waited out (Retry-After), asked about and tried again: the session goes on", async ({ page, context }) => {
    const name = await signUp(page);
    await page.waitForTimeout(PAST_EXPIRY_MS);
    const refreshes = counter(context, "POST", "/api/auth/refresh");
    const states = counter(context, "POST", "/api/auth/refresh/state");
    let busy = 1;
    await page.route(`${API}/api/auth/refresh`, (route) =>
      route.request().method() === "POST" && busy-- > 0
        ? route.fulfill({
            status: 503,
            headers: { ...cors(page), "retry-after": "1" },
            contentType: "application/json",
            body: JSON.stringify({ error: "server_busy", message: "The server is busy. Try again shortly." }),
          })
        : route.continue(),
    );
    const before = (await session(page))!.refreshToken;
    await page.getByRole("button", { name: "Load secret" }).click();
    await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
    // A 503 may have come after the rotation: the token is asked about before it is presented again.
    expect([refreshes.count, states.count]).toEqual([2, 1]);
    expect((await session(page))!.refreshToken).not.toBe(before);
  });

  test("a renewal cut off before Baton saw it is asked about, then made: the same session goes on", async ({ page, context }) => {
    const name = await signUp(page);
    await page.waitForTimeout(PAST_EXPIRY_MS);
    const refreshes = counter(context, "POST", "/api/auth/refresh");
    const states = counter(context, "POST", "/api/auth/refresh/state");
    let cut = 1;
    await page.route(`${API}/api/auth/refresh`, (route) =>
      route.request().method() === "POST" && cut-- > 0 ? route.abort("connectionreset") : route.continue(),
    );
    await page.getByRole("button", { name: "Load secret" }).click();
    await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
    expect([refreshes.count, states.count]).toEqual([2, 1]);
    expect((await session(page))!.unsettled).toBeFalsy();
  });

  test("a renewal whose answer was lost after Baton acted is asked about, never presented again", async ({ page, context }) => {
    await signUp(page);
    await page.waitForTimeout(PAST_EXPIRY_MS);
    const refreshes = counter(context, "POST", "/api/auth/refresh");
    const states = counter(context, "POST", "/api/auth/refresh/state");
    let cut = 1;
    await page.route(`${API}/api/auth/refresh`, async (route) => {
      if (route.request().method() !== "POST" || cut-- <= 0) return route.continue();
      await route.fetch(); // Baton spends the token and answers; the answer never arrives.
      return route.abort("connectionreset");
    });
    await page.getByRole("button", { name: "Load secret" }).click();
    // With the grace window off the lost answer cannot be had again: the session ends as lost
    // (not as a stolen token), and the app says why.
    await expect(page).toHaveURL(/\/login$/);
    await expect(page.getByRole("status")).toContainText("Your connection dropped");
    expect([refreshes.count, states.count]).toEqual([1, 1]);
  });
});

test("an account with one-time codes logs in with a code, proved by the password step's key", async ({ page, request }) => {
  // Codes turned on over REST (the app has no account card).
  const name = uniqueName("ion");
  const signup = await request.post(`${API}/api/auth/signup`, { data: { username: name, password: PASSWORD } });
  expect(signup.ok()).toBe(true);
  const headers = { authorization: `Bearer ${(await signup.json()).accessToken}` };
  const setup = await request.post(`${API}/api/account/totp`, { headers, data: { password: PASSWORD } });
  expect(setup.ok()).toBe(true);
  const app = new Authenticator((await setup.json()).secret);
  const confirmed = await request.post(`${API}/api/account/totp/confirm`, { headers, data: { code: await app.next() } });
  expect(confirmed.ok()).toBe(true);

  await page.goto("/login");
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByText("This account also asks for a one-time code.")).toBeVisible();
  expect(await session(page), "no tokens before the code").toBeNull();
  // The code the setup took is spent: told, and the challenge stays for another.
  await page.getByLabel("Code").fill(app.last());
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByRole("alert")).toContainText("not right, or was used already");
  await page.getByLabel("Code").fill(await app.next());
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("username")).toHaveText(name);
  // The challenge was bound to the password step's key, and so is the session.
  expect((await session(page))?.tokenType).toBe("DPoP");
  await page.getByRole("button", { name: "Load secret" }).click();
  await expect(page.getByTestId("secret")).toContainText(name);
});
