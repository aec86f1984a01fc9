//! `/login` and `/signup`: one form, two modes. Inline validation runs the server's own rules
//! (`crate::domain`), and the server's answer appears next to the field it is about.

use super::session::{self, Auth, AuthStatus};
use crate::api::{LoginStep, Sensitive};
use crate::domain::{Email, Password, Username, PASSWORD_MAX, PASSWORD_MIN};
use crate::error::AppError;
use leptos::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Login,
    Signup,
}

/// `next`: the page's `next` parameter, where to go once logged in.
#[island]
pub fn LoginPage(next: Option<String>) -> impl IntoView {
    view! { <AuthForm mode=Mode::Login next/> }
}

#[island]
pub fn SignupPage(next: Option<String>) -> impl IntoView {
    view! { <AuthForm mode=Mode::Signup next/> }
}

#[component]
fn AuthForm(mode: Mode, next: Option<String>) -> impl IntoView {
    let auth = Auth::get();
    // Only a page of this site: `?next=https://evil.example` must not become an open redirect.
    let target = super::next::resolve(next.as_deref());
    Effect::new(move |_| {
        if auth.status.get() == AuthStatus::LoggedIn {
            super::go(&target);
        }
    });

    // What was typed or autofilled before the WASM took over stays in the fields.
    let username = RwSignal::new(prefilled("username"));
    let password = RwSignal::new(prefilled("password"));
    let email = RwSignal::new(prefilled("email"));
    let email_input = NodeRef::<leptos::html::Input>::new();
    let (user_input, pass_input) = (NodeRef::<leptos::html::Input>::new(), NodeRef::<leptos::html::Input>::new());
    let form = NodeRef::<leptos::html::Form>::new();
    let (user_touched, pass_touched, submitted) = (RwSignal::new(false), RwSignal::new(false), RwSignal::new(false));
    // An account with one-time codes: the challenge its right password earned, for the second
    // step. Only in this page's memory (never in storage another page could read).
    let challenge = RwSignal::new(None::<Sensitive>);
    let second_host = NodeRef::<leptos::html::Div>::new();
    #[cfg(feature = "hydrate")]
    {
        let mounted = StoredValue::new(false);
        Effect::new(move |_| {
            if challenge.with(Option::is_some) && !mounted.get_value() {
                if let Some(host) = second_host.get_untracked() {
                    mounted.set_value(true);
                    leptos::task::spawn_local(second_step(challenge, host));
                }
            }
        });
    }
    // Back from the code step ("Log in again"): to the password.
    Effect::new(move |was: Option<bool>| {
        let now = challenge.with(Option::is_some);
        if was == Some(true) && !now {
            focus(pass_input);
        }
        now
    });
    let action = Action::new(move |(u, p, e): &(String, String, String)| {
        let (u, p, e) = (u.clone(), p.clone(), e.trim().to_owned());
        async move {
            let tokens = match mode {
                Mode::Login => match crate::server_fns::login(u, p.into()).await? {
                    LoginStep::Tokens(tokens) => tokens,
                    LoginStep::SecondFactor(second) => {
                        challenge.set(Some(second));
                        return Ok(());
                    }
                },
                Mode::Signup => crate::server_fns::signup(u, p.into(), (!e.is_empty()).then_some(e)).await?,
            };
            session::logged_in(tokens);
            Ok::<_, AppError>(())
        }
    });
    let server_error = move || action.value().get().and_then(Result::err);
    let user_error = move || {
        let local = (user_touched.get() || submitted.get())
            .then(|| {
                Username::parse(&username.get()).err().and_then(|e| e.field_message("username").map(str::to_owned))
            })
            .flatten();
        local.or_else(|| server_error().and_then(|e| e.field_message("username").map(str::to_owned)))
    };
    let pass_error = move || {
        let local = (pass_touched.get() || submitted.get())
            .then(|| {
                Password::parse(&password.get()).err().and_then(|e| e.field_message("password").map(str::to_owned))
            })
            .flatten();
        local.or_else(|| server_error().and_then(|e| e.field_message("password").map(str::to_owned)))
    };
    // Optional: checked only when something was typed.
    let email_error = move || {
        let typed = email.get();
        let local = (submitted.get() && !typed.trim().is_empty())
            .then(|| Email::parse(&typed).err().and_then(|e| e.field_message("email").map(str::to_owned)))
            .flatten();
        local.or_else(|| server_error().and_then(|e| e.field_message("email").map(str::to_owned)))
    };
    // Errors not about one field (wrong password, name taken, too many attempts, offline).
    let form_error =
        move || server_error().filter(|e| !matches!(e, AppError::InvalidInput { fields, .. } if !fields.is_empty()));

    // While the server asks to wait (429), the button counts down instead of letting the user
    // collect more refusals.
    let wait = Countdown::new();
    Effect::new(move |_| {
        if let Some(Err(AppError::TooManyRequests { retry_after })) = action.value().get() {
            wait.start(retry_after);
        }
    });

    let submit = move || {
        // The fields themselves are the truth: a browser may autofill without an input event.
        for (input, value) in [(user_input, username), (pass_input, password), (email_input, email)] {
            if let Some(el) = input.get_untracked() {
                value.set(el.value());
            }
        }
        submitted.set(true);
        let (u, p) = (username.get_untracked(), password.get_untracked());
        let e = if mode == Mode::Signup { email.get_untracked() } else { String::new() };
        // A failed submit takes the user to what needs fixing.
        if Username::parse(&u).is_err() {
            focus(user_input);
        } else if Password::parse(&p).is_err() {
            focus(pass_input);
        } else if !e.trim().is_empty() && Email::parse(&e).is_err() {
            focus(email_input);
        } else if !action.pending().get_untracked() && wait.remaining.get_untracked() == 0 {
            action.dispatch((u, p, e));
        }
    };
    let form_error_ref = NodeRef::<leptos::html::P>::new();
    Effect::new(move |_| {
        if let Some(Err(e)) = action.value().get() {
            match (e.field_message("username"), e.field_message("password"), e.field_message("email")) {
                (Some(_), _, _) => focus(user_input),
                (None, Some(_), _) => focus(pass_input),
                (None, None, Some(_)) => focus(email_input),
                (None, None, None) => focus(form_error_ref),
            }
        }
    });
    let waiting = move || wait.remaining.get() != 0;
    let (show_password, caps_lock) = (RwSignal::new(false), RwSignal::new(false));
    let on_key = move |ev: leptos::ev::KeyboardEvent| caps_lock.set(ev.get_modifier_state("CapsLock"));
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        submit();
    };
    // Focus starts at the first field where a keyboard is at hand; not with a touch screen, where
    // it would open the on-screen keyboard over the page before the user chose to type (which
    // `autofocus` did). Not if the user is in a field already.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let Some(input) = user_input.get() else { return };
        let fine_pointer = window().match_media("(pointer: fine)").ok().flatten().is_some_and(|m| m.matches());
        let nothing_focused = document().active_element().is_none_or(|el| el.tag_name() == "BODY");
        if fine_pointer && nothing_focused {
            let _ = input.focus();
        }
    });
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

    let (title, submit_label, other_text, other_link, other_label) = match mode {
        Mode::Login => ("Log in", "Log in", "New to Baton?", "/signup", "Create an account"),
        Mode::Signup => ("Create your account", "Create account", "Already have an account?", "/login", "Log in"),
    };
    let other_href = match &next {
        Some(n) => format!("{other_link}?next={}", super::next::encode(n)),
        None => other_link.to_owned(),
    };
    let password_hint = match mode {
        Mode::Login => None,
        Mode::Signup => {
            Some(format!("{PASSWORD_MIN} to {PASSWORD_MAX} characters. A passphrase of a few words works well."))
        }
    };

    view! {
        <section class="card narrow auth-card">
            <h1>{title}</h1>
            <Show when=move || auth.notice.get().is_some()>
                <p class="notice" role="status" data-testid="notice">{move || auth.notice.get().map(|n| n.text())}</p>
            </Show>
            // The second step is mounted here once a password earns a challenge (`second_step`).
            <div node_ref=second_host></div>
            // POST, so that a submit the page could not hold back never puts the password in a URL.
            <form node_ref=form hidden=move || challenge.with(Option::is_some) method="post" on:submit=on_submit novalidate=true aria-describedby="form-error">
                <div class="field" class:invalid=move || user_error().is_some()>
                    <label for="username">"Username"</label>
                    <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none"
                        spellcheck="false" required=true
                        aria-invalid=move || user_error().is_some().to_string()
                        aria-describedby="username-error"
                        node_ref=user_input bind:value=username on:blur=move |_| user_touched.set(true)/>
                    // Not a live region: announced with the field, not at every keystroke.
                    <p id="username-error" class="field-error">{user_error}</p>
                </div>
                <div class="field" class:invalid=move || pass_error().is_some()>
                    <label for="password">"Password"</label>
                    // No maxlength: the browser counts UTF-16 units and would cut a password the
                    // server (which counts characters) accepts; the inline check says "too long".
                    <div class="password-row">
                        <input id="password" name="password" required=true
                            type=move || if show_password.get() { "text" } else { "password" }
                            autocomplete=if mode == Mode::Login { "current-password" } else { "new-password" }
                            aria-invalid=move || pass_error().is_some().to_string()
                            aria-describedby=if password_hint.is_some() { "password-hint password-error caps-hint" } else { "password-error caps-hint" }
                            node_ref=pass_input bind:value=password on:blur=move |_| pass_touched.set(true)
                            on:keydown=on_key on:keyup=on_key/>
                        <button type="button" class="button button-small button-secondary reveal" aria-controls="password"
                            aria-pressed=move || show_password.get().to_string() on:click=move |_| show_password.update(|v| *v = !*v)>
                            {move || if show_password.get() { "Hide" } else { "Show" }}
                            <span class="visually-hidden">" password"</span>
                        </button>
                    </div>
                    {password_hint.map(|h| view! { <p id="password-hint" class="field-hint">{h}</p> })}
                    <p id="caps-hint" class="field-hint" role="status">{move || caps_lock.get().then_some("Caps Lock is on.")}</p>
                    <p id="password-error" class="field-error">{pass_error}</p>
                </div>
                {(mode == Mode::Signup).then(|| view! {
                    <div class="field" class:invalid=move || email_error().is_some()>
                        <label for="email">"Email"</label>
                        <input id="email" name="email" type="email" autocomplete="email" autocapitalize="none"
                            spellcheck="false" aria-describedby="email-hint email-error"
                            aria-invalid=move || email_error().is_some().to_string()
                            node_ref=email_input bind:value=email/>
                        <p id="email-hint" class="field-hint">"Optional. Only to reset a forgotten password and to tell you \
                            about sign-ins: without one, a forgotten password cannot be reset."</p>
                        <p id="email-error" class="field-error">{email_error}</p>
                    </div>
                })}
                <p id="form-error" class="form-error" role="alert" tabindex="-1" data-testid="form-error" node_ref=form_error_ref>
                    {move || form_error().map(|e| e.to_string())}
                </p>
                <button type="submit" class="button button-wide" disabled=move || action.pending().get() || waiting()
                    aria-busy=move || action.pending().get().to_string()>
                    <Show when=move || action.pending().get()>
                        <span class="spinner" aria-hidden="true"></span>
                    </Show>
                    {submit_label}
                    <Show when=waiting>
                        <span class="countdown" data-testid="countdown">{move || format!(" (wait {} s)", wait.remaining.get())}</span>
                    </Show>
                </button>
            </form>
            {(mode == Mode::Login).then(|| view! { <p class="switch"><a href="/forgot">"Forgot your password?"</a></p> })}
            <p class="switch">{other_text}" "<a href=other_href>{other_label}</a></p>
        </section>
    }
}

