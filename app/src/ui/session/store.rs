//! Where the browser keeps the tokens: localStorage through gloo-storage, shared by every tab of
//! this origin; or, when the browser blocks site storage (a privacy setting), this tab's memory,
//! so the app still works until the tab closes. Every write names the tokens it replaces, so an
//! answer that arrives late (after a logout, or after another tab moved on) never overwrites
//! what is stored now.

use crate::api::{TokenResponse, User};
use gloo_storage::{LocalStorage, Storage};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};

pub const STORAGE_KEY: &str = "baton.tokens";

/// What localStorage holds under [`STORAGE_KEY`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTokens {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires, in browser milliseconds (`Date.now()`).
    pub access_expires_at: f64,
    /// The access token's whole lifetime, to refresh a fraction of it before the end.
    pub access_lifetime_ms: f64,
    /// Bound to this browser's DPoP key (see `dpop`): every call carries a proof.
    #[serde(default)]
    pub dpop: bool,
}

/// The tokens are secrets: a log line or a panic message must not carry them.
impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("user", &self.user)
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("access_expires_at", &self.access_expires_at)
            .field("dpop", &self.dpop)
            .finish()
    }
}

impl StoredTokens {
    pub fn from_response(res: TokenResponse, now_ms: f64) -> Self {
        let lifetime = res.expires_in as f64 * 1000.0;
        Self {
            dpop: res.token_type == "DPoP",
            user: res.user,
            access_token: res.access_token,
            refresh_token: res.refresh_token,
            access_expires_at: now_ms + lifetime,
            access_lifetime_ms: lifetime,
        }
    }

    /// Refresh this long before expiry: 10 s, or half the lifetime when that is shorter.
    pub fn due_for_refresh(&self, now_ms: f64) -> bool {
        let margin = (self.access_lifetime_ms / 2.0).min(10_000.0);
        now_ms >= self.access_expires_at - margin
    }
}

thread_local! {
    /// The tokens when site storage is blocked; unused otherwise.
    static MEMORY: RefCell<Option<StoredTokens>> = const { RefCell::new(None) };
    /// Whether localStorage works, asked once: a browser does not change its mind in a page's life.
    static AVAILABLE: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether localStorage can be used. Reading `window.localStorage` throws when the browser
/// blocks it, and gloo-storage panics then, so nothing here calls gloo-storage without asking.
pub fn shared() -> bool {
    AVAILABLE.with(|known| match known.get() {
        Some(answer) => answer,
        None => {
            let answer = probe();
            known.set(Some(answer));
            answer
        }
    })
}

fn probe() -> bool {
    let Ok(Some(storage)) = leptos::prelude::window().local_storage() else { return false };
    const PROBE: &str = "baton.probe";
    storage.set_item(PROBE, "1").is_ok() && storage.remove_item(PROBE).is_ok()
}

/// The tokens as stored now (read afresh: another tab may have changed them).
pub fn load() -> Option<StoredTokens> {
    if shared() {
        LocalStorage::get::<StoredTokens>(STORAGE_KEY).ok()
    } else {
        MEMORY.with(|m| m.borrow().clone())
    }
}

/// Stores a new login's tokens, whatever was there before.
pub fn store(tokens: &StoredTokens) {
    if shared() && LocalStorage::set(STORAGE_KEY, tokens).is_ok() {
        return;
    }
    // A full or suddenly refused storage: keep the session for this tab rather than lose it.
    AVAILABLE.with(|known| known.set(Some(false)));
    MEMORY.with(|m| *m.borrow_mut() = Some(tokens.clone()));
}

/// What a conditional write found.
pub enum Swap {
    /// The stored tokens were the expected ones and are replaced.
    Done,
    /// Something else is stored now (or nothing: a logout); it is left alone.
    Moved(Option<StoredTokens>),
}

/// Replaces the tokens only if the stored refresh token is still `expected`: the compare and the
/// write happen in one turn of the event loop. Refreshes write only through this, under the
/// refresh lock; logins and logouts write directly, and must win over a refresh that answers late.
pub fn replace(expected: &str, next: Option<&StoredTokens>) -> Swap {
    let now = load();
    if now.as_ref().map(|t| t.refresh_token.as_str()) != Some(expected) {
        return Swap::Moved(now);
    }
    match next {
        Some(tokens) => store(tokens),
        None => remove(),
    }
    Swap::Done
}

/// Waits until the stored tokens are no longer the ones holding `stale` (another tab's write is
/// on its way), checking every 20 ms; `None` if nothing is stored by then (a logout).
pub async fn replaced(stale: &str) -> Option<StoredTokens> {
    loop {
        match load() {
            Some(now) if now.refresh_token == stale => super::lock::sleep(20).await,
            other => return other,
        }
    }
}

/// Marks what `window.name` holds for the next page: the name of a tab survives its navigations
/// (within a site; browsers clear it when the tab goes to another site).
const HANDOFF: &str = "baton.handoff:";

/// What one page of the tab hands to the next.
#[derive(Serialize, Deserialize)]
struct Handoff {
    notice: Option<String>,
    /// Only when site storage is blocked: else the next page reads them from storage.
    tokens: Option<StoredTokens>,
}

/// Written just before this tab opens another page of the site (never while a page stays: the
/// next page clears it at once), so the tokens of a blocked-storage session are in the tab's
/// name only for the moment of a navigation.
pub fn hand_off(notice: Option<String>) {
    let tokens = if shared() { None } else { MEMORY.with(|m| m.borrow().clone()) };
    if notice.is_none() && tokens.is_none() {
        return;
    }
    if let Ok(json) = serde_json::to_string(&Handoff { notice, tokens }) {
        let _ = leptos::prelude::window().set_name(&format!("{HANDOFF}{json}"));
    }
}

/// On a new page: takes what the previous one handed off (the tokens into this page's memory)
/// and returns the notice.
pub fn take_handoff() -> Option<String> {
    let window = leptos::prelude::window();
    let name = window.name().ok()?;
    let json = name.strip_prefix(HANDOFF)?;
    let _ = window.set_name("");
    let handoff: Handoff = serde_json::from_str(json).ok()?;
    if let Some(tokens) = handoff.tokens.filter(|_| !shared()) {
        MEMORY.with(|m| *m.borrow_mut() = Some(tokens));
    }
    handoff.notice
}

pub fn remove() {
    if shared() {
        LocalStorage::delete(STORAGE_KEY);
    }
    MEMORY.with(|m| *m.borrow_mut() = None);
}
