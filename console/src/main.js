// The console's shell: sign-in, navigation and the hash router (`#/sources/<id>`), which hands
// each page its element and the rest of the path. Each page is one module in pages/.
import { ApiError, get, onUnauthorized, token } from "./api.js";
import { load, roles, session } from "./session.js";
import { h, mount } from "./ui.js";
import * as sources from "./pages/sources.js";
import * as destinations from "./pages/destinations.js";
import * as functions from "./pages/functions.js";
import * as debug from "./pages/debugger.js";
import * as plans from "./pages/plans.js";
import * as audit from "./pages/audit.js";
import * as warehouses from "./pages/warehouses.js";

const PAGES = [
  ["sources", "Sources", sources],
  ["destinations", "Destinations", destinations],
  ["functions", "Functions", functions],
  ["debugger", "Debugger", debug],
  ["tracking-plans", "Tracking plans", plans],
  ["warehouses", "Warehouses", warehouses],
  ["audit", "Audit trail", audit],
];

const app = document.getElementById("app");
let cleanup = null;

function signIn(message) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, placeholder: "an API token" });
  const error = h("p", { class: "form-error", role: "alert", hidden: !message }, message ?? "");
  const form = h(
    "form",
    { class: "card signin" },
    h("h1", {}, "sluice"),
    h("p", {}, "Sign in with an API token: the one ", h("code", {}, "sluice serve"), " printed, or one from ", h("code", {}, "POST /tokens"), ". It is kept in this tab only."),
    h("label", { for: "token" }, "Token"),
    input,
    error,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    token.set(input.value.trim());
    try {
      await load();
      start();
    } catch (err) {
      token.clear();
      error.textContent = err instanceof ApiError && err.status === 401 ? "This token is not valid (unknown, revoked or expired)." : err.message;
      error.hidden = false;
    }
  });
  mount(app, h("main", { class: "center" }, form));
  input.focus();
}

function signOut(message) {
  token.clear();
  session.token = null;
  cleanup?.();
  cleanup = null;
  signIn(message);
}

async function start() {
  const workspace = await get("/").catch(() => ({ workspace: { name: "sluice" } }));
  const nav = h("nav", {}, PAGES.map(([path, title]) => h("a", { href: `#/${path}`, dataset: { page: path } }, title)));
  const main = h("main", { id: "page" });
  mount(
    app,
    h(
      "header",
      {},
      h("span", { class: "brand" }, "sluice"),
      h("span", { class: "workspace" }, workspace.workspace.name),
      nav,
      h("span", { class: "who", title: session.token.description }, roles()),
      h("button", { class: "small", onclick: () => signOut() }, "Sign out"),
    ),
    main,
  );
  // `#` and `#/sources` name the same page: moving between them keeps the page as it is.
  window.onhashchange = () => keyOf(...parse()) !== shownKey && route(main, nav);
  route(main, nav);
}

// Each route renders into its own element. A page whose fetches finish after the next
// navigation then fills an element no longer on the page, instead of replacing the newer page
// (seen in CI: the start-up render of #/sources replaced the form a person had begun to fill).
let shown = null;
let shownKey = null;

/** The page and the rest of the path that the location names. */
function parse() {
  const [path = "sources", ...rest] = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  return [PAGES.find(([p]) => p === path) ?? PAGES[0], rest.map(decodeURIComponent)];
}

/** What identifies a route: the page's path and the rest, `sources/<id>`. */
const keyOf = (page, rest) => [page[0], ...rest].join("/");

function route(main, nav) {
  cleanup?.();
  cleanup = null;
  const [page, rest] = parse();
  for (const a of nav.children) a.classList.toggle("active", a.dataset.page === page[0]);
  document.title = `${page[1]} · sluice`;
  const view = h("div", { class: "view" }, h("p", { class: "muted" }, "Loading…"));
  shown = view;
  shownKey = keyOf(page, rest);
  mount(main, view);
  Promise.resolve(page[2].render(view, rest))
    .then((stop) => {
      if (typeof stop !== "function") return;
      if (shown === view) cleanup = stop;
      else stop();
    })
    .catch((err) => mount(view, h("p", { class: "form-error", role: "alert" }, err.message ?? String(err))));
}

onUnauthorized(() => signOut("The API no longer accepts this token: sign in again."));
if (token.get()) load().then(start, () => signOut());
else signIn();
