//! Checks, for the wasm build, that the npm libraries the engine embeds (`src/libraries.rs`)
//! were bundled: they are build output of `libraries/build.mjs`, not checked in.

use std::path::Path;

const BUNDLES: [&str; 4] = ["lodash.js", "moment.js", "uuidv5.js", "xml2js.js"];

fn main() {
    println!("cargo::rerun-if-changed=libraries/dist");
    // The host build (tests, lints) is pure helpers and embeds nothing.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("wasm32") {
        return;
    }
    let dist = Path::new("libraries/dist");
    if let Some(missing) = BUNDLES.iter().find(|b| !dist.join(b).is_file()) {
        panic!(
            "js-engine/libraries/dist/{missing} is missing: the engine embeds the bundled npm \
             libraries; run scripts/build-components (it runs `npm ci` and `node build.mjs` in \
             js-engine/libraries/)"
        );
    }
}
