import { test, expect, gotoHydrated, signUp, storedTokens } from "./fixtures";

// DPoP (RFC 9449): the browser's sessions are bound to a non-extractable key in IndexedDB, so
// tokens copied out of localStorage are worth nothing in another browser.

test("tokens copied out of localStorage are refused in another browser, for refresh and for protected calls", async ({
  page,
  browser,
}) => {
  const name = await signUp(page);
  const tokens = (await storedTokens(page))!;
  expect((tokens as unknown as { dpop: boolean }).dpop, "the session is bound to this browser's key").toBe(true);
  await expect(page.getByTestId("bearer-session")).toHaveCount(0);

  // The thief's browser: the same tokens in its localStorage, but its own key.
  const thief = await browser.newContext({ ignoreHTTPSErrors: true });
  const stolen = await thief.newPage();
  await gotoHydrated(stolen, "/login");
  await stolen.evaluate((t) => localStorage.setItem("baton.tokens", JSON.stringify(t)), tokens);
  await gotoHydrated(stolen, "/inside");
  const refused = stolen.waitForResponse((r) => r.url().includes("/api/fn/get_secret"));
  await stolen.getByTestId("load-secret").click();
  expect((await refused).status()).toBe(401);
  await expect(stolen.getByTestId("secret-error")).toContainText("DPoP");
  await expect(stolen.getByTestId("secret")).toBeEmpty();

  // And with no browser at all: the raw REST calls.
  const api = thief.request;
  const base = new URL(page.url()).origin;
  const refresh = await api.post(`${base}/api/auth/refresh`, { data: { refreshToken: tokens.refresh_token } });
  expect(refresh.status()).toBe(401);
  expect((await refresh.json()).error).toBe("invalid_dpop_proof");
  for (const scheme of ["DPoP", "Bearer"]) {
    const secret = await api.get(`${base}/api/users/secret`, { headers: { Authorization: `${scheme} ${tokens.access_token}` } });
    expect(secret.status(), scheme).toBe(401);
  }
  await thief.close();

  // The owner's session is untouched: nothing the thief did spent or revoked it.
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
});

test("two tabs share one key: the tab that did not log in signs for the same session", async ({ context }) => {
  const first = await context.newPage();
  const name = await signUp(first);
  const second = await context.newPage();
  await gotoHydrated(second, "/inside");
  await second.getByTestId("load-secret").click();
  await expect(second.getByTestId("secret")).toContainText(`Hello ${name}`);
  // A refresh in the second tab needs a proof by the session's key too.
  await second.evaluate(() => {
    const t = JSON.parse(localStorage.getItem("baton.tokens")!);
    t.access_expires_at = Date.now() - 1000;
    localStorage.setItem("baton.tokens", JSON.stringify(t));
  });
  const renewed = second.waitForResponse((r) => r.url().includes("/api/fn/refresh"));
  await second.getByTestId("load-secret").click();
  expect((await renewed).status()).toBe(200);
  await expect(second.getByTestId("secret")).toContainText(`Hello ${name}`);
  await first.getByTestId("load-secret").click();
  await expect(first.getByTestId("secret")).toContainText(`Hello ${name}`);
});

test.describe("a browser without IndexedDB", () => {
  test("falls back to a bearer session and says so on the inside page", async ({ page }) => {
    await page.addInitScript(() => Object.defineProperty(window, "indexedDB", { value: undefined }));
    const name = await signUp(page);
    expect(((await storedTokens(page)) as unknown as { dpop: boolean }).dpop).toBe(false);
    await expect(page.getByTestId("bearer-session")).toBeVisible();
    await page.getByTestId("load-secret").click();
    await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  });
});
