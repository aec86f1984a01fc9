//! The pages mailed links lead to, and the one that asks for a link: `/forgot` (ask for a reset
//! link by username or email), `/reset?token=…` (choose a new password: every session ends, this
//! device is logged in), `/verify?token=…` (confirms the address when opened). Each is loaded
//! apart (`lazy`): `/login` does not download them.

use super::session;
use crate::api::Sensitive;
use crate::domain::Password;
use crate::error::AppError;
use crate::server_fns;
use leptos::prelude::*;

/// The same words whether or not an account matched.
pub const SENT: &str = "If an account matches, a link is on its way. Check your inbox.";

/// Marks the form live once its island's code runs (until then the page's first script holds a
/// submit back, see `ui::shell`), and sends a submit held back then. What was typed before is
/// read from the field itself (see [`typed`], [`read_field`]).
fn on_submit_or_held(form: NodeRef<leptos::html::Form>, submit: impl Fn() + Clone + 'static) {
    Effect::new(move |_| {
        if let Some(form) = form.get() {
            let _ = form.set_attribute("data-live", "");
            if form.has_attribute(super::login::PENDING_SUBMIT) {
                let _ = form.remove_attribute(super::login::PENDING_SUBMIT);
                submit();
            }
        }
    });
}

/// What the server-rendered field `id` holds when the island starts: typed while its code was on
/// its way (a lazy island starts after the page), which the island's first render would wipe.
fn typed(id: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let field = document().get_element_by_id(id).and_then(|el| el.dyn_into::<web_sys::HtmlInputElement>().ok());
        if let Some(field) = field {
            return field.value();
        }
    }
    let _ = id;
    String::new()
}

/// The field's own value (typed, or autofilled without an input event), into `value`.
fn read_field(input: NodeRef<leptos::html::Input>, value: RwSignal<String>) {
    if let Some(el) = input.get_untracked() {
        value.set(el.value());
    }
}

#[island(lazy)]
pub fn ForgotPage() -> impl IntoView {
    let login = RwSignal::new(typed("login"));
    let (form, field) = (NodeRef::<leptos::html::Form>::new(), NodeRef::<leptos::html::Input>::new());
    let send = Action::new(move |login: &String| server_fns::request_password_reset(login.clone()));
    let submit = move || {
        read_field(field, login);
        if !send.pending().get_untracked() {
            send.dispatch(login.get_untracked());
        }
    };
    on_submit_or_held(form, submit);
    let error = move || send.value().get().and_then(Result::err);
    let sent = move || matches!(send.value().get(), Some(Ok(())));
    view! {
        <section class="card narrow auth-card">
            <h1>"Forgot your password?"</h1>
            <p class="muted">"Enter your username or the email address of your account. If the account has a \
                confirmed address, we mail it a link to choose a new password. If you ask more than once, only \
                the newest link works."</p>
            <form class="stack" method="post" novalidate=true data-lazy="" node_ref=form
                on:submit=move |ev| {
                    ev.prevent_default();
                    submit();
                }>
                <div class="field" class:invalid=move || error().and_then(|e| e.field_message("login").map(str::to_owned)).is_some()>
                    <label for="login">"Username or email"</label>
                    <input id="login" name="login" type="text" autocomplete="username" autocapitalize="none"
                        spellcheck="false" required=true node_ref=field bind:value=login/>
                </div>
                <p class="form-error" role="alert" data-testid="form-error">{move || error().map(|e| e.to_string())}</p>
                <p class="result" role="status" data-testid="reset-sent">{move || sent().then_some(SENT)}</p>
                <button class="button button-wide" type="submit" disabled=move || send.pending().get()
                    aria-busy=move || send.pending().get().to_string()>
                    <Show when=move || send.pending().get()><span class="spinner" aria-hidden="true"></span></Show>
                    "Send link"
                </button>
            </form>
            <p class="switch"><a href="/login">"Back to log in"</a></p>
        </section>
    }
}

