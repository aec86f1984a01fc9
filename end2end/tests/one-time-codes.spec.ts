import { Page } from "@playwright/test";
import { test, expect, gotoHydrated, signUp, PASSWORD } from "./fixtures";
import { MAIL_DIR, mailTo, link, signUpVerified } from "./mailbox";
import { Authenticator } from "./totp";

/** On the inside page: turns one-time codes on; the app and the recovery codes shown. */
async function turnOnCodes(page: Page): Promise<{ app: Authenticator; recovery: string[] }> {
  const card = page.getByTestId("one-time-codes");
  await expect(card.getByTestId("codes-state")).toContainText("Off");
  await card.getByRole("button", { name: "Turn on one-time codes" }).click();
  await card.getByLabel("Current password").fill("not my password");
  await card.getByRole("button", { name: "Continue" }).click();
  await expect(card.getByTestId("codes-error")).toHaveText("That is not your current password.");
  await card.getByLabel("Current password").fill(PASSWORD);
  await card.getByRole("button", { name: "Continue" }).click();
  const secret = (await card.getByTestId("totp-secret").textContent())!;
  expect(secret).toMatch(/^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/);
  await expect(card.getByRole("img", { name: /QR code/ }).locator("svg")).toBeVisible();
  const app = new Authenticator(secret);
  await card.getByLabel("Code", { exact: true }).fill("000000");
  await card.getByRole("button", { name: "Verify" }).click();
  await expect(card.getByRole("alert")).toContainText("That code is not right");
  await card.getByLabel("Code", { exact: true }).fill(await app.next());
  await card.getByRole("button", { name: "Verify" }).click();
  const list = card.getByTestId("recovery-codes");
  await expect(list.locator("li")).toHaveCount(10);
  const recovery = await list.locator("li").allTextContents();
  await card.getByRole("button", { name: "Done" }).click();
  await expect(card.getByTestId("codes-state")).toContainText("On: logging in asks for a code");
  await expect(card.getByTestId("codes-state")).toContainText("10 recovery codes left.");
  return { app, recovery };
}

/** Logs out, and gives the login page the password: the second step shows. */
async function passwordStep(page: Page, name: string) {
  if (page.url().endsWith("/inside")) {
    await page.getByTestId("logout").click();
    await expect(page).toHaveURL(/\/login$/);
  } else {
    await gotoHydrated(page, "/login");
  }
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByText("This account also asks for a one-time code.")).toBeVisible();
  await expect(page.getByLabel("Code", { exact: true })).toBeFocused();
}

async function enterCode(page: Page, code: string) {
  await page.getByLabel("Code", { exact: true }).fill(code);
  await page.getByRole("button", { name: "Verify" }).click();
}

test("one-time codes: turned on from the account, asked at login, each code and recovery code once", async ({ page }) => {
  const name = await signUp(page);
  const { app, recovery } = await turnOnCodes(page);

  // The code the setup took is spent; a typo is named, and the next code gets in.
  await passwordStep(page, name);
  expect(await page.evaluate(() => localStorage.getItem("baton.tokens"))).toBeNull();
  await enterCode(page, app.last());
  await expect(page.getByTestId("code-error")).toContainText("not right, or was used already");
  await expect(page.getByLabel("Code", { exact: true })).toHaveValue("");
  await enterCode(page, await app.next());
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("username")).toHaveText(name);
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(name);

  // A recovery code, typed with spaces and in capitals, works once.
  await passwordStep(page, name);
  await enterCode(page, recovery[0].toUpperCase().replace(/-/g, " "));
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("codes-state")).toContainText("9 recovery codes left.");
  await passwordStep(page, name);
  await enterCode(page, recovery[0]);
  await expect(page.getByTestId("code-error")).toContainText("not right");

  // New recovery codes void the old ones.
  await enterCode(page, recovery[1]);
  await expect(page).toHaveURL(/\/inside$/);
  const card = page.getByTestId("one-time-codes");
  await card.getByRole("button", { name: "Make new codes" }).click();
  await card.getByLabel("Current password").fill(PASSWORD);
  await card.getByRole("button", { name: "Continue" }).click();
  await expect(card.getByTestId("recovery-codes").locator("li")).toHaveCount(10);
  const renewed = await card.getByTestId("recovery-codes").locator("li").allTextContents();
  await card.getByRole("button", { name: "Done" }).click();
  await passwordStep(page, name);
  await enterCode(page, recovery[2]);
  await expect(page.getByTestId("code-error")).toContainText("not right");
  await enterCode(page, renewed[0]);
  await expect(page).toHaveURL(/\/inside$/);

  // Turned off: the password alone again.
  await card.getByRole("button", { name: "Turn off one-time codes" }).click();
  await card.getByLabel("Current password").fill(PASSWORD);
  await card.getByRole("button", { name: "Continue" }).click();
  await expect(card.getByTestId("codes-state")).toContainText("Off");
  await page.getByTestId("logout").click();
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/inside$/);
});

