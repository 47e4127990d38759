//! Request extractors whose failures name the field at fault, in VoIPBIN's error body.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest request body accepted (1 MiB); larger gets 413.
pub const MAX_BODY: usize = 1 << 20;

/// A JSON body. Any content type is accepted (curl's default form type included);
/// a bad body gets a 400 naming the JSON path of the problem.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(MAX_BODY)
            } else {
                ApiError::invalid("body", e.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The longest `name` a body may carry, in characters.
pub const MAX_NAME: usize = 255;
/// The longest `detail`, in characters.
pub const MAX_DETAIL: usize = 2000;

/// The labels every resource has, read from any body to bound their length.
#[derive(serde::Deserialize)]
struct Labels<'a> {
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    detail: Option<std::borrow::Cow<'a, str>>,
}

/// Bounds `name` and `detail`, whatever the resource (a body that is not an object
/// with string labels is left to the resource's own parse to judge).
fn check_labels(bytes: &[u8]) -> Result<(), ApiError> {
    let Ok(labels) = serde_json::from_slice::<Labels<'_>>(bytes) else {
        return Ok(());
    };
    for (field, value, max) in [
        ("name", labels.name, MAX_NAME),
        ("detail", labels.detail, MAX_DETAIL),
    ] {
        if let Some(v) = value
            && v.chars().count() > max
        {
            return Err(ApiError::invalid(
                field,
                format!("at most {max} characters, not {}", v.chars().count()),
            ));
        }
    }
    Ok(())
}

/// Parses JSON, naming the path of the first problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    check_labels(bytes)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidArgument {
            reason: "INVALID_JSON_BODY",
            message: "body: a JSON object is required".to_owned(),
            details: None,
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let syntax = e.inner().is_syntax() || e.inner().is_eof();
        let field = if syntax || path == "." || path == "?" {
            "body".to_owned()
        } else {
            path
        };
        ApiError::InvalidArgument {
            reason: "INVALID_JSON_BODY",
            message: format!("{field}: {}", e.inner()),
            details: None,
        }
    })
}

/// Query parameters; a bad one gets a 400 naming it.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::InvalidArgument {
                reason: "INVALID_REQUEST_PARAMETER",
                message: format!(
                    "query: {}",
                    e.body_text()
                        .trim_start_matches("Failed to deserialize query string: ")
                ),
                details: None,
            })
    }
}

/// Checks that a path id is a UUID.
pub fn resource_id(id: &str) -> Result<&str, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|_| id)
        .map_err(|_| ApiError::InvalidArgument {
            reason: "INVALID_ID",
            message: format!("id: {id:?} is not a UUID"),
            details: None,
        })
}

/// Checks an optional UUID field of a body; "" and the nil UUID mean none.
pub fn optional_uuid(field: &str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    match value.map(str::trim) {
        None | Some("" | "00000000-0000-0000-0000-000000000000") => Ok(None),
        Some(v) => uuid::Uuid::parse_str(v)
            .map(|u| Some(u.to_string()))
            .map_err(|_| ApiError::invalid(field, format!("{v:?} is not a UUID"))),
    }
}

/// The address a request came from, when the server recorded it (it does for every
/// connection it accepts; a router called directly in a test has none).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
