//! `sluice new`: scaffolds a function project that builds, and passes its own test, as is: a
//! Rust crate (the default) or a JavaScript `index.js` (`--lang js`), of each kind (`--kind`
//! insert, destination or source; a Rust source function waits for the guest SDK's source
//! support). Each kind's templates are in `templates/`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::NewArgs;

const CARGO_TOML: &str = include_str!("templates/rust/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("templates/rust/lib.rs.tmpl");
const EVENTS: &str = include_str!("templates/rust/events.jsonl");
const DESTINATION_LIB_RS: &str = include_str!("templates/rust-destination/lib.rs.tmpl");
const DESTINATION_EVENTS: &str = include_str!("templates/rust-destination/events.jsonl");

/// The JavaScript insert function: file name and template.
const JS_FILES: &[(&str, &str)] = &[
    ("index.js", include_str!("templates/js/index.js")),
    ("events.jsonl", include_str!("templates/js/events.jsonl")),
    (
        "expected.jsonl",
        include_str!("templates/js/expected.jsonl"),
    ),
    ("package.json", include_str!("templates/js/package.json")),
    ("README.md", include_str!("templates/js/README.md")),
];

/// The JavaScript destination function.
const JS_DESTINATION_FILES: &[(&str, &str)] = &[
    (
        "index.js",
        include_str!("templates/js-destination/index.js"),
    ),
    (
        "events.jsonl",
        include_str!("templates/js-destination/events.jsonl"),
    ),
    (
        "expected.jsonl",
        include_str!("templates/js-destination/expected.jsonl"),
    ),
    (
        "package.json",
        include_str!("templates/js-destination/package.json"),
    ),
    (
        "README.md",
        include_str!("templates/js-destination/README.md"),
    ),
];

/// The JavaScript source function.
const JS_SOURCE_FILES: &[(&str, &str)] = &[
    ("index.js", include_str!("templates/js-source/index.js")),
    (
        "requests.jsonl",
        include_str!("templates/js-source/requests.jsonl"),
    ),
    (
        "expected.jsonl",
        include_str!("templates/js-source/expected.jsonl"),
    ),
    (
        "package.json",
        include_str!("templates/js-source/package.json"),
    ),
    ("README.md", include_str!("templates/js-source/README.md")),
];

/// The test command of a JavaScript destination project, as its files spell it.
const JS_DESTINATION_TEST: &str = "sluice run index.js events.jsonl --kind destination --receiver --settings '{\"url\":\"{{receiver}}/events\"}' --expect expected.jsonl";

pub(super) fn new(args: NewArgs) -> anyhow::Result<()> {
    let name = args.name.trim();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !valid {
        bail!(
            "`{name}` is not a valid function name: use letters, digits, `-` and `_`, starting with a letter"
        );
    }
    if args.lang == "rust" && args.kind == "source" {
        bail!(
            "a Rust source function is not scaffolded yet (the guest SDK's source support is not released); \
             create a JavaScript one with --lang js --kind source"
        );
    }
    let dir = args.path.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        bail!(
            "{} already exists; choose another name or --path",
            dir.display()
        );
    }
    match args.lang.as_str() {
        "js" => new_js(name, &dir, &args.kind),
        _ => new_rust(name, &dir, &args),
    }
}

fn new_rust(name: &str, dir: &Path, args: &NewArgs) -> anyhow::Result<()> {
    let sdk = sdk_dependency(args.sdk.as_deref())?;
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{sdk}}", &sdk)
    };
    let destination = args.kind == "destination";
    let (lib, events) = match destination {
        true => (DESTINATION_LIB_RS, DESTINATION_EVENTS),
        false => (LIB_RS, EVENTS),
    };
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    write(&dir.join("Cargo.toml"), &fill(CARGO_TOML))?;
    write(&dir.join("src/lib.rs"), &fill(lib))?;
    write(&dir.join("events.jsonl"), events)?;
    write(&dir.join(".gitignore"), "/target\n")?;
    println!(
        "Created {} (a Rust {} function). Next:",
        dir.display(),
        args.kind
    );
    if args.sdk.is_none() {
        println!(
            "  (it depends on sluice-guest {} by version; to build against a sluice checkout \
             instead, create it with --sdk <checkout>/guest-sdk)",
            sdk_version()
        );
    }
    let wasm = format!(
        "target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    println!("  cd {}", dir.display());
    println!("  cargo test                                   # its own test, natively");
    println!("  cargo build --target wasm32-wasip2 --release # the component");
    if destination {
        println!(
            "  sluice run {wasm} events.jsonl --kind destination --receiver --settings '{{\"url\":\"{{{{receiver}}}}/events\"}}'"
        );
        println!(
            "  sluice functions deploy . --name {name} --type DESTINATION --setting url:STRING   # on a server"
        );
    } else {
        println!("  sluice run {wasm} --events events.jsonl");
    }
    Ok(())
}

fn new_js(name: &str, dir: &Path, kind: &str) -> anyhow::Result<()> {
    let files = match kind {
        "destination" => JS_DESTINATION_FILES,
        "source" => JS_SOURCE_FILES,
        _ => JS_FILES,
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (file, template) in files {
        write(&dir.join(file), &template.replace("{{name}}", name))?;
    }
    println!(
        "Created {} (a JavaScript {kind} function). Next:",
        dir.display()
    );
    println!("  cd {}", dir.display());
    match kind {
        "destination" => {
            println!("  {JS_DESTINATION_TEST}   # its own test");
            println!(
                "  sluice functions deploy index.js --name {name} --type DESTINATION --setting url:STRING   # on a server"
            );
        }
        "source" => {
            println!(
                "  sluice run index.js requests.jsonl --kind source                            # try it"
            );
            println!(
                "  sluice run index.js requests.jsonl --kind source --expect expected.jsonl    # its own test"
            );
            println!(
                "  sluice functions deploy index.js --name {name} --type SOURCE                # on a server"
            );
        }
        _ => {
            println!("  sluice run index.js events.jsonl                            # try it");
            println!(
                "  sluice run index.js events.jsonl --expect expected.jsonl    # its own test"
            );
            println!("  sluice functions deploy index.js --name {name}              # on a server");
        }
    }
    Ok(())
}

/// The guest SDK's version a new project asks for: this binary's, major and minor
/// (`sluice-guest = "0.1"`).
fn sdk_version() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => version.to_string(),
    }
}

/// The `sluice-guest` dependency of a new Rust project: by version (a registry's), or with
/// `--sdk` a local copy too (a sluice checkout's `guest-sdk`, for working on sluice itself).
/// No path into the tree this binary was built from is ever written: a project must not
/// depend on where someone cloned sluice.
fn sdk_dependency(sdk: Option<&Path>) -> anyhow::Result<String> {
    let version = sdk_version();
    let Some(sdk) = sdk else {
        return Ok(format!("\"{version}\""));
    };
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "--sdk {}: no such directory; give the path of a sluice checkout's guest-sdk",
            sdk.display()
        )
    })?;
    if !sdk.join("Cargo.toml").is_file() {
        bail!(
            "--sdk {}: no Cargo.toml there; give a sluice checkout's guest-sdk",
            sdk.display()
        );
    }
    // A TOML basic string: `\` and `"` escaped.
    let path = sdk
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    Ok(format!("{{ version = \"{version}\", path = \"{path}\" }}"))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
