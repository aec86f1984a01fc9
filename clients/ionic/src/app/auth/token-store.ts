// Where the session's tokens are kept: localStorage, shared by the app's tabs (the tutorial's
// `storeTokens`), or this tab's memory where the browser blocks storage (the session then ends
// with the tab). A DPoP-bound session's tokens are worthless without the key in IndexedDB.
import type { TokenResponse } from "../api/contract";

export interface StoredSession {
  accessToken: string;
  refreshToken: string;
  /** `DPoP` or `Bearer`, as the server said. */
  tokenType: string;
  /** When the access token runs out (ms since the epoch, by this clock) and how long it lived. */
  expiresAt: number;
  lifetime: number;
  username: string;
  /** The public `x` of the DPoP key the session is bound to. */
  keyX: string | null;
  /** A renewal with this refresh token left and got no answer: the server may have spent it, so
   * no tab presents it again before asking what became of it (`/api/auth/refresh/state`). */
  unsettled?: boolean;
}

const KEY = "baton.session";
/** The session when localStorage cannot be used (blocked, or a write failed): then for good. */
let inMemory: string | null = null;
let memoryOnly = false;

function storage(): Storage | null {
  if (memoryOnly) return null;
  try {
    const s = window.localStorage;
    s.getItem(KEY);
    return s;
  } catch {
    return null;
  }
}

export function loadSession(): StoredSession | null {
  try {
    const s = storage();
    const raw = s ? s.getItem(KEY) : inMemory;
    return raw ? (JSON.parse(raw) as StoredSession) : null;
  } catch {
    return null;
  }
}

function save(raw: string | null): void {
  const s = storage();
  try {
    if (s) {
      if (raw === null) s.removeItem(KEY);
      else s.setItem(KEY, raw);
      return;
    }
  } catch {
    // Full or blocked after all: this tab's memory keeps it from now on.
    memoryOnly = true;
  }
  inMemory = raw;
}

/** Both tokens, always together: the rotated refresh token replaces the spent one. */
export function storeTokens(tokens: TokenResponse, keyX: string | null): StoredSession {
  const session = sessionOf(tokens, keyX);
  save(JSON.stringify(session));
  return session;
}

/**
 * Puts `next` (null: nothing) in place of the session whose refresh token is `stale`, only if that
 * is still the one stored: a login or logout meanwhile is not overwritten. Returns what is stored.
 */
export function replaceSession(stale: string, next: StoredSession | null): StoredSession | null {
  const now = loadSession();
  if (now?.refreshToken !== stale) return now;
  save(next && JSON.stringify(next));
  return next;
}

/** Marks the stored session's refresh token unsettled (or settled), if it is still `token`. */
export function markUnsettled(token: string, unsettled: boolean): void {
  const now = loadSession();
  if (now?.refreshToken === token) save(JSON.stringify({ ...now, unsettled }));
}

export function sessionOf(tokens: TokenResponse, keyX: string | null): StoredSession {
  return {
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    tokenType: tokens.tokenType,
    expiresAt: Date.now() + tokens.expiresIn * 1000,
    lifetime: tokens.expiresIn * 1000,
    username: tokens.user.username,
    keyX: tokens.tokenType === "DPoP" ? keyX : null,
  };
}

export function clearSession(): void {
  save(null);
}

/** Calls `changed` when another tab stores or clears the session. */
export function watchSession(changed: (session: StoredSession | null) => void): void {
  window.addEventListener("storage", (event) => {
    // The event carries the value written, which may reach this tab's own reads a moment later.
    if (event.key === KEY) changed(event.newValue ? (JSON.parse(event.newValue) as StoredSession) : null);
    else if (event.key === null) changed(loadSession());
  });
}
