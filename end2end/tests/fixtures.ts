import { test as base, expect, Browser, BrowserContextOptions, Page, ConsoleMessage } from "@playwright/test";

/** Network 4xx answers that a test provokes on purpose (a wrong password is a 401, too many is a
 * 429): Chromium logs each as a console error although nothing failed. Only these are tolerated,
 * and only for the server-function endpoints. */
const EXPECTED_STATUS = /^Failed to load resource: the server responded with a status of (400|401|409|422|429)/;
/** What a test that cuts the network or makes the server busy provokes on purpose. */
const PROVOKED_FAILURE = /^Failed to load resource: (net::ERR_|the server responded with a status of 503)/;

function problem(msg: ConsoleMessage, expectedPages: string[], cspTest: boolean, failures: boolean, rest: boolean): string | null {
  if (msg.type() !== "error" && msg.type() !== "warning") return null;
  const url = msg.location().url;
  if (EXPECTED_STATUS.test(msg.text()) && url.includes(rest ? "/api/" : "/api/fn/")) return null;
  if (failures && PROVOKED_FAILURE.test(msg.text()) && url.includes(rest ? "/api/" : "/api/fn/")) return null;
  if (/status of 404/.test(msg.text()) && expectedPages.some((p) => url.endsWith(p))) return null;
  if (cspTest && /Content Security Policy/.test(msg.text())) return null;
  return `${msg.type()}: ${msg.text()} (${url})`;
}

/** Every page of a test fails the test on a console error or warning (a CSP violation is one),
 * or an uncaught exception. `expected404s` lists paths a test visits on purpose to see them answer
 * 404; `provokesCspViolations` is for the test that checks the CSP blocks what it should. */
export const test = base.extend<{
  consoleProblems: string[];
  expected404s: string[];
  provokesCspViolations: boolean;
  provokesNetworkFailures: boolean;
  /** A REST client (the Ionic app): the same expected statuses, from any `/api/` endpoint. */
  restClient: boolean;
}>({
  expected404s: [[], { option: true }],
  provokesCspViolations: [false, { option: true }],
  provokesNetworkFailures: [false, { option: true }],
  restClient: [false, { option: true }],
  consoleProblems: [
    async ({ context, expected404s, provokesCspViolations, provokesNetworkFailures, restClient }, use) => {
      const problems: string[] = [];
      // Every document counts its CSP violations, for `cspViolations` below.
      await context.addInitScript(() => {
        const w = window as unknown as { __cspViolations: string[] };
        w.__cspViolations = [];
        document.addEventListener("securitypolicyviolation", (e) =>
          w.__cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`),
        );
      });
      const watch = (page: Page) => {
        page.on("console", (msg) => {
          const p = problem(msg, expected404s, provokesCspViolations, provokesNetworkFailures, restClient);
          if (p) problems.push(p);
        });
        page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
      };
      context.pages().forEach(watch);
      context.on("page", watch);
      await use(problems);
      expect(problems, "console errors and warnings").toEqual([]);
    },
    { auto: true },
  ],
});
export { expect };

/** Navigates and waits until the WASM has hydrated the page: a click before that is lost. */
export async function gotoHydrated(page: Page, path: string) {
  await page.goto(path);
  await page.waitForSelector("body[data-hydrated=true]");
}

/** The CSP violations the current document has reported so far. */
export async function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations);
}

export function uniqueName(prefix = "u"): string {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

export const PASSWORD = "correct horse battery staple";

export async function signUp(page: Page, username = uniqueName()): Promise<string> {
  await gotoHydrated(page, "/signup");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("username")).toHaveText(username);
  return username;
}

/** The tokens as this browser stores them (`ui::session::store`). */
export type StoredTokens = { refresh_token: string; access_token: string; access_expires_at: number };

export async function storedTokens(page: Page): Promise<StoredTokens | null> {
  return page.evaluate(() => JSON.parse(localStorage.getItem("baton.tokens") ?? "null"));
}

/** Moves the stored expiry of the access token: into the past makes the next call refresh first
 * (the proactive path); into the future makes the client send a token the server refuses (the
 * 401 → refresh → retry path). The token itself is unchanged. */
export async function setStoredExpiry(page: Page, msFromNow: number) {
  await page.evaluate((ms) => {
    const t = JSON.parse(localStorage.getItem("baton.tokens")!);
    t.access_expires_at = Date.now() + ms;
    localStorage.setItem("baton.tokens", JSON.stringify(t));
  }, msFromNow);
}

/** Only these paths' requests. */
export const REFRESH = "**/api/fn/refresh";

/** Both tabs click "Load secret" at the same moment; both must show it and stay inside. */
export async function bothLoadTheSecret(first: Page, second: Page, name: string) {
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

/** Logs `username` in from another browser (another device); close the context when done. */
export async function logInElsewhere(browser: Browser, username: string, options: BrowserContextOptions = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  await gotoHydrated(page, "/login");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/inside$/);
  return { context, page };
}
