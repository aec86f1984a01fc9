//! DPoP (RFC 9449): tokens bound to a key pair whose private half never leaves the client.
//!
//! A client that sends a `DPoP` proof with its login or signup gets a session bound to the key's
//! RFC 7638 thumbprint (`jkt`). From then on the session's refresh tokens work only with a proof
//! signed by that key, and its access tokens carry `cnf.jkt` and work only as
//! `Authorization: DPoP <token>` with a proof whose `ath` is the token's hash. A proof is a JWT
//! (`typ: dpop+jwt`, ES256, the public key in `jwk`) naming this request's method (`htm`) and URL
//! (`htu`, without query or fragment), made within the last minute (`iat`), and used once (`jti`:
//! remembered for the proof's lifetime, in memory on SQLite and in the database on PostgreSQL, so
//! no instance accepts it twice). The URL is checked against `PUBLIC_URL` where it is set (the
//! `Host` a client sends is its own choice: a proof made for another server that trusts Baton's
//! keys must not work here); unset, against the request's `Host`. Sessions started without a
//! proof stay bearer sessions unless `DPOP_REQUIRED` is on.

use super::db::{now_ms, Db};
use super::{AuthService, ClientInfo};
use crate::error::AppError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::hash::BuildHasher as _;
use std::sync::Mutex;

/// How old a proof may be; a proof is also refused from more than [`FUTURE_SECS`] ahead.
pub const MAX_AGE_SECS: i64 = 60;
const FUTURE_SECS: i64 = 5;
/// The one algorithm accepted: what WebCrypto and every DPoP client library make.
pub const ALGORITHM: &str = "ES256";

/// What a request brings for DPoP: its `DPoP` header and what a proof for it must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofRequest {
    pub proof: String,
    /// `GET`, `POST`, …
    pub method: String,
    /// `scheme://host[:port]/path` of this request, as the client addressed it.
    pub htu: String,
    /// The path alone, for the URLs under `PUBLIC_URL`.
    pub path: String,
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: String,
    jwk: Jwk,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    /// A private key must never be sent; a proof that carries one is refused.
    d: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    ath: Option<String>,
}

/// A proof that passed every check but the replay check (see [`Replays`]).
#[derive(Debug)]
pub(super) struct Verified {
    /// The key's thumbprint.
    pub jkt: String,
    /// `jkt:jti`: what must not be seen twice.
    pub replay_id: String,
    /// Until when the replay must be remembered (ms).
    pub remember_until: i64,
}

fn refuse(why: &str) -> AppError {
    AppError::InvalidDpopProof(format!("The DPoP proof is not valid: {why}."))
}

/// A session bound to a key, and a request without a proof.
pub(super) fn missing() -> AppError {
    AppError::InvalidDpopProof("This session is bound to a DPoP key: send a DPoP proof.".into())
}

/// A session bound to a key, and a proof by another.
pub(super) fn foreign_key() -> AppError {
    AppError::InvalidDpopProof("The DPoP proof is signed by another key than the session's.".into())
}

/// Checks `request`'s proof: form, signature, method, URL (under one of `origins`, or the
/// request's own where none are given), age and, with an access token, `ath`.
pub(super) fn verify(
    request: &ProofRequest,
    origins: &[String],
    access_token: Option<&str>,
    now_ms: i64,
) -> Result<Verified, AppError> {
    let proof = request.proof.trim();
    if proof.len() > 4096 || proof.split('.').count() != 3 {
        return Err(refuse("it is not a compact JWT"));
    }
    let header_b64 = proof.split('.').next().unwrap_or_default();
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| refuse("its header is not a JSON object with alg and jwk"))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(refuse("typ must be dpop+jwt"));
    }
    if header.alg != ALGORITHM {
        return Err(refuse("alg must be ES256"));
    }
    let jwk = header.jwk;
    if jwk.d.is_some() {
        return Err(refuse("its jwk holds a private key"));
    }
    let (Some(x), Some(y)) = (jwk.x.as_deref(), jwk.y.as_deref()) else { return Err(refuse("its jwk is not a P-256 key")) };
    let coordinate = |c: &str| URL_SAFE_NO_PAD.decode(c).is_ok_and(|b| b.len() == 32);
    if jwk.kty != "EC" || jwk.crv.as_deref() != Some("P-256") || !coordinate(x) || !coordinate(y) {
        return Err(refuse("its jwk is not a P-256 key"));
    }
    let key = DecodingKey::from_ec_components(x, y).map_err(|_| refuse("its jwk is not a P-256 key"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(proof, &key, &validation)
        .map_err(|_| refuse("its signature or claims do not verify"))?
        .claims;
    if claims.jti.is_empty() || claims.jti.len() > 128 {
        return Err(refuse("jti must be 1 to 128 characters"));
    }
    if claims.htm != request.method {
        return Err(refuse("htm is not this request's method"));
    }
    let named = normalize(&claims.htu).ok_or_else(|| refuse("htu is not this request's URL"))?;
    let matches = match origins {
        [] => normalize(&request.htu).is_some_and(|own| own == named),
        origins => named.strip_suffix(request.path.as_str()).is_some_and(|origin| origins.iter().any(|o| o == origin)),
    };
    if !matches {
        return Err(refuse("htu is not this request's URL"));
    }
    let now = now_ms.div_euclid(1000);
    if claims.iat < now - MAX_AGE_SECS || claims.iat > now + FUTURE_SECS {
        return Err(refuse("iat is too old or in the future"));
    }
    if let Some(token) = access_token {
        if claims.ath.as_deref() != Some(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())).as_str()) {
            return Err(refuse("ath is not the hash of the access token"));
        }
    }
    let jkt = thumbprint(x, y);
    Ok(Verified {
        replay_id: format!("{jkt}:{}", claims.jti),
        jkt,
        remember_until: (claims.iat + MAX_AGE_SECS + FUTURE_SECS + 1) * 1000,
    })
}

