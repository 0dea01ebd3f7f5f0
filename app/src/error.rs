//! The error type of server functions: serialisable, so the browser can show what went wrong.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("You are not signed in.")]
    Unauthorized,
    #[error("Your role does not allow this.")]
    Forbidden,
    #[error("{0} was not found.")]
    NotFound(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("Something went wrong on the server; the server log has the details.")]
    Internal,
    #[error("Could not reach Herald: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

#[cfg(feature = "ssr")]
impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        tracing::error!(error = %err, "database error");
        AppError::Internal
    }
}

impl From<crate::models::FieldError> for AppError {
    fn from(e: crate::models::FieldError) -> Self {
        AppError::Invalid { field: e.field, message: e.message }
    }
}
