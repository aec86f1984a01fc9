//! The keys every instance shares, kept in the database so that any instance verifies what another
//! signed: the JWT signing keys and the refresh tokens' rotation keys. The one-time codes' secrets
//! (`totp_secrets`) are sealed alike ([`seal_totp_secret`]), and the commands below cover them too.
//!
//! - A signing key signs from its `activates_at` until the next key's. `rotate-signing-key`
//!   stores a key that activates `SIGNING_KEY_PUBLISH_DELAY` later: every instance reads the keys
//!   every `KEY_POLL_INTERVAL` (shorter), so all of them know the key before it signs and switch
//!   at the same moment; the JWKS carries it from the start, and its `max-age` is short enough
//!   that a resource server's cached copy has it too. Nothing is updated in place: whether a key
//!   is next, current or retired follows from the times alone.
//! - The rotation key `primary` authenticates new refresh tokens; keys imported from the data
//!   directories of instances that ran alone still verify the tokens those issued.
//! - Creating them on an empty database is race-free: the first signing key takes
//!   `activates_at = 0` and the first rotation key the id `primary`, both unique; an instance that
//!   loses the race reads the winner's.
//! - With `KEY_ENCRYPTION_KEY`, private material is stored sealed (XChaCha20-Poly1305, the row's
//!   name as associated data, so a sealed value cannot be moved to another row), and a row in the
//!   clear is refused, at start and at every poll: whoever can write to the database could
//!   otherwise add a signing key of their own. `server seal-keys` seals, once, the rows an
//!   upgrade finds in the clear. `server rotate-kek` re-seals every row under a new key while
//!   `KEY_ENCRYPTION_KEY_PREVIOUS` (the old one) is still accepted for reading. Without a
//!   key-encryption key, keys are stored in the clear and protected only by the database's
//!   access control.

use super::access::Key;
use crate::auth::settings::{AuthSettings, KeyEncryptionKey};
use crate::auth::store::db::{now_ms, Db};
use crate::auth::AuthService;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The rotation key that authenticates new refresh tokens.
const PRIMARY: &str = "primary";
/// The key files of data directories from before the keys moved into the database.
const SIGNING_KEY_FILE: &str = "signing-keys.json";
const ROTATION_KEY_FILE: &str = "refresh-rotation.key";

/// A signing key `rotate-signing-key` added: its id, and when it starts signing (ms).
pub struct AddedKey {
    pub kid: String,
    pub activates_at: i64,
}

/// The keys as read from the database.
pub struct Loaded {
    pub(crate) signing: Vec<Key>,
    /// `primary` first.
    pub(crate) rotation: Vec<[u8; 32]>,
}

/// The refresh tokens' keys in memory: the first issues, all verify.
#[derive(Default)]
pub(crate) struct RotationKeys(RwLock<Arc<[[u8; 32]]>>);

impl RotationKeys {
    pub fn get(&self) -> Arc<[[u8; 32]]> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, keys: Vec<[u8; 32]>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::from(keys);
    }
}

/// The key-encryption keys in effect: `current` seals; both open.
#[derive(Clone, Copy)]
struct Keks<'a> {
    current: Option<&'a KeyEncryptionKey>,
    previous: Option<&'a KeyEncryptionKey>,
}

impl<'a> Keks<'a> {
    fn of(config: &'a AuthSettings) -> Self {
        Self { current: config.keys.encryption_key.as_ref(), previous: config.keys.previous_encryption_key.as_ref() }
    }
}

