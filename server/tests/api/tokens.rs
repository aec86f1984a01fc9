//! Access tokens and refresh-token rotation: reuse detection, the grace window, races, expiry,
//! forgeries, key persistence.

use crate::common::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn every_refresh_rotates_both_tokens() {
    let app = spawn_app().await;
    let first = app.signup("alice").await;
    let res = app.refresh(&first.refresh_token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let second: TokenResponse = res.json().await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.user, first.user);
    assert_eq!(app.secret_status(&second.access_token).await, 200);
    // GET with the refresh token as Bearer, as the tutorial's client does.
    let third = app.get_with("/api/auth/refresh", &second.refresh_token).await;
    assert_eq!(third.status(), 200);
}

#[tokio::test]
async fn the_grace_window_gives_a_racing_duplicate_the_same_tokens() {
    let app = spawn_app().await;
    let first = app.signup("alice").await;
    let a = app.refreshed(&first).await;
    let b = app.refreshed(&first).await;
    assert_eq!(a.refresh_token, b.refresh_token);
    assert_eq!(a.access_token, b.access_token);
    // The session lives on along the one chain.
    assert_eq!(app.refresh(&a.refresh_token).await.status(), 200);
}

#[tokio::test]
async fn reuse_outside_the_grace_window_revokes_the_whole_session() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = Duration::ZERO).await;
    let first = app.signup("alice").await;
    let second = app.refreshed(&first).await;
    // A thief replays the first token: refused, and the legitimate chain dies with it.
    assert_error(app.refresh(&first.refresh_token).await, 401, "invalid_refresh_token").await;
    assert_error(app.refresh(&second.refresh_token).await, 401, "invalid_refresh_token").await;
    assert_eq!(app.secret_status(&second.access_token).await, 401);
    let events: Vec<String> = sqlx::query_scalar("SELECT kind FROM security_events WHERE kind = 'refresh_token_reuse'")
        .fetch_all(app.auth.db())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    // Another session of the same user is not affected.
    let other = app.login("alice").await;
    assert_eq!(app.secret_status(&other.access_token).await, 200);
}

/// The attack that the grace window invited: a thief holding an old refresh token replays it
/// right after the victim's refresh, to be handed the victim's fresh tokens.
#[tokio::test]
async fn a_thief_riding_the_grace_window_is_refused_and_the_session_revoked() {
    let app = spawn_app().await;
    let first = app.signup("alice").await;
    let victims = app.refreshed(&first).await;
    let stolen = first.refresh_token.clone();
    // From another address, and from the same address with another user agent: both are reuse.
    let thief = client_from("127.0.0.2", "baton-tests");
    let res = thief.post(app.url("/api/auth/refresh")).json(&json!({ "refreshToken": stolen })).send().await.unwrap();
    assert_error(res, 401, "invalid_refresh_token").await;
    assert_error(app.refresh(&victims.refresh_token).await, 401, "invalid_refresh_token").await;
    assert_eq!(app.secret_status(&victims.access_token).await, 401);
    let events: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT kind, ip, detail FROM security_events WHERE kind LIKE 'refresh%'")
            .fetch_all(app.auth.db())
            .await
            .unwrap();
    assert_eq!(
        events,
        [(
            "refresh_token_reuse".into(),
            Some("127.0.0.2".into()),
            Some("first use from 127.0.0.1, then another client".into())
        )]
    );

    let second = app.login("alice").await;
    app.refreshed(&second).await;
    let other_agent = client_from("127.0.0.1", "curl/8.5.0");
    let res = other_agent
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refreshToken": second.refresh_token }))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn a_grace_replay_is_recorded_with_both_addresses() {
    let app = spawn_app().await;
    let first = app.signup("alice").await;
    app.refreshed(&first).await;
    app.refreshed(&first).await;
    let events: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT kind, ip, detail FROM security_events WHERE kind LIKE 'refresh%'")
            .fetch_all(app.auth.db())
            .await
            .unwrap();
    assert_eq!(
        events,
        [("refresh_grace_replay".into(), Some("127.0.0.1".into()), Some("first use from 127.0.0.1".into()))]
    );
}

#[tokio::test]
async fn the_grace_window_covers_only_the_immediate_predecessor() {
    let app = spawn_app().await;
    let t0 = app.signup("alice").await;
    let t1 = app.refreshed(&t0).await;
    let t2 = app.refreshed(&t1).await;
    // t0's successor t1 is spent already: presenting t0 is reuse, even within the window.
    assert_error(app.refresh(&t0.refresh_token).await, 401, "invalid_refresh_token").await;
    assert_error(app.refresh(&t2.refresh_token).await, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn the_grace_window_closes() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = Duration::from_secs(1)).await;
    let first = app.signup("alice").await;
    app.refresh(&first.refresh_token).await.error_for_status().unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_error(app.refresh(&first.refresh_token).await, 401, "invalid_refresh_token").await;
}