#[island(lazy)]
pub fn ResetPage(token: String) -> impl IntoView {
    let password = RwSignal::new(typed("new-password"));
    let code = RwSignal::new(String::new());
    let (form, field) = (NodeRef::<leptos::html::Form>::new(), NodeRef::<leptos::html::Input>::new());
    let code_field = NodeRef::<leptos::html::Input>::new();
    let token = StoredValue::new(token);
    let reset = Action::new(move |(new, code): &(String, String)| {
        let (token, new) = (token.get_value(), new.clone());
        let code = Some(code.trim().to_owned()).filter(|c| !c.is_empty()).map(Sensitive);
        async move {
            let tokens = server_fns::confirm_password_reset(token.into(), new.into(), code).await?;
            session::logged_in(tokens);
            super::go("/inside");
            Ok::<(), AppError>(())
        }
    });
    let error = move || reset.value().get().and_then(Result::err);
    let field_error = move || {
        error().and_then(|e| e.field_message("newPassword").map(str::to_owned)).or_else(|| {
            let typed = password.get();
            (!typed.is_empty()).then(|| Password::parse(&typed).err()).flatten().map(|e| e.to_string())
        })
    };
    let link_error = move || error().filter(|e| matches!(e, AppError::InvalidResetToken(_)));
    // Shown once the server says the account has one-time codes, and from then on.
    let asks_code = RwSignal::new(false);
    Effect::new(move |_| {
        if matches!(error(), Some(AppError::InvalidCode(_))) {
            asks_code.set(true);
            code.set(String::new());
        }
    });
    let code_error = move || error().filter(|e| matches!(e, AppError::InvalidCode(_))).map(|e| e.to_string());
    let other_error = move || {
        error().filter(|e| {
            e.field_message("newPassword").is_none()
                && !matches!(e, AppError::InvalidResetToken(_) | AppError::InvalidCode(_))
        })
    };
    let submit = move || {
        read_field(field, password);
        read_field(code_field, code);
        if !reset.pending().get_untracked() {
            reset.dispatch((password.get_untracked(), code.get_untracked()));
        }
    };
    on_submit_or_held(form, submit);
    view! {
        <section class="card narrow auth-card">
            <h1>"Choose a new password"</h1>
            <p class="muted">"Every device logged in to your account will be logged out; this one will be logged in."</p>
            <Show when=move || link_error().is_some()>
                <p class="form-error" role="alert" data-testid="link-error">{move || link_error().map(|e| e.to_string())}</p>
                <p><a class="button" href="/forgot">"Ask for a new link"</a></p>
            </Show>
            <form class="stack" method="post" novalidate=true data-lazy="" hidden=move || link_error().is_some() node_ref=form
                on:submit=move |ev| {
                    ev.prevent_default();
                    submit();
                }>
                <div class="field" class:invalid=move || field_error().is_some()>
                    <label for="new-password">"New password"</label>
                    <input id="new-password" name="new-password" type="password" autocomplete="new-password"
                        required=true aria-describedby="new-password-error"
                        aria-invalid=move || field_error().is_some().to_string() node_ref=field bind:value=password/>
                    <p id="new-password-error" class="field-error">{field_error}</p>
                </div>
                <div class="field" class:invalid=move || code_error().is_some() hidden=move || !asks_code.get()>
                    <label for="code">"Code"</label>
                    <input id="code" name="code" type="text" autocomplete="one-time-code" autocapitalize="none"
                        spellcheck="false" aria-describedby="code-error"
                        aria-invalid=move || code_error().is_some().to_string() node_ref=code_field bind:value=code/>
                    <p id="code-error" class="field-error" role="alert" data-testid="code-error">{code_error}</p>
                </div>
                <p class="form-error" role="alert" data-testid="form-error">{move || other_error().map(|e| e.to_string())}</p>
                <button class="button button-wide" type="submit" disabled=move || reset.pending().get()
                    aria-busy=move || reset.pending().get().to_string()>
                    <Show when=move || reset.pending().get()><span class="spinner" aria-hidden="true"></span></Show>
                    "Set new password"
                </button>
            </form>
        </section>
    }
}

/// Confirms the address as soon as the page runs: opening the link is the confirmation.
#[island(lazy)]
pub fn VerifyPage(token: String) -> impl IntoView {
    let verify = Action::new(move |token: &String| server_fns::verify_email(token.clone().into()));
    let token = StoredValue::new(token);
    Effect::new(move |ran: Option<()>| {
        if ran.is_none() {
            verify.dispatch(token.get_value());
        }
    });
    let outcome = move || {
        match verify.value().get() {
        None => view! { <p class="muted" role="status">"Confirming your address…"</p> }.into_any(),
        Some(Ok(())) => view! {
            <p class="result" role="status" data-testid="verified">"Your email address is confirmed. You can reset your password with it if you ever forget it."</p>
            <p><a class="button" href="/inside">"Go to your account"</a></p>
        }
        .into_any(),
        Some(Err(e)) => view! {
            <p class="form-error" role="alert" data-testid="link-error">{e.to_string()}</p>
            <p class="muted">"Log in and use \"Send again\" on your account to get a new link."</p>
        }
        .into_any(),
    }
    };
    view! {
        <section class="card narrow auth-card">
            <h1>"Confirm your email address"</h1>
            {outcome}
        </section>
    }
}
