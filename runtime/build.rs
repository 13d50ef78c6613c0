//! Embeds the JavaScript engine component (`js-engine/`, built for `wasm32-wasip2` and
//! snapshotted after its set-up by `scripts/build-components`) into the `sluice` binary, so
//! that JavaScript functions need no file beside it. The snapshot is preferred; the plain
//! build works too (each instance then sets QuickJS up itself). Without either the binary
//! still builds and says so when JavaScript code is uploaded.

use std::path::PathBuf;

fn main() {
    duckdb_rpath();
    println!("cargo::rustc-check-cfg=cfg(sluice_js_engine)");
    println!("cargo::rerun-if-env-changed=SLUICE_JS_ENGINE_WASM");
    let Some(candidates) = engine_paths() else {
        return;
    };
    // Watching a file that does not exist yet re-runs this script on every build, which is
    // what lets the engine (or its snapshot) appear after a first build without it.
    for path in &candidates {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    let path = candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or(&candidates[0]);
    if path.is_file() {
        println!("cargo::rustc-cfg=sluice_js_engine");
        println!("cargo::rustc-env=SLUICE_JS_ENGINE_WASM={}", path.display());
    } else {
        println!(
            "cargo::warning=no JavaScript engine at {}: JavaScript functions are unavailable in this build (run scripts/build-components first)",
            path.display()
        );
    }
}

/// `$SLUICE_JS_ENGINE_WASM`, else where `scripts/build-components` puts the snapshot and the
/// plain engine in this build's target directory, in order of preference.
fn engine_paths() -> Option<Vec<PathBuf>> {
    const BUILT: [&str; 2] = [
        "wasm32-wasip2/wasm/sluice_js_engine.snapshot.wasm",
        "wasm32-wasip2/wasm/sluice_js_engine.wasm",
    ];
    if let Some(path) = std::env::var_os("SLUICE_JS_ENGINE_WASM") {
        return Some(vec![PathBuf::from(path)]);
    }
    // OUT_DIR is <target>[/<triple>]/<profile>/build/<package>-<hash>/out.
    let out = PathBuf::from(std::env::var_os("OUT_DIR")?);
    let found = out
        .ancestors()
        .skip(3)
        .find(|dir| BUILT.iter().any(|b| dir.join(b).is_file()));
    let target = found.or_else(|| out.ancestors().nth(4))?;
    Some(BUILT.iter().map(|b| target.join(b)).collect())
}

/// The `sluice` binary finds DuckDB's library where `scripts/fetch-duckdb` put it (the
/// directory `.cargo/config.toml` names in `DUCKDB_LIB_DIR`), also once installed elsewhere;
/// and a copy in this script's output directory is on the library path Cargo gives the test
/// binaries of every crate that depends on this one.
fn duckdb_rpath() {
    println!("cargo::rerun-if-env-changed=DUCKDB_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_BUNDLED_DUCKDB").is_some() {
        return;
    }
    let Some(dir) = std::env::var_os("DUCKDB_LIB_DIR").map(PathBuf::from) else {
        return;
    };
    let Ok(dir) = dir.canonicalize() else { return };
    println!("cargo::rustc-link-arg-bins=-Wl,-rpath,{}", dir.display());
    let library = dir.join("libduckdb.so");
    println!("cargo::rerun-if-changed={}", library.display());
    if let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from)
        && std::fs::copy(&library, out.join("libduckdb.so")).is_ok()
    {
        println!("cargo::rustc-link-search=native={}", out.display());
    }
}
