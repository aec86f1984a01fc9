import { Page, Request } from "@playwright/test";
import { test, expect, gotoHydrated, signUp, uniqueName, PASSWORD } from "./fixtures";

/** Holds back the WASM until `release()` is called: the page stays as the server rendered it. */
async function holdWasm(page: Page): Promise<() => void> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await page.route("**/pkg/*.wasm", async (route) => {
    await released;
    await route.continue();
  });
  return release;
}

async function logIn(page: Page, name: string) {
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
}

test("log out, then log in again on the same page: lands inside", async ({ page }) => {
  const name = await signUp(page);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await logIn(page, name);
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("username")).toHaveText(name);
  // And once more, the same way.
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await logIn(page, name);
  await expect(page).toHaveURL(/\/inside$/);
});

test("Enter before the page is ready: no password in any URL, and the login completes once it is", async ({ page }) => {
  const name = await signUp(page);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);

  const urls: string[] = [];
  page.on("request", (r: Request) => urls.push(r.url()));
  const release = await holdWasm(page);
  await page.goto("/login", { waitUntil: "domcontentloaded" });
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByLabel("Password").press("Enter");
  await page.waitForTimeout(500);
  expect(await page.locator("body[data-hydrated=true]").count(), "still before hydration").toBe(0);
  release();
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("username")).toHaveText(name);
  const secretWord = PASSWORD.split(" ")[0];
  expect(urls.filter((u) => u.includes(secretWord) || u.includes("password="))).toEqual([]);
  expect(page.url()).not.toContain(secretWord);
});

test("values typed before the page is ready are still there after it hydrates", async ({ page }) => {
  const release = await holdWasm(page);
  await page.goto("/signup", { waitUntil: "domcontentloaded" });
  const name = uniqueName();
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  release();
  await page.waitForSelector("body[data-hydrated=true]");
  await expect(page.getByLabel("Username")).toHaveValue(name);
  await expect(page.getByLabel("Password")).toHaveValue(PASSWORD);
  // The hydrated form works with those values.
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("username")).toHaveText(name);
});

test("a hostile `next` never leaves the site; a local one keeps its query", async ({ page, baseURL }) => {
  const name = await signUp(page);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  // Nor to a page of the site that runs none of the app's code.
  for (const next of ["/%5Cevil.example", "/%09/evil.example", "//evil.example", "https://evil.example/", "/.//evil.example", "/login",
    "/healthz", "/api/openapi.json", "/pkg/baton.js", "/.well-known/jwks.json"]) {
    await gotoHydrated(page, `/login?next=${next}`);
    await logIn(page, name);
    await expect(page, `next=${next}`).toHaveURL(`${baseURL}/inside`);
    await page.getByTestId("logout").click();
    await expect(page).toHaveURL(/\/login$/);
  }
  // The guard sends a logged-out visitor to login with the whole address, query included.
  await gotoHydrated(page, "/inside?tab=sessions");
  await expect(page).toHaveURL(/\/login\?next=(%2F|\/)inside%3Ftab%3Dsessions$/);
  await logIn(page, name);
  await expect(page).toHaveURL(`${baseURL}/inside?tab=sessions`);
});

test("a server-function body that is not UTF-8 gets a 400, not a 500", async ({ request }) => {
  const res = await request.post("/api/fn/login", {
    headers: { "content-type": "application/x-www-form-urlencoded" },
    data: Buffer.from([0x75, 0x73, 0x65, 0x72, 0x6e, 0x61, 0x6d, 0x65, 0x3d, 0xff, 0xfe]),
  });
  expect(res.status()).toBe(400);
  expect((await res.json()).error).toBe("bad_request");
});

test("what another page of the site writes into the tab's name is not shown and logs nobody in", async ({ page }) => {
  await gotoHydrated(page, "/login");
  // A same-site page planted a notice text, and tokens, in the old hand-off's form.
  await page.evaluate(() => {
    window.name = "baton.handoff:" + JSON.stringify({ notice: "Your account is locked: call +1 555 0100", tokens: { access_token: "x" } });
  });
  await gotoHydrated(page, "/inside");
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByText("call +1 555")).toHaveCount(0);
  // Only Baton's own notices, by their code.
  await page.evaluate(() => {
    window.name = "baton.handoff:" + JSON.stringify({ notice: "SessionEnded" });
  });
  await gotoHydrated(page, "/login");
  await expect(page.getByTestId("notice")).toHaveText("Your session has ended. Please log in again.");
});
