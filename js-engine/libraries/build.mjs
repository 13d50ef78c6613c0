// Bundles the libraries JavaScript functions find as globals into dist/<name>.js, one classic
// script each whose completion value is the library (what `require` would give node). Run by
// scripts/build-components; js-engine embeds dist/ (src/libraries.rs) and compiles each script
// to QuickJS bytecode in its build-time snapshot.
//
// The libraries are npm's CommonJS packages, pinned in package-lock.json. The node built-ins
// they ask for are replaced by small shims (shims/) or by npm ports (`buffer`, `events`); a
// built-in a library asks for that is not listed here fails the build instead of the function.
import { build } from "esbuild";
import { mkdir, readFile, writeFile } from "node:fs/promises";

const shims = new URL("./shims/", import.meta.url).pathname;

// Bundle name (js-engine/src/libraries.rs gives each its global) -> the CommonJS module the
// bundle returns, and what node built-ins become.
const LIBRARIES = {
  lodash: { entry: "module.exports = require('lodash');" },
  // The 10-year data build (2021-2031): the full data would nearly triple every instance's initial
  // memory (js-engine/README.md, "Libraries").
  moment: {
    entry: "module.exports = require('moment-timezone/builds/moment-timezone-with-data-10-year-range');",
  },
  // Segment's global is an object with `uuidv5`; the package's export is the function itself.
  // Both spellings work: the function, carrying itself as `uuidv5`.
  uuidv5: {
    entry: "const uuidv5 = require('uuidv5'); uuidv5.uuidv5 = uuidv5; module.exports = uuidv5;",
    alias: { crypto: `${shims}crypto.js` },
    inject: [`${shims}buffer.js`],
  },
  xml2js: {
    entry: "module.exports = require('xml2js');",
    alias: { events: "events", timers: `${shims}timers.js`, stream: `${shims}stream.js` },
  },
};

// esbuild's CommonJS output assigns `module.exports`; the wrapper makes that a local and the
// library the script's completion value, so evaluating it defines no global.
const wrap = (code) =>
  `(function () {\nvar module = { exports: {} }, exports = module.exports;\n${code}\nreturn module.exports;\n})()\n`;

async function bundle({ entry, alias = {}, inject = [] }) {
  const result = await build({
    stdin: { contents: entry, resolveDir: new URL(".", import.meta.url).pathname, loader: "js" },
    bundle: true,
    format: "cjs",
    platform: "neutral",
    mainFields: ["main"],
    target: "es2022",
    minify: true,
    legalComments: "none",
    alias,
    inject,
    write: false,
    logLevel: "warning",
  });
  return wrap(result.outputFiles[0].text);
}

// Written only when changed: the engine (and its snapshot) is rebuilt when a bundle's time is.
const dist = new URL("./dist/", import.meta.url);
await mkdir(dist, { recursive: true });
for (const [name, spec] of Object.entries(LIBRARIES)) {
  const file = new URL(`${name}.js`, dist);
  const code = await bundle(spec);
  const old = await readFile(file, "utf8").catch(() => null);
  if (code !== old) await writeFile(file, code);
}