async fn race(app: &TestApp, refresh_token: &str) -> Vec<(u16, Option<String>)> {
    let calls = (0..20).map(|_| async {
        let res = app.refresh(refresh_token).await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        (status, body["refreshToken"].as_str().map(str::to_owned))
    });
    futures::future::join_all(calls).await
}

/// Live sessions: each has exactly one live refresh token, its current generation.
async fn live_tokens(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL").fetch_one(app.auth.db()).await.unwrap()
}

#[tokio::test]
async fn twenty_simultaneous_refreshes_yield_one_successor() {
    let app = spawn_app().await;
    let first = app.signup("alice").await;
    let results = race(&app, &first.refresh_token).await;
    assert!(results.iter().all(|(status, _)| *status == 200), "{results:?}");
    let mut successors: Vec<_> = results.into_iter().filter_map(|(_, t)| t).collect();
    successors.dedup();
    assert_eq!(successors.len(), 1, "every racer got the same successor");
    assert_eq!(live_tokens(&app).await, 1);
}

#[tokio::test]
async fn twenty_simultaneous_refreshes_without_grace_yield_at_most_one_successor() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = Duration::ZERO).await;
    let first = app.signup("alice").await;
    let results = race(&app, &first.refresh_token).await;
    let winners = results.iter().filter(|(status, _)| *status == 200).count();
    assert!(winners <= 1, "{results:?}");
    assert!(results.iter().all(|(status, _)| *status == 200 || *status == 401), "{results:?}");
    // The losers count as reuse, so the session is revoked: no live successor at all.
    assert_eq!(live_tokens(&app).await, 0);
}

#[tokio::test]
async fn idle_sessions_expire() {
    let app = spawn_app_with(|c| c.refresh_idle_ttl = Duration::from_secs(1)).await;
    let first = app.signup("alice").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_error(app.refresh(&first.refresh_token).await, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn refreshing_does_not_extend_the_absolute_lifetime() {
    let app = spawn_app_with(|c| {
        c.refresh_idle_ttl = Duration::from_secs(2);
        c.refresh_absolute_ttl = Duration::from_secs(2);
    })
    .await;
    let mut current = app.signup("alice").await.refresh_token;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let next: TokenResponse = app.refresh(&current).await.json().await.unwrap();
        current = next.refresh_token;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_error(app.refresh(&current).await, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn expired_access_tokens_are_refused() {
    let app = spawn_app_with(|c| c.access_token_ttl = Duration::from_secs(1)).await;
    let first = app.signup("alice").await;
    assert_eq!(first.expires_in, 1);
    let access = first.access_token.clone();
    assert_eq!(app.secret_status(&access).await, 200);
    // 1 s lifetime + JWT_LEEWAY's 2 s + whole-second claims: refused within 4 s, not 30.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(app.secret_status(&access).await, 401);
    // Long expired, forged with the real key.
    let expired = sign(
        &app,
        claims(&first, |c| {
            c["iat"] = json!(now() - 120);
            c["exp"] = json!(now() - 60);
        }),
    )
    .await;
    assert_eq!(app.secret_status(&expired).await, 401);
}

#[tokio::test]
async fn unknown_and_garbage_refresh_tokens_are_refused() {
    let app = spawn_app().await;
    for bad in ["", "brt_nope", "not-a-token", &"x".repeat(5000)] {
        assert_error(app.refresh(bad).await, 401, "invalid_refresh_token").await;
    }
}

// --- forged access tokens ------------------------------------------------------------------------

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The claims of a real access token, edited.
fn claims(tokens: &TokenResponse, edit: impl FnOnce(&mut Value)) -> Value {
    let access = &tokens.access_token;
    let payload = access.split('.').nth(1).unwrap();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    edit(&mut claims);
    claims
}

/// Signed with the server's own current key, read from its database.
async fn sign(app: &TestApp, claims: Value) -> String {
    sign_with_header(app, claims, |_| {}).await
}

async fn sign_with_header(app: &TestApp, claims: Value, edit: impl FnOnce(&mut Header)) -> String {
    let (kid, private): (String, String) =
        sqlx::query_as("SELECT kid, private_key FROM signing_keys ORDER BY activates_at DESC LIMIT 1")
            .fetch_one(app.auth.db())
            .await
            .unwrap();
    let der = STANDARD.decode(private.strip_prefix("plain:").expect("no KEK in the tests")).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid);
    edit(&mut header);
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der)).unwrap()
}

#[tokio::test]
async fn the_servers_own_key_signs_what_the_tests_forge_below() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    // Control: re-signing the unedited claims is accepted, so each refusal below is for its edit.
    assert_eq!(app.secret_status(&sign(&app, claims(&tokens, |_| {})).await).await, 200);
}

