//! Extractors whose rejections use the API's error envelope: bad input always looks the same.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body: unparseable JSON is a 400, JSON of the wrong shape a 422 naming the field, a
/// body over the limit a 413.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(kind) = req.headers().get(header::CONTENT_TYPE) {
            let kind = kind.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = kind.split(';').next().unwrap_or_default().trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the body must be JSON (Content-Type: application/json), not `{essence}`"
                )));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(super::BODY_LIMIT_BYTES)
            } else {
                ApiError::BadRequest(format!("cannot read the body: {}", rejection.body_text()))
            }
        })?;
        object(&bytes)?;
        parse(&bytes).map(Json)
    }
}

/// Every request body of the API is a JSON object; serde would read a struct from an array
/// too (`[]` as "no fields"), so anything else that is JSON is refused here (422).
fn object(bytes: &[u8]) -> Result<(), ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::Validation {
            message: "the body must be a JSON object (`{...}`)".into(),
            field: Some(".".into()),
        });
    }
    Ok(())
}

/// Parses JSON into `T`, naming the path of any field that does not fit.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // A syntax error is "not JSON" (400); anything else is JSON of the wrong shape (422).
    if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::BadRequest(format!("malformed JSON: {err}")));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        let field = match missing_field(&inner) {
            Some(name) if path == "." => name.to_string(),
            Some(name) => format!("{path}.{name}"),
            None => path,
        };
        let message = format!("`{field}`: {}", strip_position(&inner));
        ApiError::Validation {
            message,
            field: Some(field),
        }
    })
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

/// Query parameters; a parameter of the wrong type is a 422. Segment's SDKs send the list
/// parameters as `pagination[count]` and `pagination[cursor]` (brackets, usually
/// percent-encoded); those are read as `pagination.count` and `pagination.cursor`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = dotted(parts.uri.query().unwrap_or_default());
        serde_urlencoded::from_str::<T>(&query)
            .map(Query)
            .map_err(|err| ApiError::Validation {
                message: format!("invalid query: {err}"),
                field: None,
            })
    }
}

/// `query` with bracketed parameter names (`a[b]=`, `a%5Bb%5D=`) written dotted (`a.b=`).
fn dotted(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = name
                .replace("%5B", "[")
                .replace("%5b", "[")
                .replace("%5D", "]")
                .replace("%5d", "]");
            let name = match name.strip_suffix(']').and_then(|n| n.split_once('[')) {
                Some((outer, inner)) if !inner.contains(['[', ']']) => format!("{outer}.{inner}"),
                _ => name,
            };
            if pair.contains('=') {
                format!("{name}={value}")
            } else {
                name
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// An optional JSON body: an empty body is `None`, anything else must parse as [`Json`] does.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(super::BODY_LIMIT_BYTES)
            } else {
                ApiError::BadRequest(format!("cannot read the body: {}", rejection.body_text()))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        // `null` is no body too: generated clients send it for an optional body left out.
        if bytes.trim_ascii() == b"null" {
            return Ok(OptionalJson(None));
        }
        object(&bytes)?;
        parse(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// A nested object of a body, or `null`: serde would also read a struct from an array (its
/// fields in order), which no client means, so anything but an object is refused (use with
/// `#[serde(default, deserialize_with = "...")]`). Cost: the value is read into a tree first.
///
/// # Errors
/// Not an object or null, or an object that does not fit `T`.
pub fn optional_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::Deserialize as _;
    use serde::de::Error as _;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        v @ serde_json::Value::Object(_) => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        _ => Err(D::Error::custom("must be a JSON object")),
    }
}

/// Path parameters; an undecodable one (invalid UTF-8, say) is a 400 in the envelope.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|rejection| {
                ApiError::BadRequest(format!("invalid path: {}", rejection.body_text()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::dotted;

    #[test]
    fn bracketed_names_read_dotted() {
        assert_eq!(
            dotted("pagination%5Bcount%5D=1&pagination[cursor]=x&a.b=c&plain&resourceType=source"),
            "pagination.count=1&pagination.cursor=x&a.b=c&plain&resourceType=source"
        );
    }
}
