//! Server functions, grouped by resource. Each calls the same query layer as the JSON API.

pub mod deliveries;
pub mod session;
pub mod settings;
pub mod webhooks;

/// The server's state, in a server function.
#[cfg(feature = "ssr")]
fn state() -> crate::state::AppState {
    leptos::prelude::expect_context::<crate::state::AppState>()
}
