//! The browser's side of a login: the reactive [`Auth`] state the pages read, and the session's
//! life in the browser — log in, renew, log out — coordinated across the tabs of one browser.
//! On the server every page sees [`AuthStatus::Checking`], and so does the browser until every
//! island of the page is hydrated ([`hydrated`]): the two render the same placeholder, so
//! hydration never mismatches.
//!
//! The rules, for every tab at once:
//! - a refresh token is spent by one tab only, under a cross-tab lock ([`lock`]); a tab that
//!   waited reads what the other stored instead of refreshing again;
//! - results are stored before the lock is released, and only over the tokens they replace, so
//!   a logout always wins over a refresh that answers late ([`store::replace`]);
//! - only the server saying the session ended ends it; a network error, a 429 or a 503 is
//!   reported and leaves the tokens in place;
//! - a token whose renewal got no answer (lost on the way there, or its answer lost on the way
//!   back) is marked *unsettled* in storage, and no tab presents it again before the server has
//!   said what became of it, without spending it (`refresh_state`): unspent, it is refreshed;
//!   spent a moment ago by this browser, presenting it again returns the same pair (the grace
//!   window); spent for good, presenting it would be reuse (a false alarm that revokes the
//!   session), so the session is logged out and the user asked to log in again.

#[cfg(feature = "hydrate")]
pub mod dpop;
#[cfg(feature = "hydrate")]
mod lock;
#[cfg(feature = "hydrate")]
mod store;
#[cfg(feature = "hydrate")]
mod timer;

use crate::api::{TokenResponse, User};
use crate::error::AppError;
use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStatus {
    /// Not known yet: the server, and the browser before it has read its storage.
    Checking,
    LoggedOut,
    LoggedIn,
}

/// The reactive auth state: on the server, one per page, provided by `App`; in the browser, one
/// for all the islands of the tab.
#[derive(Clone, Copy)]
pub struct Auth {
    pub status: RwSignal<AuthStatus>,
    pub user: RwSignal<Option<User>>,
    /// When the access token expires, in browser milliseconds (`Date.now()`).
    pub access_expires_at: RwSignal<Option<f64>>,
    /// A message for the login page, such as why the session ended.
    pub notice: RwSignal<Option<Notice>>,
    /// The browser blocks site storage: the session lives in this tab's memory only.
    pub storage_blocked: RwSignal<bool>,
    /// The session is bound to this browser's DPoP key (`None`: not logged in).
    pub key_bound: RwSignal<Option<bool>>,
}

/// Why the login page is shown, by code: it may cross to the next page in the tab's name, where
/// any page of the site can write, so only these texts can ever be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Notice {
    SessionEnded,
    EndedElsewhere,
    /// A renewal got no answer, and what it did could not be had again.
    RenewalInterrupted,
    /// Site storage is blocked, and the session could not be carried over to this page.
    HandOffLost,
}

impl Notice {
    pub fn text(self) -> &'static str {
        match self {
            Self::SessionEnded => "Your session has ended. Please log in again.",
            Self::EndedElsewhere => "You were logged out in another tab.",
            Self::HandOffLost => {
                "Your browser blocks site storage, and this page could not take over your session from the last one. \
                 Please log in again."
            }
            Self::RenewalInterrupted => {
                "Your connection dropped while your session was being renewed, and it could not be resumed safely. \
                 Please log in again."
            }
        }
    }
}

impl Auth {
    /// The state the current page's islands share.
    pub fn get() -> Self {
        #[cfg(feature = "hydrate")]
        return browser::auth();
        #[cfg(not(feature = "hydrate"))]
        expect_context::<Auth>()
    }

    /// For the page the server renders.
    pub fn provide() {
        provide_context(Self::new());
    }

    fn new() -> Self {
        Self {
            status: RwSignal::new(AuthStatus::Checking),
            user: RwSignal::new(None),
            access_expires_at: RwSignal::new(None),
            notice: RwSignal::new(None),
            storage_blocked: RwSignal::new(false),
            key_bound: RwSignal::new(None),
        }
    }
}

/// Every island of the page is hydrated: show the session this tab has.
#[cfg(feature = "hydrate")]
pub use browser::hydrated;

