//! The browser's side of a login: the tokens, kept with gloo-storage in localStorage and cached in
//! memory; the reactive [`Auth`] state the pages read; and refreshing, one at a time per tab and
//! across tabs. On the server every page sees [`AuthStatus::Checking`], and so does the browser
//! until hydration is done: the two render the same placeholder, so hydration never mismatches.

use crate::api::{TokenResponse, User};
use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStatus {
    /// Not known yet: the server, and the browser before it has read its storage.
    Checking,
    LoggedOut,
    LoggedIn,
}

/// The reactive auth state, provided as context by `App`.
#[derive(Clone, Copy)]
pub struct Auth {
    pub status: RwSignal<AuthStatus>,
    pub user: RwSignal<Option<User>>,
    /// When the access token expires, in browser milliseconds (`Date.now()`).
    pub access_expires_at: RwSignal<Option<f64>>,
    /// A message for the login page, such as why the session ended.
    pub notice: RwSignal<Option<String>>,
}

impl Auth {
    pub fn provide() -> Self {
        let auth = Self {
            status: RwSignal::new(AuthStatus::Checking),
            user: RwSignal::new(None),
            access_expires_at: RwSignal::new(None),
            notice: RwSignal::new(None),
        };
        provide_context(auth);
        #[cfg(feature = "hydrate")]
        browser::attach(auth);
        auth
    }
}

/// Stores the tokens of a successful login or signup and shows the user as logged in.
pub fn logged_in(res: TokenResponse) {
    #[cfg(feature = "hydrate")]
    browser::save(browser::StoredTokens::from_response(res, js_sys::Date::now()));
    #[cfg(not(feature = "hydrate"))]
    let _ = res;
}

/// Forgets the tokens (this tab and, through the storage event, the others).
pub fn logged_out(notice: Option<&str>) {
    #[cfg(feature = "hydrate")]
    browser::clear(notice);
    #[cfg(not(feature = "hydrate"))]
    let _ = notice;
}

/// The current refresh token, for logout.
pub fn refresh_token() -> Option<String> {
    #[cfg(feature = "hydrate")]
    return browser::current().map(|t| t.refresh_token);
    #[cfg(not(feature = "hydrate"))]
    None
}

#[cfg(feature = "hydrate")]
pub use browser::{fresh_access_token, refresh_after_rejection};

#[cfg(feature = "hydrate")]
mod browser {
    use super::{Auth, AuthStatus};
    use crate::api::{TokenResponse, User};
    use serde::{Deserialize, Serialize};
    use crate::error::AppError;
    use futures::future::{FutureExt, LocalBoxFuture, Shared};
    use gloo_storage::{LocalStorage, Storage};
    use leptos::prelude::*;
    use std::cell::{Cell, RefCell};
    use wasm_bindgen::{closure::Closure, JsCast, JsValue};

    const SESSION_ENDED: &str = "Your session has ended. Please log in again.";
    /// Another tab may hold the refresh lock this long before this one refreshes without it.
    const LOCK_TIMEOUT_MS: u32 = 10_000;

    /// What localStorage holds under [`STORAGE_KEY`].
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct StoredTokens {
        pub user: User,
        pub access_token: String,
        pub refresh_token: String,
        pub access_expires_at: f64,
        /// The access token's whole lifetime, to refresh a fraction of it before the end.
        pub access_lifetime_ms: f64,
    }

    pub const STORAGE_KEY: &str = "baton.tokens";

    impl StoredTokens {
        pub fn from_response(res: TokenResponse, now_ms: f64) -> Self {
            let lifetime = res.expires_in as f64 * 1000.0;
            Self {
                user: res.user,
                access_token: res.access_token,
                refresh_token: res.refresh_token,
                access_expires_at: now_ms + lifetime,
                access_lifetime_ms: lifetime,
            }
        }

        /// Refresh this long before expiry: 10 s, or half the lifetime when that is shorter.
        fn due_for_refresh(&self, now_ms: f64) -> bool {
            let margin = (self.access_lifetime_ms / 2.0).min(10_000.0);
            now_ms >= self.access_expires_at - margin
        }
    }

    impl Auth {
        fn show(&self, tokens: Option<&StoredTokens>) {
            self.status.set(if tokens.is_some() { AuthStatus::LoggedIn } else { AuthStatus::LoggedOut });
            self.user.set(tokens.map(|t| t.user.clone()));
            self.access_expires_at.set(tokens.map(|t| t.access_expires_at));
        }
    }

    type RefreshFuture = Shared<LocalBoxFuture<'static, Result<StoredTokens, AppError>>>;

    thread_local! {
        static AUTH: Cell<Option<Auth>> = const { Cell::new(None) };
        static CACHE: RefCell<Option<StoredTokens>> = const { RefCell::new(None) };
        static IN_FLIGHT: RefCell<Option<RefreshFuture>> = const { RefCell::new(None) };
    }

    pub fn attach(auth: Auth) {
        AUTH.with(|a| a.set(Some(auth)));
        // Runs after hydration: until then the page shows what the server rendered.
        Effect::new(move |_| {
            let tokens = read_storage();
            CACHE.with(|c| *c.borrow_mut() = tokens.clone());
            auth.show(tokens.as_ref());
        });
        // Another tab logged in, refreshed or logged out.
        let handle = window_event_listener(leptos::ev::storage, move |ev| {
            if ev.key().as_deref() == Some(STORAGE_KEY) {
                let tokens = read_storage();
                CACHE.with(|c| *c.borrow_mut() = tokens.clone());
                if tokens.is_none() {
                    auth.notice.set(Some("You logged out in another tab.".into()));
                }
                auth.show(tokens.as_ref());
            }
        });
        on_cleanup(move || handle.remove());
    }

