// One refresh at a time across the app's tabs (the Web Locks API; it needs a secure context,
// which https and loopback are). Tabs may run in different renderer processes, and a localStorage
// write reaches the others a moment later, not necessarily before the lock does: so the tab that
// spent a refresh token also marks it spent in the lock manager, which every tab sees at once,
// and the next holder waits for the new tokens to arrive instead of spending the old one again.
import { loadSession, type StoredSession } from "./token-store";

const LOCK = "baton-ionic-refresh";
/** How long a spent mark stays: far longer than a localStorage write takes to reach a tab. */
const MARK_MS = 10_000;
/** How long a tab waits for the tokens another tab stored to reach it. */
const CATCH_UP_MS = 2_000;

/** Runs `work` holding the cross-tab lock (or just runs it where there are no Web Locks). */
export function exclusive<T>(work: () => Promise<T>): Promise<T> {
  // The lock resolves with what `work` resolves with (its typing nests the promise).
  return navigator.locks ? (navigator.locks.request(LOCK, work) as unknown as Promise<T>) : work();
}

async function marker(token: string): Promise<string> {
  // A digest, not the token: lock names are visible to every script of this origin.
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
  return "baton-ionic-spent:" + Array.from(digest.slice(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Marks `token` spent for the other tabs; resolves once the mark is in place. */
export async function markSpent(token: string): Promise<void> {
  if (!navigator.locks) return;
  const name = await marker(token);
  await new Promise<void>((placed) => {
    void navigator.locks.request(name, { ifAvailable: true }, () => {
      placed();
      return new Promise((release) => setTimeout(release, MARK_MS));
    });
  });
}

/** Whether another tab has spent `token`. */
export async function wasSpent(token: string): Promise<boolean> {
  if (!navigator.locks) return false;
  const name = await marker(token);
  const { held = [] } = await navigator.locks.query();
  return held.some((lock) => lock.name === name);
}

/**
 * The session that replaced `stale` once it reaches this tab: the new one, null if the user was
 * logged out meanwhile, undefined if it did not arrive in time.
 */
export async function replacement(stale: string): Promise<StoredSession | null | undefined> {
  for (const start = Date.now(); Date.now() - start < CATCH_UP_MS; await new Promise((r) => setTimeout(r, 20))) {
    const now = loadSession();
    if (!now || now.refreshToken !== stale) return now;
  }
  return undefined;
}
