//! Segment's preinstalled npm libraries as globals (`_`, `moment`, `uuidv5`, `xml2js`, bundled
//! by `libraries/build.mjs`) and `cache` (`libraries.js`), at no cost to code that never uses
//! them.
//!
//! Each bundle is compiled to QuickJS bytecode in the build's snapshot ([`precompile`]), whose
//! memory keeps the bytes; the global is an accessor that evaluates the bytecode on first read
//! (no parse at run time) and then becomes a plain data property (see `libraries.js`). The
//! evaluation runs under the invocation's fuel like any of the function's code.

use std::cell::RefCell;

use rquickjs::{Ctx, Exception, Function, Result, Value};

use crate::bytecode;
use crate::eval::eval;

/// A library: its global name and its bundle (a script whose completion value is the library).
struct Library {
    global: &'static str,
    file: &'static str,
    source: &'static str,
}

/// The bundles `libraries/build.mjs` writes (js-engine's build.rs fails first without them).
const LIBRARIES: [Library; 4] = [
    Library {
        global: "_",
        file: "sluice:lodash",
        source: include_str!("../libraries/dist/lodash.js"),
    },
    Library {
        global: "moment",
        file: "sluice:moment",
        source: include_str!("../libraries/dist/moment.js"),
    },
    Library {
        global: "uuidv5",
        file: "sluice:uuidv5",
        source: include_str!("../libraries/dist/uuidv5.js"),
    },
    Library {
        global: "xml2js",
        file: "sluice:xml2js",
        source: include_str!("../libraries/dist/xml2js.js"),
    },
];

/// Defines the lazy globals and `cache`; the function taking names and `load`.
const INSTALL: &str = include_str!("libraries.js");

thread_local! {
    // Each library's bytecode, in `LIBRARIES` order, written by `precompile` in the snapshot.
    // `None` in an unsnapshotted instance: the library is then parsed on first use.
    static BYTECODE: RefCell<[Option<Vec<u8>>; 4]> = const { RefCell::new([None, None, None, None]) };
}

/// Defines the libraries' globals (unevaluated) and `cache` in `ctx`.
pub fn install<'js>(ctx: &Ctx<'js>) -> Result<()> {
    let install: Function = eval(ctx, INSTALL, "sluice:libraries")?.get()?;
    let names: Vec<&str> = LIBRARIES.iter().map(|l| l.global).collect();
    let load = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, name: String| -> Result<Value<'js>> { load(&ctx, &name) },
    )?;
    install.call((names, load))
}

/// Compiles every library to bytecode, kept for the instance's first use of each. Run once,
/// by the build's snapshot (`initialize`), so instances never parse a library. Under the
/// engine's stack bound, so a bundle compiles here only if an unsnapshotted instance could
/// parse it too.
pub fn precompile(ctx: &Ctx<'_>) {
    for (index, library) in LIBRARIES.iter().enumerate() {
        let written = bytecode::compile(ctx, library.source, library.file)
            .and_then(|compiled| compiled.write_stripped(ctx));
        // A bundle QuickJS cannot compile fails the build (the snapshot traps here) rather
        // than every function that uses it.
        let bytes = written.unwrap_or_else(|_| panic!("{} does not compile", library.file));
        BYTECODE.with(|cell| cell.borrow_mut()[index] = Some(bytes));
    }
}

/// The library named `global`, evaluated: from its bytecode when the snapshot has it.
fn load<'js>(ctx: &Ctx<'js>, global: &str) -> Result<Value<'js>> {
    let Some(index) = LIBRARIES.iter().position(|l| l.global == global) else {
        return Err(Exception::throw_internal(ctx, "no such library"));
    };
    let library = &LIBRARIES[index];
    let compiled = BYTECODE.with(|cell| match &cell.borrow()[index] {
        Some(bytes) => bytecode::read(ctx, bytes),
        None => bytecode::compile(ctx, library.source, library.file),
    })?;
    compiled.run(ctx)
}
