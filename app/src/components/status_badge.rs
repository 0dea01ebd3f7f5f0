use leptos::prelude::*;

use crate::models::DeliveryStatus;

#[component]
pub fn StatusBadge(status: DeliveryStatus) -> impl IntoView {
    view! {
        <span class=format!("badge status-{}", status.as_str()) data-test="status">{status.label()}</span>
    }
}
