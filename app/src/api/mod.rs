//! Server functions, grouped by resource. Each calls the same query layer as the JSON API.

pub mod deliveries;
pub mod session;
pub mod settings;
pub mod webhooks;
