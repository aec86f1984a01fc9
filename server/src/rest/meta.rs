//! Health, published keys and the API description.

use crate::AppState;
use app::error::ErrorBody;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/api/openapi.json", get(openapi))
}

#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "The database answers"), (status = 503, description = "It does not")))]
pub async fn healthz(State(s): State<AppState>) -> (StatusCode, &'static str) {
    if s.auth.healthy().await {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "meta",
    responses((status = 200, description = "The Ed25519 public keys that verify access tokens (RFC 7517), \
        the next one included; cacheable for less than SIGNING_KEY_PUBLISH_DELAY")))]
pub async fn jwks(State(s): State<AppState>) -> impl axum::response::IntoResponse {
    // A copy cached this long still has every key that signs: a new key is published a publish
    // delay before it signs, and the instances learn of it within a poll interval.
    let keys = &s.auth.settings().keys;
    let max_age = keys.publish_delay.saturating_sub(keys.poll_interval).as_secs();
    ([(axum::http::header::CACHE_CONTROL, format!("public, max-age={max_age}"))], Json(s.auth.jwks()))
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", responses((status = 200, description = "This document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Baton", description = "JWT access tokens with rotating, single-use refresh tokens. \
        Every error is `{\"error\": code, \"message\": text}`.\n\n\
        DPoP (RFC 9449): send a `DPoP` header (a proof JWT: `typ` dpop+jwt, ES256, the public key in `jwk`; \
        claims `jti`, `htm`, `htu`, `iat`) with signup or login, and the session is bound to that key: \
        `tokenType` is `DPoP`, every refresh needs a proof by the key, and the access token, which carries \
        `cnf.jkt`, is sent as `Authorization: DPoP <token>` with a proof whose `ath` is its SHA-256. \
        A missing or invalid proof is 401 `invalid_dpop_proof` with `WWW-Authenticate: DPoP`. \
        See examples/dpop_client.py."),
    paths(
        super::auth::signup, super::auth::login, super::auth::login_mfa, super::auth::refresh, super::auth::refresh_with_bearer,
        super::auth::refresh_state,
        super::auth::logout, super::auth::logout_all, super::auth::sessions, super::auth::revoke_session,
        super::auth::request_password_reset, super::auth::confirm_password_reset,
        super::users::me, super::users::secret, super::account::change_password, super::account::delete_account,
        super::account::account, super::account::change_email, super::account::resend_verification,
        super::account::verify_email, super::account::begin_totp, super::account::confirm_totp,
        super::account::renew_recovery_codes, super::account::turn_off_totp,
        healthz, jwks, openapi,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerSchemes),
)]
pub struct ApiDoc;

struct BearerSchemes;

impl utoipa::Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, format, what) in [
            ("accessToken", "JWT", "An access token from signup, login or refresh"),
            ("refreshToken", "opaque", "A refresh token (GET /api/auth/refresh and logout only)"),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format(format)
                        .description(Some(what))
                        .build(),
                ),
            );
        }
    }
}
