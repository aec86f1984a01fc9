// The tutorial's ApiService, finished: login, signup, logout, refresh and storeTokens, with
// exactly one refresh at a time across the app's calls and its tabs, DPoP-bound tokens, and no
// refresh token ever presented twice by mistake (a renewal that got no answer is settled first).
import { HttpClient, HttpErrorResponse } from "@angular/common/http";
import { Injectable, inject, signal } from "@angular/core";
import { NavController } from "@ionic/angular/standalone";
import { firstValueFrom, timeout } from "rxjs";
import { publicCall } from "../auth/context";
import { currentKey, dropKey, newKey, type Key } from "../auth/dpop";
import { exclusive, mark, markOf, replacement } from "../auth/tab-lock";
import {
  loadSession,
  markUnsettled,
  replaceSession,
  sessionOf,
  storeTokens,
  watchSession,
  type StoredSession,
} from "../auth/token-store";
import { API_URL } from "../config";
import type { Body, Credentials, Ok, PathWith, Signup, TokenResponse, User } from "./contract";
import { SecondFactorNeeded, errorCode } from "./errors";

/** All a renewal may take, retries and waits included (the tab lock waits a little longer). */
const RENEWAL_BUDGET_MS = 30_000;
/** One request of a renewal: past this its fate is unknown, as if the answer were lost. Well
 * within the server's grace window (10 s by default), so that the lost answer can still be had. */
const REQUEST_TIMEOUT_MS = 6_000;

const ENDED = "Your session has ended. Log in again.";
const LOST = "Your connection dropped while your session was being renewed, and the renewal cannot be recovered. Log in again.";
const KEY_LOST = "This device lost the key your session was bound to. Log in again.";

@Injectable({ providedIn: "root" })
export class ApiService {
  private readonly http = inject(HttpClient);
  private readonly nav = inject(NavController);
  readonly base = inject(API_URL);
  /** The session as this tab last saw it; localStorage is the truth shared by the tabs. */
  readonly session = signal<StoredSession | null>(loadSession());
  /** Why the user is back at the login page, if the app sent them there. */
  readonly notice = signal<string | null>(null);
  private refreshing: Promise<StoredSession | null> | null = null;

  constructor() {
    // Another tab logged in or out: follow it.
    watchSession((session) => {
      this.session.set(session);
      const outside = /^\/(login|signup)\b/.test(location.pathname);
      if (!session) this.nav.navigateRoot("/login");
      else if (outside) this.nav.navigateRoot("/inside");
    });
  }

  // --- typed calls: paths, bodies and answers come from the server's OpenAPI document ---------

  get<P extends PathWith<"get">>(path: P): Promise<Ok<P, "get">> {
    return firstValueFrom(this.http.get<Ok<P, "get">>(this.base + path));
  }

  /** `key`: a call without an access token, proved by `key` (null: none). */
  post<P extends PathWith<"post">>(path: P, body: Body<P, "post">, key?: Key | null, ms = 0): Promise<Ok<P, "post">> {
    const context = key === undefined ? undefined : publicCall(key);
    const call = this.http.post<Ok<P, "post">>(this.base + path, body ?? null, { context });
    return firstValueFrom(ms ? call.pipe(timeout(ms)) : call);
  }

  // --- the tutorial's methods -------------------------------------------------------------------

  login(credentials: Credentials): Promise<User> {
    return this.start(async (key) => {
      const answer = await this.post("/api/auth/login", credentials, key);
      // No tokens yet: the account asks for a one-time code, for a challenge bound to this key.
      if ("mfaRequired" in answer) throw new SecondFactorNeeded(answer.challenge, key);
      return answer;
    });
  }

  /** The login's second step: a code (or a recovery code) for the challenge the password earned,
   * proved by the same key. A wrong code leaves the challenge, and its key, for another try. */
  loginWithCode(step: SecondFactorNeeded, code: string): Promise<User> {
    return this.start((key) => this.post("/api/auth/login/mfa", { challenge: step.challenge, code }, key), step);
  }

  /** The user gave up on the code step: its key goes. */
  abandonSecondStep(step: SecondFactorNeeded): void {
    if (step.key) void dropKey(step.key.jwk.x);
  }

  signup(details: Signup): Promise<User> {
    return this.start((key) => this.post("/api/auth/signup", details, key));
  }

  isLoggedIn(): boolean {
    return loadSession() !== null;
  }

