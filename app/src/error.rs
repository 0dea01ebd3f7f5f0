//! The error type of server functions: serialisable, so the browser can show what went wrong.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
    Encodes,
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
    #[error("Herald's database is unavailable ({0}); nothing was changed. Try again in a few seconds.")]
    Unavailable(String),
    #[error("Could not reach Herald: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }

    /// The error as the server function's answer. On the server it also sets the answer's HTTP
    /// status (Leptos answers every error with 500), so a refused form is a 422 in the access
    /// log and only real failures count as server errors. The browser reads any 4xx or 5xx as
    /// an error.
    fn ser(&self) -> leptos::server_fn::Bytes {
        #[cfg(feature = "ssr")]
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(self.status());
        }
        Self::Encoder::encode(self).unwrap_or_else(|_| {
            Self::Encoder::encode(&AppError::Internal).expect("a unit variant always encodes")
        })
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    /// The HTTP status a server function answers this error with.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            // On the server: a request the server function could not decode.
            AppError::Transport(_) => StatusCode::BAD_REQUEST,
        }
    }
}

#[cfg(feature = "ssr")]
impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        if crate::db::health::is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            return AppError::Unavailable(err.to_string());
        }
        tracing::error!(error = %err, "database error");
        AppError::Internal
    }
}

impl From<crate::models::FieldError> for AppError {
    fn from(e: crate::models::FieldError) -> Self {
        AppError::Invalid { field: e.field, message: e.message }
    }
}
