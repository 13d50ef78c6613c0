//! Allocation failure is the host's memory cap: both allocators here turn it into
//! `script.abort(out-of-memory)`, a named error for the host, instead of QuickJS's catchable
//! "out of memory" exception or Rust's bare `unreachable` trap.
//!
//! Aborting at the failed `malloc` itself (rather than when the exception reaches the engine)
//! also means user code cannot catch the failure and carry on in an instance at its cap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;

use crate::bindings::sluice::function::script::{self, AbortReason};

/// Ends the invocation: the instance ran out of memory. Never returns.
pub fn out_of_memory() -> ! {
    script::abort(AbortReason::OutOfMemory);
    // The host never returns from `abort`; if one did, trapping is all that is left.
    std::process::abort()
}

/// Rust's allocator: the system one (wasi-libc's malloc, shared with QuickJS), aborting to the
/// host on failure.
pub struct AbortingSystem;

// SAFETY: forwards to `System`, only adding a diverging call when it returns null.
unsafe impl GlobalAlloc for AbortingSystem {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }
}

unsafe extern "C" {
    // wasi-libc's allocator (dlmalloc), which the Rust standard library also uses on WASI.
    fn malloc(size: usize) -> *mut c_void;
    fn calloc(count: usize, size: usize) -> *mut c_void;
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
    fn malloc_usable_size(ptr: *mut c_void) -> usize;
}

/// QuickJS's allocator: libc's, aborting to the host on failure.
pub struct QuickJsAllocator;

// SAFETY: plain libc allocation; `usable_size` only reads libc's own chunk header.
unsafe impl rquickjs::allocator::Allocator for QuickJsAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let p = unsafe { malloc(size) };
        if p.is_null() && size != 0 {
            out_of_memory();
        }
        p.cast()
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let p = unsafe { calloc(count, size) };
        if p.is_null() && count != 0 && size != 0 {
            out_of_memory();
        }
        p.cast()
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        unsafe { free(ptr.cast()) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        let p = unsafe { realloc(ptr.cast(), new_size) };
        if p.is_null() && new_size != 0 {
            out_of_memory();
        }
        p.cast()
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        unsafe { malloc_usable_size(ptr.cast()) }
    }
}
