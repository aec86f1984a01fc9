//! The inside page's account card: the email address (its state, "Send again", a new one), one-time
//! codes (`one_time_codes`), change the password, delete the account. A new address, a new password and deleting ask for the
//! current password again; the server throttles wrong ones like logins.

use super::one_time_codes::describe;
use super::session;
use crate::api::Account;
use crate::domain::Email;
use crate::error::AppError;
use crate::server_fns;
use leptos::prelude::*;

/// Type-erased: nested in the inside page's view, its full type would exceed the compiler's
/// recursion limit in the server crate.
#[component]
pub fn AccountCard() -> AnyView {
    view! {
        <article class="card">
            <h2>"Your account"</h2>
            <EmailAddress/>
            <super::one_time_codes::OneTimeCodes/>
            <ChangePassword/>
            <DeleteAccount/>
        </article>
    }
    .into_any()
}

/// Type-erased, as the card: each part's full view type nested in the card's is too deep.
#[component]
fn EmailAddress() -> AnyView {
    let account = RwSignal::new(None::<Result<Account, AppError>>);
    let load = move || leptos::task::spawn_local(async move { account.set(Some(server_fns::account().await)) });
    Effect::new(move |_| load());
    let resend = Action::new(|_: &()| server_fns::resend_verification());
    let (editing, password, email) = (RwSignal::new(false), RwSignal::new(String::new()), RwSignal::new(String::new()));
    let change = Action::new(move |(password, email): &(String, String)| {
        server_fns::change_email(password.clone().into(), email.trim().to_owned())
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = change.value().get() {
            password.set(String::new());
            editing.set(false);
            load();
        }
    });
    let email_error =
        move || change.value().get().and_then(Result::err).and_then(|e| e.field_message("email").map(str::to_owned));
    let change_error = move || {
        change.value().get().and_then(Result::err).filter(|e| e.field_message("email").is_none()).map(|e| describe(&e))
    };
    let state = move || {
        match account.get() {
        None => view! { <p class="muted">"Loading…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
        Some(Ok(Account { email: None, .. })) => view! {
            <p data-testid="email-state">"No email address. Without one, your password cannot be reset if you forget it."</p>
        }
        .into_any(),
        Some(Ok(Account { email: Some(address), email_verified: true, pending_email: Some(pending), .. })) => view! {
            <p data-testid="email-state">{address}" "<span class="badge">"Verified"</span></p>
            <p class="muted" data-testid="email-pending">"Changing to "{pending}": open the link we mailed there. \
                Until then, your address stays as it is."</p>
            <button class="button button-small button-secondary" type="button" disabled=move || resend.pending().get()
                on:click=move |_| { resend.dispatch(()); }>"Send again"</button>
            <p class="result" role="status">{move || matches!(resend.value().get(), Some(Ok(()))).then_some("Asked. Check that inbox.")}</p>
        }
        .into_any(),
        Some(Ok(Account { email: Some(address), email_verified: true, .. })) => view! {
            <p data-testid="email-state">{address}" "<span class="badge">"Verified"</span></p>
        }
        .into_any(),
        Some(Ok(Account { email: Some(address), .. })) => view! {
            <p data-testid="email-state">{address}" "<span class="badge badge-warning">"Not verified"</span></p>
            <p class="muted">"Open the link we mailed to confirm it: until then, it cannot be used to reset your password."</p>
            <button class="button button-small button-secondary" type="button" disabled=move || resend.pending().get()
                on:click=move |_| { resend.dispatch(()); }>"Send again"</button>
            <p class="result" role="status">{move || matches!(resend.value().get(), Some(Ok(()))).then_some("Asked. Check your inbox.")}</p>
        }
        .into_any(),
    }
    };
    view! {
        <div class="stack" data-testid="email-address">
            <h3>"Email address"</h3>
            {state}
            <button class="button button-small button-secondary" type="button" aria-expanded=move || editing.get().to_string()
                aria-controls="change-email" on:click=move |_| editing.update(|e| *e = !*e)>"Change email"</button>
            // Only in the page while open: its "Current password" is not the password change's.
            <Show when=move || editing.get()>
            <form id="change-email" class="stack" novalidate=true
                on:submit=move |ev| {
                    ev.prevent_default();
                    if Email::parse(&email.get_untracked()).is_ok() && !change.pending().get_untracked() {
                        change.dispatch((password.get_untracked(), email.get_untracked()));
                    }
                }>
                <div class="field" class:invalid=move || email_error().is_some()>
                    <label for="new-email">"New email"</label>
                    <input id="new-email" type="email" autocomplete="email" required=true
                        aria-describedby="new-email-error" aria-invalid=move || email_error().is_some().to_string()
                        bind:value=email/>
                    <p id="new-email-error" class="field-error">
                        {move || email_error().or_else(|| {
                            let typed = email.get();
                            (!typed.is_empty()).then(|| Email::parse(&typed).err()).flatten().map(|e| e.to_string())
                        })}
                    </p>
                </div>
                <div class="field">
                    <label for="email-password">"Current password"</label>
                    <input id="email-password" type="password" autocomplete="current-password" required=true
                        bind:value=password/>
                </div>
                <p class="form-error" role="alert">{change_error}</p>
                <button class="button" type="submit" disabled=move || change.pending().get()
                    aria-busy=move || change.pending().get().to_string()>
                    <Show when=move || change.pending().get()><span class="spinner" aria-hidden="true"></span></Show>
                    "Save email"
                </button>
            </form>
            </Show>
            <p class="result" role="status" data-testid="email-changed">
                {move || matches!(change.value().get(), Some(Ok(()))).then_some("We mailed a link to the new address: open it to confirm the address.")}
            </p>
        </div>
    }
    .into_any()
}

#[component]
fn ChangePassword() -> impl IntoView {
    let (current, new) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let change = Action::new(move |(current, new): &(String, String)| {
        server_fns::change_password(current.clone().into(), new.clone().into())
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = change.value().get() {
            current.set(String::new());
            new.set(String::new());
        }
    });
    let error = move || change.value().get().and_then(Result::err);
    let new_error = move || error().and_then(|e| e.field_message("newPassword").map(str::to_owned));
    let form_error = move || error().filter(|e| e.field_message("newPassword").is_none()).map(|e| describe(&e));
    view! {
        <form class="stack" data-testid="change-password"
            on:submit=move |ev| {
                ev.prevent_default();
                if !change.pending().get_untracked() {
                    change.dispatch((current.get_untracked(), new.get_untracked()));
                }
            }>
            <h3>"Change password"</h3>
            <div class="field">
                <label for="current-password">"Current password"</label>
                <input id="current-password" type="password" autocomplete="current-password" required=true
                    bind:value=current/>
            </div>
            <div class="field" class:invalid=move || new_error().is_some()>
                <label for="new-password">"New password"</label>
                <input id="new-password" type="password" autocomplete="new-password" required=true
                    aria-describedby="new-password-error" aria-invalid=move || new_error().is_some().to_string()
                    bind:value=new/>
                <p id="new-password-error" class="field-error">{new_error}</p>
            </div>
            <p class="form-error" role="alert">{form_error}</p>
            <p class="result" role="status" data-testid="password-changed">
                {move || matches!(change.value().get(), Some(Ok(()))).then_some("Password changed. Your other sessions were logged out.")}
            </p>
            <button class="button" type="submit" disabled=move || change.pending().get()
                aria-busy=move || change.pending().get().to_string()>
                <Show when=move || change.pending().get()><span class="spinner" aria-hidden="true"></span></Show>
                "Change password"
            </button>
        </form>
    }
}

#[component]
fn DeleteAccount() -> impl IntoView {
    let confirming = RwSignal::new(false);
    let password = RwSignal::new(String::new());
    let delete = Action::new_local(move |password: &String| {
        let password = password.clone();
        async move {
            server_fns::delete_account(password.into()).await?;
            // The sessions are gone on the server; forget the tokens here and in other tabs.
            session::forget();
            super::go("/signup");
            Ok::<(), AppError>(())
        }
    });
    let error = move || delete.value().get().and_then(Result::err).map(|e| describe(&e));
    view! {
        <div class="stack">
            <h3>"Delete account"</h3>
            <button class="button button-danger" type="button" data-testid="delete-account"
                aria-expanded=move || confirming.get().to_string() aria-controls="confirm-delete"
                on:click=move |_| confirming.update(|c| *c = !*c)>"Delete account"</button>
            <form id="confirm-delete" class="confirm stack" hidden=move || !confirming.get()
                on:submit=move |ev| {
                    ev.prevent_default();
                    if !delete.pending().get_untracked() {
                        delete.dispatch(password.get_untracked());
                    }
                }>
                <p>"This deletes your account, logs out every device and frees your username. It cannot be undone."</p>
                <div class="field">
                    <label for="delete-password">"Password"</label>
                    <input id="delete-password" type="password" autocomplete="current-password" required=true
                        bind:value=password/>
                </div>
                <p class="form-error" role="alert" data-testid="delete-error">{error}</p>
                <div class="actions">
                    <button class="button button-danger" type="submit" disabled=move || delete.pending().get()
                        aria-busy=move || delete.pending().get().to_string()>
                        <Show when=move || delete.pending().get()><span class="spinner" aria-hidden="true"></span></Show>
                        "Delete my account"
                    </button>
                    <button class="button button-secondary" type="button" on:click=move |_| confirming.set(false)>"Cancel"</button>
                </div>
            </form>
        </div>
    }
}
