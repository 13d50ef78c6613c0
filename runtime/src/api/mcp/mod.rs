//! The Model Context Protocol endpoint: `POST /mcp` (streamable HTTP, stateless, JSON answers),
//! with the official Rust SDK (`rmcp`).
//!
//! - [`operations`]: one tool per operation of the OpenAPI document (the same route table the
//!   router is built from, so tools never drift), each dispatched as an internal HTTP request
//!   through the real router with the caller's bearer token: the same roles, scopes, rate
//!   limit, validation and audit trail as a direct call;
//! - [`extra`]: `send_test_event`, `test_function`, `tail_events`;
//! - [`resources`]: the catalog and the function programming model.
//!
//! `/mcp` sits behind the same authentication layer as every control-plane route: no valid
//! bearer token, no MCP.

mod extra;
mod operations;
mod resources;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;
use tower::ServiceExt;

/// The largest answer a tool returns to the agent (a page of 1,000 resources fits).
const ANSWER_LIMIT: usize = 8 << 20;

/// The `/mcp` service. `dispatch` is the router tool calls go through: the control plane with
/// its authentication and limits, and the tracking API (for `send_test_event`).
///
/// Cost: builds the tool list from the OpenAPI document once (a few milliseconds).
pub fn service(dispatch: Router) -> StreamableHttpService<Agent, NeverSessionManager> {
    let agent = Agent {
        inner: Arc::new(Inner {
            dispatch,
            operations: operations::Operations::from_document(super::openapi::document_value()),
        }),
    };
    // Stateless with JSON answers: no session to keep, nothing streaming past shutdown. The
    // Host check against DNS rebinding is off because every call needs a bearer token, which
    // a rebinding page cannot have; a Host allow-list would break every non-loopback address.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .disable_allowed_hosts();
    StreamableHttpService::new(
        move || Ok(agent.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// The MCP server handler: cheap to clone (one per request).
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    dispatch: Router,
    operations: operations::Operations,
}

/// An answer of the API: its status and JSON body (`Null` when empty or not JSON).
pub(crate) struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    /// The answer as a tool result: the body as JSON text, an error when the status is one.
    fn into_result(self) -> CallToolResult {
        let text = serde_json::to_string_pretty(&self.body).unwrap_or_default();
        if self.status.is_success() {
            CallToolResult::success(vec![ContentBlock::text(text)])
        } else {
            CallToolResult::error(vec![ContentBlock::text(format!(
                "HTTP {}\n{text}",
                self.status.as_u16()
            ))])
        }
    }
}

impl Agent {
    /// Sends one request through the router as the caller (`authorization` is the header
    /// their MCP request carried).
    async fn call(
        &self,
        method: Method,
        uri: &str,
        authorization: Option<&HeaderValue>,
        body: Option<&Value>,
    ) -> Result<Answer, ErrorData> {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(auth) = authorization {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let bytes = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                serde_json::to_vec(body).map_err(|e| internal(&e))?
            }
            None => Vec::new(),
        };
        let request = request.body(Body::from(bytes)).map_err(|e| {
            ErrorData::invalid_params(format!("cannot build the request `{uri}`: {e}"), None)
        })?;
        let response = self
            .inner
            .dispatch
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| internal(&e))?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|e| internal(&e))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }
}

fn internal(err: &dyn std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(format!("the internal request failed: {err}"), None)
}

/// The `Authorization` header of the MCP request being served.
fn authorization(context: &RequestContext<RoleServer>) -> Option<HeaderValue> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.headers.get(header::AUTHORIZATION))
        .cloned()
}

const INSTRUCTIONS: &str = "sluice: a self-hosted, Segment-compatible customer data pipeline. \
Each tool named like a Segment operation (listSources, createSource, getDestination, \
listAuditEvents, ...) is one operation of the control plane's API, with its path and query \
parameters as arguments and its JSON request body as `body`; answers are the API's JSON \
(`{\"data\": ...}`) or its errors (`{\"errors\": [...]}`). Lists take `pagination.count` and \
`pagination.cursor`; `listSources` takes `slug`. Tracking-plan enforcement is each source's \
`schemaSettings` (listSchemaSettingsInSource / updateSchemaSettingsInSource). send_test_event, \
test_function and tail_events help try a pipeline; the resources hold the catalog and the \
function programming model.";

impl ServerHandler for Agent {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("sluice", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.inner.operations.tools();
        tools.extend(extra::tools());
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let auth = authorization(&context);
        let args = request.arguments.unwrap_or_default();
        let result = match extra::Extra::named(&request.name) {
            Some(tool) => extra::call(self, tool, &args, auth.as_ref()).await?,
            None => {
                let Some(op) = self.inner.operations.get(&request.name) else {
                    return Err(ErrorData::invalid_params(
                        format!("no tool `{}`; tools/list names them all", request.name),
                        None,
                    ));
                };
                let (method, uri, body) = op.request(&args)?;
                self.call(method, &uri, auth.as_ref(), body.as_ref())
                    .await?
                    .into_result()
            }
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let auth = authorization(&context);
        resources::read(self, &request.uri, auth.as_ref())
            .await
            .map(Into::into)
    }
}
