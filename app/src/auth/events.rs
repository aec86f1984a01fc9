//! The security event log: a row in `security_events` and a structured `tracing` event with
//! target `security`. Ids, kinds and addresses only: never a password, token or hash.

use super::caller::ClientInfo;
use super::store::db::{now_ms, Statement};
use super::AuthService;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Signup,
    Login,
    LoginFailed,
    Refresh,
    RefreshTokenReuse,
    RefreshGraceReplay,
    /// A spent refresh token's fate was asked after its answer was lost (or by a thief): the
    /// session ends, as reuse would end it, without calling it theft.
    RefreshLost,
    Logout,
    LogoutAll,
    SessionRevoked,
    AccountLocked,
    AccountUnlocked,
    PasswordChanged,
    /// With a link mailed to the account's address (`Happened::with_detail`: none).
    PasswordResetRequested,
    PasswordReset,
    /// A new address asked for, while a verified one stays until the new one is verified.
    EmailChangeRequested,
    EmailChanged,
    EmailVerified,
    AccountDeleted,
    /// One-time codes confirmed (turned on), turned off, their recovery codes made anew.
    OneTimeCodesOn,
    OneTimeCodesOff,
    RecoveryCodesRenewed,
}

impl Event {
    pub fn kind(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::Refresh => "refresh",
            Self::RefreshTokenReuse => "refresh_token_reuse",
            Self::RefreshGraceReplay => "refresh_grace_replay",
            Self::RefreshLost => "refresh_lost",
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::SessionRevoked => "session_revoked",
            Self::AccountLocked => "account_locked",
            Self::AccountUnlocked => "account_unlocked",
            Self::PasswordChanged => "password_changed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::EmailChangeRequested => "email_change_requested",
            Self::EmailChanged => "email_changed",
            Self::EmailVerified => "email_verified",
            Self::AccountDeleted => "account_deleted",
            Self::OneTimeCodesOn => "one_time_codes_on",
            Self::OneTimeCodesOff => "one_time_codes_off",
            Self::RecoveryCodesRenewed => "recovery_codes_renewed",
        }
    }

    /// Refreshes are the bulk of the traffic: they go to the log, not the table.
    fn stored(self) -> bool {
        !matches!(self, Self::Refresh)
    }

    /// This event, of `user_id`'s account and `session_id`, caused by `client`.
    pub fn of<'a>(self, user_id: Option<&'a str>, session_id: Option<&'a str>, client: &'a ClientInfo) -> Happened<'a> {
        Happened { event: self, user_id, session_id, client, detail: None }
    }
}

/// An event with whom and what it concerns, before it is logged and stored.
pub(crate) struct Happened<'a> {
    event: Event,
    user_id: Option<&'a str>,
    session_id: Option<&'a str>,
    client: &'a ClientInfo,
    detail: Option<&'a str>,
}

impl<'a> Happened<'a> {
    /// A detail of Baton's own making (addresses, kinds; nothing the client wrote); without one,
    /// the client's family.
    pub fn with_detail(self, detail: Option<&'a str>) -> Self {
        Self { detail, ..self }
    }
}

/// A security event to be stored: owned, so that it can ride in a group commit with the change
/// it records (see `store::writer`).
pub(crate) struct EventRow {
    id: String,
    at: i64,
    kind: &'static str,
    user_id: Option<String>,
    session_id: Option<String>,
    ip: Option<String>,
    detail: Option<String>,
}

impl EventRow {
    pub(crate) fn insert(&self) -> Statement {
        sqlx::query(
            "INSERT INTO security_events (id, at, kind, user_id, session_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.id.clone())
        .bind(self.at)
        .bind(self.kind)
        .bind(self.user_id.clone())
        .bind(self.session_id.clone())
        .bind(self.ip.clone())
        .bind(self.detail.clone())
    }
}

impl AuthService {
    /// Logs, counts and stores what happened. Losing the stored row must not fail the request
    /// that caused it; the log line stays.
    pub(crate) async fn record(&self, happened: Happened<'_>) {
        let Some(row) = self.log_event(happened) else { return };
        let kind = row.kind;
        let result = self.writer().execute_grouped(move || vec![row.insert()]).await;
        if let Err(e) = result {
            tracing::error!(target: "security", event = kind, error = %e, "could not store security event");
        }
    }

    /// Counts and logs what happened; the row to store, for the events the table keeps (to be
    /// committed with the change it records).
    pub(crate) fn log_event(&self, happened: Happened<'_>) -> Option<EventRow> {
        let Happened { event, user_id, session_id, client, detail } = happened;
        let detail = detail.or_else(|| client.user_agent.as_deref().map(agent_family));
        let kind = event.kind();
        // Logins, refreshes, grace replays, reuse, revocations …: one counter, by kind.
        metrics::counter!("baton_security_events_total", "event" => kind).increment(1);
        if matches!(event, Event::RefreshTokenReuse | Event::LoginFailed | Event::AccountLocked) {
            tracing::warn!(target: "security", event = kind, user_id, session_id, ip = client.ip.as_deref(), detail);
        } else {
            tracing::info!(target: "security", event = kind, user_id, session_id, ip = client.ip.as_deref(), detail);
        }
        event.stored().then(|| EventRow {
            id: uuid::Uuid::new_v4().to_string(),
            at: now_ms(),
            kind,
            user_id: user_id.map(str::to_owned),
            session_id: session_id.map(str::to_owned),
            ip: client.ip.clone(),
            detail: detail.map(str::to_owned),
        })
    }
}

/// The security log keeps the kind of client, not its raw User-Agent: that string is chosen by the
/// client, can carry anything, and with an address it fingerprints a person.
pub(crate) fn agent_family(user_agent: &str) -> &'static str {
    const FAMILIES: [(&str, &str); 7] = [
        ("Firefox/", "Firefox"),
        ("Edg/", "Edge"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("okhttp", "Android app"),
        ("curl/", "curl"),
        ("python", "Python"),
    ];
    FAMILIES.iter().find(|(marker, _)| user_agent.contains(marker)).map_or("other", |(_, family)| family)
}