#[tokio::test]
async fn forged_access_tokens_are_refused() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    let real = tokens.access_token.clone();
    let [header, payload, signature] = real.split('.').collect::<Vec<_>>()[..] else { panic!() };
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header_json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();

    let mut forgeries: Vec<(&str, String)> = Vec::new();
    // alg: none, with and without a signature.
    let none = b64(json!({"alg": "none", "typ": "at+jwt", "kid": header_json["kid"]}));
    forgeries.push(("alg none", format!("{none}.{payload}.")));
    forgeries.push(("alg none, old signature", format!("{none}.{payload}.{signature}")));
    // HS256 keyed with the public key (the classic algorithm confusion).
    let jwks: Value = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let public = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("at+jwt".into());
    hs.kid = header_json["kid"].as_str().map(str::to_owned);
    let claims_json = claims(&tokens, |_| {});
    forgeries.push((
        "HS256 with the public key",
        jsonwebtoken::encode(&hs, &claims_json, &EncodingKey::from_secret(&public)).unwrap(),
    ));
    // A payload edited after signing.
    let other_user = b64(claims(&tokens, |c| c["sub"] = json!("someone-else")));
    forgeries.push(("tampered payload", format!("{header}.{other_user}.{signature}")));
    // Unknown kid, wrong typ, signed by a key the server never had.
    forgeries
        .push(("unknown kid", sign_with_header(&app, claims(&tokens, |_| {}), |h| h.kid = Some("nope".into())).await));
    forgeries.push(("no kid", sign_with_header(&app, claims(&tokens, |_| {}), |h| h.kid = None).await));
    forgeries.push(("typ JWT", sign_with_header(&app, claims(&tokens, |_| {}), |h| h.typ = Some("JWT".into())).await));
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let stranger_der = stranger.to_pkcs8_der().unwrap();
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some("at+jwt".into());
    h.kid = header_json["kid"].as_str().map(str::to_owned);
    forgeries.push((
        "someone else's key",
        jsonwebtoken::encode(&h, &claims_json, &EncodingKey::from_ed_der(stranger_der.as_bytes())).unwrap(),
    ));
    // The real key, wrong claims: every required claim is checked.
    for (what, edit) in [
        ("wrong iss", Box::new(|c: &mut Value| c["iss"] = json!("evil")) as Box<dyn Fn(&mut Value)>),
        ("wrong aud", Box::new(|c: &mut Value| c["aud"] = json!("other-api"))),
        ("no exp", Box::new(|c: &mut Value| drop(c.as_object_mut().unwrap().remove("exp")))),
        ("no iat", Box::new(|c: &mut Value| drop(c.as_object_mut().unwrap().remove("iat")))),
        ("no sid", Box::new(|c: &mut Value| drop(c.as_object_mut().unwrap().remove("sid")))),
        ("no jti", Box::new(|c: &mut Value| drop(c.as_object_mut().unwrap().remove("jti")))),
        ("no sub", Box::new(|c: &mut Value| drop(c.as_object_mut().unwrap().remove("sub")))),
        ("issued in the future", Box::new(|c: &mut Value| c["iat"] = json!(now() + 3600))),
        ("expired beyond leeway", Box::new(|c: &mut Value| c["exp"] = json!(now() - 31))),
        ("unknown session", Box::new(|c: &mut Value| c["sid"] = json!("00000000-0000-0000-0000-000000000000"))),
        ("session of another user", Box::new(|c: &mut Value| c["sub"] = json!("someone-else"))),
    ] {
        forgeries.push((what, sign(&app, claims(&tokens, |c| edit(c))).await));
    }
    for (what, forged) in forgeries {
        let res = app.get_with("/api/users/me", &forged).await;
        assert_eq!(res.status(), 401, "{what} must be refused");
        assert_eq!(res.headers()["www-authenticate"], r#"Bearer error="invalid_token", DPoP algs="ES256""#, "{what}");
    }
    // Control: the genuine token still works.
    assert_eq!(app.secret_status(&real).await, 200);
}

