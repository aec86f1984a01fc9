//! The server functions the pages call: thin adapters over the auth core, as the REST API is.
//! Calls that need a logged-in user go through [`AuthClient`](crate::ui::client::AuthClient),
//! which attaches the access token and refreshes it when needed.

#[cfg(feature = "ssr")]
use crate::api::{
    AccountDeletion, Credentials, EmailChange, EmailVerification, PasswordChange, PasswordResetConfirm,
    PasswordResetRequest,
};
// Not `Signup` and `Account` by name: `#[server]` names each function's arguments after it.
use crate::api::{self, RefreshState, Secret, Sensitive, SessionInfo, TokenResponse, User};
use crate::error::AppError;
use crate::ui::client::{AuthClient, DpopClient};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
mod ssr {
    use crate::auth::{AuthService, ClientInfo, Principal};
    use crate::error::AppError;
    use axum::extract::{ConnectInfo, OriginalUri};
    use http::{header, HeaderMap, Method};
    use std::net::SocketAddr;

    pub fn auth() -> Result<AuthService, AppError> {
        leptos::prelude::use_context::<AuthService>()
            .ok_or_else(|| AppError::internal("AuthService missing from context"))
    }

    pub async fn headers() -> Result<HeaderMap, AppError> {
        leptos_axum::extract::<HeaderMap>().await.map_err(AppError::internal)
    }

    pub async fn client() -> Result<ClientInfo, AppError> {
        let peer = leptos_axum::extract::<ConnectInfo<SocketAddr>>().await.ok().map(|c| c.0);
        let (method, uri) = leptos_axum::extract::<(Method, OriginalUri)>().await.map_err(AppError::internal)?;
        Ok(ClientInfo::from_request(&method, &uri.0, &headers().await?, peer, &auth()?.settings().trusted_proxies))
    }

    pub async fn principal() -> Result<(AuthService, Principal), AppError> {
        let auth = auth()?;
        let headers = headers().await?;
        let client = client().await?;
        let principal =
            auth.authenticate(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()), &client).await?;
        Ok((auth, principal))
    }
}

#[server(prefix = "/api/fn", endpoint = "signup", client = DpopClient)]
pub async fn signup(username: String, password: Sensitive, email: Option<String>) -> Result<TokenResponse, AppError> {
    ssr::auth()?.signup(&api::Signup { username, password: password.0, email }, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "login", client = DpopClient)]
pub async fn login(username: String, password: Sensitive) -> Result<api::LoginStep, AppError> {
    let answer = ssr::auth()?.login(&Credentials { username, password: password.0 }, &ssr::client().await?).await?;
    Ok(answer.into())
}

/// The login's second step: the challenge a right password earned, and a one-time code. Through
/// the same DPoP key as the login (the challenge is bound to it).
#[server(prefix = "/api/fn", endpoint = "login_mfa", client = DpopClient)]
pub async fn login_mfa(challenge: Sensitive, code: Sensitive) -> Result<TokenResponse, AppError> {
    ssr::auth()?.login_mfa(&api::MfaLogin { challenge: challenge.0, code: code.0 }, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "refresh", client = DpopClient)]
pub async fn refresh(refresh_token: Sensitive) -> Result<TokenResponse, AppError> {
    ssr::auth()?.refresh(&refresh_token.0, &ssr::client().await?).await
}

/// What became of a refresh token whose renewal got no answer, without spending it.
#[server(prefix = "/api/fn", endpoint = "refresh_state", client = DpopClient)]
pub async fn refresh_token_state(refresh_token: Sensitive) -> Result<RefreshState, AppError> {
    ssr::auth()?.refresh_state(&refresh_token.0, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "logout", client = DpopClient)]
pub async fn logout(refresh_token: Sensitive) -> Result<(), AppError> {
    ssr::auth()?.logout(&refresh_token.0, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "logout_all", client = AuthClient)]
pub async fn logout_all() -> Result<(), AppError> {
    let (auth, who) = ssr::principal().await?;
    auth.logout_all(&who, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "me", client = AuthClient)]
pub async fn me() -> Result<User, AppError> {
    let (auth, who) = ssr::principal().await?;
    auth.me(&who).await
}

#[server(prefix = "/api/fn", endpoint = "get_secret", client = AuthClient)]
pub async fn get_secret() -> Result<Secret, AppError> {
    let (auth, who) = ssr::principal().await?;
    Ok(crate::auth::secret_for(&auth.me(&who).await?))
}

#[server(prefix = "/api/fn", endpoint = "sessions", client = AuthClient)]
pub async fn sessions() -> Result<Vec<SessionInfo>, AppError> {
    let (auth, who) = ssr::principal().await?;
    auth.sessions(&who, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "revoke_session", client = AuthClient)]
