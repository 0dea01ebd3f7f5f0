//! The email outbox: every email Herald sends is written here first, in the transaction of what
//! caused it; a sender delivers it by SMTP when one is configured. Without SMTP the outbox is
//! where admins read the messages.

use sea_orm::{entity::prelude::*, ActiveValue::Set, QueryOrder, QuerySelect};

use super::{entities::email_outbox, now};

pub async fn enqueue(
    db: &impl ConnectionTrait,
    recipient: &str,
    subject: &str,
    body: &str,
) -> Result<(), DbErr> {
    email_outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        recipient: Set(recipient.to_owned()),
        subject: Set(subject.to_owned()),
        body: Set(body.to_owned()),
        created_at: Set(now()),
        sent_at: Set(None),
        error: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Emails not yet sent nor given up on, oldest first.
pub async fn unsent(db: &DatabaseConnection, limit: u64) -> Result<Vec<email_outbox::Model>, DbErr> {
    email_outbox::Entity::find()
        .filter(email_outbox::Column::SentAt.is_null())
        .filter(email_outbox::Column::Error.is_null())
        .order_by_asc(email_outbox::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await
}

pub async fn mark(db: &DatabaseConnection, id: Uuid, result: Result<(), String>) -> Result<(), DbErr> {
    let mut row: email_outbox::ActiveModel = email_outbox::ActiveModel { id: Set(id), ..Default::default() };
    match result {
        Ok(()) => row.sent_at = Set(Some(now())),
        Err(e) => row.error = Set(Some(e)),
    }
    row.update(db).await?;
    Ok(())
}

/// The newest emails, for the settings page.
pub async fn recent(db: &DatabaseConnection, limit: u64) -> Result<Vec<email_outbox::Model>, DbErr> {
    email_outbox::Entity::find().order_by_desc(email_outbox::Column::CreatedAt).limit(limit).all(db).await
}
