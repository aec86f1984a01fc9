//! What a protected call would otherwise cost each time: an Ed25519 verification and a database
//! read. Both are remembered, in this process only.
//!
//! - [`VerifiedTokens`]: an access token (the exact bytes) whose signature and claims were checked.
//!   Only time can change the verdict, so a hit checks `exp` again (as Envoy's JWT filter does).
//! - [`LiveSessions`]: that a session was alive, and whose it is, for at most [`LIVENESS_TTL_MS`].
//!   A revocation forgets every entry at once, in this process and, through `revocation`, in
//!   the other instances on one PostgreSQL; a lost notification is still bounded by
//!   [`LIVENESS_TTL_MS`].
//! - [`KnownUsers`]: a user's name and creation time, for refresh answers.

use crate::api::User;
use crate::auth::AccessClaims;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// How long "this session is alive" is believed without asking the database again.
pub const LIVENESS_TTL_MS: i64 = 1_000;
// Each holds at most `CACHE_CAPACITY` entries; past that, the stale ones go (or all of them).

pub(crate) struct VerifiedTokens {
    tokens: RwLock<HashMap<Box<str>, Arc<AccessClaims>>>,
    capacity: usize,
}

impl VerifiedTokens {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { tokens: RwLock::default(), capacity }
    }

    /// The claims of `token` if it was verified before and `exp` (plus `leeway`) is still ahead.
    pub(crate) fn get(&self, token: &str, now_secs: i64, leeway: i64) -> Option<Arc<AccessClaims>> {
        let claims = read(&self.tokens).get(token).cloned()?;
        (now_secs < claims.exp + leeway).then_some(claims)
    }

    pub(crate) fn insert(&self, token: &str, claims: Arc<AccessClaims>, now_secs: i64, leeway: i64) {
        let mut tokens = write(&self.tokens);
        if tokens.len() >= self.capacity {
            tokens.retain(|_, c| now_secs < c.exp + leeway);
            if tokens.len() >= self.capacity {
                tokens.clear();
            }
        }
        tokens.insert(token.into(), claims);
    }
}

pub(crate) struct LiveSessions {
    sessions: RwLock<HashMap<Box<str>, Alive>>,
    /// Bumped by every revocation: an answer read from the database before a revocation must not
    /// be remembered after it.
    epoch: AtomicU64,
    capacity: usize,
}

#[derive(Clone)]
struct Alive {
    user: Arc<User>,
    expires_at: i64,
    checked_at: i64,
}

impl LiveSessions {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { sessions: RwLock::default(), epoch: AtomicU64::default(), capacity }
    }

    /// The user of session `sid` if it was seen alive less than [`LIVENESS_TTL_MS`] ago.
    pub(crate) fn get(&self, sid: &str, user_id: &str, now: i64) -> Option<Arc<User>> {
        let sessions = read(&self.sessions);
        let alive = sessions.get(sid)?;
        (now - alive.checked_at < LIVENESS_TTL_MS && now < alive.expires_at && alive.user.id == user_id)
            .then(|| alive.user.clone())
    }

    /// Read before asking the database; pass it to [`Self::insert`].
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remembers that `sid` was alive at `checked_at`, unless a revocation came since `epoch`.
    pub(crate) fn insert(&self, epoch: u64, sid: &str, user: Arc<User>, expires_at: i64, checked_at: i64) {
        let mut sessions = write(&self.sessions);
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if sessions.len() >= self.capacity {
            sessions.retain(|_, a| checked_at - a.checked_at < LIVENESS_TTL_MS);
            if sessions.len() >= self.capacity {
                sessions.clear();
            }
        }
        sessions.insert(sid.into(), Alive { user, expires_at, checked_at });
    }

    /// After any revocation or deletion: nothing is believed without asking again.
    pub(crate) fn forget_all(&self) {
        let mut sessions = write(&self.sessions);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        sessions.clear();
    }
}

/// Users by id, for refresh answers. A username never changes, so only a deleted account is
/// forgotten (its sessions go with it, so no refresh could ask for it anyway).
pub(crate) struct KnownUsers {
    users: RwLock<HashMap<Box<str>, Arc<User>>>,
    capacity: usize,
}

impl KnownUsers {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { users: RwLock::default(), capacity }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<User>> {
        read(&self.users).get(id).cloned()
    }

    pub(crate) fn insert(&self, user: Arc<User>) {
        let mut users = write(&self.users);
        if users.len() >= self.capacity {
            users.clear();
        }
        users.insert(user.id.as_str().into(), user);
    }

    pub(crate) fn forget(&self, id: &str) {
        write(&self.users).remove(id);
    }
}

/// A poisoned lock only means a panic elsewhere while holding it; the map is still sound.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
