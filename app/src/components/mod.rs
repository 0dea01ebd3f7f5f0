pub mod format;
pub mod status_badge;
