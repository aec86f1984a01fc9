//! One refresh at a time across the tabs of this browser. The Web Locks API where it exists (it
//! needs a secure context: https or localhost); elsewhere, such as a plain-HTTP LAN address, a
//! lease written to localStorage. Either way a tab that cannot get the lock in time gives up
//! without spending the refresh token: spending it in parallel is exactly what the lock prevents.
//!
//! Tabs may live in different renderer processes, and a localStorage write reaches the others a
//! moment later, not necessarily before the lock does. So the tab that spent a token also marks it
//! spent in the lock manager, which every tab sees at once ([`mark_spent`], [`was_spent`]): the
//! next holder then waits for the new tokens to arrive instead of spending the old one again.

use super::store;
use super::timer::sleep;
use futures::future::{FutureExt, LocalBoxFuture};
use leptos::prelude::window;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

const LOCK_NAME: &str = "baton-refresh";
const LEASE_KEY: &str = "baton.refresh-lease";
/// A refresh gives up after `session`'s `REFRESH_BUDGET_MS` (30 s), so a tab waits a little
/// longer than that for the lock before it reports that it could not renew the session.
pub const WAIT_MS: u32 = 40_000;
/// A fallback lease outlives the longest refresh, so it expires only when its tab has died.
const LEASE_MS: f64 = WAIT_MS as f64;

pub struct TimedOut;

/// Runs `work` holding the cross-tab refresh lock, or returns [`TimedOut`] without running it.
pub async fn exclusive<T: 'static>(work: impl Future<Output = T> + 'static) -> Result<T, TimedOut> {
    if !store::shared() {
        // No shared storage, so no other tab holds these tokens.
        return Ok(work.await);
    }
    match web_lock(work.boxed_local()).await {
        WebLock::Ran(result) => Ok(result),
        WebLock::TimedOut => Err(TimedOut),
        WebLock::Unsupported(work) => lease(work).await,
    }
}

enum WebLock<T> {
    Ran(T),
    TimedOut,
    Unsupported(LocalBoxFuture<'static, T>),
}

async fn web_lock<T: 'static>(work: LocalBoxFuture<'static, T>) -> WebLock<T> {
    let work = Rc::new(RefCell::new(Some(work)));
    let result = Rc::new(RefCell::new(None));
    let requested = (|| {
        let locks = locks()?;
        let request = method(&locks, "request")?;
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &"signal".into(), &web_sys::AbortSignal::timeout_with_u32(WAIT_MS)).ok()?;
        let (work, result) = (work.clone(), result.clone());
        // The lock is held until the promise this returns settles: after the work is done and
        // its result stored.
        let granted = Closure::once(move |_lock: JsValue| -> js_sys::Promise {
            let job = work.borrow_mut().take();
            wasm_bindgen_futures::future_to_promise(async move {
                if let Some(job) = job {
                    *result.borrow_mut() = Some(job.await);
                }
                Ok(JsValue::UNDEFINED)
            })
        });
        let promise = request.call3(&locks, &LOCK_NAME.into(), &options, granted.as_ref()).ok()?;
        Some((promise.dyn_into::<js_sys::Promise>().ok()?, granted))
    })();
    let Some((promise, _granted)) = requested else {
        let work = work.borrow_mut().take().expect("not handed to a lock that does not exist");
        return WebLock::Unsupported(work);
    };
    // Rejected when the wait timed out; then the work was never started.
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    let done = result.borrow_mut().take();
    match done {
        Some(done) => WebLock::Ran(done),
        None => WebLock::TimedOut,
    }
}

