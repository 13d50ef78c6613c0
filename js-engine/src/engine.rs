//! The engine's life in one instance: QuickJS runtime, context and prelude set up once (in the
//! build's snapshot, see [`initialize`]), the user's code loaded on the first call (from its
//! bytecode when the host has it), handlers looked up once, then reused for every event.

use std::cell::RefCell;
use std::ptr;
use std::rc::Rc;

use rquickjs::{Array, Context, Ctx, Function, Object, Persistent, Runtime, Value, qjs};

use crate::alloc::{QuickJsAllocator, out_of_memory};
use crate::bindings::sluice::function::host;
use crate::bindings::sluice::function::script::{self, FunctionKind, SyntaxError};
use crate::bytecode::{self, Compiled};
use crate::eval::eval;
use crate::globals::{self, Prelude};
use crate::json_out::Pristine;
use crate::libraries;
use crate::outcome::Reporter;
use crate::position::{Position, USER_FILE, first_user_position, refine_parse_column};

/// QuickJS's bound on the C (shadow) stack its JavaScript may use: about 450 levels of plain
/// JavaScript recursion. The shadow stack is 1 MiB (Rust's default for wasm32), so QuickJS's
/// "stack overflow" comes long before linear memory is overrun. The bound is this low because
/// the host's native stack for wasm (wasmtime's default 512 KiB) holds ~3.5 bytes per shadow
/// byte in QuickJS's interpreter loop: at 128 KiB the catchable JavaScript error comes first on
/// the usual paths; paths QuickJS does not check (deep getters, bound functions) exhaust the
/// native stack instead, which the host reports as a stack overflow too.
const JS_STACK_BYTES: usize = 128 * 1024;

/// Event types and the handler each one calls, in `Handlers::by_type` order.
pub const EVENT_HANDLERS: [(&str, &str); 7] = [
    ("track", "onTrack"),
    ("identify", "onIdentify"),
    ("page", "onPage"),
    ("screen", "onScreen"),
    ("group", "onGroup"),
    ("alias", "onAlias"),
    ("delete", "onDelete"),
];

/// A function made before the user's code and called after it: reads the handlers whether they were declared as functions
/// (global properties) or with `let`/`const` (global lexical bindings, invisible as properties).
const HANDLER_LOOKUP: &str = "(() => { const f = (v) => (typeof v === 'function' ? v : undefined); return [\
    typeof onTrack === 'undefined' ? undefined : f(onTrack), \
    typeof onIdentify === 'undefined' ? undefined : f(onIdentify), \
    typeof onPage === 'undefined' ? undefined : f(onPage), \
    typeof onScreen === 'undefined' ? undefined : f(onScreen), \
    typeof onGroup === 'undefined' ? undefined : f(onGroup), \
    typeof onAlias === 'undefined' ? undefined : f(onAlias), \
    typeof onDelete === 'undefined' ? undefined : f(onDelete), \
    typeof onBatch === 'undefined' ? undefined : f(onBatch), \
    typeof onRequest === 'undefined' ? undefined : f(onRequest)]; })";

/// The handlers the user's code defines.
pub struct Handlers {
    /// Per event type, in [`EVENT_HANDLERS`] order.
    pub by_type: [Option<Persistent<Function<'static>>>; 7],
    /// `onBatch`.
    pub batch: Option<Persistent<Function<'static>>>,
    /// `onRequest` (source functions).
    pub request: Option<Persistent<Function<'static>>>,
}

/// The parsed settings, kept while the host's settings text stays the same.
#[derive(Default)]
pub struct SettingsCache {
    text: String,
    value: Option<Persistent<Value<'static>>>,
}

impl SettingsCache {
    /// The settings object for this invocation, parsed again only if the text changed.
    pub fn current<'js>(&mut self, ctx: &Ctx<'js>) -> Value<'js> {
        let text = host::settings();
        if let Some(value) = &self.value
            && self.text == text
            && let Ok(value) = value.clone().restore(ctx)
        {
            return value;
        }
        // The host promises a JSON object; anything unreadable is taken as no settings.
        let value = match ctx.json_parse(text.as_str()) {
            Ok(value) => value,
            Err(_) => {
                let _ = ctx.catch();
                Object::new(ctx.clone())
                    .map_or_else(|_| Value::new_undefined(ctx.clone()), Object::into_value)
            }
        };
        self.text = text;
        self.value = Some(Persistent::save(ctx, value.clone()));
        value
    }
}