impl AuthService {
    /// Checks the proof `client` brings for this request (and `access_token`, on a protected
    /// call), signed by key `expected` if given, and records its use. The key's thumbprint.
    pub(super) async fn check_proof(&self, client: &ClientInfo, access_token: Option<&str>, expected: Option<&str>) -> Result<String, AppError> {
        let request = client.dpop.as_ref().ok_or_else(missing)?;
        let now = now_ms();
        let verified = verify(request, &self.config().public_urls, access_token, now)?;
        if expected.is_some_and(|jkt| jkt != verified.jkt) {
            return Err(foreign_key());
        }
        if !self.inner.dpop_replays.first_use(&verified, now).await? {
            return Err(refuse("it was used before"));
        }
        Ok(verified.jkt)
    }

    /// The key a request's proof is made with, if it brings one (checked and recorded); with
    /// `DPOP_REQUIRED`, a request without one is refused.
    pub(super) async fn presented_key(&self, client: &ClientInfo) -> Result<Option<String>, AppError> {
        match &client.dpop {
            Some(_) => self.check_proof(client, None, None).await.map(Some),
            None if self.config().dpop_required => {
                Err(AppError::InvalidDpopProof("This server requires DPoP: send a DPoP proof.".into()))
            }
            None => Ok(None),
        }
    }
}

/// RFC 7638: SHA-256 of the key's required members, in this order, without whitespace.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// `scheme://host[:port]` of an origin such as `PUBLIC_URL`'s (normalized as [`normalize`]);
/// `None` for a URL with a path, query, fragment or user.
pub fn origin(url: &str) -> Option<String> {
    if url.contains(['?', '#']) {
        return None;
    }
    let normalized = normalize(url)?;
    let origin = normalized.strip_suffix('/')?;
    let authority = &origin[origin.find("://")? + 3..];
    (!authority.contains('/')).then(|| origin.to_owned())
}

/// `scheme://host[:port]/path`, lowercased scheme and host, default port dropped, query and
/// fragment removed (RFC 9449 §4.3 and RFC 3986 §6). `None` for anything else.
fn normalize(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.split(['?', '#']).next()?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    if authority.ends_with(default_port) {
        authority.truncate(authority.len() - default_port.len());
    }
    Some(format!("{scheme}://{authority}{path}"))
}

/// Proofs seen, until they are too old to be accepted anyway.
pub(super) enum Replays {
    /// SQLite: one instance, so memory will do. (Boxed: sixteen shards are large, and the
    /// service holds one of the two.)
    Memory(Box<MemoryReplays>),
    /// PostgreSQL: every instance checks the same table.
    Shared(Db),
}

impl Replays {
    /// Records the proof; `false` if it was seen before (a replay).
    pub async fn first_use(&self, proof: &Verified, now_ms: i64) -> Result<bool, AppError> {
        match self {
            Self::Memory(seen) => Ok(seen.first_use(&proof.replay_id, now_ms)),
            Self::Shared(db) => {
                let inserted = sqlx::query(
                    "INSERT INTO dpop_proofs (id, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE dpop_proofs.expires_at <= $3",
                )
                .bind(&proof.replay_id)
                .bind(proof.remember_until)
                .bind(now_ms)
                .execute(db)
                .await?;
                Ok(inserted.rows_affected() == 1)
            }
        }
    }
}

/// How long a proof must be remembered after it is first seen: its `iat` may be up to
/// [`FUTURE_SECS`] ahead and it is accepted until [`MAX_AGE_SECS`] after.
const REMEMBER_MS: i64 = (MAX_AGE_SECS + FUTURE_SECS + 1) * 1000;
const SHARDS: usize = 16;

/// The proofs of the last one or two [`REMEMBER_MS`], in shards chosen by a keyed hash of the
/// proof's id, each with two generations: a proof goes into the current one, and a generation
/// older than `REMEMBER_MS` is dropped whole. Each insert touches one shard, does constant work
/// and takes no lock that the other shards' callers wait for; memory is at most twice the
/// proofs of one lifetime (the request rate times about two minutes), whatever the rate.
pub(super) struct MemoryReplays {
    hasher: std::collections::hash_map::RandomState,
    shards: [Mutex<Generations>; SHARDS],
}

