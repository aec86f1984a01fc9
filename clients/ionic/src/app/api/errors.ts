import { HttpErrorResponse } from "@angular/common/http";
import type { ErrorBody } from "./contract";

/** What to tell the user about a failed call: Baton's own message where it sent one. */
export function describeError(err: unknown): string {
  if (err instanceof HttpErrorResponse) {
    if (err.status === 0) return "Baton cannot be reached. Check your connection and try again.";
    const body = err.error as Partial<ErrorBody> | null;
    if (body && typeof body.message === "string") return body.message;
    return `Baton answered ${err.status}. Try again.`;
  }
  return "Something went wrong. Try again.";
}
