import { BrowserContext, Page } from "@playwright/test";
import { test, expect, gotoHydrated, signUp, setStoredExpiry, storedTokens, bothLoadTheSecret, REFRESH } from "./fixtures";

// The servers of scripts/test.sh run with REFRESH_REUSE_GRACE=0: a refresh token spent twice ends
// the session at once, so these pass only if the tabs coordinate by themselves.

async function twoTabs(context: BrowserContext): Promise<[Page, Page, string]> {
  const first = await context.newPage();
  const name = await signUp(first);
  const second = await context.newPage();
  await gotoHydrated(second, "/inside");
  await expect(second.getByTestId("username")).toHaveText(name);
  return [first, second, name];
}

/** Both tabs see an expired access token. (Each tab writes: a tab that keeps the tokens in memory
 * hears only of the other's writes.) */
async function expireInBoth(first: Page, second: Page) {
  await setStoredExpiry(first, -1000);
  await setStoredExpiry(second, -1000);
}

async function bothLoadTheSecretAtOnce(first: Page, second: Page, name: string) {
  // A slow network: each refresh takes 300 ms, so the two tabs' refreshes overlap.
  for (const tab of [first, second]) {
    await tab.route(REFRESH, async (route) => {
      await new Promise((r) => setTimeout(r, 300));
      await route.continue();
    });
  }
  for (let round = 0; round < 3; round++) {
    await expireInBoth(first, second);
    await bothLoadTheSecret(first, second, name);
  }
  await second.reload();
  await second.waitForSelector("body[data-hydrated=true]");
  await expect(second.getByTestId("username")).toHaveText(name);
}

test("two tabs whose token has expired load the secret at the same moment, three times", async ({ context }) => {
  const [first, second, name] = await twoTabs(context);
  await bothLoadTheSecretAtOnce(first, second, name);
});

test("without Web Locks (a plain-HTTP LAN address) the tabs still take turns", async ({ context }) => {
  await context.addInitScript(() => {
    delete (Navigator.prototype as unknown as { locks?: unknown }).locks;
  });
  const [first, second, name] = await twoTabs(context);
  expect(await first.evaluate(() => "locks" in navigator)).toBe(false);
  await bothLoadTheSecretAtOnce(first, second, name);
});

test("a refresh held back 25 s in one tab: the other tab waits for it instead of spending the token", async ({
  context,
}) => {
  test.setTimeout(120_000);
  const [first, second, name] = await twoTabs(context);
  await expireInBoth(first, second);
  let held = 0;
  await first.route(REFRESH, async (route) => {
    if (held++ === 0) await new Promise((r) => setTimeout(r, 25_000));
    await route.continue();
  });
  const sent = first.waitForRequest((r) => r.url().includes("/api/fn/refresh"));
  await first.getByTestId("load-secret").click();
  await sent;
  await second.waitForTimeout(1000);
  await second.getByTestId("load-secret").click();
  for (const tab of [first, second]) {
    await expect(tab.getByTestId("secret")).toContainText(`Hello ${name}`, { timeout: 45_000 });
    await expect(tab).toHaveURL(/\/inside$/);
  }
  // The session survived: a fresh page load is still logged in.
  await second.reload();
  await second.waitForSelector("body[data-hydrated=true]");
  await expect(second.getByTestId("username")).toHaveText(name);
});

for (const where of ["this tab", "another tab"]) {
  test(`a refresh that answers after a logout in ${where} does not bring the session back`, async ({ context }) => {
    const [first, second] = await twoTabs(context);
    const leaving = where === "this tab" ? first : second;
    await expireInBoth(first, second);
    // The server rotates the token at once; its answer reaches the page only after the logout.
    let answered!: () => void;
    const serverAnswered = new Promise<void>((r) => (answered = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await first.route(REFRESH, async (route) => {
      const response = await route.fetch();
      answered();
      await gate;
      await route.fulfill({ response });
    });
    await first.getByTestId("load-secret").click();
    await serverAnswered;
    await leaving.getByTestId("logout").click();
    await expect(leaving).toHaveURL(/\/login$/);
    release();
    await expect(first).toHaveURL(/\/login/);
    await first.waitForTimeout(1000);
    for (const tab of [first, second]) {
      expect(await storedTokens(tab)).toBeNull();
      await expect(tab).toHaveURL(/\/login/);
    }
  });
}

test.describe("a renewal whose answer is lost", () => {
test.use({ provokesNetworkFailures: true });
test("an answer cut off after the server acted: no tab presents the token again; the session ends as a logout", async ({
  context,
}) => {
  const [first, second] = await twoTabs(context);
  await expireInBoth(first, second);
  const calls: string[] = [];
  for (const tab of [first, second]) {
    tab.on("request", (r) => {
      const m = r.url().match(/\/api\/fn\/(refresh|refresh_state|logout)$/);
      if (m) calls.push(m[1]);
    });
  }
  // The server rotates the token; its answer never reaches the page.
  await first.route(REFRESH, async (route) => {
    await route.fetch();
    await route.abort("connectionreset");
  });
  await first.getByTestId("load-secret").click();
  // Without a grace window (the test servers), what the lost answer carried cannot be had again:
  // the tab asks what became of the token, and ends the session cleanly instead of reusing it.
  await expect(first).toHaveURL(/\/login/);
  await expect(first.getByTestId("notice")).toContainText("connection dropped while your session was being renewed");
  await expect(second).toHaveURL(/\/login/);
  await expect(second.getByTestId("notice")).toContainText("logged out in another tab");
  // One refresh, by the first tab; the other tab never presented the token.
  expect(calls).toEqual(["refresh", "refresh_state", "logout"]);
});
});