#[derive(Default)]
struct Generations {
    current: HashSet<String>,
    previous: HashSet<String>,
    /// When `current` began (ms).
    started_at: i64,
}

impl Default for MemoryReplays {
    fn default() -> Self {
        Self { hasher: Default::default(), shards: std::array::from_fn(|_| Mutex::default()) }
    }
}

impl MemoryReplays {
    fn first_use(&self, id: &str, now_ms: i64) -> bool {
        let shard = self.hasher.hash_one(id) as usize % SHARDS;
        let mut seen = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        if now_ms - seen.started_at >= REMEMBER_MS {
            // Everything in `previous` went in over REMEMBER_MS ago: no longer needed. Two
            // lifetimes without a proof here: `current` is old enough to go too.
            let stale = std::mem::take(&mut seen.current);
            seen.previous = if now_ms - seen.started_at >= 2 * REMEMBER_MS { HashSet::new() } else { stale };
            seen.started_at = now_ms;
        }
        !seen.previous.contains(id) && seen.current.insert(id.to_owned())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|g| g.current.len() + g.previous.len()).unwrap_or(0)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_as_rfc_9449_says() {
        assert_eq!(normalize("HTTPS://Example.COM:443/api/x?q=1#f").as_deref(), Some("https://example.com/api/x"));
        assert_eq!(normalize("http://127.0.0.1:3000/a").as_deref(), Some("http://127.0.0.1:3000/a"));
        assert_eq!(normalize("http://host").as_deref(), Some("http://host/"));
        for bad in ["/api/x", "ftp://h/x", "http://user@h/x", "http:///x"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(origin("HTTPS://Baton.Example.com:443").as_deref(), Some("https://baton.example.com"));
        assert_eq!(origin("http://localhost:3000/").as_deref(), Some("http://localhost:3000"));
        for bad in ["https://x.example/app", "https://x.example?q", "https://u@x.example", "x.example", "https://"] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn replays_are_caught_for_a_whole_lifetime_and_memory_follows_the_rate() {
        let seen = MemoryReplays::default();
        let t0 = 1_000_000_000;
        assert!(seen.first_use("a", t0));
        assert!(!seen.first_use("a", t0), "a replay");
        // Until its last accepted moment, across a generation change of its shard.
        for later in [1, REMEMBER_MS / 2, REMEMBER_MS, REMEMBER_MS + 1, 2 * REMEMBER_MS - 1] {
            assert!(seen.first_use(&format!("other-{later}"), t0 + later));
            assert!(!seen.first_use("a", t0 + later), "still a replay {later} ms on");
        }
        // 1,000 proofs a second for ten lifetimes: no more than two lifetimes' worth are kept.
        let seen = MemoryReplays::default();
        let per_ms = 1;
        for ms in 0..10 * REMEMBER_MS {
            for i in 0..per_ms {
                assert!(seen.first_use(&format!("{ms}-{i}"), t0 + ms));
            }
        }
        let kept = seen.len() as i64;
        assert!(kept <= 2 * REMEMBER_MS * per_ms + SHARDS as i64, "{kept} proofs kept");
        assert!(kept >= REMEMBER_MS * per_ms, "{kept}: at least one lifetime's");
    }

    #[test]
    fn a_proof_being_recorded_holds_up_no_other_shard() {
        // One shard busy (its lock held, as by a caller in the middle of an insert): proofs that
        // belong to the other shards are recorded meanwhile, not queued behind it.
        let seen = std::sync::Arc::new(MemoryReplays::default());
        let busy = seen.hasher.hash_one("busy") as usize % SHARDS;
        let held = seen.shards[busy].lock().unwrap();
        let others: Vec<String> =
            (0..64).map(|i| format!("proof-{i}")).filter(|id| seen.hasher.hash_one(id) as usize % SHARDS != busy).collect();
        assert!(others.len() > 32, "most proofs go elsewhere: {} of 64", others.len());
        let (done, finished) = std::sync::mpsc::channel();
        let writer = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let recorded = others.iter().all(|id| seen.first_use(id, 1_000_000_000));
                let _ = done.send(recorded);
            })
        };
        let recorded = finished.recv_timeout(std::time::Duration::from_secs(10));
        drop(held);
        writer.join().unwrap();
        assert_eq!(recorded, Ok(true), "blocked behind another shard's lock");
    }

    #[test]
    fn a_thumbprint_is_the_sha_256_of_the_canonical_members() {
        // RFC 7638 §3: crv, kty, x, y in that order, no whitespace. (The integration tests and the
        // Python example compute it on their own and must agree with the server's `cnf.jkt`.)
        let canonical = r#"{"crv":"P-256","kty":"EC","x":"a","y":"b"}"#;
        assert_eq!(thumbprint("a", "b"), URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())));
        assert_ne!(thumbprint("a", "b"), thumbprint("a", "c"));
    }
}