test("wrong codes wait out the login backoff, and a used-up challenge asks for the password again", async ({ page }) => {
  const name = await signUp(page);
  await turnOnCodes(page);
  await passwordStep(page, name);
  // The password's attempt and four wrong codes are the free attempts; the fifth must wait.
  for (let i = 0; i < 4; i++) {
    await enterCode(page, `10000${i}`);
    await expect(page.getByTestId("code-error")).toContainText("not right");
  }
  await enterCode(page, "222222");
  await expect(page.getByRole("button", { name: /Verify \(wait \d+ s\)/ })).toBeDisabled();
  await expect(page.getByRole("button", { name: "Verify", exact: true })).toBeEnabled({ timeout: 5_000 });
  // The challenge's fifth wrong code is its last: the form then offers the password again.
  await enterCode(page, "333333");
  await expect(page.getByTestId("code-error")).toContainText("not right");
  await expect(page.getByRole("button", { name: "Verify", exact: true })).toBeEnabled({ timeout: 5_000 });
  await enterCode(page, "444444");
  await expect(page.getByTestId("code-error")).toHaveText("This sign-in step has expired. Please log in again.");
  await page.getByRole("button", { name: "Log in again" }).click();
  await expect(page.getByLabel("Password", { exact: true })).toBeVisible();
});

test("a password reset by mail asks for a code as well: the mailbox alone does not open the account", async ({ page }) => {
  test.skip(!MAIL_DIR, "needs MAIL_DIR: the SMTP sink's directory (scripts/test.sh)");
  const { name, email } = await signUpVerified(page);
  const { app } = await turnOnCodes(page);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await gotoHydrated(page, "/forgot");
  await page.getByLabel("Username or email").fill(name);
  await page.getByRole("button", { name: "Send link" }).click();
  await expect(page.getByTestId("reset-sent")).toBeVisible();

  await page.goto(link(await mailTo(email, "Reset your Baton password"), "/reset"));
  await page.waitForSelector("body[data-hydrated=true]");
  const code = page.getByLabel("Code", { exact: true });
  await expect(code).toBeHidden();
  await page.getByLabel("New password").fill("a brand new passphrase");
  await page.getByRole("button", { name: "Set new password" }).click();
  // Asked for once the server says so; a code spent already is refused and named.
  await expect(page.getByTestId("code-error")).toContainText("This account has one-time codes");
  await code.fill(app.last());
  await page.getByRole("button", { name: "Set new password" }).click();
  await expect(page.getByTestId("code-error")).toContainText("not right, or was used already");
  await expect(page).toHaveURL(/\/reset/);
  await code.fill(await app.next());
  await page.getByRole("button", { name: "Set new password" }).click();
  await expect(page).toHaveURL(/\/inside$/);
  await mailTo(email, "password was reset");
  // The codes stay on for the new password.
  await page.getByTestId("logout").click();
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password", { exact: true }).fill("a brand new passphrase");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByText("This account also asks for a one-time code.")).toBeVisible();
  await enterCode(page, await app.next());
  await expect(page).toHaveURL(/\/inside$/);
});