/// This tab is about to open another page of the site: what that page must know goes along
/// (the notice, such as why the session ended; and, when site storage is blocked and the session
/// lives in this page's memory, a one-time code that hands it on). Its [`hydrated`] takes it.
#[cfg(feature = "hydrate")]
pub use browser::hand_off;

/// Stores the tokens of a successful login or signup and shows the user as logged in.
pub fn logged_in(res: TokenResponse) {
    #[cfg(feature = "hydrate")]
    browser::logged_in(res);
    #[cfg(not(feature = "hydrate"))]
    let _ = res;
}

/// Ends this session (or, `everywhere`, all of the user's sessions) on the server, then forgets
/// the tokens in every tab (this one then leaves the page). When the server cannot be reached the
/// tokens stay and the error is returned: the user must not believe a session ended that did not.
pub async fn log_out(everywhere: bool) -> Result<(), AppError> {
    #[cfg(feature = "hydrate")]
    return browser::log_out(everywhere).await;
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = everywhere;
        Ok(())
    }
}

/// The server ended every session already (the account was deleted): drop the tokens without
/// asking it again. Other tabs see them go.
pub fn forget() {
    #[cfg(feature = "hydrate")]
    store::remove();
}

#[cfg(feature = "hydrate")]
pub use browser::{fresh_access_token, refresh_after_rejection, AccessToken};

#[cfg(feature = "hydrate")]
mod browser {
    use super::store::{self, StoredTokens, Swap};
    use super::{lock, timer, Auth, AuthStatus, Notice};
    use crate::api::{RefreshState, TokenResponse};
    use crate::error::AppError;
    use futures::future::{FutureExt, LocalBoxFuture, Shared};
    use leptos::prelude::*;
    use std::cell::{Cell, RefCell};

    /// All a refresh may take under the lock, retries and waits included, then it is reported as
    /// failed and the lock released: well within the fallback lease (`lock::WAIT_MS`), so that no
    /// other tab can take the lock while this one may still spend the token.
    const REFRESH_BUDGET_MS: f64 = 30_000.0;
    /// Another tab's stored tokens reach this one within milliseconds; this is the limit.
    const STORAGE_CATCH_UP_MS: i32 = 3_000;
    const STILL_RENEWING: &str = "Another tab is still renewing your session. Try again in a moment.";
    /// A 503 asking for at most this long is waited out once before the refresh is reported.
    const BUSY_RETRY_MAX_SECS: u64 = 5;

    type RefreshFuture = Shared<LocalBoxFuture<'static, Result<StoredTokens, AppError>>>;

    thread_local! {
        static AUTH: Cell<Option<Auth>> = const { Cell::new(None) };
        static IN_FLIGHT: RefCell<Option<RefreshFuture>> = const { RefCell::new(None) };
    }

    impl Auth {
        fn show(&self, tokens: Option<&StoredTokens>) {
            self.status.set(if tokens.is_some() { AuthStatus::LoggedIn } else { AuthStatus::LoggedOut });
            self.user.set(tokens.map(|t| t.user.clone()));
            self.access_expires_at.set(tokens.map(|t| t.access_expires_at));
            self.key_bound.set(tokens.map(|t| t.dpop));
        }
    }

    fn with_auth(f: impl FnOnce(Auth)) {
        if let Some(auth) = AUTH.with(Cell::get) {
            f(auth);
        }
    }

    /// The tab's state, made at its first use (under the page's root, for good).
    pub fn auth() -> Auth {
        if let Some(auth) = AUTH.with(Cell::get) {
            return auth;
        }
        let owner = Owner::current().map(|o| o.child()).unwrap_or_default();
        let auth = owner.with(|| {
            let auth = Auth::new();
            attach(auth);
            auth
        });
        std::mem::forget(owner);
        AUTH.with(|a| a.set(Some(auth)));
        auth
    }

    pub fn hydrated() {
        let auth = auth();
        auth.storage_blocked.set(!store::shared());
        let handoff = store::take_handoff();
        auth.notice.set(handoff.notice);
        let live = move || {
            auth.show(store::load().as_ref());
            if let Some(body) = document().body() {
                let _ = body.set_attribute("data-hydrated", "true");
            }
            // Live after all (a slow network): the "could not start" message is wrong now.
            if let Some(failed) = document().get_element_by_id("load-failed") {
                let _ = failed.set_attribute("hidden", "");
            }
        };
        match handoff.code.filter(|_| !store::shared()) {
            // The session is still "checking" until the code is redeemed: the guard waits.
            Some(code) => leptos::task::spawn_local(async move {
                match timer::within(HAND_OFF_MS, crate::server_fns::take_hand_off(code.into())).await {
                    Some(Ok(payload)) => store::adopt(&payload.0),
                    _ => auth.notice.set(Some(Notice::HandOffLost)),
                }
                live();
            }),
            None => live(),
        }
    }

