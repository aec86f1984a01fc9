// One refresh at a time across the app's tabs (the Web Locks API; it needs a secure context,
// which https and loopback are). Tabs may run in different renderer processes, and a localStorage
// write reaches the others a moment later, not necessarily before the lock does: so the tab that
// spent a refresh token also marks it spent in the lock manager, which every tab sees at once,
// and the next holder waits for the new tokens to arrive instead of spending the old one again
// (or, if the answer was lost, asks what became of the token before presenting it).
import { loadSession, type StoredSession } from "./token-store";

const LOCK = "baton-ionic-refresh";
/** How long a spent mark stays: far longer than a localStorage write takes to reach a tab. */
const MARK_MS = 10_000;
/** How long a tab waits for the tokens another tab stored to reach it. */
const CATCH_UP_MS = 2_000;

/** A renewal's whole budget under the lock (ApiService's); a tab waits a little longer for it. */
const WAIT_MS = 40_000;

export class StillRenewing extends Error {
  constructor() {
    super("Another tab is still renewing your session. Try again in a moment.");
  }
}

/**
 * Runs `work` holding the cross-tab lock, or fails with [`StillRenewing`] without running it. Where
 * there are no Web Locks (an insecure origin: plain http off loopback) it just runs: such an origin
 * has no WebCrypto either, and its tabs are not coordinated (see the README).
 */
export async function exclusive<T>(work: () => Promise<T>): Promise<T> {
  if (!navigator.locks) return work();
  try {
    // The lock resolves with what `work` resolves with (its typing nests the promise).
    return (await navigator.locks.request(LOCK, { signal: AbortSignal.timeout(WAIT_MS) }, work)) as unknown as T;
  } catch (err) {
    if (err instanceof DOMException && (err.name === "TimeoutError" || err.name === "AbortError")) throw new StillRenewing();
    throw err;
  }
}

/** What a tab that held the lock left known about a refresh token it presented. */
export type Mark = "spent" | "unsettled";

async function marker(mark: Mark, token: string): Promise<string> {
  // A digest, not the token: lock names are visible to every script of this origin.
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
  return `baton-ionic-${mark}:` + Array.from(digest.slice(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Tells the other tabs at once, before the lock is released, what became of `token`: `spent` (the
 * new tokens are on their way to this origin's storage) or `unsettled` (presented, answer lost).
 */
export async function mark(kind: Mark, token: string): Promise<void> {
  if (!navigator.locks) return;
  const name = await marker(kind, token);
  await new Promise<void>((placed) => {
    void navigator.locks.request(name, { ifAvailable: true }, () => {
      placed();
      return new Promise((release) => setTimeout(release, MARK_MS));
    });
  });
}

/** What another tab left known about `token` in the last few seconds, if anything. */
export async function markOf(token: string): Promise<Mark | null> {
  if (!navigator.locks) return null;
  const { held = [] } = await navigator.locks.query();
  const names = new Set(held.map((lock) => lock.name));
  if (names.has(await marker("spent", token))) return "spent";
  if (names.has(await marker("unsettled", token))) return "unsettled";
  return null;
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
