//! DPoP (RFC 9449) over the REST API: a session started with a proof is bound to the client's
//! key; its tokens are worth nothing without it. Bearer sessions keep working.

use crate::common::*;
use crate::dpop_client::DpopKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

fn cnf_jkt(access_token: &str) -> Option<String> {
    let payload = access_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["cnf"]["jkt"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn a_session_started_with_a_proof_is_bound_to_its_key_from_login_to_every_refresh() {
    let app = spawn_app().await;
    let (key, tokens) = app.bound_session("alice").await;
    assert_eq!(tokens.token_type, "DPoP");
    let access = tokens.access_token.clone();
    assert_eq!(cnf_jkt(&access).as_deref(), Some(key.jkt.as_str()), "cnf.jkt is the key's thumbprint");
    let secret_url = app.url("/api/users/secret");
    let res = app.secret_with("DPoP", &access, Some(key.proof("GET", &secret_url, Some(&access)))).await;
    assert_eq!(res.status(), 200);

    let res = app.refresh_bound(&tokens, Some(key.proof("POST", &app.url("/api/auth/refresh"), None))).await;
    assert_eq!(res.status(), 200);
    let next: TokenResponse = res.json().await.unwrap();
    assert_eq!(next.token_type, "DPoP");
    let access = next.access_token.clone();
    assert_eq!(cnf_jkt(&access).as_deref(), Some(key.jkt.as_str()), "still bound after a refresh");
    assert_eq!(
        app.secret_with("DPoP", &access, Some(key.proof("GET", &secret_url, Some(&access)))).await.status(),
        200
    );
    // The same request through a server function (what the browser calls).
    let fn_url = app.url("/api/fn/sessions");
    let res = app
        .http
        .post(&fn_url)
        .header("authorization", format!("DPoP {access}"))
        .header("DPoP", key.proof("POST", &fn_url, Some(&access)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn tokens_copied_without_the_key_are_refused_and_cannot_end_the_session() {
    let app = spawn_app().await;
    let (key, tokens) = app.bound_session("alice").await;
    let access = tokens.access_token.clone();
    let secret_url = app.url("/api/users/secret");
    let refresh_url = app.url("/api/auth/refresh");
    let thief = DpopKey::generate();

    // The access token: as a bearer token, without a proof, with the thief's own key.
    assert_error(app.secret_with("Bearer", &access, None).await, 401, "invalid_token").await;
    let res = app.secret_with("DPoP", &access, None).await;
    assert_eq!(res.headers()["www-authenticate"], r#"DPoP error="invalid_dpop_proof", algs="ES256""#);
    assert_error(res, 401, "invalid_dpop_proof").await;
    assert_error(
        app.secret_with("DPoP", &access, Some(thief.proof("GET", &secret_url, Some(&access)))).await,
        401,
        "invalid_dpop_proof",
    )
    .await;

    // The refresh token: without a proof, with the thief's key. Neither spends it.
    assert_error(app.refresh_bound(&tokens, None).await, 401, "invalid_dpop_proof").await;
    assert_error(
        app.refresh_bound(&tokens, Some(thief.proof("POST", &refresh_url, None))).await,
        401,
        "invalid_dpop_proof",
    )
    .await;
    let res = app.refresh_bound(&tokens, Some(key.proof("POST", &refresh_url, None))).await;
    assert_eq!(res.status(), 200, "the owner's session is untouched");
    let next: TokenResponse = res.json().await.unwrap();
    // Even the spent token, replayed by the thief, ends nothing: it never reaches reuse detection.
    assert_error(
        app.refresh_bound(&tokens, Some(thief.proof("POST", &refresh_url, None))).await,
        401,
        "invalid_dpop_proof",
    )
    .await;
    assert_eq!(app.refresh_bound(&next, Some(key.proof("POST", &refresh_url, None))).await.status(), 200);
}

#[tokio::test]
async fn a_copied_refresh_token_cannot_log_a_bound_session_out() {
    let app = spawn_app().await;
    let (key, tokens) = app.bound_session("alice").await;
    let logout_url = app.url("/api/auth/logout");
    let thief = DpopKey::generate();
    let logout = |proof: Option<String>| {
        let mut req = app.http.post(&logout_url).json(&json!({"refreshToken": tokens.refresh_token}));
        if let Some(proof) = proof {
            req = req.header("DPoP", proof);
        }
        req.send()
    };
    // REST, and the server function the browser uses: without a proof, or with another key's.
    assert_error(logout(None).await.unwrap(), 401, "invalid_dpop_proof").await;
    assert_error(logout(Some(thief.proof("POST", &logout_url, None))).await.unwrap(), 401, "invalid_dpop_proof").await;
    let res = app
        .http
        .post(app.url("/api/fn/logout"))
        .form(&[("refresh_token", &tokens.refresh_token)])
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "invalid_dpop_proof").await;
    let next = app.refresh_bound(&tokens, Some(key.proof("POST", &app.url("/api/auth/refresh"), None))).await;
    assert_eq!(next.status(), 200, "the session lives on");
    let next: TokenResponse = next.json().await.unwrap();
    // Even the spent token, with the owner's key, still names the session: the owner logs out.
    assert_eq!(logout(Some(key.proof("POST", &logout_url, None))).await.unwrap().status(), 204);
    assert_error(
        app.refresh_bound(&next, Some(key.proof("POST", &app.url("/api/auth/refresh"), None))).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    // A bearer session still logs out with its token alone.
    let bearer = app.login("alice").await;
    assert_eq!(app.post("/api/auth/logout", json!({"refreshToken": bearer.refresh_token})).await.status(), 204);
    assert_eq!(app.refresh(&bearer.refresh_token).await.status(), 401);
}

#[tokio::test]
async fn with_public_url_a_proof_must_name_it_whatever_host_is_sent() {
    // Another resource server trusts Baton's keys; a proof its client made for it is replayed to
    // Baton with that server's Host.
    let foreign = "https://rs.example.org/api/users/secret";
    let replay = |app: &TestApp, key: &DpopKey, access: &str| {
        let proof = key.proof("GET", foreign, Some(access));
        app.http
            .get(app.url("/api/users/secret"))
            .header("host", "rs.example.org")
            .header("x-forwarded-proto", "https")
            .header("authorization", format!("DPoP {access}"))
            .header("DPoP", proof)
            .send()
    };
    // Unset (development on loopback): the Host decides, as before.
    let app = spawn_app_with(trust_local_proxy).await;
    let (key, tokens) = app.bound_session("alice").await;
    let access = tokens.access_token;
    assert_eq!(replay(&app, &key, &access).await.unwrap().status(), 200);

    let app = spawn_app_with(|c| {
        trust_local_proxy(c);
        c.public_urls = vec!["https://baton.example.com".into(), "https://auth.example.com".into()];
    })
    .await;
    app.signup("alice").await;
    // Logging in: the proof names the public URL, not the address the test reaches.
    let login = |htu: String| {
        let key = DpopKey::generate();
        let proof = key.proof("POST", &htu, None);
        let req = app.http.post(app.url("/api/auth/login")).header("DPoP", proof);
        (key, req.json(&json!({"username": "alice", "password": PASSWORD})).send())
    };
    let (_, res) = login(app.url("/api/auth/login"));
    assert_error(res.await.unwrap(), 401, "invalid_dpop_proof").await;
    let (key, res) = login("https://baton.example.com/api/auth/login".into());
    let res = res.await.unwrap();
    assert_eq!(res.status(), 200);
    let access = res.json::<TokenResponse>().await.unwrap().access_token;
    assert_error(replay(&app, &key, &access).await.unwrap(), 401, "invalid_dpop_proof").await;
    // Every name in the list works, the path must still be this request's.
    for (htu, status) in [
        ("https://auth.example.com/api/users/secret", 200),
        ("https://BATON.example.com:443/api/users/secret", 200),
        ("https://baton.example.com/api/users/me", 401),
        ("http://baton.example.com/api/users/secret", 401),
    ] {
        let res = app.secret_with("DPoP", &access, Some(key.proof("GET", htu, Some(&access)))).await;
        assert_eq!(res.status(), status, "{htu}");
    }
}

#[tokio::test]
async fn bad_proofs_are_refused() {
    let app = spawn_app().await;
    let (key, tokens) = app.bound_session("alice").await;
    let access = tokens.access_token;
    let url = app.url("/api/users/secret");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let other = DpopKey::generate();
    let mut foreign_signature =
        other.proof("GET", &url, Some(&access)).split('.').map(str::to_owned).collect::<Vec<_>>();
    let own = key.proof("GET", &url, Some(&access));
    foreign_signature[0] = own.split('.').next().unwrap().to_owned();
    let cases: Vec<(&str, String)> = vec![
        ("another URL", key.proof("GET", &app.url("/api/users/me"), Some(&access))),
        ("another method", key.proof("POST", &url, Some(&access))),
        (
            "a query in htu compared away, but another host",
            key.proof("GET", &url.replace("127.0.0.1", "localhost"), Some(&access)),
        ),
        ("no ath", key.proof("GET", &url, None)),
        ("ath of another token", key.proof("GET", &url, Some("another token"))),
        ("too old", key.proof_with("GET", &url, Some(&access), |_, c| c["iat"] = json!(now - 120))),
        ("from the future", key.proof_with("GET", &url, Some(&access), |_, c| c["iat"] = json!(now + 60))),
        ("typ JWT", key.proof_with("GET", &url, Some(&access), |h, _| h.typ = Some("JWT".into()))),
        ("no jti", key.proof_with("GET", &url, Some(&access), |_, c| drop(c.as_object_mut().unwrap().remove("jti")))),
        ("a NUL in jti", key.proof_with("GET", &url, Some(&access), |_, c| c["jti"] = json!("a\u{0}b"))),
        ("signed by another key", foreign_signature.join(".")),
        ("not a JWT", "garbage".into()),
    ];
    for (what, proof) in cases {
        let res = app.secret_with("DPoP", &access, Some(proof)).await;
        assert_eq!(res.status(), 401, "{what}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_dpop_proof", "{what}");
    }
    // A query string is not part of htu, so the proof still matches.
    let res = app
        .http
        .get(format!("{url}?x=1"))
        .header("authorization", format!("DPoP {access}"))
        .header("DPoP", key.proof("GET", &url, Some(&access)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Replayed: the first use passes, the second is refused.
    let proof = key.proof("GET", &url, Some(&access));
    assert_eq!(app.secret_with("DPoP", &access, Some(proof.clone())).await.status(), 200);
    assert_error(app.secret_with("DPoP", &access, Some(proof)).await, 401, "invalid_dpop_proof").await;
    // The same proof eight times at once (on PostgreSQL, checked in one statement): one passes.
    let proof = key.proof("GET", &url, Some(&access));
    let answers =
        futures::future::join_all((0..8).map(|_| app.secret_with("DPoP", &access, Some(proof.clone())))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 401).count(), 7, "{statuses:?}");
    // Two DPoP headers.
    let res = app
        .http
        .get(&url)
        .header("authorization", format!("DPoP {access}"))
        .header("DPoP", key.proof("GET", &url, Some(&access)))
        .header("DPoP", key.proof("GET", &url, Some(&access)))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn dpop_required_refuses_bearer_sessions_and_bearer_sessions_work_without_it() {
    let app = spawn_app().await;
    let bearer = app.signup("alice").await;
    assert_eq!(bearer.token_type, "Bearer");
    assert_eq!(app.secret_status(&bearer.access_token).await, 200);
    let config = app.stop().await;
    let app = start(app::auth::AuthSettings { dpop_required: true, ..config }).await;
    assert_error(
        app.post("/api/auth/login", json!({"username": "alice", "password": PASSWORD})).await,
        401,
        "invalid_dpop_proof",
    )
    .await;
    assert_error(app.get_with("/api/users/secret", &bearer.access_token).await, 401, "invalid_token").await;
    assert_error(app.refresh(&bearer.refresh_token).await, 401, "invalid_dpop_proof").await;
    let key = DpopKey::generate();
    let tokens = app.login_bound("alice", &key).await;
    assert_eq!(tokens.token_type, "DPoP");
}