    /// How long a page waits for a hand-off call before it goes on without it.
    const HAND_OFF_MS: i32 = 10_000;

    pub async fn hand_off() {
        let notice = AUTH.with(Cell::get).and_then(|auth| auth.notice.get_untracked());
        let mut code = None;
        // Only a session in this page's memory needs carrying over (else storage holds it).
        if store::in_memory() {
            // A refresh in flight lands first: the next page must get the tokens it leaves behind.
            let running = IN_FLIGHT.with(|slot| slot.borrow().clone());
            if let Some(running) = running {
                let _ = timer::within(HAND_OFF_MS, running).await;
            }
            if let (Some(tokens), Some(payload)) = (store::load(), store::memory_payload()) {
                let call = crate::server_fns::hand_off(tokens.refresh_token.into(), payload.into());
                code = timer::within(HAND_OFF_MS, call).await.and_then(Result::ok).map(|code| code.0);
            }
        }
        store::write_handoff(&store::Handoff { notice, code });
    }

    fn attach(auth: Auth) {
        // Another tab logged in, refreshed or logged out.
        let storage = window_event_listener(leptos::ev::storage, move |ev| {
            if ev.key().as_deref() == Some(store::STORAGE_KEY) {
                let tokens = store::load();
                if tokens.is_none() && auth.status.get_untracked() == AuthStatus::LoggedIn {
                    auth.notice.set(Some(Notice::EndedElsewhere));
                }
                auth.show(tokens.as_ref());
            }
        });
        // Shown again (back/forward cache, a tab brought to the front): storage events may have
        // been missed meanwhile.
        let shown = window_event_listener(leptos::ev::pageshow, move |_| auth.show(store::load().as_ref()));
        let visible = window_event_listener(leptos::ev::visibilitychange, move |_| {
            if !document().hidden() {
                auth.show(store::load().as_ref());
            }
        });
        // With the session in this page's memory, a plain link of the site (the logo, say) goes
        // through the hand-off too, or the next page would start logged out.
        let links = window_event_listener(leptos::ev::click, |ev| {
            use wasm_bindgen::JsCast;
            if !store::in_memory()
                || ev.default_prevented()
                || ev.button() != 0
                || ev.ctrl_key()
                || ev.meta_key()
                || ev.shift_key()
                || ev.alt_key()
            {
                return;
            }
            let link = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .and_then(|el| el.closest("a[href]").ok().flatten())
                .and_then(|el| el.dyn_into::<web_sys::HtmlAnchorElement>().ok());
            let Some(link) = link.filter(|a| a.target().is_empty() && !a.has_attribute("download")) else { return };
            let Ok(origin) = window().location().origin() else { return };
            if link.origin() == origin {
                ev.prevent_default();
                crate::ui::follow(&format!("{}{}{}", link.pathname(), link.search(), link.hash()));
            }
        });
        on_cleanup(move || {
            storage.remove();
            shown.remove();
            visible.remove();
            links.remove();
        });
    }

    pub fn logged_in(res: TokenResponse) {
        let tokens = StoredTokens::from_response(res, js_sys::Date::now());
        store::store(&tokens);
        with_auth(|auth| {
            auth.notice.set(None);
            auth.storage_blocked.set(!store::shared());
            auth.show(Some(&tokens));
        });
    }

    pub async fn log_out(everywhere: bool) -> Result<(), AppError> {
        let Some(tokens) = store::load() else { return Ok(()) };
        let answer = if everywhere {
            crate::server_fns::logout_all().await
        } else {
            // Any token of the session names it, even one a refresh in flight is replacing.
            crate::server_fns::logout(tokens.refresh_token.into()).await
        };
        match answer {
            Ok(()) => {}
            // Already over: that is what the user asked for.
            Err(e) if e.ends_session() => {}
            // A bound session whose key this browser no longer has (site data cleared): the
            // server keeps it until it idles out, but its tokens are worth nothing without the key.
            Err(AppError::InvalidDpopProof(_)) => {}
            Err(e) => return Err(e),
        }
        // From now on a refresh that answers late finds nothing to replace (`store::replace`).
        store::remove();
        Ok(())
    }

