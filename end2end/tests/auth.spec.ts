import { test, expect, gotoHydrated, signUp, uniqueName, PASSWORD } from "./fixtures";

test("signing up lands inside", async ({ page }) => {
  const name = await signUp(page);
  await expect(page.getByTestId("nav-user")).toHaveText(name);
  await expect(page.getByTestId("sessions").locator("li")).toHaveCount(1);
});

test("logging out returns to the login page", async ({ page }) => {
  await signUp(page);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await gotoHydrated(page, "/inside");
  await expect(page).toHaveURL(/\/login\?next=%2Finside|\/login\?next=\/inside/);
});

test("a wrong password shows the error next to the form", async ({ page }) => {
  const name = await signUp(page);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill("not the right password");
  await page.getByLabel("Password").press("Enter");
  await expect(page.getByTestId("form-error")).toHaveText("Wrong username or password.");
  await expect(page).toHaveURL(/\/login$/);
});

test("/inside while logged out goes to login, and comes back after it", async ({ page }) => {
  const name = await signUp(page);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await gotoHydrated(page, "/inside");
  await expect(page).toHaveURL(/\/login\?next=/);
  // No flash of protected content on the way.
  await expect(page.getByTestId("load-secret")).toHaveCount(0);
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/inside$/);
  await expect(page.getByTestId("username")).toHaveText(name);
});

test("a reload keeps the session", async ({ page }) => {
  const name = await signUp(page);
  await page.reload();
  await page.waitForSelector("body[data-hydrated=true]");
  await expect(page.getByTestId("username")).toHaveText(name);
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
});

test("signup refuses a taken name and a common password, with reasons", async ({ page }) => {
  const name = await signUp(page);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login$/);
  await gotoHydrated(page, "/signup");
  await page.getByLabel("Username").fill(name.toUpperCase());
  await page.getByLabel("Password").fill("password123");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.locator("#password-error")).toContainText("common");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByTestId("form-error")).toHaveText("That username is already taken.");
});
