//! The one API error type and Segment's error envelope (`{"errors":[{type, message, field?, data?}]}`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// Everything a request can fail with; each variant maps to one status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all.
    #[error("{0}")]
    BadRequest(String),
    /// No token, or a token sluice does not know.
    #[error("a valid `Authorization: Bearer <token>` header is required")]
    Unauthorized,
    /// The token was valid but its `expiresAt` has passed.
    #[error("this token expired at {0}; ask a Workspace Owner for a new one")]
    TokenExpired(String),
    /// The token is valid but its roles do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource (or one the token may not see).
    #[error("{0}")]
    NotFound(String),
    /// A resource that the body names does not exist (or the caller may not see it): a 404,
    /// as the resource's own URL would answer, with `field` naming where the body names it.
    #[error("{message}")]
    Referenced {
        /// What is missing, for a person.
        message: String,
        /// The JSON path of the reference.
        field: String,
    },
    /// The route exists but not with this method.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// The `Accept` header names no media type sluice produces.
    #[error(
        "cannot produce any media type in `Accept`; use application/json or application/vnd.segment.v1+json"
    )]
    NotAcceptable,
    /// The request conflicts with the current state (a duplicate slug, say).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the server accepts.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body is not JSON of the expected media type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The input is well-formed but invalid; `field` names the culprit when there is one.
    #[error("{message}")]
    Validation {
        /// What is wrong, for a person.
        message: String,
        /// The JSON path of the offending field.
        field: Option<String>,
    },
    /// The token used up its request budget.
    #[error("Too many requests")]
    RateLimited {
        /// Milliseconds until the next request is allowed.
        ms_before_next: u64,
        /// Requests consumed in the current window.
        consumed: u64,
    },
    /// A failure of sluice itself; the detail goes to the log, never to the client.
    #[error("internal error: {0}")]
    Internal(String),
    /// In a cluster: the shared state (NATS JetStream) cannot be reached now.
    #[error("{0}; retry shortly")]
    Unavailable(String),
}

impl ApiError {
    /// A 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Validation {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A 404 for a resource that a body's `field` names and that does not exist (or that the
    /// caller may not see): the same answer the resource's own URL gives.
    pub fn missing(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Referenced {
            message: message.into(),
            field: field.into(),
        }
    }

    /// A 404 for `what` (`"source"`) with `id`.
    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::NotFound(format!("{what} `{id}` not found"))
    }

    /// The status code this error is sent with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::TokenExpired(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::Referenced { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::UnsupportedMediaType(_) => "bad-request",
            ApiError::Unauthorized | ApiError::TokenExpired(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) | ApiError::Referenced { .. } => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::NotAcceptable => "not-acceptable",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload-too-large",
            ApiError::Validation { .. } => "input-validation",
            // Segment's own type string for rate limiting.
            ApiError::RateLimited { .. } => "RequestError",
            ApiError::Internal(_) => "internal",
            ApiError::Unavailable(_) => "unavailable",
        }
    }
}

/// The failure body: always a list, never alongside `data`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong (usually one entry).
    pub errors: Vec<ErrorItem>,
}

/// One error in the envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorItem {
    /// A stable kind: `input-validation`, `not-found`, `unauthorized`, `forbidden`, `conflict`,
    /// `RequestError` (rate limited), ...
    #[serde(rename = "type")]
    pub kind: String,
    /// For a person.
    pub message: String,
    /// The JSON path of the offending input, for validation errors and references to
    /// resources that do not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Extra machine-readable detail (rate-limit counters).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                // The detail may name files or database state: log it, tell the client less.
                tracing::error!(error = %detail, "internal error");
                "internal error; the server log has the detail".to_string()
            }
            other => other.to_string(),
        };
        let (field, data) = match &self {
            ApiError::Validation { field, .. } => (field.clone(), None),
            ApiError::Referenced { field, .. } => (Some(field.clone()), None),
            ApiError::RateLimited {
                ms_before_next,
                consumed,
            } => (
                None,
                Some(serde_json::json!({
                    "remainingPoints": 0,
                    "msBeforeNext": ms_before_next,
                    "consumedPoints": consumed,
                })),
            ),
            _ => (None, None),
        };
        let body = ErrorBody {
            errors: vec![ErrorItem {
                kind: self.kind().to_string(),
                message,
                field,
                data,
            }],
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::Unavailable(_) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::RateLimited { ms_before_next, .. } = self {
            let secs = ms_before_next.div_ceil(1000).max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<sled::Error> for ApiError {
    fn from(err: sled::Error) -> ApiError {
        ApiError::Internal(format!("database: {err}"))
    }
}

impl From<sled::transaction::TransactionError<ApiError>> for ApiError {
    fn from(err: sled::transaction::TransactionError<ApiError>) -> ApiError {
        match err {
            sled::transaction::TransactionError::Abort(err) => err,
            sled::transaction::TransactionError::Storage(err) => err.into(),
        }
    }
}

// Lets `?` abort a sled transaction with an API error.
impl From<ApiError> for sled::transaction::ConflictableTransactionError<ApiError> {
    fn from(err: ApiError) -> Self {
        sled::transaction::ConflictableTransactionError::Abort(err)
    }
}

// The store's errors, mapped once: a missing record is a 404 naming it, anything else a 500.
impl From<crate::workspace::StoreError> for ApiError {
    fn from(err: crate::workspace::StoreError) -> ApiError {
        use crate::workspace::StoreError;
        match err {
            StoreError::NotFound { kind, id } => ApiError::not_found(kind, &id),
            StoreError::Database(e) => e.into(),
            StoreError::Record(e) => e.into(),
            StoreError::Conflict { .. } => ApiError::Conflict(err.to_string()),
            StoreError::Unavailable(_) => ApiError::Unavailable(err.to_string()),
        }
    }
}

// A warehouse sync that could not run: disabled is a conflict with the record's state, a
// deleted warehouse a 404, anything else sluice's own failure.
impl From<crate::dataplane::warehouse::SyncError> for ApiError {
    fn from(err: crate::dataplane::warehouse::SyncError) -> ApiError {
        use crate::dataplane::warehouse::SyncError;
        match err {
            SyncError::Disabled(_) => ApiError::Conflict(err.to_string()),
            SyncError::Gone(id) => ApiError::not_found("warehouse", &id),
            SyncError::Store(e) => e.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(err: serde_json::Error) -> ApiError {
        ApiError::Internal(format!("stored JSON: {err}"))
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> ApiError {
        ApiError::Internal(format!("background task: {err}"))
    }
}

/// The error responses most operations share, for the OpenAPI document.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum CommonErrors {
    /// Missing or unknown bearer token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token's roles do not allow this operation.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such resource, or one outside the token's scope.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Invalid input; `field` names the culprit.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// The token's rate limit is exhausted; see `Retry-After`.
    #[response(status = 429)]
    TooManyRequests(ErrorBody),
}
