//! The operator's commands: `server <command> [argument]`. Without a command the binary serves.

use crate::settings::Settings;
use app::auth::AuthService;
use app::error::AppError;
use std::process::ExitCode;

pub const USAGE: &str = "\
usage: server [COMMAND]

Without a command, serves Baton on LEPTOS_SITE_ADDR. Configuration comes from the environment
or a .env file (see README.md); commands use the same database and data directory.

Commands:
  check-config                 print the effective settings (secrets redacted), and warnings
  unlock <username>            clear a username's failed-login count and lock
  turn-off-codes <username>    turn the user's one-time codes off and tell the owner (for an
                               owner who lost the authenticator and the recovery codes, or whose
                               codes a thief set: then revoke-sessions ends the thief's sessions)
  sessions <username>          list the user's live sessions
  revoke-sessions <username>   end every session of the user
  revoke-session <session-id>  end one session
  purge                        delete ended sessions and stale login counts now
  rotate-signing-key           add a JWT signing key: published now, signing on every instance
                               SIGNING_KEY_PUBLISH_DELAY later (old keys keep verifying)
  seal-keys                    seal the keys and one-time-code secrets stored in the clear under
                               KEY_ENCRYPTION_KEY (once, after setting it: the server refuses
                               them in the clear beside it)
  rotate-kek                   re-seal every key and one-time-code secret under KEY_ENCRYPTION_KEY
                               that is sealed under
                               KEY_ENCRYPTION_KEY_PREVIOUS (run with both set; then drop the old)
  help                         this text (also --help, -h)

Exit status: 0 done; 1 failed (bad configuration, no such user or session, database
trouble); 2 usage error.";

/// What the command line asks for.
pub enum Invocation {
    Serve,
    Help,
    Run(Command),
}

pub enum Command {
    CheckConfig,
    /// Commands that need the database.
    Db(DbCommand),
    /// Commands on the stored keys: they run where the server would refuse to start.
    Keys(KeyCommand),
}

pub enum KeyCommand {
    Seal,
    RotateKek,
}

pub enum DbCommand {
    Unlock(String),
    TurnOffCodes(String),
    Sessions(String),
    RevokeSessions(String),
    RevokeSession(String),
    Purge,
    RotateSigningKey,
}

impl Invocation {
    /// `Err`: a usage error, with what was wrong.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let (name, rest) = match args.split_first() {
            None => return Ok(Self::Serve),
            Some((name, rest)) => (name.as_str(), rest),
        };
        let one = |what: &str| match rest {
            [arg] => Ok(arg.clone()),
            _ => Err(format!("{name} takes one argument: <{what}>")),
        };
        let none =
            |command: Command| if rest.is_empty() { Ok(command) } else { Err(format!("{name} takes no argument")) };
        let command = match name {
            "help" | "--help" | "-h" => return Ok(Self::Help),
            "check-config" => none(Command::CheckConfig)?,
            "unlock" => Command::Db(DbCommand::Unlock(one("username")?)),
            "turn-off-codes" => Command::Db(DbCommand::TurnOffCodes(one("username")?)),
            "sessions" => Command::Db(DbCommand::Sessions(one("username")?)),
            "revoke-sessions" => Command::Db(DbCommand::RevokeSessions(one("username")?)),
            "revoke-session" => Command::Db(DbCommand::RevokeSession(one("session-id")?)),
            "purge" => none(Command::Db(DbCommand::Purge))?,
            "rotate-signing-key" => none(Command::Db(DbCommand::RotateSigningKey))?,
            "seal-keys" => none(Command::Keys(KeyCommand::Seal))?,
            "rotate-kek" => none(Command::Keys(KeyCommand::RotateKek))?,
            other => return Err(format!("unknown command {other:?}")),
        };
        Ok(Self::Run(command))
    }
}

impl Command {
    pub async fn run(self, settings: Result<Settings, app::auth::SettingError>) -> ExitCode {
        let settings = match settings {
            Ok(settings) => settings,
            Err(e) => return failed(e),
        };
        match self {
            Self::CheckConfig => {
                for (var, value) in settings.effective() {
                    println!("{var}={value}");
                }
                // Where the server would listen, as it reads it (LEPTOS_SITE_ADDR).
                let public = std::env::var("LEPTOS_SITE_ADDR")
                    .ok()
                    .and_then(|a| a.trim().parse::<std::net::SocketAddr>().ok())
                    .is_some_and(|a| !a.ip().is_loopback());
                for warning in settings.auth.warnings(public) {
                    eprintln!("warning: {warning}");
                }
                ExitCode::SUCCESS
            }
            Self::Keys(command) => {
                let config = &settings.auth;
                let db = match app::auth::store::db::connect_and_migrate(&config.database_url, config.db_timeout).await
                {
                    Ok(db) => db,
                    Err(e) => return failed(e),
                };
                let outcome = match command {
                    KeyCommand::Seal => app::auth::tokens::keys::seal_plain_rows(&db, config)
                        .await
                        .map(|n| format!("{n} key(s) sealed")),
                    KeyCommand::RotateKek => app::auth::tokens::keys::rotate_kek(&db, config)
                        .await
                        .map(|n| format!("{n} key(s) re-sealed under the new KEY_ENCRYPTION_KEY")),
                };
                db.close().await;
                outcome.map_or_else(failed, done)
            }
            Self::Db(command) => {
                let auth = match AuthService::start(settings.auth).await {
                    Ok(auth) => auth,
                    Err(e) => return failed(e),
                };
                let outcome = command.run_on(&auth).await;
                auth.db().close().await;
                outcome.unwrap_or_else(|e| match e {
                    AppError::NotFound => failed("no such user or live session"),
                    other => failed(other),
                })
            }
        }
    }
}

impl DbCommand {
    async fn run_on(self, auth: &AuthService) -> Result<ExitCode, AppError> {
        Ok(match self {
            Self::Unlock(username) => match auth.unlock(&username).await? {
                true => done(format!("{username}: unlocked")),
                false => done(format!("{username}: not locked, nothing to do")),
            },
            Self::TurnOffCodes(username) => match auth.turn_off_codes_of(&username).await? {
                true => done(format!("{username}: one-time codes turned off")),
                false => done(format!("{username}: one-time codes were not on, nothing to do")),
            },
            Self::Sessions(username) => {
                let sessions = auth.sessions_of(&username).await?;
                for session in &sessions {
                    println!("{session}");
                }
                eprintln!("{} live session(s)", sessions.len());
                ExitCode::SUCCESS
            }
            Self::RevokeSessions(username) => {
                done(format!("{username}: {} session(s) ended", auth.revoke_sessions_of(&username).await?))
            }
            Self::RevokeSession(id) => {
                auth.revoke_session_by_id(&id).await?;
                done(format!("session {id} ended"))
            }
            Self::Purge => {
                let purged = auth.purge().await?;
                done(format!(
                    "purged {} ended session(s), {} stale login count(s) and {} retired signing key(s)",
                    purged.sessions, purged.login_attempts, purged.signing_keys
                ))
            }
            Self::RotateSigningKey => match app::auth::tokens::keys::rotate(auth.db(), auth.settings()).await {
                Ok(app::auth::tokens::keys::AddedKey { kid, activates_at }) => {
                    let wait = (activates_at - app::auth::store::db::now_ms()).max(0) / 1000;
                    done(format!("new signing key {kid}: published now, signs on every instance in {wait} s"))
                }
                Err(e) => failed(e),
            },
        })
    }
}

fn done(message: String) -> ExitCode {
    println!("{message}");
    ExitCode::SUCCESS
}

fn failed(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::FAILURE
}
