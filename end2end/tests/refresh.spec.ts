import { test, expect, gotoHydrated, signUp, setStoredExpiry, bothLoadTheSecret } from "./fixtures";

// These need a server started with ACCESS_TOKEN_TTL=2: scripts/test.sh starts one and sets
// SHORT_TTL_URL (and refuses a run in which anything was skipped).
test.skip(!process.env.SHORT_TTL_URL, "needs SHORT_TTL_URL: a server with ACCESS_TOKEN_TTL=2");
test.use({ baseURL: process.env.SHORT_TTL_URL });

test("an expired access token is refreshed transparently", async ({ page }) => {
  const name = await signUp(page);
  await page.waitForTimeout(2500);
  const refreshed = page.waitForRequest((r) => r.url().includes("/api/fn/refresh"));
  await page.getByTestId("load-secret").click();
  await refreshed;
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  await expect(page).toHaveURL(/\/inside$/);
});

test("the 401 → refresh → retry path: the client sends a token the server refuses", async ({ page }) => {
  const name = await signUp(page);
  // The stored expiry an hour away: the client has no reason to refresh first, so only the
  // server's 401 can make it.
  await setStoredExpiry(page, 3_600_000);
  await page.waitForTimeout(5000); // 2 s lifetime + 2 s leeway
  const statuses: number[] = [];
  page.on("response", (r) => {
    if (r.url().includes("/api/fn/get_secret")) statuses.push(r.status());
  });
  const refreshed = page.waitForRequest((r) => r.url().includes("/api/fn/refresh"));
  await page.getByTestId("load-secret").click();
  await refreshed;
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  expect(statuses).toEqual([401, 200]);
});

test("two tabs with an expired token both load the secret and stay logged in", async ({ context }) => {
  const first = await context.newPage();
  const name = await signUp(first);
  const second = await context.newPage();
  await gotoHydrated(second, "/inside");
  await expect(second.getByTestId("username")).toHaveText(name);

  for (let round = 0; round < 3; round++) {
    await first.waitForTimeout(2500);
    await bothLoadTheSecret(first, second, name);
  }
  await second.reload();
  await second.waitForSelector("body[data-hydrated=true]");
  await expect(second.getByTestId("username")).toHaveText(name);
});

test("logging out in one tab logs out the other", async ({ context }) => {
  const first = await context.newPage();
  await signUp(first);
  const second = await context.newPage();
  await gotoHydrated(second, "/inside");
  await expect(second.getByTestId("load-secret")).toBeVisible();
  await first.getByTestId("logout").click();
  await expect(first).toHaveURL(/\/login$/);
  await expect(second).toHaveURL(/\/login/);
  await expect(second.getByTestId("notice")).toContainText("logged out in another tab");
});
