//! sea-orm entities: the database rows, separate from the wire types in `models`.

pub mod activity_log;
pub mod api_keys;
pub mod attempts;
pub mod deliveries;
pub mod email_outbox;
pub mod events;
pub mod jobs;
pub mod sessions;
pub mod settings;
pub mod users;
pub mod webhook_usage;
pub mod webhooks;
pub mod workers;
