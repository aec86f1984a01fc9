//! `/inside`: the protected area. Every call here goes through the refreshing client.

use super::session::{self, Auth};
use crate::api::SessionInfo;
use crate::error::AppError;
use crate::server_fns;
use leptos::prelude::*;

/// The page behind its guard: one island, loaded apart from the rest of the WASM (`lazy`), so
/// that the login page does not wait for it.
#[island(lazy)]
pub fn InsideIsland() -> impl IntoView {
    view! { <super::guard::RequireAuth><InsidePage/></super::guard::RequireAuth> }
}

#[component]
fn InsidePage() -> impl IntoView {
    let auth = Auth::get();
    let username = move || auth.user.get().map(|u| u.username).unwrap_or_default();

    let secret = Action::new(|_: &()| server_fns::get_secret());
    let sessions = RwSignal::new(None::<Result<Vec<SessionInfo>, AppError>>);
    let load_sessions = move || {
        leptos::task::spawn_local(async move { sessions.set(Some(server_fns::sessions().await)) });
    };
    Effect::new(move |_| load_sessions());

    // A session that is already gone (revoked twice, or it ended meanwhile) is what was asked for.
    let revoke = Action::new(|id: &String| {
        let id = id.clone();
        async move {
            match server_fns::revoke_session(id).await {
                Err(AppError::NotFound) => Ok(()),
                other => other,
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = revoke.value().get() {
            load_sessions();
        }
    });

    // Logging out ends the session on the server first: if that fails, the user is told and
    // stays logged in, rather than believing a session ended that did not.
    let leave = Action::new_local(move |everywhere: &bool| {
        let everywhere = *everywhere;
        async move {
            session::log_out(everywhere).await?;
            // This page stays as it is until the login page replaces it: its guard does not
            // send the user to login with `?next=/inside`.
            super::go("/login");
            Ok::<(), AppError>(())
        }
    });
    let confirming = RwSignal::new(false);
    let leave_error =
        move || leave.value().get().and_then(Result::err).map(|e| format!("You are still logged in: {e}"));

    view! {
        <section class="stack">
            <div class="hero">
                <h1>"Welcome, " <span data-testid="username">{username}</span></h1>
                <p class="muted">"You are signed in. Your access token lasts a few minutes; when it is about to run out, \
                    the next thing you do renews it first, so you stay signed in while you use Baton."</p>
                <Show when=move || auth.storage_blocked.get()>
                    <p class="notice" role="status" data-testid="storage-blocked">"Your browser blocks site storage, so this \
                        login lives in this tab only: moving between Baton's pages keeps it; reloading the page, \
                        closing the tab or opening Baton in another tab logs you out there."</p>
                </Show>
                <Show when=move || auth.key_bound.get() == Some(false)>
                    <p class="notice" role="status" data-testid="bearer-session">"This session is not bound to a key of \
                        this browser (it cannot keep one here, or you logged in before the page was ready): anyone \
                        who copies its tokens can use them until you log out."</p>
                </Show>
            </div>
            <div class="grid">
                <article class="card">
                    <h2>"Access token"</h2>
                    <TokenClock/>
                </article>
                <article class="card">
                    <h2>"Protected resource"</h2>
                    <p class="muted">"Fetched with your access token, refreshed first if it has expired."</p>
                    <button class="button" data-testid="load-secret" disabled=move || secret.pending().get()
                        aria-busy=move || secret.pending().get().to_string()
                        on:click=move |_| { secret.dispatch(()); }>
                        <Show when=move || secret.pending().get()><span class="spinner" aria-hidden="true"></span></Show>
                        "Load secret"
                    </button>
                    // The answer and a failure apart: a failure is announced as one (an alert).
                    <p class="result" role="status" data-testid="secret">
                        {move || secret.value().get().and_then(Result::ok).map(|s| s.message)}
                    </p>
                    <p class="form-error" role="alert" data-testid="secret-error">
                        {move || secret.value().get().and_then(Result::err).map(|e| format!("Could not load the secret: {e}"))}
                    </p>
                </article>
            </div>
            <article class="card">
                <h2>"Your sessions"</h2>
                <p class="muted">"Every device where you are logged in. Revoking one logs it out within a second."</p>
                <ul class="sessions" data-testid="sessions">
                    {move || match sessions.get() {
                        None => view! { <li class="muted">"Loading…"</li> }.into_any(),
                        Some(Err(e)) => view! { <li class="form-error">{e.to_string()}</li> }.into_any(),
                        Some(Ok(list)) => list.into_iter().map(|s| session_row(s, revoke)).collect_view().into_any(),
                    }}
                </ul>
                <p class="form-error" role="alert" data-testid="revoke-error">
                    {move || revoke.value().get().and_then(Result::err).map(|e| format!("Could not revoke that session: {e}"))}
                </p>
            </article>
            <super::account::AccountCard/>
            <div class="actions">
                <button class="button button-secondary" data-testid="logout" disabled=move || leave.pending().get()
                    on:click=move |_| { leave.dispatch(false); }>"Log out"</button>
                <button class="button button-danger" data-testid="logout-all" disabled=move || leave.pending().get()
                    aria-expanded=move || confirming.get().to_string() aria-controls="confirm-everywhere"
                    on:click=move |_| confirming.update(|c| *c = !*c)>"Log out everywhere"</button>
            </div>
            <div id="confirm-everywhere" class="card confirm" hidden=move || !confirming.get()>
                <p>"This logs you out on every device where you are signed in, this one included."</p>
                <div class="actions">
                    <button class="button button-danger" data-testid="confirm-logout-all" disabled=move || leave.pending().get()
                        on:click=move |_| { leave.dispatch(true); }>"End all sessions"</button>
                    <button class="button button-secondary" on:click=move |_| confirming.set(false)>"Cancel"</button>
                </div>
            </div>
            <p class="form-error" role="alert" data-testid="logout-error">{leave_error}</p>
        </section>
    }
}

fn session_row(s: SessionInfo, revoke: Action<String, Result<(), AppError>>) -> impl IntoView {
    let device = s.user_agent.as_deref().map(describe_agent).unwrap_or("Unknown device").to_owned();
    let id = s.id.clone();
    let address = s.ip.unwrap_or_else(|| "unknown address".into());
    // The button's name says which device it logs out, not only "Revoke".
    let label = format!("{device} at {address}, last active {}", short_time(&s.last_used_at));
    view! {
        <li class="session">
            <div>
                <strong>{device}</strong>
                {s.current.then(|| view! { <span class="badge">"This device"</span> })}
                <p class="muted small">
                    {format!("{address} · signed in {} · last active {}", short_time(&s.created_at), short_time(&s.last_used_at))}
                </p>
            </div>
            {(!s.current).then(|| view! {
                <button class="button button-small button-secondary" aria-label=format!("Revoke {label}")
                    disabled=move || revoke.pending().get() aria-busy=move || revoke.pending().get().to_string()
                    on:click=move |_| {
                        if !revoke.pending().get_untracked() {
                            revoke.dispatch(id.clone());
                        }
                    }>"Revoke"</button>
            })}
        </li>
    }
}

/// "2026-11-27T09:44:04.123Z" → "2026-11-27 09:44 UTC".
fn short_time(rfc3339: &str) -> String {
    rfc3339.get(..16).map(|t| format!("{} UTC", t.replace('T', " "))).unwrap_or_default()
}

fn describe_agent(ua: &str) -> &'static str {
    if ua.contains("Firefox") {
        "Firefox"
    } else if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("Chrome") || ua.contains("Chromium") {
        "Chrome"
    } else if ua.contains("Safari") {
        "Safari"
    } else {
        "App or script"
    }
}

/// A live countdown to the access token's expiry.
#[component]
fn TokenClock() -> impl IntoView {
    let auth = Auth::get();
    let now = RwSignal::new(js_now());
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(move || now.set(js_now()), std::time::Duration::from_millis(500)) {
            on_cleanup(move || handle.clear());
        }
    });
    let remaining = move || auth.access_expires_at.get().map(|at| ((at - now.get()) / 1000.0).ceil().max(0.0) as u64);
    view! {
        <p class="clock" data-testid="token-clock" aria-live="off">
            {move || match remaining() {
                Some(0) => "Expired: it will be renewed on your next action.".to_owned(),
                Some(s) => format!("Expires in {}:{:02}", s / 60, s % 60),
                None => String::new(),
            }}
        </p>
    }
}

fn js_now() -> f64 {
    #[cfg(feature = "hydrate")]
    return js_sys::Date::now();
    #[cfg(not(feature = "hydrate"))]
    0.0
}
