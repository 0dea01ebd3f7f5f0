//! Sends the email outbox by SMTP (`HERALD_SMTP_URL`). Without SMTP it does nothing: the emails
//! stay in the outbox, where the admin app shows them.

use std::time::Duration;

use app::db::outbox;
use lettre::{message::Mailbox, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::config::{redact_url, Config};

const INTERVAL: Duration = Duration::from_secs(2);

pub async fn run(db: DatabaseConnection, config: Config, shutdown: CancellationToken) {
    let Some(url) = config.smtp_url.clone() else { return };
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(&url) {
        Ok(builder) => builder.timeout(Some(Duration::from_secs(20))).build(),
        Err(e) => {
            tracing::error!(smtp = %redact_url(&url), error = %e, "cannot use HERALD_SMTP_URL; emails stay in the outbox");
            return;
        }
    };
    let from: Mailbox = match config.smtp_from.parse() {
        Ok(from) => from,
        Err(e) => {
            tracing::error!(from = %config.smtp_from, error = %e, "HERALD_SMTP_FROM is not an address; emails stay in the outbox");
            return;
        }
    };
    loop {
        if let Err(e) = send_pending(&db, &transport, &from).await {
            tracing::warn!(error = %e, "cannot read the email outbox");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

async fn send_pending(
    db: &DatabaseConnection,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
) -> Result<(), sea_orm::DbErr> {
    for email in outbox::unsent(db, 50).await? {
        let message = email
            .recipient
            .parse::<Mailbox>()
            .map_err(|e| format!("recipient `{}`: {e}", email.recipient))
            .and_then(|to| {
                Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(&email.subject)
                    .body(email.body.clone())
                    .map_err(|e| e.to_string())
            });
        let result = match message {
            Ok(m) => match transport.send(m).await {
                Ok(_) => Ok(()),
                // A server that is down now may be up later: leave the email for the next round.
                Err(e) if e.is_transient() || e.to_string().contains("Connection refused") => {
                    tracing::warn!(error = %e, "SMTP server unavailable; will retry");
                    return Ok(());
                }
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            tracing::warn!(recipient = %email.recipient, error = %e, "email not sent");
        }
        outbox::mark(db, email.id, result).await?;
    }
    Ok(())
}
