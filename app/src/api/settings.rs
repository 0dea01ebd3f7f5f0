//! Settings: retention policy, activity log, email outbox, users and API keys.

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::state;

use crate::{
    error::AppError,
    models::{ActivityEntry, ApiKeyId, ApiKeyRow, OutboxEmail, Page, RetentionPolicy, Role, UserId, UserRow},
};

#[server(prefix = "/rpc", endpoint = "get_retention")]
pub async fn get_retention() -> Result<RetentionPolicy, AppError> {
    crate::auth::current_user().await?;
    let state = state();
    Ok(crate::db::retention::policy(&state.db, state.retention_defaults).await?)
}

#[server(prefix = "/rpc", endpoint = "save_retention", input = leptos::server_fn::codec::Json)]
pub async fn save_retention(policy: RetentionPolicy) -> Result<RetentionPolicy, AppError> {
    let user = crate::auth::current_admin().await?;
    policy.validate()?;
    crate::db::retention::save_policy(&state().db, &policy, &format!("user {}", user.email)).await?;
    Ok(policy)
}

#[server(prefix = "/rpc", endpoint = "list_activity")]
pub async fn list_activity(
    kind: Option<String>,
    cursor: Option<String>,
) -> Result<Page<ActivityEntry>, AppError> {
    crate::auth::current_user().await?;
    let before = match cursor.filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse().map_err(|_| AppError::Invalid {
            field: "cursor".into(),
            message: "not a cursor this list produced".into(),
        })?),
        None => None,
    };
    Ok(crate::db::activity::list(&state().db, kind.as_deref().filter(|k| !k.is_empty()), before, 50).await?)
}

#[server(prefix = "/rpc", endpoint = "list_outbox")]
pub async fn list_outbox() -> Result<Vec<OutboxEmail>, AppError> {
    crate::auth::current_user().await?;
    Ok(crate::db::outbox::recent(&state().db, 50)
        .await?
        .into_iter()
        .map(|m| OutboxEmail {
            recipient: m.recipient,
            subject: m.subject,
            body: m.body,
            created_at: m.created_at,
            sent_at: m.sent_at,
            error: m.error,
        })
        .collect())
}

#[server(prefix = "/rpc", endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserRow>, AppError> {
    crate::auth::current_admin().await?;
    Ok(crate::db::users::list(&state().db).await?)
}

/// Creates a user (admins only) with a generated password, answered once for the admin to hand
/// over; recorded in the activity log.
#[server(prefix = "/rpc", endpoint = "create_user")]
pub async fn create_user(email: String, role: Role) -> Result<String, AppError> {
    use crate::db::{
        activity,
        users::{create, CreateUserError},
    };
    let admin = crate::auth::current_admin().await?;
    let db = &state().db;
    let password = crate::auth::new_token(15);
    let user = create(db, &email, &password, role).await.map_err(|e| match e {
        CreateUserError::Db(e) => e.into(),
        e => {
            let text = e.to_string();
            let (field, message) = text.split_once(": ").unwrap_or(("email", text.as_str()));
            AppError::Invalid { field: field.to_owned(), message: message.to_owned() }
        }
    })?;
    let actor = format!("user {}", admin.email);
    activity::record(
        db,
        activity::Activity {
            actor: Some(&actor),
            kind: "user.created",
            subject: Some(user.email.clone()),
            summary: format!("{} created as {}", user.email, role.label()),
        },
    )
    .await?;
    Ok(password)
}

/// Changes another user's role (admins only).
#[server(prefix = "/rpc", endpoint = "set_user_role")]
pub async fn set_user_role(id: UserId, role: Role) -> Result<UserRow, AppError> {
    change_user(id, crate::db::users::UserChange::Role(role)).await
}

/// Disables another user, ending their sessions, or enables them again (admins only).
#[server(prefix = "/rpc", endpoint = "set_user_disabled")]
pub async fn set_user_disabled(id: UserId, disabled: bool) -> Result<UserRow, AppError> {
    change_user(id, crate::db::users::UserChange::Disabled(disabled)).await
}

#[cfg(feature = "ssr")]
async fn change_user(id: UserId, change: crate::db::users::UserChange) -> Result<UserRow, AppError> {
    use crate::db::users::UserChangeError;
    let admin = crate::auth::current_admin().await?;
    crate::db::users::change(&state().db, id, change, &admin).await.map_err(|e| match e {
        UserChangeError::NotFound => AppError::NotFound("This user".into()),
        UserChangeError::Db(e) => e.into(),
        e => AppError::Conflict(e.to_string()),
    })
}

#[server(prefix = "/rpc", endpoint = "list_api_keys")]
pub async fn list_api_keys() -> Result<Vec<ApiKeyRow>, AppError> {
    crate::auth::current_admin().await?;
    Ok(crate::db::api_keys::list(&state().db).await?)
}

/// Creates a key and answers its plain text, shown once.
#[server(prefix = "/rpc", endpoint = "create_api_key")]
pub async fn create_api_key(name: String) -> Result<String, AppError> {
    let user = crate::auth::current_admin().await?;
    if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid {
            field: "name".into(),
            message: "give the key a name of 1 to 100 characters, without control characters".into(),
        });
    }
    let (_, plain) =
        crate::db::api_keys::create(&state().db, &name, Some(user.id.0), &format!("user {}", user.email))
            .await?;
    Ok(plain)
}

#[server(prefix = "/rpc", endpoint = "revoke_api_key")]
pub async fn revoke_api_key(id: ApiKeyId) -> Result<(), AppError> {
    let user = crate::auth::current_admin().await?;
    let state = state();
    if crate::db::api_keys::revoke(&state.db, id, &format!("user {}", user.email)).await? {
        state.api_keys.forget(id);
        Ok(())
    } else {
        Err(AppError::NotFound("This API key".into()))
    }
}

/// The dashboard's charts: the last hour in 5-minute steps (`day: false`) or the last 24 hours
/// in hourly ones, for every webhook or one.
#[server(prefix = "/rpc", endpoint = "get_timeline")]
pub async fn get_timeline(
    webhook_id: Option<crate::models::WebhookId>,
    day: bool,
) -> Result<crate::models::Timeline, AppError> {
    crate::auth::current_user().await?;
    let (hours, steps) = if day { (24, 24) } else { (1, 12) };
    Ok(crate::db::stats::timeline(&state().db, webhook_id, hours, steps).await?)
}

#[server(prefix = "/rpc", endpoint = "get_dashboard")]
pub async fn get_dashboard() -> Result<crate::models::Dashboard, AppError> {
    crate::auth::current_user().await?;
    Ok(crate::db::stats::dashboard(&state().db).await?)
}
