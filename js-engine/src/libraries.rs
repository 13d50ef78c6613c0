//! Segment's preinstalled npm libraries as globals (`_`, `moment`, `uuidv5`, `xml2js`, bundled
//! by `libraries/build.mjs`) and `cache` (`libraries.js`), at no cost to code that never uses
//! them.
//!
//! Each bundle is compiled to QuickJS bytecode in the build's snapshot ([`precompile`]), whose
//! memory keeps the bytes; the global is an accessor that evaluates the bytecode on first read
//! (no parse at run time) and then becomes a plain data property (see `libraries.js`). The
//! evaluation runs under the invocation's fuel like any of the function's code.

use std::cell::RefCell;

use rquickjs::allocator::Allocator;
use rquickjs::{Context, Ctx, Exception, Function, Result, Runtime, Value};

use crate::alloc::QuickJsAllocator;
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
/// by the build's snapshot (`initialize`), so instances never parse a library. A library that
/// does not compile keeps no bytecode: its parse error then reaches the code that uses it.
///
/// The compiler runs in a QuickJS runtime of its own whose memory is zeroed as it is freed:
/// the snapshot stores the instance's memory, and the parser's garbage (several times a
/// bundle's size) would otherwise be stored in it too.
pub fn precompile() {
    let Ok(runtime) = Runtime::new_with_alloc(Scrubbing) else {
        return;
    };
    let Ok(context) = Context::full(&runtime) else {
        return;
    };
    context.with(|ctx| {
        for (index, library) in LIBRARIES.iter().enumerate() {
            let written = bytecode::compile(&ctx, library.source, library.file)
                .and_then(|compiled| compiled.write_stripped(&ctx));
            match written {
                Ok(bytes) => BYTECODE.with(|cell| cell.borrow_mut()[index] = Some(bytes)),
                Err(_) => drop(ctx.catch()),
            }
        }
    });
}

/// The engine's QuickJS allocator, zeroing each block it frees (see [`precompile`]).
struct Scrubbing;

impl Scrubbing {
    /// Zeroes and frees `ptr`.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator.
    unsafe fn scrub(ptr: *mut u8) {
        // SAFETY: the whole usable size of a live block belongs to it.
        unsafe {
            std::ptr::write_bytes(ptr, 0, QuickJsAllocator::usable_size(ptr));
            QuickJsAllocator.dealloc(ptr);
        }
    }
}

// SAFETY: QuickJsAllocator's blocks; a block is zeroed only while it is still owned.
unsafe impl Allocator for Scrubbing {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        QuickJsAllocator.alloc(size)
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        QuickJsAllocator.calloc(count, size)
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if !ptr.is_null() {
            // SAFETY: QuickJS frees only blocks it got from this allocator.
            unsafe { Self::scrub(ptr) }
        }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        // Moved by hand, so the old block is zeroed too.
        let moved = self.alloc(new_size);
        // SAFETY: `ptr` is live with `usable_size` bytes, `moved` has at least `new_size`.
        unsafe {
            let keep = QuickJsAllocator::usable_size(ptr).min(new_size);
            std::ptr::copy_nonoverlapping(ptr, moved, keep);
            Self::scrub(ptr);
        }
        moved
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: as the caller promised.
        unsafe { QuickJsAllocator::usable_size(ptr) }
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
