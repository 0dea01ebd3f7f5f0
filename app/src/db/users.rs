use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use sea_orm::{entity::prelude::*, ActiveValue::Set, PaginatorTrait, QueryFilter, QuerySelect};

use super::{entities::users, now};
use crate::models::{CurrentUser, Role, UserId};

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email: `{0}` is not an email address")]
    InvalidEmail(String),
    #[error("password: must be at least 10 characters")]
    WeakPassword,
    #[error("email: a user with the email `{0}` already exists")]
    Duplicate(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn valid_email(email: &str) -> bool {
    matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !email.contains(char::is_whitespace))
}

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Hashing only fails for parameters out of range, never for user input.
        .unwrap_or_default()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

pub async fn create(
    db: &DatabaseConnection,
    email: &str,
    password: &str,
    role: Role,
) -> Result<users::Model, CreateUserError> {
    let email = normalize_email(email);
    if !valid_email(&email) {
        return Err(CreateUserError::InvalidEmail(email));
    }
    if password.chars().count() < 10 {
        return Err(CreateUserError::WeakPassword);
    }
    if users::Entity::find().filter(users::Column::Email.eq(&email)).one(db).await?.is_some() {
        return Err(CreateUserError::Duplicate(email));
    }
    let user = users::ActiveModel {
        id: Set(UserId::new().0),
        email: Set(email),
        password_hash: Set(hash_password(password)),
        role: Set(role),
        created_at: Set(now()),
        disabled_at: Set(None),
    };
    Ok(user.insert(db).await?)
}

pub async fn count(db: &DatabaseConnection) -> Result<u64, DbErr> {
    users::Entity::find().count(db).await
}

/// The user with this email and password, if both are right and the user is enabled.
/// Takes the same time whether or not the email exists, so it does not reveal accounts.
pub async fn authenticate(
    db: &DatabaseConnection,
    email: &str,
    password: &str,
) -> Result<Option<users::Model>, DbErr> {
    let user = users::Entity::find().filter(users::Column::Email.eq(normalize_email(email))).one(db).await?;
    let ok = match &user {
        Some(u) => verify_password(password, &u.password_hash),
        None => {
            static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            verify_password(password, DUMMY_HASH.get_or_init(|| hash_password("not a password")));
            false
        }
    };
    Ok(user.filter(|u| ok && u.disabled_at.is_none()))
}

impl From<users::Model> for CurrentUser {
    fn from(u: users::Model) -> Self {
        CurrentUser { id: UserId(u.id), email: u.email, role: u.role }
    }
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<crate::models::UserRow>, DbErr> {
    use sea_orm::QueryOrder;
    Ok(users::Entity::find().order_by_asc(users::Column::Email).all(db).await?.into_iter().map(row).collect())
}

#[derive(Debug, thiserror::Error)]
pub enum UserChangeError {
    #[error("no such user")]
    NotFound,
    #[error("You cannot change your own role or disable your own account; another admin can.")]
    Yourself,
    #[error("Herald must keep at least one active admin: make another user an admin first.")]
    LastAdmin,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A change an admin makes to another user from Settings.
#[derive(Clone, Copy, Debug)]
pub enum UserChange {
    Role(Role),
    Disabled(bool),
}

/// Changes another user's role, or disables or re-enables them, recorded in the activity log.
/// Disabling ends their sessions at once. Refused for the acting admin's own account and when
/// it would leave no active admin.
pub async fn change(
    db: &DatabaseConnection,
    id: UserId,
    change: UserChange,
    acting: &CurrentUser,
) -> Result<crate::models::UserRow, UserChangeError> {
    use super::{activity, entities::sessions};

    if id == acting.id {
        return Err(UserChangeError::Yourself);
    }
    let txn = super::begin_write(db).await?;
    let user = users::Entity::find_by_id(id.0).one(&txn).await?.ok_or(UserChangeError::NotFound)?;
    let was_active_admin = user.role == Role::Admin && user.disabled_at.is_none();
    let stays_active_admin = match change {
        UserChange::Role(role) => role == Role::Admin && user.disabled_at.is_none(),
        UserChange::Disabled(disabled) => user.role == Role::Admin && !disabled,
    };
    if was_active_admin && !stays_active_admin {
        // The active admins' rows locked (PostgreSQL; SQLite's write transaction is already
        // exclusive): two admins demoting each other at once leave one admin, not none.
        let admins = users::Entity::find()
            .filter(users::Column::Role.eq(Role::Admin))
            .filter(users::Column::DisabledAt.is_null())
            .lock_exclusive()
            .all(&txn)
            .await?;
        if admins.len() <= 1 {
            return Err(UserChangeError::LastAdmin);
        }
    }
    let mut model: users::ActiveModel = user.clone().into();
    let (kind, summary) = match change {
        UserChange::Role(role) => {
            model.role = Set(role);
            (
                "user.role_changed",
                format!("{} is now {} (was {})", user.email, role.label(), user.role.label()),
            )
        }
        UserChange::Disabled(true) => {
            model.disabled_at = Set(Some(user.disabled_at.unwrap_or_else(now)));
            sessions::Entity::delete_many().filter(sessions::Column::UserId.eq(user.id)).exec(&txn).await?;
            ("user.disabled", format!("{} disabled; their sessions ended", user.email))
        }
        UserChange::Disabled(false) => {
            model.disabled_at = Set(None);
            ("user.enabled", format!("{} enabled again", user.email))
        }
    };
    let updated = model.update(&txn).await?;
    let actor = format!("user {}", acting.email);
    activity::record(
        &txn,
        activity::Activity { actor: Some(&actor), kind, subject: Some(updated.email.clone()), summary },
    )
    .await?;
    txn.commit().await?;
    Ok(row(updated))
}

fn row(u: users::Model) -> crate::models::UserRow {
    crate::models::UserRow {
        id: crate::models::UserId(u.id),
        email: u.email,
        role: u.role,
        created_at: u.created_at,
        disabled: u.disabled_at.is_some(),
    }
}
