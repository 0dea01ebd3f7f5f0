//! Wire types: what crosses the network between browser, server and API clients.

mod delivery;
mod enums;
mod event;
mod ids;
mod job;
mod retention;
mod stats;
mod user;
mod webhook;

pub use delivery::*;
pub use enums::*;
pub use event::*;
pub use ids::*;
pub use job::*;
pub use retention::*;
pub use stats::*;
pub use user::*;
pub use webhook::*;

use serde::{Deserialize, Serialize};

/// One page of a keyset-paginated list. `next_cursor` is opaque; absent on the last page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
