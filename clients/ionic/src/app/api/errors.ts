import { HttpErrorResponse } from "@angular/common/http";
import type { ErrorBody } from "./contract";

/** A right password for an account with one-time codes: this app does not take codes yet. */
export class SecondFactorNeeded extends Error {
  constructor() {
    super("This account asks for a one-time code after the password, which this app cannot take yet. Log in on the web.");
  }
}

/** What to tell the user about a failed call: Baton's own message where it sent one. */
export function describeError(err: unknown): string {
  if (err instanceof SecondFactorNeeded) return err.message;
  if (err instanceof HttpErrorResponse) {
    if (err.status === 0) return "Baton cannot be reached. Check your connection and try again.";
    const body = err.error as Partial<ErrorBody> | null;
    if (body && typeof body.message === "string") return body.message;
    return `Baton answered ${err.status}. Try again.`;
  }
  return "Something went wrong. Try again.";
}
