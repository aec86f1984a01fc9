//! The HTTP surface: error shapes for bad input of every kind, the OpenAPI document, CORS, health,
//! and the server functions' status codes.

use crate::common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn bad_input_gets_a_typed_4xx_never_a_5xx() {
    let app = spawn_app().await;
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let app = &app;
        async move {
            let mut req = app.http.post(app.url("/api/auth/login")).body(body);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            req.send().await.unwrap()
        }
    };
    assert_error(post("{not json", Some("application/json")).await, 400, "bad_request").await;
    assert_error(post(r#"{"username":"a"}"#, Some("application/json")).await, 422, "invalid_input").await;
    let unknown = r#"{"username":"alice","password":"correct horse battery","admin":true}"#;
    assert_error(post(unknown, Some("application/json")).await, 422, "invalid_input").await;
    assert_error(post(r#"{"username":1,"password":2}"#, Some("application/json")).await, 422, "invalid_input").await;
    // An array is not the object it lists the fields of (serde would read it by position).
    let body = assert_error(
        post(r#"["alice","correct horse battery"]"#, Some("application/json")).await,
        422,
        "invalid_input",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("expected a map"), "{body}");
    assert_error(post(r#"{"username":"a","password":"b"}"#, Some("text/plain")).await, 415, "unsupported_media_type")
        .await;
    assert_error(post(r#"{"username":"a","password":"b"}"#, None).await, 415, "unsupported_media_type").await;
    let huge = format!(r#"{{"username":"alice","password":"{}"}}"#, "x".repeat(17 * 1024));
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_error(res, 413, "payload_too_large").await;

    for header in ["", "Bearer", "Bearer ", "Basic YWxpY2U6cHc=", "Bearer not.a.jwt", "Bearer a.b.c.d"] {
        let res = app.http.get(app.url("/api/users/me")).header("authorization", header).send().await.unwrap();
        assert_error(res, 401, "invalid_token").await;
    }
    let res = app
        .http
        .get(app.url("/api/users/me"))
        .header("authorization", reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap())
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "invalid_token").await;
    assert_error(app.http.get(app.url("/api/users/me")).send().await.unwrap(), 401, "invalid_token").await;

    assert_error(app.http.get(app.url("/api/nothing/here")).send().await.unwrap(), 404, "not_found").await;
    assert_error(app.http.delete(app.url("/api/auth/login")).send().await.unwrap(), 405, "method_not_allowed").await;
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let app = spawn_app().await;
    let doc: Value = app.http.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let documented: Vec<u16> =
                op["responses"].as_object().unwrap().keys().map(|k| k.parse().unwrap()).collect();
            let url = app.url(&path.replace("{id}", "00000000-0000-0000-0000-000000000000"));
            let req = app.http.request(method.to_uppercase().parse().unwrap(), url);
            // Without credentials or body: each operation must answer with one of its documented statuses.
            let status = req.send().await.unwrap().status().as_u16();
            assert!(documented.contains(&status), "{method} {path} answered {status}, documents {documented:?}");
            operations += 1;
        }
    }
    assert_eq!(operations, 27, "every route is documented: {:?}", paths.keys().collect::<Vec<_>>());
    // The input rules are in the schema, so a generated client (or a fuzzer) knows them.
    let credentials = &doc["components"]["schemas"]["Credentials"];
    assert_eq!(credentials["additionalProperties"], false);
    assert!(credentials["properties"]["username"]["pattern"].as_str().unwrap().contains("{3,32}"));
    assert_eq!(credentials["properties"]["password"]["minLength"], 8);
    assert_eq!(credentials["properties"]["password"]["maxLength"], 128);
    assert_eq!(doc["components"]["schemas"]["PasswordChange"]["properties"]["newPassword"]["minLength"], 8);
}

#[tokio::test]
async fn health_and_jwks() {
    let app = spawn_app().await;
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    let jwks: Value = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert!(key.get("d").is_none(), "never the private part");
}

#[tokio::test]
async fn cors_is_off_by_default_and_opens_to_configured_origins_only() {
    let preflight = |app: &TestApp, origin: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let app = spawn_app().await;
    let res = preflight(&app, "http://localhost:8100").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());

    let app = spawn_app_with_http(|c| c.cors_origins = vec!["http://localhost:8100".into()]).await;
    let res = preflight(&app, "http://localhost:8100").await.unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "http://localhost:8100");
    let res = preflight(&app, "https://evil.example").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());

    // A browser app on another origin binds its sessions with DPoP: the proof's header may be
    // sent, and a 401's challenge (which says whether to refresh) read.
    let res = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/users/secret"))
        .header("origin", "http://localhost:8100")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization,dpop")
        .send()
        .await
        .unwrap();
    let allowed = res.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("dpop") && allowed.contains("authorization"), "{allowed}");
    let res =
        app.http.get(app.url("/api/users/secret")).header("origin", "http://localhost:8100").send().await.unwrap();
    assert_eq!(res.status(), 401);
    let exposed = res.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    for header in ["www-authenticate", "dpop-nonce", "retry-after"] {
        assert!(exposed.contains(header), "{header} in {exposed}");
    }
}

#[tokio::test]
async fn server_functions_answer_with_meaningful_statuses() {
    let app = spawn_app().await;
    app.signup("alice").await;
    let call = |name: &str, form: &[(&str, &str)], bearer: Option<&str>| {
        let mut req = app.http.post(app.url(&format!("/api/fn/{name}"))).form(form);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send()
    };
    let res = call("login", &[("username", "alice"), ("password", "wrong password")], None).await.unwrap();
    assert_error(res, 401, "invalid_credentials").await;
    let res = call("login", &[("username", "a"), ("password", "x")], None).await.unwrap();
    assert_error(res, 422, "invalid_input").await;
    let res = call("login", &[("username", "alice")], None).await.unwrap();
    assert_error(res, 422, "invalid_input").await;
    let res = call("get_secret", &[], None).await.unwrap();
    assert_error(res, 401, "invalid_token").await;
    // A body that is not UTF-8 is the client's mistake: a 400, not Leptos's 500.
    let res = app
        .http
        .post(app.url("/api/fn/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(&b"username=alice&password=\xff\xfe"[..])
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "bad_request").await;

    let res = call("login", &[("username", "alice"), ("password", PASSWORD)], None).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let app::api::LoginStep::Tokens(tokens) = res.json().await.unwrap() else { panic!("no second factor here") };
    let res = call("get_secret", &[], Some(&tokens.access_token)).await.unwrap();
    assert_eq!(res.status(), 200);
    let res = call("refresh", &[("refresh_token", &tokens.refresh_token)], None).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    if is_postgres() {
        return; // A SQLite property: nothing to check on PostgreSQL.
    }
    let app = spawn_app().await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(app.auth.db()).await.unwrap();
    assert_eq!(mode, "wal");
    let _ = json!({});
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_the_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let mode = |path: std::path::PathBuf| std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(app.data_dir()), 0o700, "data directory");
    // The keys are in the database (shared by all instances), not in files.
    for file in ["signing-keys.json", "refresh-rotation.key"] {
        assert!(!app.data_dir().join(file).exists(), "{file}");
    }
    if !is_postgres() {
        // It holds the password hashes; SQLite gives its -wal and -shm files the same mode.
        for file in ["baton.db", "baton.db-wal", "baton.db-shm"] {
            assert_eq!(mode(app.data_dir().join(file)), 0o600, "{file}");
        }
    }
}
