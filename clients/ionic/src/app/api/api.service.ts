// The tutorial's ApiService, finished: login, signup, logout, refresh and storeTokens, with
// exactly one refresh at a time across the app's calls and its tabs, and DPoP-bound tokens.
import { HttpClient, HttpErrorResponse } from "@angular/common/http";
import { Injectable, inject, signal } from "@angular/core";
import { NavController } from "@ionic/angular/standalone";
import { firstValueFrom } from "rxjs";
import { publicCall } from "../auth/context";
import { currentKey, dropKey, newKey, type Key } from "../auth/dpop";
import { exclusive, markSpent, replacement, wasSpent } from "../auth/tab-lock";
import { clearSession, loadSession, storeTokens, watchSession, type StoredSession } from "../auth/token-store";
import { API_URL } from "../config";
import type { Body, Credentials, Ok, PathWith, Signup, TokenResponse, User } from "./contract";

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
    watchSession((session) => {
      this.session.set(session);
      if (!session) this.nav.navigateRoot("/login");
    });
  }

  // --- typed calls: paths, bodies and answers come from the server's OpenAPI document ---------

  get<P extends PathWith<"get">>(path: P): Promise<Ok<P, "get">> {
    return firstValueFrom(this.http.get<Ok<P, "get">>(this.base + path));
  }

  post<P extends PathWith<"post">>(path: P, body: Body<P, "post">, key?: Key | null): Promise<Ok<P, "post">> {
    const context = key === undefined ? undefined : publicCall(key);
    return firstValueFrom(this.http.post<Ok<P, "post">>(this.base + path, body ?? null, { context }));
  }

  // --- the tutorial's methods -------------------------------------------------------------------

  login(credentials: Credentials): Promise<User> {
    return this.start((key) => this.post("/api/auth/login", credentials, key));
  }

  signup(details: Signup): Promise<User> {
    return this.start((key) => this.post("/api/auth/signup", details, key));
  }

  isLoggedIn(): boolean {
    return loadSession() !== null;
  }

  /** A new session, bound to a new key wherever the browser can keep one. */
  private async start(call: (key: Key | null) => Promise<TokenResponse>): Promise<User> {
    // A session this device still holds is ended once the new one exists, with its own key.
    const previous = loadSession();
    const previousKey = previous?.keyX ? await currentKey(previous.keyX) : null;
    const key = await newKey();
    const tokens = await call(key);
    this.storeTokens(tokens, key?.jwk.x ?? null);
    this.notice.set(null);
    if (previous) {
      void this.post("/api/auth/logout", { refreshToken: previous.refreshToken }, previousKey).catch(() => undefined);
    }
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
    return session.expiresAt - Date.now() > margin ? session : this.refresh(session);
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
      if (await wasSpent(now.refreshToken)) {
        // Another tab renewed it and stored the result, which has yet to reach this tab.
        const next = await replacement(now.refreshToken);
        if (next === undefined) throw new Error("Another tab is still renewing the session. Try again.");
        this.session.set(next);
        return next;
      }
      const fresh = await this.renew(now);
      if (fresh) await markSpent(now.refreshToken);
      return fresh;
    });
  }

  private async renew(session: StoredSession): Promise<StoredSession | null> {
    const key = session.keyX ? await currentKey(session.keyX) : null;
    if (session.keyX && !key) {
      this.end("This device lost the key your session was bound to. Log in again.");
      return null;
    }
    try {
      const tokens = await this.post("/api/auth/refresh", { refreshToken: session.refreshToken }, key);
      return this.storeTokens(tokens, session.keyX);
    } catch (err) {
      // A refused refresh token (spent, expired, revoked) ends the session. Anything else (no
      // network, 429, 503) leaves the tokens as they are: the call fails and can be tried again.
      if (err instanceof HttpErrorResponse && err.status === 401) {
        this.end("Your session has ended. Log in again.");
        return null;
      }
      throw err;
    }
  }

  async logout(): Promise<void> {
    const session = loadSession();
    if (session) {
      const key = session.keyX ? await currentKey(session.keyX) : null;
      // The server forgets the session; if it cannot be reached, this device forgets it anyway.
      await this.post("/api/auth/logout", { refreshToken: session.refreshToken }, key).catch(() => undefined);
    }
    this.end(null);
  }

  /** Ends every session of the user, on every device (an ordinary protected call). */
  async logoutEverywhere(): Promise<void> {
    await this.post("/api/auth/logout-all", undefined);
    this.end(null);
  }

  /** Forgets the tokens and the key, and goes to the login page saying why (by default, what it
   * said already: a call that finds the session ended keeps the reason its refresh gave). */
  end(notice: string | null = this.notice()): void {
    clearSession();
    void dropKey();
    this.session.set(null);
    this.notice.set(notice);
    this.nav.navigateRoot("/login");
  }
}

