import { HttpContext, HttpContextToken } from "@angular/common/http";
import type { Key } from "./dpop";

/**
 * A call made without an access token (login, signup, refresh, logout): `undefined` for an
 * ordinary protected call, else the key to prove it with (null: a bearer session, no proof).
 */
export const PUBLIC_CALL = new HttpContextToken<Key | null | undefined>(() => undefined);

export const publicCall = (key: Key | null) => new HttpContext().set(PUBLIC_CALL, key);