    /// An access token, and whether it is bound to this browser's DPoP key (then it is sent as
    /// `Authorization: DPoP` with a proof).
    pub struct AccessToken {
        pub token: String,
        pub dpop: bool,
    }

    impl From<StoredTokens> for AccessToken {
        fn from(t: StoredTokens) -> Self {
            Self { token: t.access_token, dpop: t.dpop }
        }
    }

    /// An access token good for the next call, refreshing first when it is about to expire.
    /// `Ok(None)` when logged out; an error when renewing failed (and, if the server said so, the
    /// session has ended).
    pub async fn fresh_access_token() -> Result<Option<AccessToken>, AppError> {
        access_token(|stored| stored.due_for_refresh(js_sys::Date::now())).await
    }

    /// The server refused `rejected_access_token`: refresh (unless that already happened) and
    /// return the new access token for one retry.
    pub async fn refresh_after_rejection(rejected_access_token: &str) -> Result<Option<AccessToken>, AppError> {
        access_token(|stored| stored.access_token == rejected_access_token).await
    }

    /// The stored access token, renewed first when `renew` says so.
    async fn access_token(renew: impl FnOnce(&StoredTokens) -> bool) -> Result<Option<AccessToken>, AppError> {
        let Some(tokens) = store::load() else { return Ok(None) };
        if !renew(&tokens) {
            return Ok(Some(tokens.into()));
        }
        refresh(tokens.refresh_token).await.map(|t| Some(t.into()))
    }

    /// How a refresh ended, for this tab's view of the session.
    enum Outcome {
        Renewed(StoredTokens),
        /// The server ended the session.
        Ended,
        /// A logout (here or in another tab) came first; the answer is dropped.
        LoggedOutMeanwhile,
        /// The token was spent by a renewal whose answer was lost, and cannot be presented again.
        Interrupted,
        Failed(AppError),
    }

    /// Calls in this tab share the refresh in flight; tabs take turns through [`lock`].
    fn refresh(stale: String) -> RefreshFuture {
        IN_FLIGHT.with(|slot| {
            if let Some(running) = slot.borrow().as_ref() {
                return running.clone();
            }
            let fut = async move {
                let outcome = lock::exclusive(spend(stale))
                    .await
                    .unwrap_or_else(|lock::TimedOut| Outcome::Failed(AppError::Network(STILL_RENEWING.into())));
                IN_FLIGHT.with(|slot| slot.borrow_mut().take());
                with_auth(|auth| match &outcome {
                    Outcome::Renewed(tokens) => auth.show(Some(tokens)),
                    Outcome::Ended | Outcome::Interrupted => {
                        // Unless another tab logged in again meanwhile.
                        let now = store::load();
                        if now.is_none() {
                            let why = if matches!(outcome, Outcome::Ended) {
                                Notice::SessionEnded
                            } else {
                                Notice::RenewalInterrupted
                            };
                            auth.notice.set(Some(why));
                        }
                        auth.show(now.as_ref());
                    }
                    Outcome::LoggedOutMeanwhile => auth.show(store::load().as_ref()),
                    // The tokens stay; the call that needed them reports the error.
                    Outcome::Failed(_) => {}
                });
                match outcome {
                    Outcome::Renewed(tokens) => Ok(tokens),
                    Outcome::Ended | Outcome::Interrupted | Outcome::LoggedOutMeanwhile => {
                        Err(AppError::InvalidRefreshToken)
                    }
                    Outcome::Failed(e) => Err(e),
                }
            }
            .boxed_local()
            .shared();
            *slot.borrow_mut() = Some(fut.clone());
            fut
        })
    }