/// Imports the data directory's key files (once), creates the first keys if there are none, and
/// reads the keys.
pub async fn prepare(db: &Db, config: &AuthSettings) -> Result<Loaded, KeyError> {
    let keks = Keks::of(config);
    let kek = keks.current;
    import_files(db, &config.data_dir, kek).await?;
    check_totp_secrets(db, keks).await?;
    let now = now_ms();
    let first = Key::generate();
    // Only on an empty table; the unique activates_at settles a race between first starts.
    sqlx::query(
        "INSERT INTO signing_keys (kid, activates_at, created_at, public_key, private_key) \
         SELECT $1, 0, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM signing_keys) ON CONFLICT DO NOTHING",
    )
    .bind(&first.kid)
    .bind(now)
    .bind(&first.public_x)
    .bind(seal(kek, &first.kid, &first.pkcs8))
    .execute(db)
    .await?;
    let secret: [u8; 32] = rand::random();
    sqlx::query("INSERT INTO rotation_keys (id, created_at, secret) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(PRIMARY)
        .bind(now)
        .bind(seal(kek, PRIMARY, &secret))
        .execute(db)
        .await?;
    load(db, keks).await
}

/// The one-time codes' secrets are opened one by one, at their owners' logins: trouble every
/// row would have stops the server at start instead, with what to do. With a key-encryption
/// key, no row in the clear and the first sealed one opening; without, no sealed row. (Not every
/// row is opened: start-up must not read every account.)
async fn check_totp_secrets(db: &Db, keks: Keks<'_>) -> Result<(), KeyError> {
    let Some(_) = keks.current else {
        let sealed: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM totp_secrets WHERE secret LIKE 'sealed:%' LIMIT 1")
                .fetch_optional(db)
                .await?;
        return match sealed {
            Some(user_id) => {
                Err(format!("the one-time-code secret of user {user_id} is sealed: set KEY_ENCRYPTION_KEY").into())
            }
            None => Ok(()),
        };
    };
    let plain: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM totp_secrets WHERE secret NOT LIKE 'sealed:%' LIMIT 1")
            .fetch_optional(db)
            .await?;
    if let Some(user_id) = plain {
        return Err(format!(
            "the one-time-code secret of user {user_id} (and maybe others) is stored in the clear although \
             KEY_ENCRYPTION_KEY is set: run `server seal-keys` once after an upgrade"
        )
        .into());
    }
    let first: Option<(String, String)> =
        sqlx::query_as("SELECT user_id, secret FROM totp_secrets LIMIT 1").fetch_optional(db).await?;
    match first {
        Some((user_id, stored)) => open(keks, &format!("{TOTP_NAME}{user_id}"), &stored).map(|_| ()),
        None => Ok(()),
    }
}

/// Reads every key. A sealed key without the key-encryption key (or with another), or with one a
/// key in the clear, is an error that names the key: the server must not start half-blind, and
/// a poll keeps the keys it had.
async fn load(db: &Db, kek: Keks<'_>) -> Result<Loaded, KeyError> {
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT kid, activates_at, private_key FROM signing_keys").fetch_all(db).await?;
    let signing = rows
        .iter()
        .map(|(kid, activates_at, private)| Ok(Key::from_pkcs8(kid, *activates_at, &open(kek, kid, private)?)?))
        .collect::<Result<Vec<_>, KeyError>>()?;
    if signing.is_empty() {
        return Err("no signing key in the database".into());
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, secret FROM rotation_keys ORDER BY created_at, id").fetch_all(db).await?;
    let mut rotation = Vec::with_capacity(rows.len());
    for (id, secret) in &rows {
        let bytes: [u8; 32] =
            open(kek, id, secret)?.try_into().map_err(|_| format!("rotation key {id} is not 32 bytes"))?;
        if id == PRIMARY {
            rotation.insert(0, bytes);
        } else {
            rotation.push(bytes);
        }
    }
    if !rows.iter().any(|(id, _)| id == PRIMARY) {
        return Err("no primary rotation key in the database".into());
    }
    Ok(Loaded { signing, rotation })
}

/// Stores a new signing key that signs `SIGNING_KEY_PUBLISH_DELAY` from now (and from the latest
/// key's activation, if that is later). Returns its `kid` and activation time.
pub async fn rotate(db: &Db, config: &AuthSettings) -> Result<AddedKey, KeyError> {
    let key = Key::generate();
    let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(activates_at) FROM signing_keys").fetch_one(db).await?;
    let activates_at = (now_ms() + config.keys.publish_delay.as_millis() as i64).max(latest.unwrap_or(0) + 1);
    sqlx::query(
        "INSERT INTO signing_keys (kid, activates_at, created_at, public_key, private_key) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&key.kid)
    .bind(activates_at)
    .bind(now_ms())
    .bind(&key.public_x)
    .bind(seal(config.keys.encryption_key.as_ref(), &key.kid, &key.pkcs8))
    .execute(db)
    .await?;
    Ok(AddedKey { kid: key.kid, activates_at })
}

/// Deletes signing keys that were retired (a newer key activated) more than `keep_ms` ago.
pub(crate) async fn purge_retired(db: &Db, keep_ms: i64) -> Result<u64, sqlx::Error> {
    // A key is retired when the next one activates: the earliest activation after its own.
    let deleted = sqlx::query(
        "DELETE FROM signing_keys WHERE kid IN (SELECT k.kid FROM signing_keys k WHERE \
         (SELECT MIN(n.activates_at) FROM signing_keys n WHERE n.activates_at > k.activates_at) < $1)",
    )
    .bind(now_ms() - keep_ms)
    .execute(db)
    .await?;
    Ok(deleted.rows_affected())
}

/// Reads the keys every `KEY_POLL_INTERVAL`, until the service is dropped.
pub(crate) fn spawn_polling(service: &AuthService) {
    let service = Arc::downgrade(&service.inner);
    tokio::spawn(async move {
        loop {
            // No strong reference while asleep: it would keep the service alive.
            let Some(interval) = service.upgrade().map(|inner| inner.settings.keys.poll_interval) else { return };
            tokio::time::sleep(interval).await;
            let Some(inner) = service.upgrade() else { return };
            match load(&inner.db, Keks::of(&inner.settings)).await {
                Ok(loaded) => {
                    inner.signer.set_keys(loaded.signing);
                    inner.rotation.set(loaded.rotation);
                }
                // The keys read last keep working; a key that activates meanwhile is known
                // already (it was stored a publish delay ago, longer than this interval).
                Err(e) => tracing::warn!(error = %e, "cannot read the keys; retrying"),
            }
        }
    });
}

/// Moves the key files of a data directory into the database; renamed to `*.imported` after, so
/// they are read once. The file's current key keeps signing; imported rotation keys keep
/// verifying the tokens they issued (the first becomes `primary` on an empty database).
async fn import_files(db: &Db, data_dir: &Path, kek: Option<&KeyEncryptionKey>) -> Result<(), KeyError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct FileKey {
        kid: String,
        created_at: i64,
        pkcs8: String,
    }
    #[derive(serde::Deserialize)]
    struct KeyFile {
        keys: Vec<FileKey>,
    }
    let path = data_dir.join(SIGNING_KEY_FILE);
    if let Some(bytes) = read_if_present(&path)? {
        let file: KeyFile = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        for key in file.keys {
            let der = STANDARD
                .decode(&key.pkcs8)
                .map_err(|_| format!("{}: key {} is not base64", path.display(), key.kid))?;
            // Activation = creation: the newest key of the file is the one it signed with.
            let decoded = Key::from_pkcs8(&key.kid, key.created_at, &der)?;
            sqlx::query(
                "INSERT INTO signing_keys (kid, activates_at, created_at, public_key, private_key) \
                 VALUES ($1, $2, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&key.kid)
            .bind(key.created_at)
            .bind(decoded.public_x())
            .bind(seal(kek, &key.kid, &der))
            .execute(db)
            .await?;
        }
        mark_imported(&path)?;
    }
    let path = data_dir.join(ROTATION_KEY_FILE);
    if let Some(bytes) = read_if_present(&path)? {
        let secret: [u8; 32] =
            bytes.try_into().map_err(|_| format!("{} must hold exactly 32 bytes", path.display()))?;
        // `primary` when none exists yet; else kept beside it under a name of its own.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(secret);
        let own_id = format!("imported-{}", URL_SAFE_NO_PAD.encode(&digest[..9]));
        for id in [PRIMARY, own_id.as_str()] {
            let inserted = sqlx::query(
                "INSERT INTO rotation_keys (id, created_at, secret) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(now_ms())
            .bind(seal(kek, id, &secret))
            .execute(db)
            .await?;
            if inserted.rows_affected() == 1 {
                break;
            }
        }
        mark_imported(&path)?;
    }
    Ok(())
}

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, KeyError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display()).into()),
    }
}

