//! A DPoP (RFC 9449) client for the tests: a key that makes proofs, and the calls that send them.
//! Shared, so that every file with a bound session sets it up the same way.

use crate::common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::Digest as _;

/// A client's P-256 key pair, and the proofs it makes.
pub struct DpopKey {
    encoding: EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
    pub jkt: String,
}

impl DpopKey {
    pub fn generate() -> Self {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let point = secret.public_key().to_encoded_point(false);
        let (x, y) = (URL_SAFE_NO_PAD.encode(point.x().unwrap()), URL_SAFE_NO_PAD.encode(point.y().unwrap()));
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})).unwrap();
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let jkt = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()));
        Self { encoding: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()), jwk, jkt }
    }

    /// A fresh proof for `method` `url`, with `ath` for `access_token`.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        self.proof_with(method, url, access_token, |_, _| {})
    }

    /// A proof edited before signing.
    pub fn proof_with(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        edit: impl FnOnce(&mut Header, &mut Value),
    ) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url,
            "iat": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        });
        if let Some(token) = access_token {
            claims["ath"] = json!(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token.as_bytes())));
        }
        edit(&mut header, &mut claims);
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

impl TestApp {
    /// Signs `username` up, then logs in with a proof of a fresh key: the usual start of a test of a
    /// bound session. The signup's own bearer session stays alive beside it.
    pub async fn bound_session(&self, username: &str) -> (DpopKey, TokenResponse) {
        self.signup(username).await;
        let key = DpopKey::generate();
        let tokens = self.login_bound(username, &key).await;
        (key, tokens)
    }

    /// Logs `username` in with a proof of `key`: a DPoP-bound session.
    pub async fn login_bound(&self, username: &str, key: &DpopKey) -> TokenResponse {
        let url = self.url("/api/auth/login");
        let credentials = json!({"username": username, "password": PASSWORD});
        let proof = key.proof("POST", &url, None);
        let res = self.http.post(&url).header("DPoP", proof).json(&credentials).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Refreshes with the refresh token of `tokens`, with `proof` if given; any answer.
    pub async fn refresh_bound(&self, tokens: &TokenResponse, proof: Option<String>) -> reqwest::Response {
        let body = json!({"refreshToken": tokens.refresh_token});
        let mut req = self.http.post(self.url("/api/auth/refresh")).json(&body);
        if let Some(proof) = proof {
            req = req.header("DPoP", proof);
        }
        req.send().await.unwrap()
    }

    /// `GET /api/users/secret` as `Authorization: <scheme> <access token>`, with `proof` if given.
    pub async fn secret_with(&self, scheme: &str, access_token: &str, proof: Option<String>) -> reqwest::Response {
        let authorization = format!("{scheme} {access_token}");
        let mut req = self.http.get(self.url("/api/users/secret")).header("authorization", authorization);
        if let Some(proof) = proof {
            req = req.header("DPoP", proof);
        }
        req.send().await.unwrap()
    }
}
