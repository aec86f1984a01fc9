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
//!   reported and leaves the tokens in place.

#[cfg(feature = "hydrate")]
pub mod dpop;
#[cfg(feature = "hydrate")]
mod lock;
#[cfg(feature = "hydrate")]
mod store;

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
    pub notice: RwSignal<Option<String>>,
    /// The browser blocks site storage: the session lives in this tab's memory only.
    pub storage_blocked: RwSignal<bool>,
    /// The session is bound to this browser's DPoP key (`None`: not logged in).
    pub key_bound: RwSignal<Option<bool>>,
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
/// (the notice, such as why the session ended; and the tokens, when site storage is blocked and
/// they live in this page's memory). Its [`hydrated`] takes it.
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
    use super::{lock, Auth, AuthStatus};
    use crate::api::TokenResponse;
    use crate::error::AppError;
    use futures::future::{FutureExt, LocalBoxFuture, Shared};
    use leptos::prelude::*;
    use std::cell::{Cell, RefCell};

    const SESSION_ENDED: &str = "Your session has ended. Please log in again.";
    const ENDED_ELSEWHERE: &str = "You were logged out in another tab.";
    /// A refresh that has no answer by then is reported as failed (and the lock released).
    const REFRESH_TIMEOUT_MS: i32 = 30_000;
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
        auth.notice.set(store::take_handoff());
        auth.show(store::load().as_ref());
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    }

    pub fn hand_off() {
        store::hand_off(AUTH.with(Cell::get).and_then(|auth| auth.notice.get_untracked()));
    }

    fn attach(auth: Auth) {
        // Another tab logged in, refreshed or logged out.
        let storage = window_event_listener(leptos::ev::storage, move |ev| {
            if ev.key().as_deref() == Some(store::STORAGE_KEY) {
                let tokens = store::load();
                if tokens.is_none() && auth.status.get_untracked() == AuthStatus::LoggedIn {
                    auth.notice.set(Some(ENDED_ELSEWHERE.into()));
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
        on_cleanup(move || {
            storage.remove();
            shown.remove();
            visible.remove();
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
                    Outcome::Ended => {
                        // Unless another tab logged in again meanwhile.
                        let now = store::load();
                        if now.is_none() {
                            auth.notice.set(Some(SESSION_ENDED.into()));
                        }
                        auth.show(now.as_ref());
                    }
                    Outcome::LoggedOutMeanwhile => auth.show(store::load().as_ref()),
                    // The tokens stay; the call that needed them reports the error.
                    Outcome::Failed(_) => {}
                });
                match outcome {
                    Outcome::Renewed(tokens) => Ok(tokens),
                    Outcome::Ended | Outcome::LoggedOutMeanwhile => Err(AppError::InvalidRefreshToken),
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
    /// before the lock is released.
    async fn spend(stale: String) -> Outcome {
        match store::load() {
            None => return Outcome::LoggedOutMeanwhile,
            Some(now) if now.refresh_token != stale => return Outcome::Renewed(now),
            Some(_) => {}
        }
        if lock::was_spent(&stale).await {
            // Another tab spent it and stored the result, which has yet to reach this tab.
            return match lock::within(STORAGE_CATCH_UP_MS, store::replaced(&stale)).await {
                Some(Some(now)) => Outcome::Renewed(now),
                Some(None) => Outcome::LoggedOutMeanwhile,
                None => Outcome::Failed(AppError::Network(STILL_RENEWING.into())),
            };
        }
        let answer = match ask(&stale).await {
            // Refused before anything changed: the same token is still good a moment later.
            Err(AppError::Busy { retry_after }) if retry_after <= BUSY_RETRY_MAX_SECS => {
                lock::sleep(retry_after as i32 * 1000).await;
                ask(&stale).await
            }
            answer => answer,
        };
        match answer {
            Ok(res) => {
                let tokens = StoredTokens::from_response(res, js_sys::Date::now());
                let outcome = match store::replace(&stale, Some(&tokens)) {
                    Swap::Done => Outcome::Renewed(tokens),
                    Swap::Moved(Some(now)) => Outcome::Renewed(now),
                    Swap::Moved(None) => Outcome::LoggedOutMeanwhile,
                };
                lock::mark_spent(&stale).await;
                outcome
            }
            Err(e) if e.ends_session() => {
                // Not over a login that happened meanwhile in another tab.
                let _ = store::replace(&stale, None);
                Outcome::Ended
            }
            Err(e) => Outcome::Failed(e),
        }
    }

    async fn ask(stale: &str) -> Result<TokenResponse, AppError> {
        lock::within(REFRESH_TIMEOUT_MS, crate::server_fns::refresh(stale.to_owned().into())).await.unwrap_or_else(|| {
            Err(AppError::Network("Renewing your session took too long. Check your connection and try again.".into()))
        })
    }
}
