//! Extractors whose rejections speak the API's error shape. axum's own
//! `Query` and `Path` answer a malformed query string or path (`%zz`, a
//! repeated parameter, invalid UTF-8) with a plain-text 400; these wrap
//! them so the client gets `{"error":{"code","message"}}` like every other
//! mistake. They own no parsing of their own.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// `Query<T>` with a JSON `bad_query` rejection.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
    }
}

/// `Path<T>` with a JSON `bad_path` rejection.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::bad_request("bad_path", e.body_text()))
    }
}