#[tokio::test]
async fn tokens_carry_the_documented_header_and_claims() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    let access = tokens.access_token.clone();
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let c = claims(&tokens, |_| {});
    for claim in ["iss", "aud", "sub", "sid", "iat", "exp", "jti"] {
        assert!(!c[claim].is_null(), "{claim} in {c}");
    }
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 300);
    assert_eq!(c["sub"], tokens.user.id);

    // The JWKS verifies it.
    let jwks: jsonwebtoken::jwk::JwkSet =
        app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the token's kid is published");
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["baton"]);
    jsonwebtoken::decode::<Value>(&access, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap();
}

#[tokio::test]
async fn a_restart_keeps_everyone_logged_in() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    let config = app.stop().await;
    let app = start(config).await;
    assert_eq!(app.secret_status(&tokens.access_token).await, 200);
    assert_eq!(app.refresh(&tokens.refresh_token).await.status(), 200);
}

#[tokio::test]
async fn a_rotated_signing_key_is_published_first_then_signs_while_the_old_one_still_verifies() {
    let app = spawn_app_with(|c| {
        c.keys.publish_delay = Duration::from_secs(3);
        c.keys.poll_interval = Duration::from_secs(1);
    })
    .await;
    let old = app.signup("alice").await;
    let old_kid = jsonwebtoken::decode_header(&old.access_token).unwrap().kid.unwrap();
    let out =
        run_cli(&app, &["rotate-signing-key"], &[("SIGNING_KEY_PUBLISH_DELAY", "3"), ("KEY_POLL_INTERVAL", "1")]).await;
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let new_kid = said.split("new signing key ").nth(1).and_then(|r| r.split(':').next()).expect(&said).to_owned();
    // Within a poll interval the running server publishes the new key, and still signs with the old.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let jwks = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(jwks.headers()["cache-control"], "public, max-age=2", "shorter than the publish delay");
    let jwks: Value = jwks.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&new_kid.as_str()) && kids.contains(&old_kid.as_str()), "{kids:?}");
    let before = app.refreshed(&old).await;
    assert_eq!(kid_of(&before), old_kid, "not yet: a cached JWKS may not have the new key");
    // After the publish delay it signs, without a restart; the old key still verifies.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let after = app.refreshed(&before).await;
    assert_eq!(kid_of(&after), new_kid);
    assert_eq!(app.secret_status(&before.access_token).await, 200);
}

fn kid_of(tokens: &TokenResponse) -> String {
    jsonwebtoken::decode_header(&tokens.access_token).unwrap().kid.unwrap()
}

/// `/api/fn/refresh_state`, as the browser calls it after a renewal that got no answer.
async fn refresh_state(app: &TestApp, client: &reqwest::Client, refresh_token: &str) -> reqwest::Response {
    client.post(app.url("/api/fn/refresh_state")).form(&[("refresh_token", refresh_token)]).send().await.unwrap()
}

#[tokio::test]
async fn a_client_whose_renewal_got_no_answer_learns_its_tokens_fate_without_spending_it() {
    async fn state(app: &TestApp, client: &reqwest::Client, tokens: &TokenResponse) -> String {
        let res = refresh_state(app, client, &tokens.refresh_token).await;
        assert_eq!(res.status(), 200);
        res.json::<String>().await.unwrap()
    }
    let app = spawn_app().await;
    let first = app.signup("alice").await;
    // Unspent, and asking twice spends nothing.
    assert_eq!(state(&app, &app.http, &first).await, "unspent");
    assert_eq!(state(&app, &app.http, &first).await, "unspent");
    let second = app.refreshed(&first).await;
    // Spent by this client a moment ago: the grace window would answer it again.
    assert_eq!(state(&app, &app.http, &first).await, "replayable");
    assert_eq!(state(&app, &app.http, &second).await, "unspent");
    // None of that spent or revoked anything.
    let third = app.refreshed(&second).await;
    assert_eq!(app.secret_status(&third.access_token).await, 200);
    // From elsewhere, presenting it would be reuse: the answer is "spent", and the session ends
    // as reuse ends it (the owner is told), so the question is no free way to test stolen tokens.
    assert_eq!(state(&app, &client_from("127.0.0.2", "another browser"), &first).await, "spent");
    assert_eq!(app.secret_status(&third.access_token).await, 401);
    let res = refresh_state(&app, &app.http, &third.refresh_token).await;
    assert_error(res, 401, "invalid_refresh_token").await;
    assert_eq!(refresh_event_kinds(&app).await, ["refresh_token_reuse"]);

    // Without a grace window, the last renewal's token is spent for everyone; asked by the client
    // it was renewed for, that is a lost answer, not theft.
    let app = spawn_app_with(|c| c.refresh_reuse_grace = std::time::Duration::ZERO).await;
    let first = app.signup("bob").await;
    app.refreshed(&first).await;
    assert_eq!(state(&app, &app.http, &first).await, "spent");
    assert_eq!(refresh_event_kinds(&app).await, ["refresh_lost"], "not called reuse");
}

