//! The account card's one-time codes: turn them on (the password again, the app's QR code and
//! key, a first code, then ten recovery codes shown once), make new recovery codes, turn them off.

use crate::api::{Account, RecoveryCodes, TotpSetup};
use crate::error::AppError;
use crate::server_fns;
use leptos::prelude::*;

/// Where the setup is.
#[derive(Clone)]
enum Step {
    Idle,
    /// The password is asked for `Ask`.
    Password(Ask),
    /// The app is being given its secret; a first code confirms it.
    Scan(TotpSetup),
    /// Shown once, until "Done".
    Codes(Vec<String>),
}

/// What the password is asked again for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    TurnOn,
    NewCodes,
    TurnOff,
}

/// Type-erased, as the card's other parts.
#[component]
pub fn OneTimeCodes() -> AnyView {
    let account = RwSignal::new(None::<Result<Account, AppError>>);
    let load = move || leptos::task::spawn_local(async move { account.set(Some(server_fns::account().await)) });
    Effect::new(move |_| load());
    let step = RwSignal::new(Step::Idle);
    let (password, code) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let with_password = Action::new(move |(ask, password): &(Ask, String)| {
        let (ask, password) = (*ask, password.clone());
        async move {
            let next = match ask {
                Ask::TurnOn => Step::Scan(server_fns::begin_one_time_codes(password.into()).await?),
                Ask::NewCodes => {
                    let RecoveryCodes { recovery_codes } = server_fns::renew_recovery_codes(password.into()).await?;
                    Step::Codes(recovery_codes)
                }
                Ask::TurnOff => {
                    server_fns::turn_off_one_time_codes(password.into()).await?;
                    Step::Idle
                }
            };
            Ok::<_, AppError>(next)
        }
    });
    let verify = Action::new(move |code: &String| {
        let code = code.clone();
        async move {
            let RecoveryCodes { recovery_codes } = server_fns::confirm_one_time_codes(code.into()).await?;
            Ok::<_, AppError>(Step::Codes(recovery_codes))
        }
    });
    for action in [with_password.value(), verify.value()] {
        Effect::new(move |_| {
            if let Some(Ok(next)) = action.get() {
                password.set(String::new());
                code.set(String::new());
                step.set(next);
                load();
            }
        });
    }
    let password_error = move || with_password.value().get().and_then(Result::err).map(|e| describe(&e));
    let code_error = move || verify.value().get().and_then(Result::err).map(|e| e.to_string());
    let on = move || matches!(account.get(), Some(Ok(Account { one_time_codes: true, .. })));
    let ask = move |what: Ask| {
        with_password.value().set(None);
        step.set(Step::Password(what));
    };
    let state = move || {
        match account.get() {
        None => view! { <p class="muted">"Loading…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
        Some(Ok(Account { one_time_codes: true, recovery_codes_left, .. })) => view! {
            <p data-testid="codes-state">"On: logging in asks for a code from your authenticator app after the password. "
                {format!("{recovery_codes_left} recovery code{} left.", if recovery_codes_left == 1 { "" } else { "s" })}</p>
        }
        .into_any(),
        Some(Ok(_)) => view! {
            <p data-testid="codes-state">"Off: logging in asks for your password only. With one-time codes on, a stolen \
                password alone does not get anyone in."</p>
        }
        .into_any(),
    }
    };
    let current = move || {
        match step.get() {
        Step::Idle => view! {
            <div class="actions">
                <Show when=on fallback=move || view! {
                    <button class="button button-small" type="button" on:click=move |_| ask(Ask::TurnOn)>"Turn on one-time codes"</button>
                }>
                    <button class="button button-small button-secondary" type="button" on:click=move |_| ask(Ask::NewCodes)>"Make new codes"</button>
                    <button class="button button-small button-secondary" type="button" on:click=move |_| ask(Ask::TurnOff)>"Turn off one-time codes"</button>
                </Show>
            </div>
        }
        .into_any(),
        Step::Password(what) => view! {
            <form class="stack" novalidate=true
                on:submit=move |ev| {
                    ev.prevent_default();
                    if !with_password.pending().get_untracked() {
                        with_password.dispatch((what, password.get_untracked()));
                    }
                }>
                <p class="muted">{match what {
                    Ask::TurnOn => "First, your password again.",
                    Ask::NewCodes => "Your password again: the recovery codes you have now will stop working.",
                    Ask::TurnOff => "Your password again: logging in will ask for the password only.",
                }}</p>
                <div class="field">
                    <label for="codes-password">"Current password"</label>
                    <input id="codes-password" type="password" autocomplete="current-password" required=true
                        bind:value=password/>
                </div>
                <p class="form-error" role="alert" data-testid="codes-error">{password_error}</p>
                <div class="actions">
                    <button class="button" type="submit" disabled=move || with_password.pending().get()
                        aria-busy=move || with_password.pending().get().to_string()>"Continue"</button>
                    <button class="button button-secondary" type="button" on:click=move |_| step.set(Step::Idle)>"Cancel"</button>
                </div>
            </form>
        }
        .into_any(),
        Step::Scan(setup) => view! {
            <form class="stack" novalidate=true
                on:submit=move |ev| {
                    ev.prevent_default();
                    if !verify.pending().get_untracked() {
                        verify.dispatch(code.get_untracked());
                    }
                }>
                <p>"Scan this with your authenticator app (any app for one-time codes), then enter the code it shows."</p>
                // Drawn by the server as SVG: no image service ever sees the secret.
                <div class="qr" role="img" aria-label="QR code of the key for your authenticator app" inner_html=setup.qr_svg></div>
                <p>"Cannot scan it? Enter this key instead: "<code data-testid="totp-secret">{setup.secret}</code></p>
                <div class="field" class:invalid=move || code_error().is_some()>
                    <label for="setup-code">"Code"</label>
                    <input id="setup-code" type="text" inputmode="numeric" autocomplete="one-time-code" required=true
                        aria-describedby="setup-code-error" aria-invalid=move || code_error().is_some().to_string()
                        bind:value=code/>
                    <p id="setup-code-error" class="field-error" role="alert">{code_error}</p>
                </div>
                <div class="actions">
                    <button class="button" type="submit" disabled=move || verify.pending().get()
                        aria-busy=move || verify.pending().get().to_string()>"Verify"</button>
                    <button class="button button-secondary" type="button" on:click=move |_| step.set(Step::Idle)>"Cancel"</button>
                </div>
            </form>
        }
        .into_any(),
        Step::Codes(codes) => view! {
            <div class="stack" data-testid="recovery-codes">
                <p role="status">"Your recovery codes. Save them somewhere safe now: each works once, in place of a \
                    code, if you lose your authenticator. They will not be shown again."</p>
                <ul class="codes">{codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}</ul>
                <button class="button button-small" type="button" on:click=move |_| step.set(Step::Idle)>"Done"</button>
            </div>
        }
        .into_any(),
    }
    };
    view! {
        <div class="stack" data-testid="one-time-codes">
            <h3>"One-time codes"</h3>
            {state}
            {current}
        </div>
    }
    .into_any()
}

/// The login's "Wrong username or password." reads oddly here: only the password was asked.
pub(super) fn describe(error: &AppError) -> String {
    match error {
        AppError::InvalidCredentials => "That is not your current password.".into(),
        other => other.to_string(),
    }
}
