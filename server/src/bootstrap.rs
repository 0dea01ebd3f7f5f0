//! The first admin: a fresh Herald is never left without a way in.

use app::{
    db::{activity, users},
    models::Role,
};
use sea_orm::DatabaseConnection;

use crate::config::Config;

pub struct FirstAdmin {
    pub email: String,
    /// Only when Herald generated it: shown once, never stored in clear.
    pub generated_password: Option<String>,
}

impl FirstAdmin {
    pub fn announce(&self) {
        match &self.generated_password {
            Some(pw) => println!(
                "\nHerald created the first admin user.\n  email:    {}\n  password: {pw}\n\
                 This password is shown only once; keep it or create another admin with `herald user create`.\n",
                self.email
            ),
            None => println!("\nHerald created the first admin user {} (password from HERALD_ADMIN_PASSWORD).\n", self.email),
        }
    }
}

/// Creates the first admin when there is no user at all.
pub async fn ensure_first_admin(
    db: &DatabaseConnection,
    config: &Config,
) -> anyhow::Result<Option<FirstAdmin>> {
    if users::count(db).await? > 0 {
        return Ok(None);
    }
    let generated = config.admin_password.is_none().then(|| app::auth::new_token(15));
    let password = config.admin_password.clone().or_else(|| generated.clone()).unwrap_or_default();
    let user = users::create(db, &config.admin_email, &password, Role::Admin).await.map_err(|e| {
        anyhow::anyhow!("cannot create the first admin (HERALD_ADMIN_EMAIL / HERALD_ADMIN_PASSWORD): {e}")
    })?;
    activity::record(
        db,
        activity::Activity {
            actor: Some("herald"),
            kind: "user.created",
            subject: Some(user.email.clone()),
            summary: format!("First admin {} created at start", user.email),
        },
    )
    .await?;
    Ok(Some(FirstAdmin { email: user.email, generated_password: generated }))
}
