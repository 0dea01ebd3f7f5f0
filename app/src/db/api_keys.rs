use sea_orm::{entity::prelude::*, ActiveValue::Set, QueryFilter};

use super::{entities::api_keys, now};
use crate::{
    auth::{hash_token, new_token},
    models::ApiKeyId,
};

/// Every key starts with this, so leaked keys are easy to recognise (and to scan for).
pub const KEY_PREFIX: &str = "hrld_";

/// Creates a key and returns it with its plain text, which is shown once and never stored.
pub async fn create(
    db: &DatabaseConnection,
    name: &str,
    created_by: Option<Uuid>,
    actor: &str,
) -> Result<(api_keys::Model, String), DbErr> {
    let plain = format!("{KEY_PREFIX}{}", new_token(32));
    let model = api_keys::ActiveModel {
        id: Set(ApiKeyId::new().0),
        name: Set(name.trim().to_owned()),
        prefix: Set(plain.chars().take(KEY_PREFIX.len() + 6).collect()),
        key_hash: Set(hash_token(&plain)),
        created_by: Set(created_by),
        created_at: Set(now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    super::activity::record(
        db,
        super::activity::Activity {
            actor: Some(actor),
            kind: "api_key.created",
            subject: Some(model.id.to_string()),
            summary: format!("API key {} ({}…) created", model.name, model.prefix),
        },
    )
    .await?;
    Ok((model, plain))
}

/// The live (not revoked) key with this plain text.
pub async fn find_live(db: &DatabaseConnection, plain: &str) -> Result<Option<api_keys::Model>, DbErr> {
    api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(hash_token(plain)))
        .filter(api_keys::Column::RevokedAt.is_null())
        .one(db)
        .await
}

/// Live keys this process found lately, by hash, so that an API request does not read its key
/// from the database each time (a read per event was ~6% of the database's time under load;
/// BENCHMARKS.md). A key found is trusted for `LiveKeys::TRUST`; revoking it in this process
/// forgets it at once, and another process sees a revocation within that time.
#[derive(Clone, Default)]
pub struct LiveKeys {
    found: std::sync::Arc<std::sync::Mutex<FoundKeys>>,
}

/// Live keys by hash, with when each was read.
type FoundKeys = std::collections::HashMap<String, (api_keys::Model, std::time::Instant)>;

impl LiveKeys {
    /// How long a key found live is trusted without reading it again.
    pub const TRUST: std::time::Duration = std::time::Duration::from_secs(1);

    /// The live key with this plain text: from what this process found in the last `TRUST`, or
    /// from the database. Unknown and revoked keys are never remembered.
    pub async fn find(&self, db: &DatabaseConnection, plain: &str) -> Result<Option<api_keys::Model>, DbErr> {
        let hash = hash_token(plain);
        if let Some((key, _)) = self.lock().get(&hash).filter(|(_, at)| at.elapsed() < Self::TRUST) {
            return Ok(Some(key.clone()));
        }
        let found = find_live(db, plain).await?;
        let mut keys = self.lock();
        keys.retain(|_, (_, at)| at.elapsed() < Self::TRUST);
        match &found {
            Some(key) => keys.insert(hash, (key.clone(), std::time::Instant::now())),
            None => keys.remove(&hash),
        };
        Ok(found)
    }

    /// Records use at most once a minute per key (`touch`), and remembers it.
    pub async fn touch(&self, db: &DatabaseConnection, key: &api_keys::Model) -> Result<(), DbErr> {
        if let Some(at) = touch(db, key).await? {
            for (remembered, _) in self.lock().values_mut().filter(|(k, _)| k.id == key.id) {
                remembered.last_used_at = Some(at);
            }
        }
        Ok(())
    }

    /// A key revoked by this process is not trusted a moment longer.
    pub fn forget(&self, id: ApiKeyId) {
        self.lock().retain(|_, (key, _)| key.id != id.0);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FoundKeys> {
        self.found.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Records use at most once a minute per key, to keep API requests free of writes. Answers
/// when, if it wrote.
pub async fn touch(db: &DatabaseConnection, key: &api_keys::Model) -> Result<Option<DateTimeUtc>, DbErr> {
    let at = now();
    if key.last_used_at.is_some_and(|t| at - t < chrono::Duration::minutes(1)) {
        return Ok(None);
    }
    api_keys::Entity::update_many()
        .col_expr(api_keys::Column::LastUsedAt, Expr::value(at))
        .filter(api_keys::Column::Id.eq(key.id))
        .exec(db)
        .await?;
    Ok(Some(at))
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<crate::models::ApiKeyRow>, DbErr> {
    use sea_orm::QueryOrder;
    Ok(api_keys::Entity::find()
        .order_by_desc(api_keys::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|k| crate::models::ApiKeyRow {
            id: ApiKeyId(k.id),
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        })
        .collect())
}

/// Revokes a key for good and records who did it; false when there is no live key with this id.
pub async fn revoke(db: &DatabaseConnection, id: ApiKeyId, actor: &str) -> Result<bool, DbErr> {
    let Some(key) = api_keys::Entity::find_by_id(id.0).one(db).await?.filter(|k| k.revoked_at.is_none())
    else {
        return Ok(false);
    };
    api_keys::Entity::update_many()
        .col_expr(api_keys::Column::RevokedAt, Expr::value(now()))
        .filter(api_keys::Column::Id.eq(key.id))
        .exec(db)
        .await?;
    super::activity::record(
        db,
        super::activity::Activity {
            actor: Some(actor),
            kind: "api_key.revoked",
            subject: Some(key.id.to_string()),
            summary: format!("API key {} ({}…) revoked", key.name, key.prefix),
        },
    )
    .await?;
    Ok(true)
}
