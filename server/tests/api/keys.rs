//! Where the keys live: in the database, sealed under `KEY_ENCRYPTION_KEY` when one is given, and
//! imported from the key files of a data directory from before, so an upgrade logs nobody out.

use crate::common::*;
use app::auth::settings::KeyEncryptionKey;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;

const KEK: [u8; 32] = [42; 32];

/// Every private value the database holds, as stored.
async fn stored_private_values(app: &TestApp) -> Vec<String> {
    let mut values: Vec<String> =
        sqlx::query_scalar("SELECT private_key FROM signing_keys").fetch_all(app.auth.db()).await.unwrap();
    values.extend(
        sqlx::query_scalar::<_, String>("SELECT secret FROM rotation_keys").fetch_all(app.auth.db()).await.unwrap(),
    );
    values
}

#[tokio::test]
async fn an_upgrade_imports_the_data_directorys_key_files_and_logs_nobody_out() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    // Make the database look as it did before the keys moved in: the keys in files only.
    let (kid, private): (String, String) =
        sqlx::query_as("SELECT kid, private_key FROM signing_keys").fetch_one(app.auth.db()).await.unwrap();
    let secret: String = sqlx::query_scalar("SELECT secret FROM rotation_keys").fetch_one(app.auth.db()).await.unwrap();
    let pkcs8 = private.strip_prefix("plain:").unwrap();
    let file = json!({"keys": [{"kid": kid, "createdAt": 1_700_000_000_000_i64, "retiredAt": null, "pkcs8": pkcs8}]});
    std::fs::write(app.data_dir().join("signing-keys.json"), serde_json::to_vec(&file).unwrap()).unwrap();
    std::fs::write(
        app.data_dir().join("refresh-rotation.key"),
        STANDARD.decode(secret.strip_prefix("plain:").unwrap()).unwrap(),
    )
    .unwrap();
    sqlx::query("DELETE FROM signing_keys").execute(app.auth.db()).await.unwrap();
    sqlx::query("DELETE FROM rotation_keys").execute(app.auth.db()).await.unwrap();

    let app = start(app.stop().await).await;
    assert_eq!(app.secret_status(&tokens.access_token).await, 200, "the old key verifies");
    let next = app.refreshed(&tokens).await;
    let header = jsonwebtoken::decode_header(&next.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()), "and keeps signing");
    for file in ["signing-keys.json", "refresh-rotation.key"] {
        assert!(!app.data_dir().join(file).exists(), "{file} is read once");
        assert!(app.data_dir().join(format!("{file}.imported")).exists(), "{file} is kept, renamed");
    }
    // A second start does not import again, and still works.
    let app = start(app.stop().await).await;
    assert_eq!(app.refresh(&next.refresh_token).await.status(), 200);
}

fn kek_env(bytes: [u8; 32]) -> String {
    STANDARD.encode(bytes)
}

#[tokio::test]
async fn with_a_key_encryption_key_no_private_key_is_stored_in_the_clear() {
    // Keys made before the operator set a KEK: the server refuses them beside it, until
    // `server seal-keys` has sealed them once.
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    assert!(stored_private_values(&app).await.iter().all(|v| v.starts_with("plain:")));
    let mut config = app.stop().await;
    config.keys.encryption_key = Some(KeyEncryptionKey::from_bytes(KEK));
    let error = match app::auth::AuthService::start(config.clone()).await {
        Ok(_) => panic!("started with keys in the clear beside a KEY_ENCRYPTION_KEY"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("stored in the clear") && error.contains("seal-keys"), "{error}");
    let sealing = run_cli_on(&config, &["seal-keys"], &[("KEY_ENCRYPTION_KEY", &kek_env(KEK))]).await;
    assert!(sealing.status.success(), "{}", String::from_utf8_lossy(&sealing.stderr));
    assert!(String::from_utf8_lossy(&sealing.stdout).contains("2 key(s) sealed"));
    let app = start(config).await;
    let values = stored_private_values(&app).await;
    assert_eq!(values.len(), 2);
    assert!(values.iter().all(|v| v.starts_with("sealed:")), "{values:?}");
    let tokens = app.refreshed(&tokens).await;

    // Without it, or with another, the server refuses to start and says why.
    let config = app.stop().await;
    for (kek, says) in [(None, "set KEY_ENCRYPTION_KEY"), (Some([7; 32]), "does not open with this KEY_ENCRYPTION_KEY")]
    {
        let mut wrong = config.clone();
        wrong.keys.encryption_key = kek.map(KeyEncryptionKey::from_bytes);
        let error = match app::auth::AuthService::start(wrong).await {
            Ok(_) => panic!("started without the right KEY_ENCRYPTION_KEY"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(says), "{error}");
    }
    let app = start(config).await;
    assert_eq!(app.refresh(&tokens.refresh_token).await.status(), 200);
}

#[tokio::test]
async fn a_key_written_in_the_clear_beside_a_kek_is_never_used() {
    // Someone who can write to the database adds a signing key of their own, in the clear.
    let app = spawn_app_with(|c| {
        c.keys.encryption_key = Some(KeyEncryptionKey::from_bytes(KEK));
        c.keys.poll_interval = std::time::Duration::from_secs(1);
    })
    .await;
    let forged = app::auth::tokens::access::Key::generate();
    sqlx::query(
        "INSERT INTO signing_keys (kid, activates_at, created_at, public_key, private_key) VALUES ($1, 1, 1, $2, $3)",
    )
    .bind(&forged.kid)
    .bind(&forged.public_x)
    .bind(format!("plain:{}", STANDARD.encode(&forged.pkcs8)))
    .execute(app.auth.db())
    .await
    .unwrap();
    // Several polls later, the instance still has only its own key.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let jwks: serde_json::Value =
        app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids.len(), 1, "{kids:?}");
    assert!(!kids.contains(&forged.kid.as_str()), "the key in the clear was taken in: {kids:?}");
    assert_eq!(app.secret_status(&app.signup("alice").await.access_token).await, 200, "the own key still signs");
}

#[tokio::test]
async fn the_kek_rotates_while_the_old_one_still_reads() {
    let app = spawn_app_with(|c| c.keys.encryption_key = Some(KeyEncryptionKey::from_bytes(KEK))).await;
    let tokens = app.signup("alice").await;
    let before = stored_private_values(&app).await;
    // The operator starts every instance with the new key and the old one beside it...
    let mut config = app.stop().await;
    config.keys.encryption_key = Some(KeyEncryptionKey::from_bytes([9; 32]));
    config.keys.previous_encryption_key = Some(KeyEncryptionKey::from_bytes(KEK));
    let app = start(config.clone()).await;
    let tokens = app.refreshed(&tokens).await;
    // ...re-seals...
    let env = [("KEY_ENCRYPTION_KEY", kek_env([9; 32])), ("KEY_ENCRYPTION_KEY_PREVIOUS", kek_env(KEK))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run_cli(&app, &["rotate-kek"], &env).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 key(s) re-sealed"));
    let after = stored_private_values(&app).await;
    assert!(after.iter().all(|v| v.starts_with("sealed:") && !before.contains(v)), "{after:?}");
    // ...and drops the old key: everything opens with the new one alone.
    let mut config = app.stop().await;
    config.keys.previous_encryption_key = None;
    let app = start(config).await;
    assert_eq!(app.refresh(&tokens.refresh_token).await.status(), 200);
    // A second run has nothing left to do.
    let again = run_cli(&app, &["rotate-kek"], &env).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 key(s) re-sealed"));
}
