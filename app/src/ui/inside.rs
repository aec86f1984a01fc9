//! `/inside`: the protected area. Every call here goes through the refreshing client.

use super::session::{self, Auth};
use crate::api::SessionInfo;
use crate::error::AppError;
use crate::server_fns;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

#[component]
pub fn InsidePage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let navigate = use_navigate();
    let username = move || auth.user.get().map(|u| u.username).unwrap_or_default();

    let secret = Action::new(|_: &()| server_fns::get_secret());
    let sessions = RwSignal::new(None::<Result<Vec<SessionInfo>, AppError>>);
    let load_sessions = move || {
        leptos::task::spawn_local(async move { sessions.set(Some(server_fns::sessions().await)) });
    };
    Effect::new(move |_| load_sessions());

    let revoke = Action::new(|id: &String| server_fns::revoke_session(id.clone()));
    Effect::new(move |_| {
        if revoke.value().get().is_some() {
            load_sessions();
        }
    });

    let leave = {
        let navigate = navigate.clone();
        move |everywhere: bool| {
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                if everywhere {
                    let _ = server_fns::logout_all().await;
                } else if let Some(token) = session::refresh_token() {
                    let _ = server_fns::logout(token).await;
                }
                // Leave first, so the guard does not send us to /login?next=/inside.
                navigate("/login", super::replace());
                session::logged_out(None);
            });
        }
    };
    let (leave_here, leave_everywhere) = (leave.clone(), leave);

    view! {
        <Title text="Inside"/>
        <section class="stack">
            <div class="hero">
                <h1>"Welcome, " <span data-testid="username">{username}</span></h1>
                <p class="muted">"You are signed in. Your access token renews itself quietly in the background."</p>
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
                        on:click=move |_| { secret.dispatch(()); }>
                        <Show when=move || secret.pending().get()><span class="spinner" aria-hidden="true"></span></Show>
                        "Load secret"
                    </button>
                    <p class="result" role="status" data-testid="secret">
                        {move || secret.value().get().map(|r| match r {
                            Ok(s) => s.message,
                            Err(e) => e.to_string(),
                        })}
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
            </article>
            <div class="actions">
                <button class="button button-secondary" data-testid="logout" on:click=move |_| leave_here(false)>"Log out"</button>
                <button class="button button-danger" data-testid="logout-all" on:click=move |_| leave_everywhere(true)>"Log out everywhere"</button>
            </div>
        </section>
    }
}

fn session_row(s: SessionInfo, revoke: Action<String, Result<(), AppError>>) -> impl IntoView {
    let device = s.user_agent.as_deref().map(describe_agent).unwrap_or("Unknown device").to_owned();
    let id = s.id.clone();
    view! {
        <li class="session">
            <div>
                <strong>{device}</strong>
                {s.current.then(|| view! { <span class="badge">"This device"</span> })}
                <p class="muted small">
                    {format!("{} · signed in {} · last active {}", s.ip.unwrap_or_else(|| "unknown address".into()), short_time(&s.created_at), short_time(&s.last_used_at))}
                </p>
            </div>
            {(!s.current).then(|| view! {
                <button class="button button-small button-secondary" on:click=move |_| { revoke.dispatch(id.clone()); }>"Revoke"</button>
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
    let auth = expect_context::<Auth>();
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
