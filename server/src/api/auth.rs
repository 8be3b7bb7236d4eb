//! Who is calling: the bearer token's name and role.
//!
//! The authentication layer (token check) puts a `Caller` into the
//! request's extensions; handlers take `Caller` as an extractor to check
//! roles and to name the actor when they record an access to the log.
//! With no tokens configured the server listens only on loopback and
//! every caller is the open local admin.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::ApiError;
use super::AppState;

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

    /// Fails closed: only the authentication layer sets a `Caller`; a
    /// handler reached without one (an open path, a router built without
    /// the layer) answers 401 rather than guessing who is calling.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(unauthorized)
    }
}

/// 401, with the header that tells clients which scheme to use.
pub fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send a valid token: `Authorization: Bearer <token>`",
    )
}

/// Paths anyone may fetch without a token: health, the API description,
/// and the viewer's pages and assets (which then ask for a token).
pub fn is_open_path(path: &str) -> bool {
    matches!(path, "/" | "/healthz" | "/openapi.json")
        || path.starts_with("/assets/")
        || path.starts_with("/events/")
}

/// The authentication layer: every request passes here first. With no
/// tokens configured every caller is the open local admin (the server then
/// listens on loopback only). Otherwise a valid bearer token sets its
/// `Caller`; a missing or unknown token is refused with 401 unless the
/// path is open, where it goes on without a `Caller`.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let tokens = &state.cfg.tokens;
    if tokens.is_empty() {
        req.extensions_mut().insert(Caller::open_local());
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    match presented.and_then(|t| tokens.authenticate(&t)) {
        Some(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        None if is_open_path(req.uri().path()) => next.run(req).await,
        None => {
            let mut resp = unauthorized().into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"auditlog\""),
            );
            resp
        }
    }
}

/// `GET /v1/whoami`: the token's name and role (any role).
pub async fn whoami(caller: Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({"name": caller.name, "role": caller.role}))
}
