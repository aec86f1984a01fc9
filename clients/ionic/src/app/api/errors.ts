import { HttpErrorResponse } from "@angular/common/http";
import type { Key } from "../auth/dpop";
import type { ErrorBody } from "./contract";

/** A right password for an account with one-time codes: no tokens yet, but the challenge the code
 * step brings back, bound to the key the password was proved with. Kept in memory only. */
export class SecondFactorNeeded extends Error {
  constructor(
    readonly challenge: string,
    readonly key: Key | null,
  ) {
    super("This account also asks for a one-time code.");
  }
}

/** Baton's machine-readable code for a failed call (`invalid_code`, …), if it sent one. */
export function errorCode(err: unknown): string | null {
  if (!(err instanceof HttpErrorResponse)) return null;
  const body = err.error as Partial<ErrorBody> | null;
  return body && typeof body.error === "string" ? body.error : null;
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
