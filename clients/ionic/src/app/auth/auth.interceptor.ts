// The tutorial's interceptor, with its `// Call refresh token logic` written: Baton's calls carry
// the access token (and a DPoP proof by the session's key); a token about to run out is renewed
// first; a 401 whose challenge says the access token was refused renews it and retries once.
// Many calls at once make one refresh: they share ApiService's.
import { HttpErrorResponse, type HttpEvent, type HttpInterceptorFn, type HttpRequest } from "@angular/common/http";
import { inject } from "@angular/core";
import { catchError, from, type Observable, switchMap, throwError } from "rxjs";
import { ApiService } from "../api/api.service";
import type { StoredSession } from "./token-store";
import { PUBLIC_CALL } from "./context";
import { currentKey, proof } from "./dpop";

export class NotLoggedIn extends Error {}

export const authInterceptor: HttpInterceptorFn = (req, next) => {
  const api = inject(ApiService);
  if (!req.url.startsWith(api.base + "/")) return next(req);
  const key = req.context.get(PUBLIC_CALL);
  if (key !== undefined) {
    return key ? from(proof(key, req.method, req.url)).pipe(switchMap((p) => next(req.clone({ setHeaders: { DPoP: p } })))) : next(req);
  }
  const send = (session: StoredSession | null, retried: boolean): Observable<HttpEvent<unknown>> => {
    if (!session) {
      api.leave();
      return throwError(() => new NotLoggedIn("not logged in"));
    }
    return from(authorize(api, req, session)).pipe(
      switchMap((authorized) => next(authorized)),
      catchError((err: unknown) =>
        !retried && refusedAccessToken(err)
          ? from(api.refreshAfterRejection(session)).pipe(switchMap((fresh) => send(fresh, true)))
          : throwError(() => err),
      ),
    );
  };
  return from(api.freshSession()).pipe(switchMap((session) => send(session, false)));
};

/** `Authorization: Bearer …`, or for a key-bound session `DPoP …` with a proof naming the token. */
async function authorize(api: ApiService, req: HttpRequest<unknown>, session: StoredSession): Promise<HttpRequest<unknown>> {
  if (!session.keyX) return req.clone({ setHeaders: { Authorization: `Bearer ${session.accessToken}` } });
  const key = await currentKey(session.keyX);
  if (!key) {
    // Without its key the session can do nothing more (storage was cleared, say).
    api.endSession(session, "This device lost the key your session was bound to. Log in again.");
    throw new NotLoggedIn("the session's key is gone");
  }
  const dpop = await proof(key, req.method, req.url, session.accessToken);
  return req.clone({ setHeaders: { Authorization: `DPoP ${session.accessToken}`, DPoP: dpop } });
}

/** Only a refused access token is worth a refresh (`error="invalid_token"` in the challenge): a
 * wrong password, also a 401, must not spend a refresh token. */
function refusedAccessToken(err: unknown): boolean {
  return (
    err instanceof HttpErrorResponse &&
    err.status === 401 &&
    (err.headers.get("WWW-Authenticate") ?? "").includes('error="invalid_token"')
  );
}