/// Everything set up from the user's code.
pub struct Loaded {
    /// Insert, destination or source function: what its handlers' results mean.
    pub kind: FunctionKind,
    /// The prelude's helpers.
    pub prelude: Prelude,
    /// The user's handlers.
    pub handlers: Handlers,
    /// The settings of the last invocation.
    pub settings: SettingsCache,
    /// The built-ins results are serialised with, captured before the user's code ran.
    pub json: Rc<RefCell<Pristine>>,
}

impl Loaded {
    /// A reporter for outcomes in `ctx`.
    pub fn reporter<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<Reporter<'js>> {
        let describe = self.prelude.describe_error.clone().restore(ctx)?;
        Ok(Reporter::new(ctx.clone(), describe, self.json.clone()))
    }
}

/// One instance's engine. Field order is drop order: JavaScript values, then the context,
/// then the runtime that owns them.
pub struct Engine {
    /// The user's code, loaded; or why it could not be.
    pub loaded: Result<Loaded, SyntaxError>,
    /// The code's bytecode, when this instance compiled it for the `compile` export.
    pub bytecode: Option<Vec<u8>>,
    /// The one JavaScript context.
    pub context: Context,
    #[allow(dead_code)] // kept alive for the context; never used directly after start-up
    runtime: Runtime,
}

/// QuickJS set up without the user's code: what the build's snapshot holds (see
/// [`initialize`]). Field order is drop order, as in [`Engine`].
struct Booted {
    base: Result<Base, SyntaxError>,
    context: Context,
    runtime: Runtime,
}

/// The engine's own JavaScript state, made before the user's code runs.
struct Base {
    prelude: Prelude,
    json: Rc<RefCell<Pristine>>,
    /// `HANDLER_LOOKUP`'s function, called once the code has run.
    lookup: Persistent<Function<'static>>,
}

thread_local! {
    // A component instance is single-threaded and lives for one engine.
    static BOOTED: RefCell<Option<Booted>> = const { RefCell::new(None) };
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// Sets QuickJS up (runtime, context, prelude, RegExp and JSON natives) without the user's
/// code. The build snapshots the instance right after this (wasmtime-wizer), so instances of
/// the snapshot start here; without a snapshot the first call does it. Idempotent.
pub fn initialize() {
    let started = ENGINE.with(|cell| cell.borrow().is_some());
    BOOTED.with(|cell| {
        let mut slot = cell.borrow_mut();
        if !started && slot.is_none() {
            let booted = Booted::boot();
            // Only here, in the snapshot: an unsnapshotted instance parses a library when used.
            booted.context.with(|ctx| libraries::precompile(&ctx));
            *slot = Some(booted);
        }
    });
}

/// Runs `f` on this instance's engine, loading the user's code on first use.
pub fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    with_engine_as(false, f)
}

/// As [`with_engine`]; if this call loads the code from source, its bytecode is kept in
/// [`Engine::bytecode`].
pub fn with_engine_as<R>(write_bytecode: bool, f: impl FnOnce(&mut Engine) -> R) -> R {
    ENGINE.with(|cell| {
        // Never re-entered: nothing called from JavaScript goes back into the engine.
        let mut slot = cell.borrow_mut();
        let engine = slot.get_or_insert_with(|| {
            let booted = BOOTED.with(|b| b.borrow_mut().take());
            booted.unwrap_or_else(Booted::boot).load(write_bytecode)
        });
        f(engine)
    })
}

/// The QuickJS runtime on the build's allocator (see `alloc` and the crate's features).
fn new_runtime() -> rquickjs::Result<Runtime> {
    if cfg!(feature = "alloc-quickjs") {
        Runtime::new()
    } else if cfg!(feature = "alloc-rust") {
        Runtime::new_with_alloc(rquickjs::allocator::RustAllocator)
    } else {
        Runtime::new_with_alloc(QuickJsAllocator)
    }
}

