//! The MCP resources: the catalog (what sources, destinations and warehouses sluice supports,
//! with their settings) and the function programming model (from the README, so that there is
//! one text to keep current).

use axum::http::{HeaderValue, Method};
use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents};
use serde_json::{Value, json};

use super::Agent;

const CATALOG: &str = "sluice://catalog";
const FUNCTIONS: &str = "sluice://docs/functions";

/// The README, whose function sections are the programming model.
const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));

/// The README sections that make up the programming model, by heading.
const SECTIONS: [&str; 3] = [
    "## Writing a function in JavaScript",
    "## Writing a function in Rust",
    "## What a function may do, and what stops it",
];

/// The resources `resources/list` names.
pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(CATALOG, "catalog")
            .with_title("The catalog")
            .with_description(
                "The source, destination and warehouse types sluice supports, with their \
                 settings (the metadataId to give createSource, createDestination, ...).",
            )
            .with_mime_type("application/json"),
        Resource::new(FUNCTIONS, "function-programming-model")
            .with_title("Writing functions")
            .with_description(
                "How to write an insert function (JavaScript with Segment's handlers, or a Rust \
                 WebAssembly component): the handlers, what they may return, settings, logs, \
                 and the limits of the sandbox.",
            )
            .with_mime_type("text/markdown"),
    ]
}

/// The resource at `uri`, read as the caller.
///
/// # Errors
/// No such resource, or the catalog could not be read (the caller's token, say).
pub async fn read(
    agent: &Agent,
    uri: &str,
    auth: Option<&HeaderValue>,
) -> Result<ReadResourceResult, ErrorData> {
    match uri {
        CATALOG => {
            let mut catalog = json!({});
            for kind in ["sources", "destinations", "warehouses"] {
                let answer = agent
                    .call(Method::GET, &format!("/catalog/{kind}"), auth, None)
                    .await?;
                if !answer.status.is_success() {
                    return Err(ErrorData::invalid_request(
                        format!(
                            "cannot read /catalog/{kind}: HTTP {}",
                            answer.status.as_u16()
                        ),
                        Some(answer.body),
                    ));
                }
                catalog[kind] = answer.body["data"].clone();
            }
            let text = serde_json::to_string_pretty(&catalog).unwrap_or_default();
            Ok(ReadResourceResult::new(vec![text_contents(
                text,
                CATALOG,
                "application/json",
            )]))
        }
        FUNCTIONS => Ok(ReadResourceResult::new(vec![text_contents(
            programming_model(),
            FUNCTIONS,
            "text/markdown",
        )])),
        other => Err(ErrorData::resource_not_found(
            format!("no resource `{other}`; resources/list names them"),
            Some(Value::String(other.to_string())),
        )),
    }
}

fn text_contents(text: String, uri: &str, mime: &str) -> ResourceContents {
    ResourceContents::TextResourceContents {
        uri: uri.to_string(),
        mime_type: Some(mime.to_string()),
        text,
        meta: None,
    }
}

/// The README's function sections, one after the other.
pub fn programming_model() -> String {
    let mut text = String::from("# Writing sluice functions\n\n");
    for heading in SECTIONS {
        let Some(start) = README.find(heading) else {
            continue;
        };
        let rest = &README[start + heading.len()..];
        // The section ends at the next second-level heading (a `## ` at a line start).
        let end = rest.find("\n## ").unwrap_or(rest.len());
        text.push_str(heading);
        text.push_str(&rest[..end]);
        text.push_str("\n\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{README, SECTIONS, programming_model};

    #[test]
    fn the_programming_model_has_every_section() {
        for heading in SECTIONS {
            assert!(README.contains(heading), "README has `{heading}`");
        }
        let text = programming_model();
        assert!(text.contains("onTrack"), "{text}");
        assert!(text.len() > 2000, "{} bytes", text.len());
    }
}
