//! The closed sets of DESIGN.md's vocabulary. Stored in the database as their snake_case names.

#[cfg(feature = "ssr")]
use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize};

macro_rules! vocabulary_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "ssr", derive(sea_orm::DeriveActiveEnum, sea_orm::EnumIter))]
        #[cfg_attr(feature = "ssr", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $(
                #[cfg_attr(feature = "ssr", sea_orm(string_value = $value))]
                $variant,
            )+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($value => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} `{other}`; expected one of: {}",
                        stringify!($name),
                        [$($value),+].join(", ")
                    )),
                }
            }
        }
    };
}

vocabulary_enum!(
    /// What a user may do: admins change everything, viewers only read, API users
    /// are the integrators who are told when a webhook is deactivated.
    Role { Admin = "admin", Viewer = "viewer", ApiUser = "api_user" }
);

vocabulary_enum!(
    WebhookState { Active = "active", Stopped = "stopped", TooManyErrors = "too_many_errors" }
);

vocabulary_enum!(
    DeliveryStatus {
        Pending = "pending",
        Retrying = "retrying",
        Succeeded = "succeeded",
        Failed = "failed",
        Held = "held",
    }
);

vocabulary_enum!(
    Outcome {
        Success = "success",
        Redirect = "redirect",
        ClientError = "client_error",
        ServerError = "server_error",
        Timeout = "timeout",
        ConnectError = "connect_error",
        TlsError = "tls_error",
        Blocked = "blocked",
    }
);

vocabulary_enum!(
    AttemptTrigger { Automatic = "automatic", Manual = "manual", Bulk = "bulk" }
);

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Viewer => "Viewer",
            Role::ApiUser => "API User",
        }
    }

    pub fn can_write(self) -> bool {
        self == Role::Admin
    }
}

impl DeliveryStatus {
    pub fn label(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "Pending",
            DeliveryStatus::Retrying => "Retrying",
            DeliveryStatus::Succeeded => "Succeeded",
            DeliveryStatus::Failed => "Failed",
            DeliveryStatus::Held => "Held",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_name_it_prints_and_rejects_others_with_the_choices() {
        for status in DeliveryStatus::ALL {
            assert_eq!(status.as_str().parse::<DeliveryStatus>(), Ok(*status));
        }
        let err = "done".parse::<DeliveryStatus>().unwrap_err();
        assert!(err.contains("pending, retrying, succeeded, failed, held"), "{err}");
        assert_eq!(serde_json::to_string(&Role::ApiUser).unwrap(), "\"api_user\"");
    }
}
