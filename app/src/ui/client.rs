//! The server-function clients of the browser — the Leptos counterpart of HTTP interceptors.
//! - [`AuthClient`], for calls that need a logged-in user: attaches the access token (as
//!   `Authorization: Bearer`, or `DPoP` with a proof for a session bound to this browser's key),
//!   refreshes shortly before the token expires, and on a 401 that refuses the access token
//!   (`error="invalid_token"`) refreshes once and retries once.
//! - [`DpopClient`], for login, signup and refresh: attaches a DPoP proof of this browser's key
//!   (see `session::dpop`), which binds a new session to it; none where the browser has no key.

use server_fn::client::browser::BrowserClient;
use server_fn::client::Client;
use server_fn::error::FromServerFnError;
use server_fn::request::browser::BrowserRequest;
use server_fn::response::browser::BrowserResponse;
use std::future::Future;

/// A server-function client that runs `$send` on each request in the browser (the plain
/// browser client elsewhere) and is the plain browser client for everything else.
macro_rules! intercepting_client {
    ($(#[$doc:meta])* $name:ident, $send:ident) => {
        $(#[$doc])*
        pub struct $name;

        impl<E, IS, OS> Client<E, IS, OS> for $name
        where
            E: FromServerFnError,
            IS: FromServerFnError,
            OS: FromServerFnError,
        {
            type Request = BrowserRequest;
            type Response = BrowserResponse;

            fn send(req: BrowserRequest) -> impl Future<Output = Result<BrowserResponse, E>> + Send {
                #[cfg(feature = "hydrate")]
                return send_wrapper::SendWrapper::new($send::<E, IS, OS>(req));
                #[cfg(not(feature = "hydrate"))]
                <BrowserClient as Client<E, IS, OS>>::send(req)
            }

            fn open_websocket(
                path: &str,
            ) -> impl Future<
                Output = Result<
                    (
                        impl futures::Stream<Item = Result<server_fn::Bytes, server_fn::Bytes>> + Send + 'static,
                        impl futures::Sink<server_fn::Bytes> + Send + 'static,
                    ),
                    E,
                >,
            > + Send {
                <BrowserClient as Client<E, IS, OS>>::open_websocket(path)
            }

            fn spawn(future: impl Future<Output = ()> + Send + 'static) {
                <BrowserClient as Client<E, IS, OS>>::spawn(future)
            }
        }
    };
}

intercepting_client!(
    /// For calls that need a logged-in user.
    AuthClient,
    send_with_refresh
);
intercepting_client!(
    /// For login, signup and refresh: with a proof of this browser's DPoP key.
    DpopClient,
    send_with_proof
);

#[cfg(feature = "hydrate")]
async fn send_with_refresh<E, IS, OS>(mut req: BrowserRequest) -> Result<BrowserResponse, E>
where
    E: FromServerFnError,
    IS: FromServerFnError,
    OS: FromServerFnError,
{
    use server_fn::request::browser::Request;
    use server_fn::request::ClientReq;
    use server_fn::response::ClientRes;

    // A renewal that failed is this call's failure: sent without a token it would only come
    // back as "access token missing", hiding what happened (offline, busy, session ended).
    let token = crate::ui::session::fresh_access_token().await.map_err(into_client_error)?;
    // Keep an unsent copy of the request: a fetch body can only be read once.
    let original: web_sys::Request = std::mem::replace(&mut *req, placeholder()).into();
    let spare = web_sys::Request::clone(&original).ok();
    if let Some(token) = &token {
        authorize(&original, token).await;
    }
    *req = Request::from(original);
    let res = <BrowserClient as Client<E, IS, OS>>::send(req).await?;
    let (Some(spare), Some(rejected)) = (spare, token) else { return Ok(res) };
    // Only a refused access token is worth a refresh: the server says so in its challenge. A
    // wrong password (also a 401) is answered once, and spends no refresh token.
    if ClientRes::<E>::status(&res) != 401 || !refused_access_token(&res) {
        return Ok(res);
    }
    let Some(fresh) = crate::ui::session::refresh_after_rejection(&rejected.token).await.map_err(into_client_error)?
    else {
        return Ok(res);
    };
    authorize(&spare, &fresh).await;
    let mut retry = <BrowserRequest as ClientReq<E>>::try_new_req_query("/", "", "", "", http::Method::GET)?;
    *retry = Request::from(spare);
    <BrowserClient as Client<E, IS, OS>>::send(retry).await
}

/// The 401's challenge names the access token (`error="invalid_token"`, see `AppError`'s response).
#[cfg(feature = "hydrate")]
fn refused_access_token(res: &BrowserResponse) -> bool {
    // An answer with no readable challenge is not Baton's: it says nothing about the token.
    res.generate_headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|challenge| challenge.contains(r#"error="invalid_token""#))
}

/// Carries an [`AppError`] through the client's generic error type: the server-function error
/// decoder reads it back whole (see `AppError::from_server_fn_error`).
#[cfg(feature = "hydrate")]
fn into_client_error<E: FromServerFnError>(err: crate::error::AppError) -> E {
    let json = serde_json::to_string(&err).unwrap_or_default();
    E::from_server_fn_error(server_fn::error::ServerFnErrorErr::ServerError(json))
}

/// `Authorization: Bearer <token>`, or for a key-bound session `DPoP <token>` with a proof.
#[cfg(feature = "hydrate")]
async fn authorize(req: &web_sys::Request, token: &crate::ui::session::AccessToken) {
    if !token.dpop {
        let _ = req.headers().set("Authorization", &format!("Bearer {}", token.token));
        return;
    }
    let _ = req.headers().set("Authorization", &format!("DPoP {}", token.token));
    if let Some(proof) = crate::ui::session::dpop::proof(&req.method(), &req.url(), Some(&token.token)).await {
        let _ = req.headers().set("DPoP", &proof);
    }
}

#[cfg(feature = "hydrate")]
async fn send_with_proof<E, IS, OS>(mut req: BrowserRequest) -> Result<BrowserResponse, E>
where
    E: FromServerFnError,
    IS: FromServerFnError,
    OS: FromServerFnError,
{
    use server_fn::request::browser::Request;
    let original: web_sys::Request = std::mem::replace(&mut *req, placeholder()).into();
    if let Some(proof) = crate::ui::session::dpop::proof(&original.method(), &original.url(), None).await {
        let _ = original.headers().set("DPoP", &proof);
    }
    *req = Request::from(original);
    <BrowserClient as Client<E, IS, OS>>::send(req).await
}

/// Fills the request's place while the real one is out being copied; never sent.
#[cfg(feature = "hydrate")]
fn placeholder() -> server_fn::request::browser::Request {
    server_fn::request::browser::Request::get("/").build().expect("a GET without a body always builds")
}
