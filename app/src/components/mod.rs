pub mod chart;
pub mod copy;
pub mod format;
pub mod json;
pub mod resource;
pub mod status_badge;
