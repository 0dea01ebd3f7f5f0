use serde::{Deserialize, Serialize};

use super::{Role, UserId};

/// The signed-in person, as the UI needs to know them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: UserId,
    pub email: String,
    pub role: Role,
}
