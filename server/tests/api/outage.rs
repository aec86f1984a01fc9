//! The database stops answering: requests get 503 in bounded time, and nobody is logged out.

use crate::common::*;
use sqlx::{Connection, Executor};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_database_that_stops_answering_mid_refresh_is_a_503_and_the_tokens_survive() {
    let app = spawn_app_with(|c| c.db_timeout = Duration::from_secs(1)).await;
    let tokens = app.signup("alice").await;
    // Another client of the database holds a lock that the refresh's writes need: on SQLite the
    // write lock, on PostgreSQL the sessions table (reads still pass, so the refresh gets as far
    // as its write transaction).
    let mut blocker = sqlx::AnyConnection::connect(&app.config.database_url).await.unwrap();
    if is_postgres() {
        blocker.execute("BEGIN; LOCK TABLE sessions IN EXCLUSIVE MODE").await.unwrap();
    } else {
        blocker.execute("BEGIN EXCLUSIVE").await.unwrap();
    }
    let started = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(8), app.refresh(&tokens.refresh_token))
        .await
        .expect("answered while the database is stuck");
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 503, "server_busy").await;
    assert!(started.elapsed() < Duration::from_secs(5), "within DB_TIMEOUT and some: {:?}", started.elapsed());

    blocker.execute("ROLLBACK").await.unwrap();
    // Nothing was spent: the same refresh token works, and so does the access token.
    assert_eq!(app.secret_status(&tokens.access_token).await, 200);
    let next = app.refreshed(&tokens).await;
    assert_eq!(app.secret_status(&next.access_token).await, 200);
}
