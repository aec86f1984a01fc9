//! A client written as the Ionic tutorial writes it, against both settings of `REFRESH_ROTATION`.

use crate::common::*;
use std::time::Duration;

/// Keeps the refresh token it got at login for good and stores only the `accessToken` of each
/// refresh answer, as the tutorial's client does: its API never rotated.
struct TutorialClient<'a> {
    app: &'a TestApp,
    access_token: String,
    refresh_token: String,
}

impl TutorialClient<'_> {
    /// Loads the secret; on 401, `GET /api/auth/refresh` with the refresh token as Bearer, keeps
    /// the new access token and tries again. The final status: 401 means logged out.
    async fn load_secret(&mut self) -> u16 {
        let status = self.app.secret_status(&self.access_token).await;
        if status != 401 {
            return status;
        }
        let res = self.app.get_with("/api/auth/refresh", &self.refresh_token).await;
        if res.status() != 200 {
            return res.status().as_u16();
        }
        let body: TokenResponse = res.json().await.unwrap();
        self.access_token = body.access_token;
        self.app.secret_status(&self.access_token).await
    }
}

/// Three refreshes, each after the access token expired: the statuses of the calls.
async fn three_refreshes(rotation: bool) -> Vec<u16> {
    let app = spawn_app_with(|c| {
        c.refresh_rotation = rotation;
        c.access_token_ttl = Duration::from_secs(1);
        c.jwt_leeway = Duration::ZERO;
        // The repeat comes after the grace window: reuse, not a lost answer.
        c.refresh_reuse_grace = Duration::from_secs(1);
    })
    .await;
    let tokens = app.signup("ionic").await;
    let mut client =
        TutorialClient { app: &app, access_token: tokens.access_token, refresh_token: tokens.refresh_token };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(2100)).await;
        statuses.push(client.load_secret().await);
    }
    statuses
}

#[tokio::test]
async fn the_tutorials_client_is_logged_out_at_its_second_refresh_with_rotation_on_and_stays_in_with_it_off() {
    let (on, off) = tokio::join!(three_refreshes(true), three_refreshes(false));
    // On: the second refresh presents the first refresh token again, which is reuse.
    assert_eq!(on, [200, 401, 401]);
    assert_eq!(off, [200, 200, 200]);
}
