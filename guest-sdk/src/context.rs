//! What a handler can reach during one invocation: its settings, its log and the clock.

use std::cell::{OnceCell, RefCell};
use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine-grained tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the function handled.
    Warn,
    /// Something the function could not handle.
    Error,
}

/// The context of one invocation: settings of the function instance, its log and the time.
///
/// Inside a component the context talks to the sluice host; [`Context::local`] makes one for
/// native unit tests, which keeps the log in memory.
pub struct Context {
    settings: OnceCell<Map<String, Value>>,
    backend: Backend,
}

enum Backend {
    #[cfg(target_arch = "wasm32")]
    Host,
    Local {
        logs: RefCell<Vec<(Level, String)>>,
        now_ms: u64,
    },
}

impl Context {
    /// The context the sluice host provides; settings are fetched on first use.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn host() -> Context {
        Context {
            settings: OnceCell::new(),
            backend: Backend::Host,
        }
    }

    /// A context for native tests and tools: `settings` must be a JSON object (anything else
    /// counts as no settings), the clock reads `now_ms`, and the log is kept for [`Context::logs`].
    pub fn local(settings: Value, now_ms: u64) -> Context {
        let settings = match settings {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Context {
            settings: OnceCell::from(settings),
            backend: Backend::Local {
                logs: RefCell::new(Vec::new()),
                now_ms,
            },
        }
    }

    /// All settings of the function instance (an empty map when it has none).
    ///
    /// Inside a component the first call copies them from the host and parses them once per
    /// invocation; later calls are free.
    pub fn settings(&self) -> &Map<String, Value> {
        self.settings.get_or_init(|| self.fetch_settings())
    }

    /// One setting, converted to `T`; `None` when it is missing or of another type.
    pub fn setting<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let value = self.settings().get(name)?;
        T::deserialize(value).ok()
    }

    /// Appends a line to the function's log. Never fails; the host bounds the volume.
    pub fn log(&self, level: Level, message: impl Display) {
        match &self.backend {
            #[cfg(target_arch = "wasm32")]
            Backend::Host => host_log(level, &message.to_string()),
            Backend::Local { logs, .. } => logs.borrow_mut().push((level, message.to_string())),
        }
    }

    /// Logs at [`Level::Info`].
    pub fn info(&self, message: impl Display) {
        self.log(Level::Info, message)
    }

    /// Logs at [`Level::Warn`].
    pub fn warn(&self, message: impl Display) {
        self.log(Level::Warn, message)
    }

    /// Wall-clock time in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.backend {
            #[cfg(target_arch = "wasm32")]
            Backend::Host => crate::__bindings::sluice::function::host::now_ms(),
            Backend::Local { now_ms, .. } => *now_ms,
        }
    }

    /// The lines logged so far through a [`Context::local`] context (empty inside a component,
    /// whose log lives in the host).
    pub fn logs(&self) -> Vec<(Level, String)> {
        match &self.backend {
            #[cfg(target_arch = "wasm32")]
            Backend::Host => Vec::new(),
            Backend::Local { logs, .. } => logs.borrow().clone(),
        }
    }

    fn fetch_settings(&self) -> Map<String, Value> {
        match &self.backend {
            #[cfg(target_arch = "wasm32")]
            Backend::Host => {
                let text = crate::__bindings::sluice::function::host::settings();
                serde_json::from_str(&text).unwrap_or_default()
            }
            Backend::Local { .. } => Map::new(),
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn host_log(level: Level, message: &str) {
    use crate::__bindings::sluice::function::host::{self, Level as L};
    let level = match level {
        Level::Trace => L::Trace,
        Level::Debug => L::Debug,
        Level::Info => L::Info,
        Level::Warn => L::Warn,
        Level::Error => L::Error,
    };
    host::log(level, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_context_reads_typed_settings_and_keeps_logs() {
        let ctx = Context::local(serde_json::json!({"hashUserId": true, "drop": ["ssn"]}), 7);
        assert_eq!(ctx.setting::<bool>("hashUserId"), Some(true));
        assert_eq!(
            ctx.setting::<Vec<String>>("drop"),
            Some(vec!["ssn".to_string()])
        );
        assert_eq!(ctx.setting::<bool>("drop"), None);
        assert_eq!(ctx.setting::<bool>("missing"), None);
        ctx.info("hello");
        assert_eq!(ctx.logs(), vec![(Level::Info, "hello".to_string())]);
        assert_eq!(ctx.now_ms(), 7);
    }

    #[test]
    fn non_object_settings_count_as_none() {
        let ctx = Context::local(serde_json::json!([1, 2]), 0);
        assert!(ctx.settings().is_empty());
    }
}