async fn refresh_event_kinds(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT kind FROM security_events WHERE kind LIKE 'refresh%' ORDER BY at")
        .fetch_all(app.auth.db())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_fate_of_a_bound_sessions_token_is_told_only_to_its_key() {
    use crate::dpop_client::DpopKey;
    let app = spawn_app().await;
    let (key, tokens) = app.bound_session("alice").await;
    let url = app.url("/api/fn/refresh_state");
    let ask = |proof: Option<String>| {
        let mut req = app.http.post(&url).form(&[("refresh_token", &tokens.refresh_token)]);
        if let Some(proof) = proof {
            req = req.header("DPoP", proof);
        }
        req.send()
    };
    assert_error(ask(None).await.unwrap(), 401, "invalid_dpop_proof").await;
    assert_error(ask(Some(DpopKey::generate().proof("POST", &url, None))).await.unwrap(), 401, "invalid_dpop_proof")
        .await;
    let res = ask(Some(key.proof("POST", &url, None))).await.unwrap();
    assert_eq!(res.json::<String>().await.unwrap(), "unspent");
}

/// The same question over REST, for clients that are not Baton's own (the Ionic app).
#[tokio::test]
async fn rest_clients_ask_a_tokens_fate_at_refresh_state_with_the_sessions_key() {
    use crate::dpop_client::DpopKey;
    async fn ask(app: &TestApp, tokens: &TokenResponse, proof: Option<String>) -> reqwest::Response {
        let mut req =
            app.http.post(app.url("/api/auth/refresh/state")).json(&json!({"refreshToken": tokens.refresh_token}));
        if let Some(proof) = proof {
            req = req.header("DPoP", proof);
        }
        req.send().await.unwrap()
    }
    async fn state(app: &TestApp, key: &DpopKey, tokens: &TokenResponse) -> serde_json::Value {
        let res = ask(app, tokens, Some(key.proof("POST", &app.url("/api/auth/refresh/state"), None))).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        res.json().await.unwrap()
    }
    let app = spawn_app().await;
    let (key, first) = app.bound_session("alice").await;
    assert_eq!(state(&app, &key, &first).await, json!({"state": "unspent"}));
    // Bound: no proof, or another key's, learns nothing.
    assert_error(ask(&app, &first, None).await, 401, "invalid_dpop_proof").await;
    let stranger = DpopKey::generate().proof("POST", &app.url("/api/auth/refresh/state"), None);
    assert_error(ask(&app, &first, Some(stranger)).await, 401, "invalid_dpop_proof").await;
    let res = app.refresh_bound(&first, Some(key.proof("POST", &app.url("/api/auth/refresh"), None))).await;
    let second: TokenResponse = res.json().await.unwrap();
    assert_eq!(state(&app, &key, &first).await, json!({"state": "replayable"}));
    assert_eq!(state(&app, &key, &second).await, json!({"state": "unspent"}));

    // Without a grace window, the lost answer cannot be had again: the session ends, as lost.
    let app = spawn_app_with(|c| c.refresh_reuse_grace = std::time::Duration::ZERO).await;
    let (key, first) = app.bound_session("bob").await;
    let res = app.refresh_bound(&first, Some(key.proof("POST", &app.url("/api/auth/refresh"), None))).await;
    let second: TokenResponse = res.json().await.unwrap();
    assert_eq!(state(&app, &key, &first).await, json!({"state": "spent"}));
    let res = app
        .secret_with(
            "DPoP",
            &second.access_token,
            Some(key.proof("GET", &app.url("/api/users/secret"), Some(&second.access_token))),
        )
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(refresh_event_kinds(&app).await, ["refresh_lost"], "not called reuse");

    // A token older than the last renewal's, even asked about by its own client, is reuse.
    let app = spawn_app_with(|c| c.refresh_reuse_grace = std::time::Duration::ZERO).await;
    let (key, first) = app.bound_session("carol").await;
    let mut latest = first.clone();
    for _ in 0..2 {
        let res = app.refresh_bound(&latest, Some(key.proof("POST", &app.url("/api/auth/refresh"), None))).await;
        latest = res.json().await.unwrap();
    }
    assert_eq!(state(&app, &key, &first).await, json!({"state": "spent"}));
    assert_eq!(refresh_event_kinds(&app).await, ["refresh_token_reuse"]);
}
