//! Who is calling: what a request brings (its address, user agent, origin and DPoP proof, as
//! [`ClientInfo`]), its `Authorization` header, and [`AuthService::authenticate`], which turns a
//! protected call's access token into the [`Principal`] it acts for.

use super::limits::network::TrustedProxies;
use super::origin;
use super::store::db::now_ms;
use super::AuthService;
use crate::error::AppError;
use std::sync::Arc;

/// What a request brings for DPoP: its `DPoP` header and what a proof for it must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofRequest {
    pub proof: String,
    /// `GET`, `POST`, …
    pub method: String,
    /// `scheme://host[:port]/path` of this request, as the client addressed it.
    pub htu: String,
    /// The path alone, for the URLs under `PUBLIC_URL`.
    pub path: String,
}

/// Who made a request, for the session list and the security log (trimmed to bounded lengths),
/// and its DPoP proof with what the proof must name.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub dpop: Option<ProofRequest>,
    /// The request does not say it comes from a page of another origin (`Sec-Fetch-Site`, else
    /// `Origin`); a client that is no browser says nothing and counts as same-origin.
    pub same_origin: bool,
}

impl ClientInfo {
    pub fn new(user_agent: Option<&str>, ip: Option<String>) -> Self {
        Self { user_agent: user_agent.map(|ua| ua.chars().take(256).collect()), ip, dpop: None, same_origin: false }
    }

    /// From a request (its peer address is present when served with connect info); see
    /// [`TrustedProxies::client_address`]. The URL a DPoP proof must name is this
    /// request's path under `PUBLIC_URL`, or where that is unset, as the client addressed it: its
    /// `Host`, and the scheme a trusted proxy reports (see `tokens::dpop`).
    pub fn from_request(
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
        proxies: &TrustedProxies,
    ) -> Self {
        let user_agent = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok());
        let mut client = Self::new(user_agent, proxies.client_address(headers, peer).map(|ip| ip.to_string()));
        let from_proxy = peer.is_some_and(|p| proxies.contains(p.ip().to_canonical()));
        let forwarded = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).filter(|_| from_proxy);
        let scheme = match forwarded {
            Some("https") => "https",
            Some(_) | None => uri.scheme_str().unwrap_or("http"),
        };
        let host = headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).or(uri.host()).unwrap_or_default();
        let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or_default());
        client.same_origin = match (text("sec-fetch-site"), text("origin")) {
            (Some(site), _) => site == "same-origin",
            (None, Some(sent)) => {
                origin::origin(sent).is_some_and(|o| Some(o) == origin::origin(&format!("{scheme}://{host}")))
            }
            (None, None) => true,
        };
        let mut proofs = headers.get_all("dpop").iter();
        if let Some(first) = proofs.next() {
            // RFC 9449 §4.3: exactly one proof; two (or one that is not text) is none valid.
            let proof = if proofs.next().is_some() { "" } else { first.to_str().unwrap_or_default() };
            client.dpop = Some(ProofRequest {
                proof: proof.to_owned(),
                method: method.as_str().to_owned(),
                htu: format!("{scheme}://{host}{}", uri.path()),
                path: uri.path().to_owned(),
            });
        }
        client
    }
}

/// The caller of a protected endpoint, from a verified access token of a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub session_id: String,
    /// Read with the session's liveness (see `cache`).
    pub user: Arc<crate::api::User>,
}

impl AuthService {
    /// Verifies the access token and that its session still lives: `Authorization: Bearer …`
    /// for a bearer session; `Authorization: DPoP …` with a proof of the session's key for a
    /// DPoP-bound one (see `tokens::dpop`).
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn authenticate(&self, authorization: Option<&str>, client: &ClientInfo) -> Result<Principal, AppError> {
        let (scheme, token) = access_credential(authorization).ok_or(AppError::InvalidToken)?;
        let (now, leeway) = (now_ms() / 1000, self.settings().jwt_leeway.as_secs() as i64);
        let claims = match self.inner.verified.get(token, now, leeway) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.inner.signer.verify(token)?);
                self.inner.verified.insert(token, claims.clone(), now, leeway);
                claims
            }
        };
        self.check_access_binding(claims.cnf.as_ref(), scheme, token, client).await?;
        let user = self.live_user(&claims).await?;
        Ok(Principal { user_id: claims.sub.clone(), session_id: claims.sid.clone(), user })
    }
}

/// The credential of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    access_credential(header).and_then(|(scheme, token)| (scheme == Scheme::Bearer).then_some(token))
}

/// Whether `Authorization` presents a DPoP-bound access token (`DPoP <token>`): only then does a
/// protected call need the request's DPoP proof and URL.
pub fn presents_dpop(header: Option<&str>) -> bool {
    access_credential(header).is_some_and(|(scheme, _)| scheme == Scheme::Dpop)
}

/// How an access token is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Bearer,
    /// RFC 9449: with a `DPoP` proof header.
    Dpop,
}

/// `Authorization: Bearer <token>` or `DPoP <token>` (schemes are case-insensitive).
fn access_credential(header: Option<&str>) -> Option<(Scheme, &str)> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    let scheme = match scheme {
        s if s.eq_ignore_ascii_case("bearer") => Scheme::Bearer,
        s if s.eq_ignore_ascii_case("dpop") => Scheme::Dpop,
        _ => return None,
    };
    (!token.is_empty() && token.len() <= 4096).then_some((scheme, token))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bearer_header_parsing() {
        use super::bearer_token;
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer   abc ")), Some("abc"));
        for bad in [None, Some(""), Some("Bearer"), Some("Bearer "), Some("Basic abc"), Some("abc")] {
            assert_eq!(bearer_token(bad), None, "{bad:?}");
        }
    }
}