impl Booted {
    fn boot() -> Booted {
        let runtime = new_runtime().unwrap_or_else(|_| out_of_memory());
        runtime.set_max_stack_size(JS_STACK_BYTES);
        let context = Context::full(&runtime).unwrap_or_else(|_| out_of_memory());
        let base = context.with(|ctx| Base::install(&ctx));
        Booted {
            base,
            context,
            runtime,
        }
    }

    fn load(self, write_bytecode: bool) -> Engine {
        let Booted {
            base,
            context,
            runtime,
        } = self;
        let (loaded, bytecode) = match base {
            Ok(base) => context.with(|ctx| load(&ctx, base, write_bytecode)),
            Err(err) => (Err(err), None),
        };
        Engine {
            loaded,
            bytecode,
            context,
            runtime,
        }
    }
}

impl Base {
    fn install(ctx: &Ctx<'_>) -> Result<Base, SyntaxError> {
        let prelude = globals::install(ctx).map_err(|err| engine_failure(ctx, "prelude", err))?;
        crate::regexp::glue::install(ctx)
            .map_err(|err| engine_failure(ctx, "RegExp set-up", err))?;
        libraries::install(ctx).map_err(|err| engine_failure(ctx, "libraries", err))?;
        let json = Pristine::capture(ctx).map_err(|err| engine_failure(ctx, "JSON set-up", err))?;
        let lookup: Function = eval(ctx, HANDLER_LOOKUP, "sluice:handlers")
            .and_then(|f| f.get())
            .map_err(|err| engine_failure(ctx, "handler lookup", err))?;
        Ok(Base {
            prelude,
            json: Rc::new(RefCell::new(json)),
            lookup: Persistent::save(ctx, lookup),
        })
    }
}

/// The user's code (from its bytecode when the host has it, else parsed), then the handler
/// lookup; with `write_bytecode`, code parsed here is also written as bytecode.
fn load(
    ctx: &Ctx<'_>,
    base: Base,
    write_bytecode: bool,
) -> (Result<Loaded, SyntaxError>, Option<Vec<u8>>) {
    let Base {
        prelude,
        json,
        lookup,
    } = base;
    let (compiled, bytecode) = match compiled_code(ctx, write_bytecode) {
        Ok(found) => found,
        Err(source) => {
            let thrown = ctx.catch();
            return (
                Err(top_level_error(ctx, &prelude, &json, thrown, &source)),
                None,
            );
        }
    };
    if compiled.run(ctx).is_err() {
        let thrown = ctx.catch();
        let source = script::source();
        return (
            Err(top_level_error(ctx, &prelude, &json, thrown, &source)),
            None,
        );
    }
    // Top-level async work (`(async () => ...)()`) runs before the first event.
    drain_jobs(ctx);
    let handlers =
        lookup_handlers(ctx, lookup).map_err(|err| engine_failure(ctx, "handler lookup", err));
    let loaded = handlers.map(|handlers| Loaded {
        kind: script::kind(),
        prelude,
        handlers,
        settings: SettingsCache::default(),
        json,
    });
    (loaded, bytecode)
}

/// The code compiled: read from the host's bytecode, else parsed from its source (and written
/// as bytecode if asked). A syntax error is `Err(source)` with the exception pending.
fn compiled_code<'js>(
    ctx: &Ctx<'js>,
    write_bytecode: bool,
) -> Result<(Compiled<'js>, Option<Vec<u8>>), String> {
    let stored = script::bytecode();
    if !stored.is_empty() {
        match bytecode::read(ctx, &stored) {
            Ok(compiled) => return Ok((compiled, None)),
            // Bytes from another engine build slipped through: parse instead.
            Err(_) => drop(ctx.catch()),
        }
    }
    let source = script::source();
    let compiled = match bytecode::compile(ctx, &source, USER_FILE) {
        Ok(compiled) => compiled,
        Err(_) => return Err(source),
    };
    let written = if write_bytecode {
        match compiled.write(ctx) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                // Not fatal: the host then stores no bytecode and instances parse the code.
                drop(ctx.catch());
                None
            }
        }
    } else {
        None
    };
    Ok((compiled, written))
}

