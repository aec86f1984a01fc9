//! Where a mail goes: an SMTP relay (lettre), or, with no `SMTP_URL`, a `.eml` file under
//! `BATON_DATA_DIR/outbox/` for a laptop. Both take the message as queued, bytes and envelope.

use crate::auth::settings::SmtpUrl;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::PathBuf;

pub(crate) enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// Why a mail was not sent: worth trying again soon, refused by the relay (5xx), or too late.
pub(crate) enum SendError {
    Transient(String),
    Permanent(String),
    /// The link it carries expired before the mail could go.
    Expired,
}

impl Transport {
    pub(crate) fn new(smtp_url: Option<&SmtpUrl>, data_dir: &std::path::Path) -> Result<Self, String> {
        match smtp_url {
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                .map(|builder| Self::Smtp(builder.timeout(Some(std::time::Duration::from_secs(30))).build()))
                .map_err(|e| format!("SMTP_URL: {e}")),
            None => Ok(Self::Files(data_dir.join("outbox"))),
        }
    }

    pub(crate) async fn send(&self, id: &str, sender: &str, recipient: &str, message: &[u8]) -> Result<(), SendError> {
        let permanent = |e: &dyn std::fmt::Display| SendError::Permanent(e.to_string());
        // The sender as `MAIL_FROM` has it (`Name <address>`); the envelope wants the address.
        let from = sender.parse::<lettre::message::Mailbox>().map_err(|e| permanent(&e))?.email;
        let to = recipient.parse().map_err(|e| permanent(&e))?;
        let envelope = Envelope::new(Some(from), vec![to]).map_err(|e| permanent(&e))?;
        match self {
            Self::Smtp(smtp) => match smtp.send_raw(&envelope, message).await {
                Ok(_) => Ok(()),
                // A 5xx answer (no such mailbox, refused) will not change by waiting.
                Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                Err(e) => Err(SendError::Transient(e.to_string())),
            },
            Self::Files(dir) => {
                let path = dir.join(format!("{id}.eml"));
                let write = async {
                    tokio::fs::create_dir_all(dir).await?;
                    tokio::fs::write(&path, message).await
                };
                write.await.map_err(|e| SendError::Transient(format!("{}: {e}", path.display())))?;
                // The path, never the message: it may hold a link.
                tracing::info!(target: "mail", path = %path.display(), "no SMTP_URL: mail written to the outbox directory");
                Ok(())
            }
        }
    }
}

/// An address a mail can be sent to, as lettre reads it (stricter in places than `domain::Email`).
pub(crate) fn deliverable(address: &str) -> bool {
    address.parse::<lettre::Address>().is_ok()
}
