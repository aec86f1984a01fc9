//! `/login` and `/signup`: one form, two modes. Inline validation runs the server's own rules
//! (`crate::domain`), and the server's answer appears next to the field it is about.

use super::session::{self, Auth, AuthStatus};
use crate::domain::{Password, Username, PASSWORD_MAX, PASSWORD_MIN, USERNAME_MAX, USERNAME_MIN};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Login,
    Signup,
}

#[component]
pub fn LoginPage() -> impl IntoView {
    view! { <AuthForm mode=Mode::Login/> }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    view! { <AuthForm mode=Mode::Signup/> }
}

#[component]
fn AuthForm(mode: Mode) -> impl IntoView {
    let auth = expect_context::<Auth>();
    let query = use_query_map();
    // Only a page of this site: `?next=https://evil.example` must not become an open redirect.
    let next = Memo::new(move |_| super::next::resolve(query.read().get("next").as_deref()));
    let navigate = use_navigate();
    Effect::new(move |_| {
        if auth.status.get() == AuthStatus::LoggedIn {
            navigate(&next.get_untracked(), super::replace());
        }
    });

    // What was typed or autofilled before the WASM took over stays in the fields.
    let username = RwSignal::new(prefilled("username"));
    let password = RwSignal::new(prefilled("password"));
    let (user_input, pass_input) = (NodeRef::<leptos::html::Input>::new(), NodeRef::<leptos::html::Input>::new());
    let form = NodeRef::<leptos::html::Form>::new();
    let (user_touched, pass_touched, submitted) = (RwSignal::new(false), RwSignal::new(false), RwSignal::new(false));
    let action = Action::new(move |(u, p): &(String, String)| {
        let (u, p) = (u.clone(), p.clone());
        async move {
            let result = match mode {
                Mode::Login => crate::server_fns::login(u, p).await,
                Mode::Signup => crate::server_fns::signup(u, p).await,
            };
            result.map(session::logged_in)
        }
    });
    let server_error = move || action.value().get().and_then(Result::err);
    let user_error = move || {
        let local = (user_touched.get() || submitted.get())
            .then(|| Username::parse(&username.get()).err().and_then(|e| e.field_message("username").map(str::to_owned)))
            .flatten();
        local.or_else(|| server_error().and_then(|e| e.field_message("username").map(str::to_owned)))
    };
    let pass_error = move || {
        let local = (pass_touched.get() || submitted.get())
            .then(|| Password::parse(&password.get()).err().and_then(|e| e.field_message("password").map(str::to_owned)))
            .flatten();
        local.or_else(|| server_error().and_then(|e| e.field_message("password").map(str::to_owned)))
    };
    // Errors not about one field (wrong password, name taken, too many attempts, offline).
    let form_error = move || server_error().filter(|e| !matches!(e, AppError::InvalidInput { fields, .. } if !fields.is_empty()));

    let submit = move || {
        // The fields themselves are the truth: a browser may autofill without an input event.
        for (input, value) in [(user_input, username), (pass_input, password)] {
            if let Some(el) = input.get_untracked() {
                value.set(el.value());
            }
        }
        submitted.set(true);
        let (u, p) = (username.get_untracked(), password.get_untracked());
        if Username::parse(&u).is_ok() && Password::parse(&p).is_ok() && !action.pending().get_untracked() {
            action.dispatch((u, p));
        }
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        submit();
    };
    // Submitted before the WASM was ready: the page's first script held the submit back (see
    // `ui::shell`), and it goes out now.
    Effect::new(move |_| {
        if let Some(form) = form.get() {
            if form.has_attribute(PENDING_SUBMIT) {
                let _ = form.remove_attribute(PENDING_SUBMIT);
                submit();
            }
        }
    });

    let (title, submit, other_text, other_link, other_label) = match mode {
        Mode::Login => ("Log in", "Log in", "New to Baton?", "/signup", "Create an account"),
        Mode::Signup => ("Create your account", "Create account", "Already have an account?", "/login", "Log in"),
    };
    let other_href = move || match query.read().get("next") {
        Some(n) => format!("{other_link}?next={}", super::next::encode(&n)),
        None => other_link.to_owned(),
    };
    let password_hint = match mode {
        Mode::Login => None,
        Mode::Signup => Some(format!("{PASSWORD_MIN} to {PASSWORD_MAX} characters. A passphrase of a few words works well.")),
    };

    view! {
        <Title text=title/>
        <section class="card narrow auth-card">
            <h1>{title}</h1>
            <Show when=move || auth.notice.get().is_some()>
                <p class="notice" role="status" data-testid="notice">{move || auth.notice.get()}</p>
            </Show>
            // POST, so that a submit the page could not hold back never puts the password in a URL.
            <form node_ref=form method="post" on:submit=on_submit novalidate=true aria-describedby="form-error">
                <div class="field" class:invalid=move || user_error().is_some()>
                    <label for="username">"Username"</label>
                    <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none"
                        spellcheck="false" autofocus=true required=true
                        minlength=USERNAME_MIN.to_string() maxlength=USERNAME_MAX.to_string()
                        aria-invalid=move || user_error().is_some().to_string()
                        aria-describedby="username-error"
                        node_ref=user_input bind:value=username on:blur=move |_| user_touched.set(true)/>
                    <p id="username-error" class="field-error" aria-live="polite">{user_error}</p>
                </div>
                <div class="field" class:invalid=move || pass_error().is_some()>
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" required=true
                        autocomplete=if mode == Mode::Login { "current-password" } else { "new-password" }
                        minlength=PASSWORD_MIN.to_string() maxlength=PASSWORD_MAX.to_string()
                        aria-invalid=move || pass_error().is_some().to_string()
                        aria-describedby="password-error"
                        node_ref=pass_input bind:value=password on:blur=move |_| pass_touched.set(true)/>
                    {password_hint.map(|h| view! { <p class="field-hint">{h}</p> })}
                    <p id="password-error" class="field-error" aria-live="polite">{pass_error}</p>
                </div>
                <p id="form-error" class="form-error" role="alert" data-testid="form-error">
                    {move || form_error().map(|e| e.to_string())}
                </p>
                <button type="submit" class="button button-wide" disabled=move || action.pending().get()
                    aria-busy=move || action.pending().get().to_string()>
                    <Show when=move || action.pending().get()>
                        <span class="spinner" aria-hidden="true"></span>
                    </Show>
                    {submit}
                </button>
            </form>
            <p class="switch">{other_text}" "<A href=other_href>{other_label}</A></p>
        </section>
    }
}

/// Set by the page's first script on a form submitted before hydration (see `ui::shell`).
const PENDING_SUBMIT: &str = "data-submit-pending";

/// The value of a server-rendered field while the page hydrates: whatever the user typed or the
/// browser autofilled before the WASM took over, which hydration would otherwise wipe.
fn prefilled(id: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let doc = document();
        let hydrating = doc.body().is_some_and(|body| !body.has_attribute("data-hydrated"));
        if let Some(input) = doc.get_element_by_id(id).filter(|_| hydrating) {
            if let Ok(input) = input.dyn_into::<web_sys::HtmlInputElement>() {
                return input.value();
            }
        }
    }
    let _ = id;
    String::new()
}