/// Mounts the second step into `host`: its code is split from the page's WASM and comes only
/// when a password earned a challenge (it weighs about a third of the login page's code, and
/// most logins never need it). Mounted once; it hides itself while there is no challenge.
#[cfg(feature = "hydrate")]
#[lazy]
fn second_step(challenge: RwSignal<Option<Sensitive>>, host: web_sys::HtmlDivElement) {
    use wasm_bindgen::JsCast;
    let host: web_sys::HtmlElement = host.unchecked_into();
    leptos::mount::mount_to(host, move || view! { <SecondStep challenge/> }).forget();
}

/// The login's second step, for an account with one-time codes: a code from the authenticator
/// app, or a recovery code. A challenge that expired or ran out of tries sends the person back to
/// the password. Only in the browser: the server never renders it.
#[cfg(feature = "hydrate")]
#[component]
fn SecondStep(challenge: RwSignal<Option<Sensitive>>) -> impl IntoView {
    let code = RwSignal::new(String::new());
    let code_input = NodeRef::<leptos::html::Input>::new();
    let error_ref = NodeRef::<leptos::html::P>::new();
    let verify = Action::new(move |code: &String| {
        let (code, pending) = (code.clone(), challenge.get_untracked());
        async move {
            let Some(pending) = pending else { return Err(AppError::InvalidMfaChallenge) };
            let tokens = crate::server_fns::login_mfa(pending, code.into()).await?;
            session::logged_in(tokens);
            Ok(())
        }
    });
    let error = move || verify.value().get().and_then(Result::err);
    let wait = Countdown::new();
    Effect::new(move |_| match verify.value().get() {
        Some(Err(AppError::TooManyRequests { retry_after })) => wait.start(retry_after),
        Some(Err(_)) => {
            code.set(String::new());
            focus(code_input);
        }
        _ => {}
    });
    let expired = move || matches!(error(), Some(AppError::InvalidMfaChallenge));
    // A new challenge (after "Log in again") starts clean.
    Effect::new(move |_| {
        if challenge.with(Option::is_some) {
            verify.value().set(None);
            code.set(String::new());
            focus(code_input);
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(el) = code_input.get_untracked() {
            code.set(el.value());
        }
        let typed = code.get_untracked();
        let expired = matches!(verify.value().get_untracked(), Some(Err(AppError::InvalidMfaChallenge)));
        if !typed.trim().is_empty()
            && !verify.pending().get_untracked()
            && wait.remaining.get_untracked() == 0
            && !expired
        {
            // The last answer's error goes while this code is checked: it is not this one's.
            verify.value().set(None);
            verify.dispatch(typed);
        }
    };
    view! {
        <form method="post" on:submit=on_submit novalidate=true hidden=move || challenge.with(Option::is_none)>
            <p class="notice" role="status">"Your password was right. This account also asks for a one-time code."</p>
            <div class="field" class:invalid=move || error().is_some()>
                <label for="code">"Code"</label>
                // Text, not numeric: a recovery code has letters.
                <input id="code" name="code" type="text" autocomplete="one-time-code" autocapitalize="none"
                    spellcheck="false" required=true aria-invalid=move || error().is_some().to_string()
                    disabled=move || verify.pending().get()
                    aria-describedby="code-hint code-error" node_ref=code_input bind:value=code/>
                <p id="code-hint" class="field-hint">"The 6-digit code your authenticator app shows, or one of your recovery codes."</p>
                <p id="code-error" class="field-error" role="alert" tabindex="-1" data-testid="code-error" node_ref=error_ref>
                    {move || error().map(|e| e.to_string())}
                </p>
            </div>
            <Show when=expired fallback=move || view! {
                <button type="submit" class="button button-wide" disabled=move || verify.pending().get() || wait.remaining.get() != 0
                    aria-busy=move || verify.pending().get().to_string()>
                    <Show when=move || verify.pending().get()>
                        <span class="spinner" aria-hidden="true"></span>
                    </Show>
                    "Verify"
                    <Show when=move || wait.remaining.get() != 0>
                        <span class="countdown">{move || format!(" (wait {} s)", wait.remaining.get())}</span>
                    </Show>
                </button>
            }>
                <button type="button" class="button button-wide" on:click=move |_| challenge.set(None)>"Log in again"</button>
            </Show>
        </form>
    }
}

/// Set by the page's first script on a form submitted before hydration (see `ui::shell`).
pub(super) const PENDING_SUBMIT: &str = "data-submit-pending";

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

/// Moves focus to `target` (once it is in the page).
#[cfg(feature = "hydrate")]
fn focus<E>(target: NodeRef<E>)
where
    E: leptos::html::ElementType,
    E::Output: wasm_bindgen::JsCast + Clone + 'static,
{
    use wasm_bindgen::JsCast;
    if let Some(el) = target.get_untracked() {
        if let Some(el) = el.dyn_ref::<web_sys::HtmlElement>() {
            let _ = el.focus();
        }
    }
}

#[cfg(not(feature = "hydrate"))]
fn focus<E: leptos::html::ElementType>(_: NodeRef<E>) {}

/// Seconds left to wait, ticking down to 0.
#[derive(Clone, Copy)]
struct Countdown {
    remaining: RwSignal<u64>,
    #[cfg(feature = "hydrate")]
    ticking: StoredValue<Option<IntervalHandle>, LocalStorage>,
}

impl Countdown {
    fn new() -> Self {
        let countdown = Self {
            remaining: RwSignal::new(0),
            #[cfg(feature = "hydrate")]
            ticking: StoredValue::new_local(None),
        };
        #[cfg(feature = "hydrate")]
        on_cleanup(move || countdown.stop());
        countdown
    }

    fn start(self, seconds: u64) {
        self.remaining.set(seconds);
        #[cfg(feature = "hydrate")]
        {
            self.stop();
            let tick = move || {
                let left = self.remaining.get_untracked().saturating_sub(1);
                self.remaining.set(left);
                if left == 0 {
                    self.stop();
                }
            };
            let handle = set_interval_with_handle(tick, std::time::Duration::from_secs(1)).ok();
            self.ticking.set_value(handle);
        }
    }

    #[cfg(feature = "hydrate")]
    fn stop(self) {
        if let Some(handle) = self.ticking.try_update_value(Option::take).flatten() {
            handle.clear();
        }
    }
}
