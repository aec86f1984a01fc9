import * as fs from "fs";
import * as path from "path";
import { Page } from "@playwright/test";
import { expect, gotoHydrated, uniqueName, PASSWORD } from "./fixtures";

// The mailbox of the browser tests: scripts/test.sh runs a real SMTP server
// (scripts/smtp_sink.py) and points the servers at it; what it receives is in MAIL_DIR, one
// decoded JSON file per mail. Specs that read mail skip without it.
export const MAIL_DIR = process.env.MAIL_DIR;

export type Mail = { to: string[]; subject: string; text: string; html: string };

export function mailsTo(address: string, subject: string): Mail[] {
  const files = fs.readdirSync(MAIL_DIR!).filter((f) => f.endsWith(".json")).sort();
  return files
    .map((f) => JSON.parse(fs.readFileSync(path.join(MAIL_DIR!, f), "utf8")) as Mail)
    .filter((m) => m.to.some((t) => t.toLowerCase() === address.toLowerCase()) && m.subject.includes(subject));
}

export async function mailTo(address: string, subject: string, nth = 1): Promise<Mail> {
  await expect.poll(() => mailsTo(address, subject).length, { timeout: 20_000 }).toBeGreaterThanOrEqual(nth);
  return mailsTo(address, subject)[nth - 1];
}

/** The link to `page` (`/reset`, `/verify`) in a mail's text, as a person would open it. */
export function link(mail: Mail, page: string): string {
  const found = mail.text.match(new RegExp(`https?://\\S+${page}\\?token=\\S+`));
  expect(found, mail.text).not.toBeNull();
  return found![0];
}

/** Signs up a new user with an address through the form; lands inside. */
export async function signUpWithEmail(page: Page): Promise<{ name: string; email: string }> {
  const name = uniqueName();
  const email = `${name}@example.com`;
  await gotoHydrated(page, "/signup");
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/inside$/);
  return { name, email };
}

/** Signs up with an address and confirms it from its mail: a password reset can reach it. */
export async function signUpVerified(page: Page): Promise<{ name: string; email: string }> {
  const account = await signUpWithEmail(page);
  await page.goto(link(await mailTo(account.email, "Confirm your email"), "/verify"));
  await expect(page.getByTestId("verified")).toContainText("confirmed");
  await gotoHydrated(page, "/inside");
  return account;
}
