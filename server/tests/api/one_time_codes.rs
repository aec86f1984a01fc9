//! One-time codes (TOTP) as a second factor over REST: turning them on and off, the login's second
//! step, recovery codes, replays, the backoff, the challenge's binding, and a password reset.
//! On both databases.

use crate::common::*;
use crate::dpop_client::DpopKey;
use crate::mail_sink::MailSink;
use app::auth::settings::SmtpUrl;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// The person's authenticator app: the secret it was given, and the codes it shows. Each code it
/// hands out is for a newer 30-second step than the last (the server takes a step once), one step
/// before now at the earliest and one after at the latest, the window the server accepts; and
/// valid for 10 s more at least (the previous step only in a step's first 20 s).
struct Authenticator {
    totp: totp_rs::TOTP,
    last_step: u64,
}

impl Authenticator {
    fn from_setup(setup: &Value) -> Self {
        let base32: String = setup["secret"].as_str().unwrap().split_whitespace().collect();
        assert_eq!(
            setup["otpauthUri"].as_str().unwrap().split("secret=").nth(1).unwrap().split('&').next(),
            Some(base32.as_str())
        );
        let secret = totp_rs::Secret::Encoded(base32).to_bytes().unwrap();
        Self { totp: totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, secret), last_step: 0 }
    }

    fn now_step() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / 30
    }

    /// The earliest step whose code stays valid 10 s more.
    fn earliest() -> u64 {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        if secs % 30 < 20 {
            secs / 30 - 1
        } else {
            secs / 30
        }
    }

    /// The next code the server has not seen (waiting for a step if need be).
    async fn next_code(&mut self) -> String {
        let step = Self::earliest().max(self.last_step + 1);
        while step > Self::now_step() + 1 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        self.last_step = step;
        self.totp.generate(step * 30)
    }

    /// A code the server already took.
    fn last_code(&self) -> String {
        self.totp.generate(self.last_step * 30)
    }
}

impl TestApp {
    async fn post_as(&self, path: &str, access: &str, body: Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(access).json(&body).send().await.unwrap()
    }

    /// Turns one-time codes on for the holder of `access`: the app, and the recovery codes.
    async fn turn_on_codes(&self, access: &str) -> (Authenticator, Vec<String>) {
        let res = self.post_as("/api/account/totp", access, json!({"password": PASSWORD})).await;
        assert_eq!(res.status(), 200);
        let mut app = Authenticator::from_setup(&res.json().await.unwrap());
        let res = self.post_as("/api/account/totp/confirm", access, json!({"code": app.next_code().await})).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        let codes = body["recoveryCodes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        (app, codes)
    }

    /// The login's first step for an account with codes: the challenge.
    async fn password_step(&self, username: &str) -> String {
        let res = self.post("/api/auth/login", json!({"username": username, "password": PASSWORD})).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["mfaRequired"], true, "{body}");
        assert!(body.get("accessToken").is_none() && body.get("refreshToken").is_none(), "no tokens yet: {body}");
        assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
        body["challenge"].as_str().unwrap().to_owned()
    }

    async fn code_step(&self, challenge: &str, code: &str) -> reqwest::Response {
        self.post("/api/auth/login/mfa", json!({"challenge": challenge, "code": code})).await
    }

    async fn account_of(&self, access: &str) -> Value {
        self.get_with("/api/account", access).await.json().await.unwrap()
    }
}

