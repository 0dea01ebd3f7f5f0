use chrono::Duration;
use sea_orm::{entity::prelude::*, ActiveValue::Set, QueryFilter};

use super::{
    entities::{sessions, users},
    now,
};
use crate::{
    auth::{hash_token, new_token},
    models::CurrentUser,
};

/// Starts a session and returns the token for the cookie (only its hash is stored).
pub async fn create(db: &DatabaseConnection, user_id: Uuid, ttl: Duration) -> Result<String, DbErr> {
    let token = new_token(32);
    let at = now();
    sessions::ActiveModel {
        id: Set(hash_token(&token)),
        user_id: Set(user_id),
        created_at: Set(at),
        expires_at: Set(at + ttl),
        last_seen_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// The user of a live session, or None for an unknown, expired or disabled one.
pub async fn user_for_token(db: &DatabaseConnection, token: &str) -> Result<Option<CurrentUser>, DbErr> {
    let found =
        sessions::Entity::find_by_id(hash_token(token)).find_also_related(users::Entity).one(db).await?;
    Ok(match found {
        Some((session, Some(user))) if session.expires_at > now() && user.disabled_at.is_none() => {
            Some(user.into())
        }
        _ => None,
    })
}

pub async fn delete(db: &DatabaseConnection, token: &str) -> Result<(), DbErr> {
    sessions::Entity::delete_by_id(hash_token(token)).exec(db).await?;
    Ok(())
}

pub async fn delete_expired(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let res = sessions::Entity::delete_many().filter(sessions::Column::ExpiresAt.lt(now())).exec(db).await?;
    Ok(res.rows_affected)
}
