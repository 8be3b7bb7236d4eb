//! Who is calling: the bearer token's name and role.
//!
//! The authentication layer (token check) puts a `Caller` into the
//! request's extensions; handlers take `Caller` as an extractor to check
//! roles and to name the actor when they record an access to the log.
//! With no tokens configured the server listens only on loopback and
//! every caller is the open local admin.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::error::ApiError;

/// What a token may do. Each role includes the ones before it except that
/// `Ingest` cannot read: `Read` queries, exports and tails; `Admin` does
/// everything, settings included.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Ingest,
    Read,
    Admin,
}

impl Role {
    /// Whether a caller with this role may do what `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        match needed {
            Role::Ingest => matches!(self, Role::Ingest | Role::Admin),
            Role::Read => matches!(self, Role::Read | Role::Admin),
            Role::Admin => self == Role::Admin,
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name from the config file (`local` when no tokens are
    /// configured); recorded as the actor of audited reads.
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// The caller of an open, loopback-only server.
    pub fn open_local() -> Self {
        Caller {
            name: "local".to_string(),
            role: Role::Admin,
        }
    }

    /// 403 unless this caller's role allows `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role.allows(needed) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token {:?} has role {:?}, which may not do this (needs {:?})",
                    self.name, self.role, needed
                ),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(Caller::open_local))
    }
}