fn mark_imported(path: &Path) -> Result<(), KeyError> {
    let done = path.with_extension(format!("{}.imported", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    Ok(std::fs::rename(path, &done).map_err(|e| format!("cannot rename {}: {e}", path.display()))?)
}

/// `server seal-keys`: seals every row stored in the clear under `KEY_ENCRYPTION_KEY`; how many.
pub async fn seal_plain_rows(db: &Db, config: &AuthSettings) -> Result<u64, KeyError> {
    let kek = config.keys.encryption_key.as_ref().ok_or("set KEY_ENCRYPTION_KEY to the key to seal with")?;
    reseal(db, |id, stored| match stored.strip_prefix("plain:") {
        Some(_) => Ok(Some(seal(Some(kek), id, &open_plain(id, stored)?))),
        None => Ok(None),
    })
    .await
}

/// `server rotate-kek`: re-seals under `KEY_ENCRYPTION_KEY` every row sealed under
/// `KEY_ENCRYPTION_KEY_PREVIOUS`; how many. Instances running meanwhile open either.
pub async fn rotate_kek(db: &Db, config: &AuthSettings) -> Result<u64, KeyError> {
    let keks = Keks::of(config);
    let (Some(current), Some(previous)) = (keks.current, keks.previous) else {
        return Err("set KEY_ENCRYPTION_KEY to the new key and KEY_ENCRYPTION_KEY_PREVIOUS to the old one".into());
    };
    reseal(db, |id, stored| {
        if stored.starts_with("plain:") {
            return Err(format!("key {id} is stored in the clear: run `server seal-keys` first").into());
        }
        match open_with(current, id, stored) {
            Ok(_) => Ok(None),
            Err(_) => Ok(Some(seal(Some(current), id, &open_with(previous, id, stored)?))),
        }
    })
    .await
}

/// Rewrites each key row that `change` gives a new stored form. Each update is conditional on the
/// row being unchanged, so two commands (or instances) at once do not overwrite each other.
async fn reseal(db: &Db, change: impl Fn(&str, &str) -> Result<Option<String>, KeyError>) -> Result<u64, KeyError> {
    let mut changed = 0;
    let tables = [
        ("signing_keys", "kid", "private_key", ""),
        ("rotation_keys", "id", "secret", ""),
        ("totp_secrets", "user_id", "secret", TOTP_NAME),
    ];
    for (table, id_column, column, name_prefix) in tables {
        let rows: Vec<(String, String)> =
            sqlx::query_as(&format!("SELECT {id_column}, {column} FROM {table}")).fetch_all(db).await?;
        for (id, stored) in rows {
            let Some(new) = change(&format!("{name_prefix}{id}"), &stored)? else { continue };
            changed +=
                sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE {id_column} = $2 AND {column} = $3"))
                    .bind(new)
                    .bind(&id)
                    .bind(&stored)
                    .execute(db)
                    .await?
                    .rows_affected();
        }
    }
    Ok(changed)
}

/// The sealed name of a user's one-time-code secret: `totp:<user id>`, so a secret sealed for one
/// account opens for no other.
const TOTP_NAME: &str = "totp:";

/// A user's one-time-code secret as stored: sealed under `KEY_ENCRYPTION_KEY` where one is set.
pub(crate) fn seal_totp_secret(config: &AuthSettings, user_id: &str, secret: &[u8]) -> String {
    seal(config.keys.encryption_key.as_ref(), &format!("{TOTP_NAME}{user_id}"), secret)
}

/// A user's one-time-code secret from its stored form, as [`open`] opens a key.
pub(crate) fn open_totp_secret(config: &AuthSettings, user_id: &str, stored: &str) -> Result<Vec<u8>, KeyError> {
    open(Keks::of(config), &format!("{TOTP_NAME}{user_id}"), stored)
}

/// `plain:<base64>` without a key-encryption key; `sealed:<base64 of nonce ‖ ciphertext>` with.
fn seal(kek: Option<&KeyEncryptionKey>, name: &str, secret: &[u8]) -> String {
    let Some(kek) = kek else { return format!("plain:{}", STANDARD.encode(secret)) };
    let nonce: [u8; 24] = rand::random();
    let sealed = cipher(kek)
        .encrypt(&XNonce::from(nonce), Payload { msg: secret, aad: name.as_bytes() })
        .expect("encrypting in memory cannot fail");
    format!("sealed:{}", STANDARD.encode([nonce.as_slice(), &sealed].concat()))
}

/// A stored key's bytes: in the clear only where no key-encryption key is set; sealed, under the
/// current key-encryption key or the previous one.
fn open(keks: Keks<'_>, name: &str, stored: &str) -> Result<Vec<u8>, KeyError> {
    if stored.starts_with("plain:") {
        return match keks.current {
            None => open_plain(name, stored),
            Some(_) => Err(format!(
                "key {name} is stored in the clear although KEY_ENCRYPTION_KEY is set: refused (run `server seal-keys` once after an upgrade)"
            )
            .into()),
        };
    }
    let kek = keks.current.ok_or_else(|| format!("key {name} is sealed: set KEY_ENCRYPTION_KEY"))?;
    open_with(kek, name, stored).or_else(|e| keks.previous.map_or(Err(e), |previous| open_with(previous, name, stored)))
}

fn open_plain(name: &str, stored: &str) -> Result<Vec<u8>, KeyError> {
    let plain = stored.strip_prefix("plain:").ok_or_else(|| format!("key {name} is not stored in the clear"))?;
    Ok(STANDARD.decode(plain).map_err(|_| format!("key {name} is not valid base64"))?)
}

fn open_with(kek: &KeyEncryptionKey, name: &str, stored: &str) -> Result<Vec<u8>, KeyError> {
    let sealed = stored.strip_prefix("sealed:").ok_or_else(|| format!("key {name} is stored in an unknown form"))?;
    let bytes = STANDARD.decode(sealed).map_err(|_| format!("key {name} is not valid base64"))?;
    if bytes.len() < 24 {
        return Err(format!("key {name} is truncated").into());
    }
    let (nonce, ciphertext) = bytes.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().expect("split at 24");
    cipher(kek)
        .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad: name.as_bytes() })
        .map_err(|_| format!("key {name} does not open with this KEY_ENCRYPTION_KEY").into())
}

