import { test, expect, gotoHydrated, signUp } from "./fixtures";

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

test("two tabs with an expired token both load the secret and stay logged in", async ({ context }) => {
  const first = await context.newPage();
  const name = await signUp(first);
  const second = await context.newPage();
  await gotoHydrated(second, "/inside");
  await expect(second.getByTestId("username")).toHaveText(name);

  for (let round = 0; round < 3; round++) {
    await first.waitForTimeout(2500);
    const loaded = [first, second].map((tab) =>
      tab.waitForResponse((r) => r.url().includes("/api/fn/get_secret") && r.status() === 200),
    );
    await Promise.all([first.getByTestId("load-secret").click(), second.getByTestId("load-secret").click()]);
    await Promise.all(loaded);
    for (const tab of [first, second]) {
      await expect(tab.getByTestId("secret")).toContainText(`Hello ${name}`);
      await expect(tab).toHaveURL(/\/inside$/);
    }
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
