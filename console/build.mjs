// Bundles the console (src/main.js and what it imports, CodeMirror included) into dist/:
// index.html, console.js, console.css. Run by scripts/build-components; the runtime embeds
// dist/ (runtime/build.rs). No source maps: the bundle is served from the binary as is.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

const dist = new URL("./dist/", import.meta.url);
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: { console: "src/main.js" },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "none",
  outdir: "dist",
  logLevel: "warning",
});
await build({
  entryPoints: { console: "src/style.css" },
  bundle: true,
  minify: true,
  outdir: "dist",
  logLevel: "warning",
});
await copyFile(new URL("./src/index.html", import.meta.url), new URL("index.html", dist));