fn cipher(kek: &KeyEncryptionKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(kek.expose().into())
}

/// Why the keys cannot be read, made or changed: what the operator is told at start or by a
/// command (it names the key or file, never what it holds).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Unusable(String),
}

impl From<String> for KeyError {
    fn from(why: String) -> Self {
        Self::Unusable(why)
    }
}

impl From<&str> for KeyError {
    fn from(why: &str) -> Self {
        Self::Unusable(why.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keks<'a>(current: Option<&'a KeyEncryptionKey>, previous: Option<&'a KeyEncryptionKey>) -> Keks<'a> {
        Keks { current, previous }
    }

    #[test]
    fn sealed_keys_open_only_with_their_kek_and_row() {
        let kek = KeyEncryptionKey::from_bytes([7; 32]);
        let other = KeyEncryptionKey::from_bytes([8; 32]);
        let sealed = seal(Some(&kek), "k1", b"secret");
        assert!(sealed.starts_with("sealed:") && !sealed.contains("c2VjcmV0"), "no plain text: {sealed}");
        assert_eq!(open(keks(Some(&kek), None), "k1", &sealed).unwrap(), b"secret");
        assert!(open(keks(Some(&kek), None), "k2", &sealed).is_err(), "moved to another row");
        assert!(open(keks(Some(&other), None), "k1", &sealed).is_err(), "another KEK");
        assert_eq!(open(keks(Some(&other), Some(&kek)), "k1", &sealed).unwrap(), b"secret", "the previous KEK reads");
        assert!(open(keks(None, None), "k1", &sealed).unwrap_err().to_string().contains("KEY_ENCRYPTION_KEY"));
        let plain = seal(None, "k1", b"secret");
        assert_eq!(open(keks(None, None), "k1", &plain).unwrap(), b"secret");
        assert!(
            open(keks(Some(&kek), None), "k1", &plain).unwrap_err().to_string().contains("seal-keys"),
            "in the clear beside a KEK"
        );
    }
}
