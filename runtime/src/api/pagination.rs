//! Segment's cursor pagination: `pagination.count` (1..=1000, default 200) and an opaque
//! `pagination.cursor` in the query; a `pagination` object beside the page in the response.
//! Cursors are base64 offsets into the (filtered, creation-ordered) list, as Segment's are.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;

/// The query parameters of every list operation.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 200).
    #[serde(rename = "pagination.count")]
    #[param(rename = "pagination.count", value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub count: Option<String>,
    /// The `next` (or `previous`) cursor of an earlier page.
    #[serde(rename = "pagination.cursor")]
    #[param(rename = "pagination.cursor")]
    pub cursor: Option<String>,
}

/// Where a page sits in the list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// The cursor of this page.
    pub current: String,
    /// The cursor of the next page; null on the last page.
    pub next: Option<String>,
    /// The cursor of the previous page; null on the first page.
    pub previous: Option<String>,
    /// How many items the whole list has.
    pub total_entries: usize,
}

/// Cuts one page out of `items`.
///
/// # Errors
/// A count outside 1..=1000 or a cursor sluice did not make: 422 naming the parameter.
pub fn page<T>(items: Vec<T>, query: &PageQuery) -> Result<(Vec<T>, Pagination), ApiError> {
    let count = match &query.count {
        None => 200,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "pagination.count",
                    "`pagination.count` must be an integer from 1 to 1000",
                ));
            }
        },
    };
    let offset = match &query.cursor {
        // An empty cursor is the first page, as no cursor is (generated clients send one).
        None => 0,
        Some(cursor) if cursor.is_empty() => 0,
        Some(cursor) => decode(cursor).ok_or_else(|| {
            ApiError::invalid(
                "pagination.cursor",
                "`pagination.cursor` is not a cursor sluice made",
            )
        })?,
    };
    let total = items.len();
    let next = (offset + count < total).then(|| encode(offset + count));
    let previous = (offset > 0).then(|| encode(offset.saturating_sub(count)));
    let page = items.into_iter().skip(offset).take(count).collect();
    Ok((
        page,
        Pagination {
            current: encode(offset),
            next,
            previous,
            total_entries: total,
        },
    ))
}

fn encode(offset: usize) -> String {
    STANDARD.encode(offset.to_string())
}

fn decode(cursor: &str) -> Option<usize> {
    let bytes = STANDARD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}