    /// Runs under the lock: spends `stale` unless another tab already did, and stores the result
    /// before the lock is released. A token whose renewal got no answer is first settled.
    async fn spend(stale: String) -> Outcome {
        let deadline = js_sys::Date::now() + REFRESH_BUDGET_MS;
        let mut unsettled = match store::load() {
            None => return Outcome::LoggedOutMeanwhile,
            Some(now) if now.refresh_token != stale => return Outcome::Renewed(now),
            Some(now) => now.unsettled,
        };
        if lock::was_spent(&stale).await {
            // Another tab spent it and stored the result, which has yet to reach this tab.
            return match timer::within(STORAGE_CATCH_UP_MS, store::replaced(&stale)).await {
                Some(Some(now)) => Outcome::Renewed(now),
                Some(None) => Outcome::LoggedOutMeanwhile,
                None => Outcome::Failed(AppError::Network(STILL_RENEWING.into())),
            };
        }
        // At most two tries: a renewal whose answer was lost is settled and tried once more.
        for attempt in 0..2 {
            if unsettled {
                if let Err(outcome) = settle(&stale, deadline).await {
                    return outcome;
                }
            }
            match ask(&stale, deadline).await {
                Ok(res) => {
                    let tokens = StoredTokens::from_response(res, js_sys::Date::now());
                    let outcome = match store::replace(&stale, Some(&tokens)) {
                        Swap::Done => Outcome::Renewed(tokens),
                        Swap::Moved(Some(now)) => Outcome::Renewed(now),
                        Swap::Moved(None) => Outcome::LoggedOutMeanwhile,
                    };
                    lock::mark_spent(&stale).await;
                    return outcome;
                }
                Err(e) if e.ends_session() => {
                    // Not over a login that happened meanwhile in another tab.
                    let _ = store::replace(&stale, None);
                    return Outcome::Ended;
                }
                // The server may have spent the token: no tab presents it again unsettled.
                Err(e) if fate_unknown(&e) => {
                    unsettled = true;
                    if store::mark_unsettled(&stale).is_none() {
                        return Outcome::LoggedOutMeanwhile;
                    }
                    if attempt == 1 || js_sys::Date::now() >= deadline {
                        return Outcome::Failed(e);
                    }
                }
                Err(e) => return Outcome::Failed(e),
            }
        }
        Outcome::Failed(AppError::Network(TOO_LONG.into()))
    }

    const TOO_LONG: &str = "Renewing your session took too long. Check your connection and try again.";

    /// Whether the server may have acted on a request that got no (readable) answer.
    fn fate_unknown(e: &AppError) -> bool {
        matches!(e, AppError::Network(_) | AppError::Internal)
    }

    /// Finds out, without spending it, whether `stale` may be presented: `Ok` when it is unspent
    /// or the grace window would answer it again; else how the refresh ends.
    async fn settle(stale: &str, deadline: f64) -> Result<(), Outcome> {
        let state = within_budget(deadline, crate::server_fns::refresh_token_state(stale.to_owned().into())).await;
        match state {
            Ok(RefreshState::Unspent | RefreshState::Replayable) => Ok(()),
            Ok(RefreshState::Spent) => {
                // Its successor is lost: end the session cleanly (a logout, not reuse) and ask
                // for a new login. Best effort: nobody holds the successor anyway.
                let _ = within_budget(deadline, crate::server_fns::logout(stale.to_owned().into())).await;
                let _ = store::replace(stale, None);
                Err(Outcome::Interrupted)
            }
            Err(e) if e.ends_session() => {
                let _ = store::replace(stale, None);
                Err(Outcome::Ended)
            }
            Err(e) => Err(Outcome::Failed(e)),
        }
    }

    /// One refresh call, and a 503 that asks for a short wait waited out once, within the budget.
    async fn ask(stale: &str, deadline: f64) -> Result<TokenResponse, AppError> {
        let call = || within_budget(deadline, crate::server_fns::refresh(stale.to_owned().into()));
        match call().await {
            // Refused before anything changed: the same token is still good a moment later.
            Err(AppError::Busy { retry_after })
                if retry_after <= BUSY_RETRY_MAX_SECS
                    && js_sys::Date::now() + (retry_after as f64 + 1.0) * 1000.0 < deadline =>
            {
                timer::sleep(retry_after as i32 * 1000).await;
                call().await
            }
            answer => answer,
        }
    }

    /// `call`, given up (as a network failure) when the refresh's budget runs out.
    async fn within_budget<T>(
        deadline: f64,
        call: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        let left = (deadline - js_sys::Date::now()).max(0.0) as i32;
        timer::within(left, call).await.unwrap_or_else(|| Err(AppError::Network(TOO_LONG.into())))
    }
}
