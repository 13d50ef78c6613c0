//! One MCP tool per operation of the OpenAPI document: its path and query parameters become
//! arguments, its request body the `body` argument; a call becomes the operation's HTTP request.
//! Left out: the document itself, the tracking API (write-key auth; `send_test_event` covers
//! it) and the live debugger stream (it never ends; `tail_events` covers it).

use std::collections::{BTreeMap, BTreeSet};

use axum::http::Method;
use rmcp::ErrorData;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};

/// The tools, by name.
pub struct Operations {
    by_name: BTreeMap<String, Operation>,
}

/// One operation as a tool.
pub struct Operation {
    method: Method,
    path: String,
    path_params: Vec<String>,
    query_params: Vec<String>,
    has_body: bool,
    tool: Tool,
}

impl Operations {
    /// Reads every operation of `doc`.
    pub fn from_document(doc: &Value) -> Operations {
        let mut by_name = BTreeMap::new();
        let Some(paths) = doc["paths"].as_object() else {
            return Operations { by_name };
        };
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                    continue;
                };
                if let Some(operation) = Operation::read(doc, method, path, op) {
                    by_name.insert(operation.tool.name.to_string(), operation);
                }
            }
        }
        Operations { by_name }
    }

    /// Every tool.
    pub fn tools(&self) -> Vec<Tool> {
        self.by_name.values().map(|op| op.tool.clone()).collect()
    }

    /// The operation named `name`.
    pub fn get(&self, name: &str) -> Option<&Operation> {
        self.by_name.get(name)
    }
}

impl Operation {
    fn read(doc: &Value, method: Method, path: &str, op: &Value) -> Option<Operation> {
        let id = op["operationId"].as_str()?;
        let streams = op
            .pointer("/responses/200/content")
            .and_then(Value::as_object)
            .is_some_and(|c| c.contains_key("text/event-stream"));
        if id == "getOpenApiDocument" || op["tags"][0] == "Tracking API" || streams {
            return None;
        }
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut path_params = Vec::new();
        let mut query_params = Vec::new();
        for param in op["parameters"].as_array().into_iter().flatten() {
            let (Some(name), Some(place)) = (param["name"].as_str(), param["in"].as_str()) else {
                continue;
            };
            let mut schema = param["schema"].clone();
            if let Some(text) = param["description"].as_str() {
                schema["description"] = json!(text);
            }
            properties.insert(name.to_string(), schema);
            if param["required"] == true {
                required.push(name.to_string());
            }
            match place {
                "path" => path_params.push(name.to_string()),
                "query" => query_params.push(name.to_string()),
                _ => {}
            }
        }
        let body = op.pointer("/requestBody/content/application~1json/schema");
        if let Some(schema) = body {
            let mut schema = schema.clone();
            schema["description"] = json!("The JSON request body.");
            properties.insert("body".into(), schema);
            if op.pointer("/requestBody/required") == Some(&Value::Bool(true)) {
                required.push("body".into());
            }
        }
        let mut input = json!({"type": "object", "properties": properties, "required": required});
        let defs = definitions(doc, &input);
        rewrite_refs(&mut input);
        if !defs.is_empty() {
            input["$defs"] = Value::Object(defs);
        }
        let summary = op["summary"].as_str().unwrap_or(id);
        let description = format!(
            "{summary}. {} ({} {path})",
            op["description"].as_str().unwrap_or_default(),
            method.as_str()
        );
        let input: JsonObject = match input {
            Value::Object(map) => map,
            _ => JsonObject::new(),
        };
        let read_only = method == Method::GET;
        let annotations = ToolAnnotations::new()
            .read_only(read_only)
            .destructive(method == Method::DELETE);
        let tool = Tool::new(id.to_string(), description, input)
            .with_title(summary.to_string())
            .with_annotations(annotations);
        Some(Operation {
            method,
            path: path.to_string(),
            path_params,
            query_params,
            has_body: body.is_some(),
            tool,
        })
    }

    /// The HTTP request for a call with `args`: method, path with query, body.
    ///
    /// # Errors
    /// A path parameter is missing, or an argument has no place in the operation.
    pub fn request(&self, args: &JsonObject) -> Result<(Method, String, Option<Value>), ErrorData> {
        let mut path = self.path.clone();
        for name in &self.path_params {
            let value = args
                .get(name)
                .map(text)
                .ok_or_else(|| ErrorData::invalid_params(format!("`{name}` is required"), None))?;
            path = path.replace(&format!("{{{name}}}"), &encode(&value));
        }
        let mut query = Vec::new();
        for name in &self.query_params {
            if let Some(value) = args.get(name).filter(|v| !v.is_null()) {
                query.push(format!("{}={}", encode(name), encode(&text(value))));
            }
        }
        for name in args.keys() {
            let known = self.path_params.contains(name)
                || self.query_params.contains(name)
                || (self.has_body && name == "body");
            if !known {
                return Err(ErrorData::invalid_params(
                    format!("`{name}` is not an argument of {}", self.tool.name),
                    None,
                ));
            }
        }
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let body = if self.has_body {
            args.get("body").cloned()
        } else {
            None
        };
        Ok((self.method.clone(), path, body))
    }
}

/// A parameter's value as it goes in a URL: strings as they are, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

const PREFIX: &str = "#/components/schemas/";

/// The component schemas `schema` refers to, transitively, for its `$defs`.
fn definitions(doc: &Value, schema: &Value) -> Map<String, Value> {
    let mut seen = BTreeSet::new();
    let mut pending = Vec::new();
    references(schema, &mut pending);
    let mut defs = Map::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(found) = doc["components"]["schemas"].get(&name) else {
            continue;
        };
        references(found, &mut pending);
        let mut copy = found.clone();
        rewrite_refs(&mut copy);
        defs.insert(name, copy);
    }
    defs
}

fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(PREFIX))
            {
                out.push(name.to_string());
            }
            map.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// `#/components/schemas/X` becomes `#/$defs/X`: a tool's schema stands alone.
fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix(PREFIX)
            {
                *r = format!("#/$defs/{name}");
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