    fn read_storage() -> Option<StoredTokens> {
        LocalStorage::get::<StoredTokens>(STORAGE_KEY).ok()
    }

    pub fn current() -> Option<StoredTokens> {
        CACHE.with(|c| c.borrow().clone()).or_else(read_storage)
    }

    pub fn save(tokens: StoredTokens) {
        if let Err(e) = LocalStorage::set(STORAGE_KEY, &tokens) {
            leptos::logging::warn!("could not store the session: {e}");
        }
        CACHE.with(|c| *c.borrow_mut() = Some(tokens.clone()));
        if let Some(auth) = AUTH.with(Cell::get) {
            auth.notice.set(None);
            auth.show(Some(&tokens));
        }
    }

    pub fn clear(notice: Option<&str>) {
        LocalStorage::delete(STORAGE_KEY);
        CACHE.with(|c| *c.borrow_mut() = None);
        if let Some(auth) = AUTH.with(Cell::get) {
            auth.notice.set(notice.map(str::to_owned));
            auth.show(None);
        }
    }

    /// An access token good for the next call, refreshing first when it is about to expire.
    /// `None` when logged out or when the session has ended.
    pub async fn fresh_access_token() -> Option<String> {
        let tokens = current()?;
        if !tokens.due_for_refresh(js_sys::Date::now()) {
            return Some(tokens.access_token);
        }
        refresh(tokens.refresh_token).await.ok().map(|t| t.access_token)
    }

    /// The server refused `rejected_access_token`: refresh (unless that already happened) and
    /// return the new access token for one retry.
    pub async fn refresh_after_rejection(rejected_access_token: &str) -> Option<String> {
        let tokens = current()?;
        if tokens.access_token != rejected_access_token {
            return Some(tokens.access_token);
        }
        refresh(tokens.refresh_token).await.ok().map(|t| t.access_token)
    }

    /// One refresh at a time: calls in this tab share the one in flight, and tabs take turns
    /// through a Web Lock. Inside the lock the stored tokens are read again: when another tab has
    /// already rotated `stale`, its result is used instead of spending a token a second time.
    fn refresh(stale: String) -> RefreshFuture {
        IN_FLIGHT.with(|slot| {
            if let Some(running) = slot.borrow().as_ref() {
                return running.clone();
            }
            let fut = async move {
                let result: Result<StoredTokens, AppError> = with_refresh_lock(async move {
                    if let Some(stored) = read_storage().filter(|t| t.refresh_token != stale) {
                        return Ok(stored);
                    }
                    let res = crate::server_fns::refresh(stale).await?;
                    Ok(StoredTokens::from_response(res, js_sys::Date::now()))
                })
                .await;
                IN_FLIGHT.with(|slot| slot.borrow_mut().take());
                match &result {
                    Ok(tokens) => save(tokens.clone()),
                    Err(e) if e.ends_session() => clear(Some(SESSION_ENDED)),
                    Err(e) => leptos::logging::warn!("refresh failed: {e}"),
                }
                result
            }
            .boxed_local()
            .shared();
            *slot.borrow_mut() = Some(fut.clone());
            fut
        })
    }

    /// Runs `work` holding the `baton-refresh` Web Lock; without the API, or when the lock is not
    /// granted within [`LOCK_TIMEOUT_MS`], runs it anyway (the server's grace window covers that).
    async fn with_refresh_lock<T: 'static>(work: impl std::future::Future<Output = T> + 'static) -> T {
        let work = std::rc::Rc::new(RefCell::new(Some(work.boxed_local())));
        let result = std::rc::Rc::new(RefCell::new(None));
        let granted = lock_manager().and_then(|locks| {
            let request: js_sys::Function = js_sys::Reflect::get(&locks, &"request".into()).ok()?.dyn_into().ok()?;
            let options = js_sys::Object::new();
            let signal = web_sys::AbortSignal::timeout_with_u32(LOCK_TIMEOUT_MS);
            js_sys::Reflect::set(&options, &"signal".into(), &signal).ok()?;
            let (work, result) = (work.clone(), result.clone());
            let callback = Closure::once(move |_lock: JsValue| -> js_sys::Promise {
                let job = work.borrow_mut().take();
                wasm_bindgen_futures::future_to_promise(async move {
                    if let Some(job) = job {
                        *result.borrow_mut() = Some(job.await);
                    }
                    Ok(JsValue::UNDEFINED)
                })
            });
            let promise = request.call3(&locks, &"baton-refresh".into(), &options, callback.as_ref()).ok()?;
            Some((promise.dyn_into::<js_sys::Promise>().ok()?, callback))
        });
        if let Some((promise, _callback)) = granted {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
        }
        if let Some(done) = result.borrow_mut().take() {
            return done;
        }
        let job = work.borrow_mut().take().expect("the work runs once, with or without the lock");
        job.await
    }

    fn lock_manager() -> Option<JsValue> {
        let navigator = window().navigator();
        js_sys::Reflect::get(&navigator, &"locks".into()).ok().filter(|l| !l.is_undefined())
    }
}
