// DPoP (RFC 9449): the session's tokens are bound to a P-256 key the app generates with WebCrypto as
// non-extractable, so a copy of the tokens (from storage, a log, a proxy) is refused without it.
// Key pairs live in IndexedDB under their public `x` (a CryptoKey is stored as itself, its private
// half never as bytes): a login that fails, in any tab, leaves the live session's key alone. Where
// no key can be kept (no IndexedDB, no WebCrypto), the app falls back to bearer tokens.

type Jwk = { kty: string; crv: string; x: string; y: string };
export interface Key {
  pair: CryptoKeyPair;
  jwk: Jwk;
}

const DB = "baton-ionic";
const STORE = "keys";

const cache = new Map<string, Promise<Key | null>>();

function b64url(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = "";
  for (const b of view) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const b64json = (value: unknown) => b64url(new TextEncoder().encode(JSON.stringify(value)));

/** One request on the key store; rejects on any failure (and after 5 s), never hangs. */
function withStore<T>(mode: IDBTransactionMode, act: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the key store did not answer")), 5_000);
    const done = (ok: boolean, value: unknown) => {
      clearTimeout(timer);
      if (ok) resolve(value as T);
      else reject(value);
    };
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    open.onblocked = () => done(false, new Error("the key store is blocked by another tab"));
    open.onerror = () => done(false, open.error);
    open.onsuccess = () => {
      const db = open.result;
      try {
        const request = act(db.transaction(STORE, mode).objectStore(STORE));
        request.onsuccess = () => {
          done(true, request.result);
          db.close();
        };
        request.onerror = () => {
          done(false, request.error);
          db.close();
        };
      } catch (err) {
        db.close();
        done(false, err);
      }
    };
  });
}

async function describe(pair: CryptoKeyPair): Promise<Key> {
  const { kty, crv, x, y } = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as Jwk;
  return { pair, jwk: { kty, crv, x, y } };
}

/**
 * The stored key whose public `x` is `x` (the one a session was bound to), or null if there is
 * none. A store that fails to answer is an error, not a lost key: the call fails, the session stays.
 */
export function currentKey(x: string): Promise<Key | null> {
  let key = cache.get(x);
  if (!key) {
    key = withStore<CryptoKeyPair | undefined>("readonly", (s) => s.get(x)).then((pair) => (pair ? describe(pair) : null));
    cache.set(x, key);
    // Only a key found is remembered: a miss or a failure is asked again next time.
    key.then(
      (found) => found || cache.delete(x),
      () => cache.delete(x),
    );
  }
  return key;
}

/**
 * A new key for a new session (a login or signup), stored before it is used: null when the
 * browser cannot keep one, and the session is then a bearer session.
 */
export async function newKey(): Promise<Key | null> {
  try {
    const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const key = await describe(pair);
    await withStore("readwrite", (s) => s.put(pair, key.jwk.x));
    cache.set(key.jwk.x, Promise.resolve(key));
    return key;
  } catch {
    return null;
  }
}

/** Forgets the key named by `x` (its session ended, or its login failed). */
export async function dropKey(x: string): Promise<void> {
  cache.delete(x);
  await withStore("readwrite", (s) => s.delete(x)).catch(() => undefined);
}

/** A proof for one request: `htu` is the URL without query or fragment; `ath` binds the access token. */
export async function proof(key: Key, method: string, url: string, accessToken?: string): Promise<string> {
  const target = new URL(url);
  const claims: Record<string, unknown> = {
    jti: crypto.randomUUID(),
    htm: method.toUpperCase(),
    htu: target.origin + target.pathname,
    iat: Math.floor(Date.now() / 1000),
  };
  if (accessToken !== undefined) {
    claims["ath"] = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken)));
  }
  const input = `${b64json({ typ: "dpop+jwt", alg: "ES256", jwk: key.jwk })}.${b64json(claims)}`;
  // WebCrypto's ECDSA signature is already r ‖ s, the form JWS wants.
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.pair.privateKey, new TextEncoder().encode(input));
  return `${input}.${b64url(signature)}`;
}
