import { test, expect, gotoHydrated, uniqueName, logInElsewhere, PASSWORD } from "./fixtures";
import { MAIL_DIR, mailsTo, mailTo, link, signUpWithEmail } from "./mailbox";

test.skip(!MAIL_DIR, "needs MAIL_DIR: the SMTP sink's directory (scripts/test.sh)");

const NEW_PASSWORD = "a brand new passphrase";

test("sign up with an email, verify it, forget the password, reset it from the mail: every other device is out", async ({
  page,
  browser,
}) => {
  const { name, email } = await signUpWithEmail(page);
  await expect(page.getByTestId("email-state")).toContainText("Not verified");

  // The link from the mail, opened as a person would: the address is confirmed.
  await page.goto(link(await mailTo(email, "Confirm your email"), "/verify"));
  await expect(page.getByTestId("verified")).toContainText("confirmed");
  await gotoHydrated(page, "/inside");
  await expect(page.getByTestId("email-state")).toContainText("Verified");

  // Another device, logged in before the reset.
  const other = await logInElsewhere(browser, name);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);

  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await expect(page).toHaveURL(/\/forgot$/);
  await page.waitForSelector("body[data-hydrated=true]");
  await page.getByLabel("Username or email").fill(email.toUpperCase());
  await page.getByRole("button", { name: "Send link" }).click();
  await expect(page.getByTestId("reset-sent")).toHaveText(/If an account matches, a link is on its way/);

  const resetLink = link(await mailTo(email, "Reset your Baton password"), "/reset");
  await page.goto(resetLink);
  await page.waitForSelector("body[data-hydrated=true]");
  await page.getByLabel("New password").fill("password");
  await page.getByRole("button", { name: "Set new password" }).click();
  await expect(page.locator("#new-password-error")).toContainText("most common passwords");
  await page.getByLabel("New password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Set new password" }).click();
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("username")).toHaveText(name);
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(name);
  await mailTo(email, "password was reset");

  // The device logged in before is out at its next call.
  await other.page.getByTestId("load-secret").click();
  await expect(other.page).toHaveURL(/\/login/);
  await other.context.close();

  // The link is spent: opened again, it says so and offers a new one.
  await page.goto(resetLink);
  await page.waitForSelector("body[data-hydrated=true]");
  await page.getByLabel("New password").fill("yet another passphrase");
  await page.getByRole("button", { name: "Set new password" }).click();
  await expect(page.getByTestId("link-error")).toContainText("already used");
  await expect(page.getByRole("link", { name: "Ask for a new link" })).toHaveAttribute("href", "/forgot");
});

test("/forgot filled in and sent before its code arrived is sent once it does, not lost", async ({ page }) => {
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route(/split_forgot_page[^/]*\.wasm$/, async (route) => {
    await held;
    await route.continue();
  });
  await page.goto("/forgot");
  await page.getByLabel("Username or email").fill("nobody-in-particular");
  await page.getByRole("button", { name: "Send link" }).click();
  const sent = page.waitForResponse((r) => r.url().includes("/api/fn/request_password_reset"));
  release();
  expect((await sent).status()).toBe(200);
  await expect(page).toHaveURL(/\/forgot$/);
  await expect(page.getByTestId("reset-sent")).toHaveText(/If an account matches, a link is on its way/);
});

test("an unverified address gets no reset link, and the answer is the same as for nobody", async ({ page }) => {
  const { name, email } = await signUpWithEmail(page);
  await mailTo(email, "Confirm your email");
  for (const login of [name, `nobody-${name}`]) {
    await gotoHydrated(page, "/forgot");
    await page.getByLabel("Username or email").fill(login);
    await page.getByRole("button", { name: "Send link" }).click();
    await expect(page.getByTestId("reset-sent")).toHaveText(/If an account matches, a link is on its way/);
  }
  await page.waitForTimeout(1500);
  expect(mailsTo(email, "Reset")).toHaveLength(0);
});

test.describe("with links that expire in 3 seconds", () => {
  test.skip(!process.env.SHORT_TTL_URL, "needs SHORT_TTL_URL: a server with RESET_TOKEN_TTL=3");
  test.use({ baseURL: process.env.SHORT_TTL_URL });

  test("an expired link says so and offers a new one", async ({ page, request }) => {
    const name = uniqueName();
    const email = `${name}@example.com`;
    const base = process.env.SHORT_TTL_URL!;
    const signup = await request.post(`${base}/api/auth/signup`, { data: { username: name, password: PASSWORD, email } });
    expect(signup.status()).toBe(201);
    const verifyToken = new URL(link(await mailTo(email, "Confirm your email"), "/verify")).searchParams.get("token");
    expect((await request.post(`${base}/api/account/email/verify`, { data: { token: verifyToken } })).status()).toBe(204);
    expect((await request.post(`${base}/api/auth/password-reset`, { data: { login: name } })).status()).toBe(202);
    const resetLink = link(await mailTo(email, "Reset your Baton password"), "/reset");
    await page.waitForTimeout(3500);
    await page.goto(resetLink);
    await page.waitForSelector("body[data-hydrated=true]");
    await page.getByLabel("New password").fill(NEW_PASSWORD);
    await page.getByRole("button", { name: "Set new password" }).click();
    await expect(page.getByTestId("link-error")).toContainText("expired");
    await page.getByRole("link", { name: "Ask for a new link" }).click();
    await expect(page).toHaveURL(/\/forgot$/);
  });
});
