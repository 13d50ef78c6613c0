//! Names where ids go: a source may be given by id, slug or name, a destination, tracking plan
//! or function by id or name. Each costs one list request; an unknown or ambiguous name is an
//! error naming what there is instead of an empty answer.

use anyhow::bail;
use serde_json::Value;

use super::client::Client;
use super::destinations::DESTINATIONS;
use super::resources::{Kind, SOURCES, cell_str};

/// The id of the `kind` that `given` names: its id, or the one item whose name field equals it.
///
/// # Errors
/// None or several match (naming them), or the server cannot list them.
pub(super) fn resolve(client: &Client, kind: &Kind, given: &str) -> anyhow::Result<String> {
    match find(client, kind, given)? {
        Some(id) => Ok(id),
        None => bail!(
            "no {noun} with id{names} `{given}` (`sluice {command} list` lists them)",
            noun = kind.noun,
            names = name_words(kind),
            command = kind.command,
        ),
    }
}

/// Like [`resolve`] for a source or a destination (where an insert function attaches):
/// returns the id.
///
/// # Errors
/// Neither kind has such an item, or the name is ambiguous.
pub(super) fn resolve_integration(client: &Client, given: &str) -> anyhow::Result<String> {
    if let Some(id) = find(client, &SOURCES, given)? {
        return Ok(id);
    }
    if let Some(id) = find(client, &DESTINATIONS, given)? {
        return Ok(id);
    }
    bail!(
        "no source (by id, slug or name) nor destination (by id or name) `{given}` \
         (`sluice sources list`, `sluice destinations list`)"
    )
}

/// The id `given` names among `kind`'s items, if any.
fn find(client: &Client, kind: &Kind, given: &str) -> anyhow::Result<Option<String>> {
    let items = client.list_all(kind.path, kind.many)?;
    if items
        .iter()
        .any(|i| i.get("id").and_then(Value::as_str) == Some(given))
    {
        return Ok(Some(given.to_string()));
    }
    let named: Vec<&Value> = items
        .iter()
        .filter(|i| {
            kind.names
                .iter()
                .any(|p| i.pointer(p).and_then(Value::as_str) == Some(given))
        })
        .collect();
    match named.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(cell_str(one, "id"))),
        many => {
            let ids: Vec<String> = many.iter().map(|i| cell_str(i, "id")).collect();
            bail!(
                "{} {}s are named `{given}` ({}); pass the id",
                many.len(),
                kind.noun,
                ids.join(", ")
            )
        }
    }
}

/// ` or slug or name` for the kind's name fields.
fn name_words(kind: &Kind) -> String {
    kind.names
        .iter()
        .map(|p| {
            format!(
                " or {}",
                p.trim_start_matches('/').replace("displayName", "name")
            )
        })
        .collect()
}