  /** A new session, bound to a new key wherever the browser can keep one (the code step: to the
   * key its password step was proved with). */
  private async start(call: (key: Key | null) => Promise<TokenResponse>, step?: SecondFactorNeeded): Promise<User> {
    const key = step ? step.key : await newKey();
    let tokens: TokenResponse;
    try {
      tokens = await call(key);
    } catch (err) {
      // Kept while a challenge bound to it can still be answered.
      const answerable = err instanceof SecondFactorNeeded || (step && errorCode(err) !== "invalid_mfa_challenge");
      if (key && !answerable) void dropKey(key.jwk.x);
      throw err;
    }
    // A session this device still held (another tab's) is ended, with its own key.
    const previous = loadSession();
    this.storeTokens(tokens, key?.jwk.x ?? null);
    this.notice.set(null);
    if (previous) void this.forget(previous);
    return tokens.user;
  }

  storeTokens(tokens: TokenResponse, keyX: string | null): StoredSession {
    const session = storeTokens(tokens, keyX);
    this.session.set(session);
    return session;
  }

  /** The session with an access token that is not about to run out: renewed first if it is. */
  async freshSession(): Promise<StoredSession | null> {
    const session = loadSession();
    if (!session) return null;
    const margin = Math.min(30_000, session.lifetime / 4);
    if (session.expiresAt - Date.now() > margin) return session;
    try {
      return await this.refresh(session);
    } catch (err) {
      // The renewal failed for now (busy, offline): a token with time left still serves.
      if (session.expiresAt - Date.now() > 1_000) return session;
      throw err;
    }
  }

  /** The server refused `rejected`'s access token: renew it, unless another call already did. */
  async refreshAfterRejection(rejected: StoredSession): Promise<StoredSession | null> {
    const session = loadSession();
    if (!session || session.accessToken !== rejected.accessToken) return session;
    return this.refresh(session);
  }

