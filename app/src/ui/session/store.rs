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
    /// A renewal with this refresh token got no answer: what became of it must be asked before it
    /// is presented again (see `session`).
    #[serde(default)]
    pub unsettled: bool,
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
            .field("unsettled", &self.unsettled)
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
            unsettled: false,
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

/// Marks the stored tokens unsettled if they still hold `stale`; `None` when nothing is stored.
pub fn mark_unsettled(stale: &str) -> Option<()> {
    let mut now = load()?;
    if now.refresh_token == stale && !now.unsettled {
        now.unsettled = true;
        let _ = replace(stale, Some(&now));
    }
    Some(())
}

/// Waits until the stored tokens are no longer the ones holding `stale` (another tab's write is
/// on its way), checking every 20 ms; `None` if nothing is stored by then (a logout).
pub async fn replaced(stale: &str) -> Option<StoredTokens> {
    loop {
        match load() {
            Some(now) if now.refresh_token == stale => super::timer::sleep(20).await,
            other => return other,
        }
    }
}

/// Marks what `window.name` holds for the next page: the name of a tab survives its navigations
/// (within a site; browsers clear it when the tab goes to another site). Any page the tab opens
/// on the site can read and write it, so it carries no secret that works alone and no text: a
/// notice by its code, and a hand-off code that only this origin's pages can redeem, once, for
/// seconds (`auth::sessions::handoff`).
const HANDOFF: &str = "baton.handoff:";

/// What one page of the tab hands to the next.
#[derive(Default, Serialize, Deserialize)]
pub struct Handoff {
    pub notice: Option<super::Notice>,
    /// Only when site storage is blocked: redeems the session this page held in memory.
    pub code: Option<String>,
}

/// The tokens this page holds in memory (site storage blocked), as the next page adopts them.
pub fn memory_payload() -> Option<String> {
    MEMORY.with(|m| m.borrow().as_ref().and_then(|t| serde_json::to_string(t).ok()))
}

/// Written just before this tab opens another page of the site (the next page clears it at once).
pub fn write_handoff(handoff: &Handoff) {
    if handoff.notice.is_none() && handoff.code.is_none() {
        return;
    }
    if let Ok(json) = serde_json::to_string(handoff) {
        let _ = leptos::prelude::window().set_name(&format!("{HANDOFF}{json}"));
    }
}

/// On a new page: takes what the previous one handed on. Anything not of that exact form (a
/// name some other page wrote) is dropped.
pub fn take_handoff() -> Handoff {
    let window = leptos::prelude::window();
    let Ok(name) = window.name() else { return Handoff::default() };
    let Some(json) = name.strip_prefix(HANDOFF) else { return Handoff::default() };
    let _ = window.set_name("");
    serde_json::from_str(json).unwrap_or_default()
}

/// Takes into this page's memory what the previous page handed on (site storage blocked).
pub fn adopt(payload: &str) {
    if let Ok(tokens) = serde_json::from_str::<StoredTokens>(payload) {
        MEMORY.with(|m| *m.borrow_mut() = Some(tokens));
    }
}

/// Whether this page's session lives in its memory only (site storage blocked).
pub fn in_memory() -> bool {
    !shared() && MEMORY.with(|m| m.borrow().is_some())
}

pub fn remove() {
    if shared() {
        LocalStorage::delete(STORAGE_KEY);
    }
    MEMORY.with(|m| *m.borrow_mut() = None);
}
