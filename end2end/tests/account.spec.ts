import { test, expect, gotoHydrated, signUp, storedTokens, logInElsewhere, PASSWORD } from "./fixtures";

const NEW_PASSWORD = "a brand new passphrase";

test("changing the password keeps this tab in and logs the other devices out", async ({ page, browser }) => {
  const name = await signUp(page);
  const other = await logInElsewhere(browser, name);
  await page.getByLabel("Current password").fill("not my password");
  await page.getByLabel("New password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByTestId("change-password").getByRole("alert")).toHaveText("That is not your current password.");

  await page.getByLabel("Current password").fill(PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByTestId("password-changed")).toHaveText("Password changed. Your other sessions were logged out.");
  await expect(page.getByLabel("New password")).toHaveValue("");
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(name);

  // The other device is out at its next call.
  await other.page.getByTestId("load-secret").click();
  await expect(other.page).toHaveURL(/\/login/);
  await other.context.close();

  // The new password is the one that logs in.
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password", { exact: true }).fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/inside$/);
});

test("a new password that breaks a rule is named next to its field", async ({ page }) => {
  await signUp(page);
  await page.getByLabel("Current password").fill(PASSWORD);
  await page.getByLabel("New password").fill("password");
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.locator("#new-password-error")).toContainText("most common passwords");
  await expect(page.getByLabel("New password")).toHaveAttribute("aria-invalid", "true");
});

test("deleting the account asks for the password, then the account is gone", async ({ page }) => {
  const name = await signUp(page);
  await page.getByRole("button", { name: "Delete account" }).click();
  const password = page.locator("#confirm-delete").getByLabel("Password", { exact: true });
  await password.fill("not my password");
  await page.getByRole("button", { name: "Delete my account" }).click();
  await expect(page.getByTestId("delete-error")).toHaveText("That is not your current password.");

  await password.fill(PASSWORD);
  await page.getByRole("button", { name: "Delete my account" }).click();
  await expect(page).toHaveURL(/\/signup$/);
  expect(await storedTokens(page)).toBeNull();

  await gotoHydrated(page, "/login");
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByTestId("form-error")).toHaveText("Wrong username or password.");
});

test("typos in the current password spend no refresh token and count once each", async ({ page }) => {
  await signUp(page);
  const before = await storedTokens(page);
  const calls: string[] = [];
  page.on("request", (r) => {
    const m = r.url().match(/\/api\/fn\/(refresh|change_password|delete_account)$/);
    if (m) calls.push(m[1]);
  });
  for (let i = 1; i <= 4; i++) {
    await page.getByLabel("Current password").fill(`typo number ${i}`);
    await page.getByLabel("New password").fill(NEW_PASSWORD);
    await page.getByRole("button", { name: "Change password" }).click();
    await expect(page.getByTestId("change-password").getByRole("alert")).toHaveText("That is not your current password.");
  }
  await page.getByRole("button", { name: "Delete account" }).click();
  await page.locator("#confirm-delete").getByLabel("Password", { exact: true }).fill("one more typo");
  await page.getByRole("button", { name: "Delete my account" }).click();
  await expect(page.getByTestId("delete-error")).toHaveText("That is not your current password.");
  // Five typos: five checks (within the five free attempts, so none is refused for waiting),
  // and the refresh token is the one the signup gave.
  expect(calls).toEqual(["change_password", "change_password", "change_password", "change_password", "delete_account"]);
  expect((await storedTokens(page))?.refresh_token).toBe(before?.refresh_token);
  await page.getByLabel("Current password").fill(PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByTestId("password-changed")).toBeVisible();
});

test("Change password, Delete and Revoke show that they are working, and a double click is one click", async ({ page, browser }) => {
  const name = await signUp(page);
  const other = await logInElsewhere(browser, name);
  await page.reload();
  await page.waitForSelector("body[data-hydrated=true]");
  // Each answer held for a moment: the button says it is busy meanwhile.
  const held = (path: string) =>
    page.route(path, async (route) => {
      await new Promise((r) => setTimeout(r, 600));
      await route.continue();
    });
  await held("**/api/fn/revoke_session");
  const revoke = page.getByRole("button", { name: /^Revoke / });
  await revoke.dblclick();
  await expect(revoke).toHaveAttribute("aria-busy", "true");
  await expect(page.getByRole("button", { name: /^Revoke / })).toHaveCount(0);
  await expect(page.getByTestId("revoke-error")).toBeEmpty();
  await other.context.close();

  await held("**/api/fn/change_password");
  await page.getByLabel("Current password").fill(PASSWORD);
  await page.getByLabel("New password").fill(NEW_PASSWORD);
  const change = page.getByRole("button", { name: "Change password" });
  await change.dblclick();
  await expect(change).toHaveAttribute("aria-busy", "true");
  await expect(change).toBeDisabled();
  await expect(page.getByTestId("password-changed")).toHaveText("Password changed. Your other sessions were logged out.");
  await expect(change).toHaveAttribute("aria-busy", "false");

  await held("**/api/fn/delete_account");
  await page.getByRole("button", { name: "Delete account" }).click();
  await page.locator("#confirm-delete").getByLabel("Password", { exact: true }).fill(NEW_PASSWORD);
  const remove = page.getByRole("button", { name: "Delete my account" });
  await remove.click();
  await expect(remove).toHaveAttribute("aria-busy", "true");
  await expect(page).toHaveURL(/\/signup$/);
});