fn lookup_handlers(
    ctx: &Ctx<'_>,
    lookup: Persistent<Function<'static>>,
) -> rquickjs::Result<Handlers> {
    let found: Array = lookup.restore(ctx)?.call(())?;
    let get = |index: usize| -> rquickjs::Result<Option<Persistent<Function<'static>>>> {
        let f: Option<Function> = found.get(index)?;
        Ok(f.map(|f| Persistent::save(ctx, f)))
    };
    Ok(Handlers {
        by_type: [
            get(0)?,
            get(1)?,
            get(2)?,
            get(3)?,
            get(4)?,
            get(5)?,
            get(6)?,
        ],
        batch: get(7)?,
        request: get(8)?,
    })
}

/// The syntax error `check` reports for code that does not compile or whose top level throws.
fn top_level_error<'js>(
    ctx: &Ctx<'js>,
    prelude: &Prelude,
    json: &Rc<RefCell<Pristine>>,
    thrown: Value<'js>,
    source: &str,
) -> SyntaxError {
    if let Ok(describe) = prelude.describe_error.clone().restore(ctx) {
        Reporter::new(ctx.clone(), describe, json.clone()).abort_if_stack_overflow(thrown.clone());
    }
    let Some(error) = thrown.as_object() else {
        let message = thrown
            .get::<rquickjs::Coerced<String>>()
            .map(|s| s.0)
            .unwrap_or_else(|_| "the code threw a value".into());
        return syntax_error(Position::START, format!("uncaught {message}"));
    };
    let text = |key: &str| error.get::<_, Option<String>>(key).ok().flatten();
    let stack = text("stack").unwrap_or_default();
    let position = first_user_position(&stack).unwrap_or(Position::START);
    let name = text("name").unwrap_or_else(|| "Error".into());
    let message = text("message").unwrap_or_default();
    // A parse error's stack is just the position (`    at function.js:L:C`); anything else was
    // thrown by running code and keeps its name.
    let parse_error =
        name == "SyntaxError" && stack.trim_start().starts_with(&format!("at {USER_FILE}:"));
    if parse_error {
        let position = refine_parse_column(source, position, &message);
        syntax_error(position, message)
    } else {
        syntax_error(position, format!("uncaught {name}: {message}"))
    }
}

fn syntax_error(position: Position, message: String) -> SyntaxError {
    SyntaxError {
        line: position.line,
        column: position.column,
        message,
    }
}

/// A failure of the engine's own set-up (not the user's code), reported through `check`.
fn engine_failure(ctx: &Ctx<'_>, stage: &str, err: rquickjs::Error) -> SyntaxError {
    let detail = if err.is_exception() {
        let thrown = ctx.catch();
        thrown
            .as_object()
            .and_then(|o| o.get::<_, Option<String>>("message").ok().flatten())
            .unwrap_or_else(|| err.to_string())
    } else {
        err.to_string()
    };
    syntax_error(
        Position::START,
        format!("JavaScript engine failure in its {stage}: {detail}"),
    )
}

/// Runs one pending promise job; `false` when none was pending. A job that fails with a stack
/// overflow aborts the invocation; other job failures are QuickJS's to report through the
/// promises concerned.
pub fn run_job<'js>(ctx: &Ctx<'js>, reporter: Option<&Reporter<'js>>) -> bool {
    let mut job_ctx: *mut qjs::JSContext = ptr::null_mut();
    // SAFETY: the runtime pointer comes from a live context; `job_ctx` receives the context of
    // a failed job, which is `ctx` (the runtime has no other).
    let status = unsafe {
        let rt = qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
        qjs::JS_ExecutePendingJob(rt, &mut job_ctx)
    };
    if status < 0 {
        let thrown = ctx.catch();
        if let Some(reporter) = reporter {
            reporter.abort_if_stack_overflow(thrown);
        }
    }
    status != 0
}

/// Runs pending promise jobs until none is left.
pub fn drain_jobs(ctx: &Ctx<'_>) {
    while run_job(ctx, None) {}
}