  /**
   * One refresh at a time: calls in this tab share the one under way, and other tabs wait for the
   * lock, then take the tokens it stored instead of spending the same refresh token again.
   */
  refresh(stale: StoredSession): Promise<StoredSession | null> {
    this.refreshing ??= this.refreshLocked(stale).finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private refreshLocked(stale: StoredSession): Promise<StoredSession | null> {
    return exclusive(async () => {
      const now = loadSession();
      if (!now) return null;
      if (now.refreshToken !== stale.refreshToken) {
        this.session.set(now);
        return now;
      }
      const known = await markOf(now.refreshToken);
      if (known === "spent") {
        // Another tab renewed it and stored the result, which has yet to reach this tab.
        const next = await replacement(now.refreshToken);
        if (next === undefined) throw new Error("Another tab is still renewing your session. Try again in a moment.");
        this.session.set(next);
        return next;
      }
      return this.renew(known === "unsettled" ? { ...now, unsettled: true } : now);
    });
  }

  /**
   * Spends `session`'s refresh token, under the lock. Before it leaves, the token is stored as
   * unsettled (a reload sees it). An answer from Baton settles it; a lost one (no network, a
   * timeout, a gateway's 502 or 504) leaves it unsettled, and it is first asked about
   * (`/api/auth/refresh/state`) and then, if it is still good, tried once more. A 503 is waited
   * out once (`Retry-After`). Only a refused refresh token ends the session; nothing else does.
   * Before the lock is released, the other tabs learn (see `tab-lock`) that the token is spent,
   * or unsettled.
   */
  private async renew(session: StoredSession): Promise<StoredSession | null> {
    const key = session.keyX ? await currentKey(session.keyX) : null;
    if (session.keyX && !key) return this.endSession(session, KEY_LOST);
    const deadline = Date.now() + RENEWAL_BUDGET_MS;
    const within = () => Math.max(1, Math.min(REQUEST_TIMEOUT_MS, deadline - Date.now()));
    // Whether the server may have spent the token: once so, only a new pair or `unspent` says not.
    let unsettled = session.unsettled ?? false;
    let settled = false;
    try {
      for (let attempt = 0; ; attempt++) {
        if (unsettled) {
          const { state } = await this.post("/api/auth/refresh/state", { refreshToken: session.refreshToken }, key, within()).catch(
            (err: unknown) => {
              if (refusedRefreshToken(err)) return { state: "ended" as const };
              throw err;
            },
          );
          if (state === "ended") return this.endSession(session, ENDED);
          if (state === "spent") return this.endSession(session, LOST);
          // unspent: the renewal never arrived; replayable: presenting it again (now, within the
          // grace window) returns the lost answer.
          unsettled = state === "replayable";
        }
        markUnsettled(session.refreshToken, true);
        try {
          const tokens = await this.post("/api/auth/refresh", { refreshToken: session.refreshToken }, key, within());
          settled = true;
          const fresh = sessionOf(tokens, session.keyX);
          const stored = replaceSession(session.refreshToken, fresh);
          await mark("spent", session.refreshToken);
          // Logged out or in again meanwhile (another tab): the new pair is nobody's; end it.
          if (stored !== fresh) void this.post("/api/auth/logout", { refreshToken: fresh.refreshToken }, key).catch(() => undefined);
          this.session.set(stored);
          return stored;
        } catch (err) {
          if (refusedRefreshToken(err)) {
            settled = true;
            return this.endSession(session, ENDED);
          }
          // A refusal by Baton (4xx) spends nothing; any other failure may have come after the
          // rotation (a lost answer, a timeout, a 5xx): the token is then asked about first.
          if (!unsettled && answeredByBaton(err) && (err as HttpErrorResponse).status < 500) markUnsettled(session.refreshToken, false);
          else unsettled = true;
          const wait = (busyFor(err) ?? 0) * 1000;
          const retry = attempt === 0 && (unsettled || busyFor(err) !== null) && Date.now() + wait < deadline;
          if (!retry) throw err;
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    } finally {
      // Leaving with the token's fate unknown: the other tabs learn it before the lock is free.
      if (!settled && unsettled) await mark("unsettled", session.refreshToken);
    }
  }

  async logout(): Promise<void> {
    // Under the lock: a renewal under way in another tab finishes first, so the token sent here
    // is the current one, and nothing stores tokens after this.
    await exclusive(async () => {
      const session = loadSession();
      if (session) await this.forget(session);
    }).catch(() => {
      // The lock stayed busy: log out without it all the same.
      const session = loadSession();
      if (session) return this.forget(session);
      return undefined;
    });
    this.leave(null);
  }

  /** Ends every session of the user, on every device (an ordinary protected call). */
  async logoutEverywhere(): Promise<void> {
    await this.post("/api/auth/logout-all", undefined);
    const session = loadSession();
    if (session) this.endSession(session, null);
    else this.leave(null);
  }

  /** Tells the server to end `session` (if it can be reached) and forgets it and its key here. */
  private async forget(session: StoredSession): Promise<void> {
    const key = session.keyX ? await currentKey(session.keyX) : null;
    await this.post("/api/auth/logout", { refreshToken: session.refreshToken }, key, REQUEST_TIMEOUT_MS).catch(() => undefined);
    replaceSession(session.refreshToken, null);
    if (session.keyX) await dropKey(session.keyX);
  }

  /**
   * `session` has ended: forgets it (unless another tab has logged in since, whose session stays)
   * and its key, and goes to the login page saying why.
   */
  endSession(session: StoredSession, notice: string | null): null {
    const now = replaceSession(session.refreshToken, null);
    if (session.keyX) void dropKey(session.keyX);
    this.session.set(now);
    if (!now) this.leave(notice);
    return null;
  }

  /** To the login page, saying why (by default, what it said already). */
  leave(notice: string | null = this.notice()): void {
    this.notice.set(notice);
    this.nav.navigateRoot("/login");
  }
}

/** The refresh token is dead (unknown, expired, revoked, reused): the session is over. A refused
 * DPoP proof (a wrong clock, say) is not: nothing was spent, and the session stays. */
function refusedRefreshToken(err: unknown): boolean {
  return err instanceof HttpErrorResponse && err.status === 401 && errorCode(err) === "invalid_refresh_token";
}

/** Baton itself answered (its JSON error body): it said what happened, and a refusal spends nothing. */
function answeredByBaton(err: unknown): boolean {
  return err instanceof HttpErrorResponse && err.status !== 502 && err.status !== 504 && errorCode(err) !== null;
}

/** Seconds a 503 with `Retry-After` asks to wait (at most 10), or null. */
function busyFor(err: unknown): number | null {
  if (!(err instanceof HttpErrorResponse) || err.status !== 503) return null;
  const secs = Number(err.headers.get("Retry-After"));
  return Number.isFinite(secs) && secs >= 0 && secs <= 10 ? secs : null;
}