#[tokio::test]
async fn codes_are_turned_on_with_the_password_and_a_first_code() {
    let app = spawn_app().await;
    let me = app.signup("tara").await;
    let res = app.post_as("/api/account/totp", &me.access_token, json!({"password": "not the password"})).await;
    assert_error(res, 401, "invalid_credentials").await;
    let res = app.post_as("/api/account/totp", &me.access_token, json!({"password": PASSWORD})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let setup: Value = res.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap();
    assert_eq!(secret.split(' ').map(str::len).collect::<Vec<_>>(), [4; 8], "base32 in groups of four: {secret}");
    assert!(setup["otpauthUri"].as_str().unwrap().starts_with("otpauth://totp/Baton:tara?secret="));
    assert!(setup["qrSvg"].as_str().unwrap().contains("<svg"));
    let mut authenticator = Authenticator::from_setup(&setup);

    // Not on before a code confirms it: the login still gives tokens.
    assert_eq!(app.account_of(&me.access_token).await["oneTimeCodes"], false);
    app.login("tara").await;
    let res = app.post_as("/api/account/totp/confirm", &me.access_token, json!({"code": "000000"})).await;
    assert_error(res, 401, "invalid_code").await;
    let code = authenticator.next_code().await;
    let res = app.post_as("/api/account/totp/confirm", &me.access_token, json!({"code": code})).await;
    assert_eq!(res.status(), 200);
    let codes: Value = res.json().await.unwrap();
    assert_eq!(codes["recoveryCodes"].as_array().unwrap().len(), 10);
    let account = app.account_of(&me.access_token).await;
    assert_eq!((account["oneTimeCodes"].clone(), account["recoveryCodesLeft"].clone()), (json!(true), json!(10)));
    // On is on: a second setup must turn them off first, and a confirmation has nothing to confirm.
    let res = app.post_as("/api/account/totp", &me.access_token, json!({"password": PASSWORD})).await;
    assert_error(res, 409, "one_time_codes_on").await;
    let res = app.post_as("/api/account/totp/confirm", &me.access_token, json!({"code": code})).await;
    assert_error(res, 409, "one_time_codes_on").await;
    // A setup left unconfirmed for 15 minutes must begin again.
    let other = app.signup("tom").await;
    let res = app.post_as("/api/account/totp", &other.access_token, json!({"password": PASSWORD})).await;
    let mut late = Authenticator::from_setup(&res.json().await.unwrap());
    sqlx::query("UPDATE totp_secrets SET created_at = created_at - 900001 WHERE confirmed_at IS NULL")
        .execute(app.auth.db())
        .await
        .unwrap();
    let res =
        app.post_as("/api/account/totp/confirm", &other.access_token, json!({"code": late.next_code().await})).await;
    assert_error(res, 409, "one_time_codes_off").await;
    // And the purge deletes its secret; confirmed ones stay.
    app.auth.purge_older_than(std::time::Duration::from_secs(3600), None).await.unwrap();
    let left: Vec<String> =
        sqlx::query_scalar("SELECT user_id FROM totp_secrets").fetch_all(app.auth.db()).await.unwrap();
    assert_eq!(left, [me.user.id]);
}

#[tokio::test]
async fn a_login_asks_for_a_code_and_each_code_works_once() {
    let app = spawn_app().await;
    let me = app.signup("uma").await;
    let (mut authenticator, recovery) = app.turn_on_codes(&me.access_token).await;

    // The code the setup was confirmed with is spent already.
    let challenge = app.password_step("uma").await;
    assert_error(app.code_step(&challenge, &authenticator.last_code()).await, 401, "invalid_code").await;
    let res = app.code_step(&challenge, &authenticator.next_code().await).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens: TokenResponse = res.json().await.unwrap();
    assert_eq!(app.secret_status(&tokens.access_token).await, 200);
    // The challenge is spent, and the code with it (a fresh challenge does not revive it).
    assert_error(app.code_step(&challenge, &authenticator.last_code()).await, 401, "invalid_mfa_challenge").await;
    let challenge = app.password_step("uma").await;
    assert_error(app.code_step(&challenge, &authenticator.last_code()).await, 401, "invalid_code").await;

    // A recovery code, as typed by a person (upper case, spaces): once.
    let typed = recovery[0].to_uppercase().replace('-', " ");
    assert_eq!(app.code_step(&challenge, &typed).await.status(), 200);
    let challenge = app.password_step("uma").await;
    assert_error(app.code_step(&challenge, &recovery[0]).await, 401, "invalid_code").await;
    assert_eq!(app.account_of(&tokens.access_token).await["recoveryCodesLeft"], 9);
    assert_eq!(app.code_step(&challenge, &recovery[1]).await.status(), 200);

    // Events name the method.
    let methods: Vec<Option<String>> =
        sqlx::query_scalar("SELECT detail FROM security_events WHERE kind = 'login' AND user_id = $1 ORDER BY at")
            .bind(&me.user.id)
            .fetch_all(app.auth.db())
            .await
            .unwrap();
    assert_eq!(methods.iter().filter(|m| m.as_deref() == Some("recovery_code")).count(), 2, "{methods:?}");
    assert_eq!(methods.iter().filter(|m| m.as_deref() == Some("totp")).count(), 1, "{methods:?}");
}

#[tokio::test]
async fn wrong_codes_count_against_the_login_backoff_and_a_challenge_has_five_tries() {
    let app = spawn_app().await;
    let me = app.signup("vic").await;
    let (mut authenticator, _) = app.turn_on_codes(&me.access_token).await;
    let challenge = app.password_step("vic").await;
    // The password's attempt and four wrong codes are the five free attempts; then the waits
    // double (1 s, 2 s, 4 s …), whatever is sent.
    for _ in 0..4 {
        assert_error(app.code_step(&challenge, "123456").await, 401, "invalid_code").await;
    }
    let body = assert_error(app.code_step(&challenge, "111111").await, 429, "too_many_requests").await;
    assert!(body["retryAfter"].as_u64().unwrap() >= 1, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // The fifth wrong code uses up the challenge's tries: the password is asked again.
    assert_error(app.code_step(&challenge, "654321").await, 401, "invalid_code").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let code = authenticator.next_code().await;
    assert_error(app.code_step(&challenge, &code).await, 401, "invalid_mfa_challenge").await;
    let challenge = app.password_step("vic").await;
    // Five wrong codes in a row (the refused one was not checked), a right password between.
    let in_a_row = || sqlx::query_scalar::<_, i64>("SELECT wrong_codes FROM totp_secrets").fetch_one(app.auth.db());
    assert_eq!(in_a_row().await.unwrap(), 5);
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    assert_eq!(app.code_step(&challenge, &code).await.status(), 200, "the code the dead challenge did not spend");
    assert_eq!(in_a_row().await.unwrap(), 0);
    // A right code clears the count: the next login starts afresh.
    let challenge = app.password_step("vic").await;
    assert_eq!(app.code_step(&challenge, &authenticator.next_code().await).await.status(), 200);
}

#[tokio::test]
async fn a_challenge_is_bound_to_its_client_and_expires() {
    let app = spawn_app().await;
    let me = app.signup("wes").await;
    let (mut authenticator, recovery) = app.turn_on_codes(&me.access_token).await;

    // Another user agent (a thief who saw the challenge) gets nothing, and spends nothing.
    let challenge = app.password_step("wes").await;
    let other = client_from("127.0.0.1", "another agent");
    let res = other
        .post(app.url("/api/auth/login/mfa"))
        .json(&json!({"challenge": challenge, "code": recovery[0]}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "invalid_mfa_challenge").await;

    // A DPoP login's challenge needs the same key, and the session is bound to it.
    let key = DpopKey::generate();
    let url = app.url("/api/auth/login");
    let res = app
        .http
        .post(&url)
        .header("DPoP", key.proof("POST", &url, None))
        .json(&json!({"username": "wes", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let bound: Value = res.json().await.unwrap();
    let bound = bound["challenge"].as_str().unwrap();
    let mfa = app.url("/api/auth/login/mfa");
    let body = json!({"challenge": bound, "code": recovery[0]});
    assert_error(app.http.post(&mfa).json(&body).send().await.unwrap(), 401, "invalid_mfa_challenge").await;
    let thief = DpopKey::generate();
    let res = app.http.post(&mfa).header("DPoP", thief.proof("POST", &mfa, None)).json(&body).send().await.unwrap();
    assert_error(res, 401, "invalid_mfa_challenge").await;
    let res = app.http.post(&mfa).header("DPoP", key.proof("POST", &mfa, None)).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let tokens: TokenResponse = res.json().await.unwrap();
    assert_eq!(tokens.token_type, "DPoP");

    // Five minutes, then the password again.
    let challenge = app.password_step("wes").await;
    sqlx::query("UPDATE mfa_challenges SET expires_at = 0").execute(app.auth.db()).await.unwrap();
    let res = app.code_step(&challenge, &authenticator.next_code().await).await;
    assert_error(res, 401, "invalid_mfa_challenge").await;
    // A challenge of the password before a change is void.
    let challenge = app.password_step("wes").await;
    let change = json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD});
    assert_eq!(app.post_as("/api/account/password", &me.access_token, change).await.status(), 204);
    let res = app.code_step(&challenge, &authenticator.next_code().await).await;
    assert_error(res, 401, "invalid_mfa_challenge").await;
    // Nonsense is a clear 401 or 422, never a 5xx.
    assert_error(app.code_step("bmc_nope", "123456").await, 401, "invalid_mfa_challenge").await;
    let res = app.post("/api/auth/login/mfa", json!({"challenge": "x"})).await;
    assert_error(res, 422, "invalid_input").await;
}

#[tokio::test]
async fn one_challenge_and_code_sent_twice_at_once_log_in_once() {
    let app = spawn_app().await;
    let me = app.signup("xia").await;
    let (mut authenticator, _) = app.turn_on_codes(&me.access_token).await;
    let challenge = app.password_step("xia").await;
    let code = authenticator.next_code().await;
    let (a, b) = tokio::join!(app.code_step(&challenge, &code), app.code_step(&challenge, &code));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 401]);
    let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(&me.user.id)
        .fetch_one(app.auth.db())
        .await
        .unwrap();
    assert_eq!(live, 2, "the signup's session and one more");
}

#[tokio::test]
async fn codes_turn_off_and_recovery_codes_renew_with_the_password() {
    let app = spawn_app().await;
    let me = app.signup("yan").await;
    let (_, old) = app.turn_on_codes(&me.access_token).await;
    let res =
        app.post_as("/api/account/totp/recovery-codes", &me.access_token, json!({"password": "wrong one!"})).await;
    assert_error(res, 401, "invalid_credentials").await;
    let res = app.post_as("/api/account/totp/recovery-codes", &me.access_token, json!({"password": PASSWORD})).await;
    assert_eq!(res.status(), 200);
    let new: Value = res.json().await.unwrap();
    let new = new["recoveryCodes"][0].as_str().unwrap().to_owned();
    let challenge = app.password_step("yan").await;
    assert_error(app.code_step(&challenge, &old[0]).await, 401, "invalid_code").await;
    assert_eq!(app.code_step(&challenge, &new).await.status(), 200);

    let off = |password: &str| {
        app.http
            .delete(app.url("/api/account/totp"))
            .bearer_auth(&me.access_token)
            .json(&json!({"password": password}))
            .send()
    };
    assert_error(off("wrong one!").await.unwrap(), 401, "invalid_credentials").await;
    assert_eq!(off(PASSWORD).await.unwrap().status(), 204);
    assert_error(off(PASSWORD).await.unwrap(), 409, "one_time_codes_off").await;
    app.login("yan").await;
    assert_eq!(app.account_of(&me.access_token).await["recoveryCodesLeft"], 0);
    let res = app.post_as("/api/account/totp/recovery-codes", &me.access_token, json!({"password": PASSWORD})).await;
    assert_error(res, 409, "one_time_codes_off").await;
}

#[tokio::test]
async fn an_account_with_codes_is_deleted_with_them() {
    let app = spawn_app().await;
    let me = app.signup("abe").await;
    app.turn_on_codes(&me.access_token).await;
    app.password_step("abe").await;
    assert_eq!(app.delete_account(&me.access_token, PASSWORD).await.status(), 204);
    for table in ["totp_secrets", "recovery_codes", "mfa_challenges"] {
        let left: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(app.auth.db()).await.unwrap();
        assert_eq!(left, 0, "{table}");
    }
}

#[tokio::test]
async fn a_password_reset_of_an_account_with_codes_asks_for_one() {
    let sink = MailSink::start();
    let url = sink.url();
    let app = spawn_app_with(move |c| c.mail.smtp_url = Some(SmtpUrl::from(url))).await;
    let body = json!({"username": "zoe", "password": PASSWORD, "email": "zoe@example.com"});
    let me: TokenResponse = app.post("/api/auth/signup", body).await.json().await.unwrap();
    let verify = sink.wait_for("zoe@example.com", "Confirm").await;
    let res = app.post("/api/account/email/verify", json!({"token": verify.link_token("/verify")})).await;
    assert_eq!(res.status(), 204);
    let (mut authenticator, recovery) = app.turn_on_codes(&me.access_token).await;
    sink.wait_for("zoe@example.com", "One-time codes are on").await;

    assert_eq!(app.post("/api/auth/password-reset", json!({"login": "zoe"})).await.status(), 202);
    let token = sink.wait_for("zoe@example.com", "Reset your Baton password").await.link_token("/reset");
    let confirm = |code: Option<&str>| {
        let mut body = json!({"token": token, "newPassword": NEW_PASSWORD});
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        app.post("/api/auth/password-reset/confirm", body)
    };
    // The mailbox alone is not enough; a wrong code spends neither the link nor anything else,
    // and does not count against the login backoff (the reset is the way out of a lock).
    let body = assert_error(confirm(None).await, 401, "invalid_code").await;
    assert!(body["message"].as_str().unwrap().contains("one-time codes"), "{body}");
    for _ in 0..3 {
        assert_error(confirm(Some("000000")).await, 401, "invalid_code").await;
    }
    // Three wrong codes in a row: the owner is told.
    let told = sink.wait_for("zoe@example.com", "Wrong one-time codes").await;
    assert!(told.text.contains("3 wrong one-time codes in a row"), "{}", told.text);
    assert_eq!(app.secret_status(&me.access_token).await, 200, "nothing changed");
    let counted: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM login_attempts").fetch_one(app.auth.db()).await.unwrap();
    assert_eq!(counted, 0, "wrong reset codes are not login attempts");
    for _ in 0..6 {
        app.post("/api/auth/login", json!({"username": "zoe", "password": "a wrong guess"})).await;
    }
    let res = app.post("/api/auth/login", json!({"username": "zoe", "password": PASSWORD})).await;
    assert_error(res, 429, "too_many_requests").await;
    assert_eq!(confirm(Some(&recovery[3])).await.status(), 200, "a locked owner's reset works");
    // A link checks five codes, however many are sent at once; then it is void.
    let new_link = |nth: usize| {
        let (app, sink) = (&app, &sink);
        async move {
            assert_eq!(app.post("/api/auth/password-reset", json!({"login": "zoe"})).await.status(), 202);
            let mail = sink.wait_for_nth("zoe@example.com", "Reset your Baton password", nth, Duration::from_secs(20));
            mail.await.link_token("/reset")
        }
    };
    let with_code = |token: &str, code: &str| {
        let body = json!({"token": token, "newPassword": "yet another passphrase", "code": code});
        app.post("/api/auth/password-reset/confirm", body)
    };
    let token = new_link(2).await;
    let answers = futures::future::join_all((0..8).map(|_| with_code(&token, "000000"))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [400, 400, 400, 401, 401, 401, 401, 401], "five codes checked, the rest refused");
    // The right recovery code ended the first run: this one is told again, once.
    sink.wait_for_nth("zoe@example.com", "Wrong one-time codes", 2, Duration::from_secs(20)).await;
    assert_error(with_code(&token, &recovery[4]).await, 400, "invalid_reset_token").await;
    // And the account's links check ten codes a day: the next link gets one, then a wait.
    let token = new_link(3).await;
    assert_error(with_code(&token, "000000").await, 401, "invalid_code").await;
    let res = with_code(&token, &recovery[4]).await;
    let retry_after: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 23 * 3600 && retry_after <= 24 * 3600, "{retry_after}");
    assert_error(res, 429, "too_many_requests").await;
    // The codes stay on for the new password.
    let res = app.post("/api/auth/login", json!({"username": "zoe", "password": NEW_PASSWORD})).await;
    let challenge: Value = res.json().await.unwrap();
    let res = app.code_step(challenge["challenge"].as_str().unwrap(), &authenticator.next_code().await).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_operator_turns_off_the_codes_of_an_owner_who_lost_them() {
    let sink = MailSink::start();
    let url = sink.url();
    let smtp_url = url.clone();
    let app = spawn_app_with(move |c| c.mail.smtp_url = Some(SmtpUrl::from(url))).await;
    let body = json!({"username": "ida", "password": PASSWORD, "email": "ida@example.com"});
    let me: TokenResponse = app.post("/api/auth/signup", body).await.json().await.unwrap();
    let verify = sink.wait_for("ida@example.com", "Confirm").await;
    let res = app.post("/api/account/email/verify", json!({"token": verify.link_token("/verify")})).await;
    assert_eq!(res.status(), 204);
    app.turn_on_codes(&me.access_token).await;
    app.password_step("ida").await;
    // Run as the operator would, with the server's settings.
    let public_url = app.url("");
    let env = [("SMTP_URL", smtp_url.as_str()), ("PUBLIC_URL", public_url.trim_end_matches('/'))];
    let out = run_cli(&app, &["turn-off-codes", "IDA"], &env).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!((out.status.code(), stdout.trim()), (Some(0), "IDA: one-time codes turned off"), "{stderr}");
    // The owner is told.
    sink.wait_for("ida@example.com", "One-time codes were turned off").await;
    app.login("ida").await;
    let out = run_cli(&app, &["turn-off-codes", "ida"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("were not on"));
    assert_eq!(run_cli(&app, &["turn-off-codes", "nobody"], &[]).await.status.code(), Some(1));
    let detail: Option<String> =
        sqlx::query_scalar("SELECT detail FROM security_events WHERE kind = 'one_time_codes_off' AND user_id = $1")
            .bind(&me.user.id)
            .fetch_one(app.auth.db())
            .await
            .unwrap();
    assert_eq!(detail.as_deref(), Some("by an operator"));
}

#[tokio::test]
async fn with_a_key_encryption_key_the_secret_is_sealed_to_its_account() {
    use app::auth::settings::KeyEncryptionKey;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    let stored = |app: &TestApp, user_id: String| {
        let db = app.auth.db().clone();
        async move {
            let secret: String = sqlx::query_scalar("SELECT secret FROM totp_secrets WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&db)
                .await
                .unwrap();
            secret
        }
    };
    // Codes turned on before the operator set a KEK: in the clear, refused beside one until
    // `server seal-keys` has sealed them.
    let app = spawn_app().await;
    let me = app.signup("vera").await;
    let (mut authenticator, _) = app.turn_on_codes(&me.access_token).await;
    let plain = format!("plain:{}", STANDARD.encode(&authenticator.totp.secret));
    assert_eq!(stored(&app, me.user.id.clone()).await, plain);
    let mut config = app.stop().await;
    let kek = |bytes: [u8; 32]| (Some(KeyEncryptionKey::from_bytes(bytes)), STANDARD.encode(bytes));
    let (first, first_env) = kek([42; 32]);
    config.keys.encryption_key = first;
    let error = match app::auth::AuthService::start(config.clone()).await {
        Ok(_) => panic!("started with a one-time-code secret in the clear beside a KEY_ENCRYPTION_KEY"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("one-time-code secret") && error.contains("seal-keys"), "{error}");
    let sealing = run_cli_on(&config, &["seal-keys"], &[("KEY_ENCRYPTION_KEY", &first_env)]).await;
    assert!(String::from_utf8_lossy(&sealing.stdout).contains("3 key(s) sealed"), "{sealing:?}");
    let app = start(config).await;
    let sealed = stored(&app, me.user.id.clone()).await;
    assert!(sealed.starts_with("sealed:") && !sealed.contains(&plain[6..]), "{sealed}");
    let challenge = app.password_step("vera").await;
    assert_eq!(app.code_step(&challenge, &authenticator.next_code().await).await.status(), 200);

    // A new setup is sealed from the start; the KEK rotates under it.
    let other = app.signup("walt").await;
    app.turn_on_codes(&other.access_token).await;
    assert!(stored(&app, other.user.id.clone()).await.starts_with("sealed:"));
    let mut config = app.stop().await;
    let (second, second_env) = kek([9; 32]);
    config.keys.encryption_key = second;
    config.keys.previous_encryption_key = Some(KeyEncryptionKey::from_bytes([42; 32]));
    let env = [("KEY_ENCRYPTION_KEY", second_env.as_str()), ("KEY_ENCRYPTION_KEY_PREVIOUS", first_env.as_str())];
    let out = run_cli_on(&config, &["rotate-kek"], &env).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 key(s) re-sealed"), "{out:?}");
    config.keys.previous_encryption_key = None;
    let app = start(config).await;
    assert_ne!(stored(&app, me.user.id.clone()).await, sealed);
    let challenge = app.password_step("vera").await;
    assert_eq!(app.code_step(&challenge, &authenticator.next_code().await).await.status(), 200);

    // Trouble every secret would have at its owner's login stops the start instead, saying what.
    let config = app.stop().await;
    let wrong_keks =
        [(None, "is sealed: set KEY_ENCRYPTION_KEY"), (Some([7; 32]), "does not open with this KEY_ENCRYPTION_KEY")];
    for (wrong_kek, says) in wrong_keks {
        let mut wrong = config.clone();
        wrong.keys.encryption_key = wrong_kek.map(KeyEncryptionKey::from_bytes);
        let error = match app::auth::AuthService::start(wrong).await {
            Ok(_) => panic!("started with one-time-code secrets it cannot open"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(says) && (error.contains("one-time-code secret") || error.contains("totp:")), "{error}");
    }
    let app = start(config).await;

    // Sealed to its account: vera's secret moved into walt's row does not open there (the
    // operator's trouble, logged; walt is not let in with vera's codes).
    let vera_sealed = stored(&app, me.user.id.clone()).await;
    sqlx::query("UPDATE totp_secrets SET secret = $1 WHERE user_id = $2")
        .bind(vera_sealed)
        .bind(&other.user.id)
        .execute(app.auth.db())
        .await
        .unwrap();
    let challenge = app.password_step("walt").await;
    assert_eq!(app.code_step(&challenge, &authenticator.next_code().await).await.status(), 500);
}