/// The fallback: a lease `until owner` in localStorage. A tab writes its claim when the lease
/// is free or expired, and holds the lease once it has read its own claim back twice, a settling
/// interval apart: tabs that claim at the same moment overwrite each other, every tab ends up
/// reading the last write, and only its writer proceeds. The lease lives in the same storage as
/// the tokens, whose writes reach other tabs in order: a tab that sees the lease released has seen
/// the tokens stored before it, so no spent marker is needed here.
async fn lease<T>(work: LocalBoxFuture<'static, T>) -> Result<T, TimedOut> {
    let Ok(Some(storage)) = window().local_storage() else { return Ok(work.await) };
    let me = js_sys::Math::random().to_bits();
    let deadline = js_sys::Date::now() + WAIT_MS as f64;
    let (mut mine, mut confirmed) = (None::<String>, 0);
    loop {
        let now = js_sys::Date::now();
        let stored = storage.get_item(LEASE_KEY).ok().flatten();
        if mine.is_some() && stored == mine {
            confirmed += 1;
            if confirmed == 2 {
                let result = work.await;
                if storage.get_item(LEASE_KEY).ok().flatten() == mine {
                    let _ = storage.remove_item(LEASE_KEY);
                }
                return Ok(result);
            }
        } else {
            confirmed = 0;
            let free = stored
                .as_deref()
                .and_then(|held| held.split_once(' '))
                .and_then(|(until, _)| until.parse::<f64>().ok())
                .is_none_or(|until| until < now);
            if free {
                let claim = format!("{} {me:x}", (now + LEASE_MS) as u64);
                let _ = storage.set_item(LEASE_KEY, &claim);
                mine = Some(claim);
            }
        }
        if now > deadline {
            return Err(TimedOut);
        }
        sleep(LEASE_SETTLE_MS + (js_sys::Math::random() * 40.0) as i32).await;
    }
}

/// Longer than a localStorage write takes to reach the other tabs (well under a millisecond on
/// an idle machine, tens on a loaded one).
const LEASE_SETTLE_MS: i32 = 60;

fn locks() -> Option<JsValue> {
    js_sys::Reflect::get(&window().navigator(), &"locks".into()).ok().filter(|l| !l.is_undefined())
}

fn method(target: &JsValue, name: &str) -> Option<js_sys::Function> {
    js_sys::Reflect::get(target, &name.into()).ok()?.dyn_into().ok()
}

/// The marker's name: a fingerprint of the token (FNV-1a), not the token itself.
fn spent_marker(token: &str) -> String {
    let hash = token.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("baton-spent-{hash:016x}")
}

/// How long a spent marker is kept: far longer than storage takes to reach the other tabs.
const MARKER_MS: i32 = 60_000;

/// Marks `token` spent, and returns once the lock manager holds the mark (before the caller
/// releases the refresh lock). Without Web Locks there is nothing to mark in.
pub async fn mark_spent(token: &str) {
    let Some(locks) = locks() else { return };
    let Some(request) = method(&locks, "request") else { return };
    let (granted_tx, granted_rx) = futures::channel::oneshot::channel::<()>();
    let granted_tx = RefCell::new(Some(granted_tx));
    let hold = Closure::once(move |_lock: JsValue| -> js_sys::Promise {
        if let Some(tx) = granted_tx.borrow_mut().take() {
            let _ = tx.send(());
        }
        js_sys::Promise::new(&mut |resolve, _| {
            let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, MARKER_MS);
        })
    });
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
    if request.call3(&locks, &spent_marker(token).into(), &options, hold.as_ref()).is_ok() {
        // The closure must outlive this function: the lock manager calls it later.
        hold.forget();
        let _ = granted_rx.await;
    }
}

/// Whether another tab has marked `token` spent.
pub async fn was_spent(token: &str) -> bool {
    let Some(locks) = locks() else { return false };
    let Some(query) = method(&locks, "query") else { return false };
    let Some(promise) = query.call0(&locks).ok().and_then(|p| p.dyn_into::<js_sys::Promise>().ok()) else {
        return false;
    };
    let Ok(snapshot) = wasm_bindgen_futures::JsFuture::from(promise).await else { return false };
    let held = js_sys::Reflect::get(&snapshot, &"held".into()).unwrap_or(JsValue::UNDEFINED);
    let marker = JsValue::from(spent_marker(token));
    js_sys::Array::from(&held)
        .iter()
        .any(|lock| js_sys::Reflect::get(&lock, &"name".into()).ok() == Some(marker.clone()))
}
