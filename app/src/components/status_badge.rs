use leptos::prelude::*;

use crate::models::{DeliveryStatus, Outcome, WebhookState};

#[component]
pub fn StatusBadge(status: DeliveryStatus) -> impl IntoView {
    view! {
        <span class=format!("badge status-{}", status.as_str()) data-test="status">{status.label()}</span>
    }
}

#[component]
pub fn WebhookStateBadge(state: WebhookState) -> impl IntoView {
    let (class, label) = match state {
        WebhookState::Active => ("status-succeeded", "Active"),
        WebhookState::Stopped => ("status-held", "Stopped"),
        WebhookState::TooManyErrors => ("status-failed", "Too many errors"),
    };
    view! { <span class=format!("badge {class}") data-test="webhook-state">{label}</span> }
}

/// An attempt's outcome in words.
pub fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "Success",
        Outcome::Redirect => "Redirect (not followed)",
        Outcome::ClientError => "Client error (4xx)",
        Outcome::ServerError => "Server error (5xx)",
        Outcome::Timeout => "Timeout",
        Outcome::ConnectError => "Connection failed",
        Outcome::TlsError => "TLS error",
        Outcome::Blocked => "Blocked destination",
    }
}
