//! A refresh's rotation as the database sees it: one conditional UPDATE that moves a session
//! from one generation to the next, merged with the other rotations of a commit group.

use crate::auth::caller::ClientInfo;
use crate::auth::limits::network::network;
use crate::auth::store::db::Statement;
use crate::auth::store::writer::Merge;
use crate::auth::tokens::refresh::agent_hash;
use sqlx::Row as _;

/// One session's move from generation `from` to the next, as a refresh asks it. The writer
/// merges the rotations of a commit group into a few statements ([`Merge`]): round trips to the
/// database per group, not per refresh.
pub(crate) struct Rotation {
    pub session_id: String,
    pub from: i64,
    pub now: i64,
    pub idle_cutoff: i64,
    /// Also how the writer finds this rotation's row among those the statement returns.
    pub access_jti: String,
    pub access_kid: String,
    pub to: IssuedTo,
    pub dpop_jkt: Option<String>,
}

impl Merge for Rotation {
    fn statements(batch: &[&Self]) -> Vec<Statement> {
        Self::updates(batch)
    }

    fn key(&self) -> &str {
        &self.access_jti
    }

    /// The statements return `user_id, dpop_jkt, access_jti`.
    fn key_of(row: &sqlx::any::AnyRow) -> Result<String, sqlx::Error> {
        row.try_get(2)
    }
}

impl Rotation {
    /// Values per rotation in [`Self::updates`].
    const VALUES: usize = 9;
    /// Batches are cut into powers of two up to this: a few statements, each prepared once.
    const LARGEST_BATCH: usize = 64;

    /// UPDATEs for all of `batch`, as few as the batch sizes allow: each row moves only if it is
    /// still at its `from` generation, alive, not idle too long and bound to the key presented
    /// (or to none), so of two rotations of one session (in one batch or not) only one wins.
    /// They return `user_id, dpop_jkt, access_jti` per row moved.
    fn updates(mut batch: &[&Rotation]) -> Vec<Statement> {
        let mut statements = Vec::new();
        while !batch.is_empty() {
            let size = Self::LARGEST_BATCH.min(1 << batch.len().ilog2());
            let (chunk, rest) = batch.split_at(size);
            let mut query = sqlx::query(Self::sql(size));
            for r in chunk {
                query = query
                    .bind(r.session_id.clone())
                    .bind(r.from)
                    .bind(r.now)
                    .bind(r.idle_cutoff)
                    .bind(r.access_jti.clone())
                    .bind(r.access_kid.clone())
                    .bind(r.to.issued_to_ip.clone())
                    .bind(r.to.issued_to_agent.clone())
                    .bind(r.dpop_jkt.clone());
            }
            statements.push(query);
            batch = rest;
        }
        statements
    }

    /// The UPDATE for `size` rotations (a power of two), written once. `CAST`s type the VALUES
    /// for PostgreSQL; SQLite and PostgreSQL both name their columns `column1`….
    fn sql(size: usize) -> &'static str {
        const SIZES: usize = Rotation::LARGEST_BATCH.ilog2() as usize + 1;
        static SQL: [std::sync::OnceLock<String>; SIZES] = [const { std::sync::OnceLock::new() }; SIZES];
        SQL[size.ilog2() as usize].get_or_init(|| {
            const TYPES: [&str; Rotation::VALUES] =
                ["TEXT", "BIGINT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT"];
            let rows: Vec<String> = (0..size)
                .map(|row| {
                    let values: Vec<String> = TYPES
                        .iter()
                        .enumerate()
                        .map(|(col, ty)| format!("CAST(${} AS {ty})", row * Self::VALUES + col + 1))
                        .collect();
                    format!("({})", values.join(", "))
                })
                .collect();
            format!(
                "UPDATE sessions SET generation = v.column2 + 1, last_used_at = v.column3, rotated_at = v.column3, \
                 access_jti = v.column5, access_kid = v.column6, issued_to_ip = v.column7, issued_to_agent = v.column8 \
                 FROM (VALUES {}) AS v \
                 WHERE sessions.id = v.column1 AND sessions.generation = v.column2 AND sessions.revoked_at IS NULL \
                 AND sessions.expires_at > v.column3 AND sessions.last_used_at > v.column4 \
                 AND (sessions.dpop_jkt IS NULL OR sessions.dpop_jkt = v.column9) \
                 RETURNING sessions.user_id, sessions.dpop_jkt, sessions.access_jti",
                rows.join(", ")
            )
        })
    }
}

/// The client something was issued to (a refresh token's generation, a hand-off): its address
/// and a hash of its user agent, as stored in the columns of these names.
#[derive(sqlx::FromRow)]
pub(crate) struct IssuedTo {
    pub issued_to_ip: Option<String>,
    pub issued_to_agent: Option<String>,
}

impl IssuedTo {
    pub fn of(client: &ClientInfo) -> Self {
        Self { issued_to_ip: client.ip.clone(), issued_to_agent: client.user_agent.as_deref().map(agent_hash) }
    }

    /// Same network (an IPv4 address, an IPv6 /64) and the same user agent.
    pub fn is(&self, client: &ClientInfo) -> bool {
        let net = |ip: Option<&str>| network(ip.and_then(|ip| ip.parse().ok()), 64);
        net(self.issued_to_ip.as_deref()) == net(client.ip.as_deref())
            && self.issued_to_agent == client.user_agent.as_deref().map(agent_hash)
    }

    /// As [`Self::is`], but generations issued before this was stored name nobody and match
    /// anyone, for the few seconds of one grace window.
    pub fn is_or_unknown(&self, client: &ClientInfo) -> bool {
        (self.issued_to_ip.is_none() && self.issued_to_agent.is_none()) || self.is(client)
    }

    pub fn ip(&self) -> &str {
        self.issued_to_ip.as_deref().unwrap_or("unknown")
    }
}
