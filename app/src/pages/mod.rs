pub mod deliveries;
pub mod layout;
pub mod login;
pub mod not_found;