pub async fn revoke_session(id: String) -> Result<(), AppError> {
    let (auth, who) = ssr::principal().await?;
    auth.revoke_session(&who, &id, &ssr::client().await?).await
}

/// Stores this page's session for the next page of the tab (site storage blocked); the one-time
/// code that redeems it (see `auth::sessions::handoff`). The session proves itself by its refresh token
/// (and its key's proof, if bound), as a logout does: the page that leaves may hold an expired
/// access token, and the refreshing client is not part of the first page's code.
#[server(prefix = "/api/fn", endpoint = "hand_off", client = DpopClient)]
pub async fn hand_off(refresh_token: Sensitive, payload: Sensitive) -> Result<Sensitive, AppError> {
    ssr::auth()?.hand_off(&refresh_token.0, &payload.0, &ssr::client().await?).await.map(Sensitive)
}

#[server(prefix = "/api/fn", endpoint = "take_hand_off")]
pub async fn take_hand_off(code: Sensitive) -> Result<Sensitive, AppError> {
    ssr::auth()?.take_hand_off(&code.0, &ssr::client().await?).await.map(Sensitive)
}

#[server(prefix = "/api/fn", endpoint = "change_password", client = AuthClient)]
pub async fn change_password(current_password: Sensitive, new_password: Sensitive) -> Result<(), AppError> {
    let (auth, who) = ssr::principal().await?;
    let change = PasswordChange { current_password: current_password.0, new_password: new_password.0 };
    auth.change_password(&who, &change, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "delete_account", client = AuthClient)]
pub async fn delete_account(password: Sensitive) -> Result<(), AppError> {
    let (auth, who) = ssr::principal().await?;
    auth.delete_account(&who, &AccountDeletion { password: password.0 }, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "account", client = AuthClient)]
pub async fn account() -> Result<api::Account, AppError> {
    let (auth, who) = ssr::principal().await?;
    auth.account(&who).await
}

#[server(prefix = "/api/fn", endpoint = "begin_one_time_codes", client = AuthClient)]
pub async fn begin_one_time_codes(password: Sensitive) -> Result<api::TotpSetup, AppError> {
    let (auth, who) = ssr::principal().await?;
    let input = api::PasswordConfirmation { password: password.0 };
    auth.begin_one_time_codes(&who, &input, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "confirm_one_time_codes", client = AuthClient)]
pub async fn confirm_one_time_codes(code: Sensitive) -> Result<api::RecoveryCodes, AppError> {
    let (auth, who) = ssr::principal().await?;
    auth.confirm_one_time_codes(&who, &code.0, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "renew_recovery_codes", client = AuthClient)]
pub async fn renew_recovery_codes(password: Sensitive) -> Result<api::RecoveryCodes, AppError> {
    let (auth, who) = ssr::principal().await?;
    let input = api::PasswordConfirmation { password: password.0 };
    auth.renew_recovery_codes(&who, &input, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "turn_off_one_time_codes", client = AuthClient)]
pub async fn turn_off_one_time_codes(password: Sensitive) -> Result<(), AppError> {
    let (auth, who) = ssr::principal().await?;
    let input = api::PasswordConfirmation { password: password.0 };
    auth.turn_off_one_time_codes(&who, &input, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "change_email", client = AuthClient)]
pub async fn change_email(password: Sensitive, email: String) -> Result<(), AppError> {
    let (auth, who) = ssr::principal().await?;
    auth.change_email(&who, &EmailChange { password: password.0, email }, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "resend_verification", client = AuthClient)]
pub async fn resend_verification() -> Result<(), AppError> {
    let (auth, who) = ssr::principal().await?;
    auth.resend_verification(&who, &ssr::client().await?).await
}

/// No login needed: the link may be opened on another device.
#[server(prefix = "/api/fn", endpoint = "verify_email")]
pub async fn verify_email(token: Sensitive) -> Result<(), AppError> {
    ssr::auth()?.verify_email(&EmailVerification { token: token.0 }, &ssr::client().await?).await
}

#[server(prefix = "/api/fn", endpoint = "request_password_reset")]
pub async fn request_password_reset(login: String) -> Result<(), AppError> {
    ssr::auth()?.request_password_reset(&PasswordResetRequest { login }, &ssr::client().await?).await
}

/// The new password, and this device logged in (bound to its key where it can keep one).
#[server(prefix = "/api/fn", endpoint = "confirm_password_reset", client = DpopClient)]
pub async fn confirm_password_reset(
    token: Sensitive,
    new_password: Sensitive,
    code: Option<Sensitive>,
) -> Result<TokenResponse, AppError> {
    let confirm = PasswordResetConfirm { token: token.0, new_password: new_password.0, code: code.map(|c| c.0) };
    ssr::auth()?.confirm_password_reset(&confirm, &ssr::client().await?).await
}
