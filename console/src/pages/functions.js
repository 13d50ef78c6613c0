// Functions: the list, creating one (JavaScript, from a template), and one function's page:
// the editor (save makes a version; a syntax error is marked where the engine found it), its
// declared settings, the test panel, versions (deploy, restore), where it is attached, and
// its logs.
import { del, get, patch, post } from "../api.js";
import { createEditor, parseCodeError } from "../editor.js";
import { canWrite } from "../session.js";
import { action, clearErrors, failure, field, guardForm, h, heading, link, mount, section, showError, table, valueOf, when } from "../ui.js";
import { testPanel } from "./function-test.js";
import { attachPanel } from "./function-attach.js";

export const TYPES = [
  ["INSERT_SOURCE", "Source insert function (runs on a source's events)"],
  ["INSERT_DESTINATION", "Destination insert function (runs before one destination)"],
];

const TEMPLATE = `// Called with each track event; return it (changed or not), return null to drop it,
// or throw a ValidationError to reject it. onIdentify, onPage... work the same way.
async function onTrack(event, settings) {
  event.properties = event.properties || {};
  event.properties.reviewed = true;
  console.log("reviewed", event.event);
  return event;
}
`;

export async function render(root, [id]) {
  return id ? detail(root, id) : list(root);
}

async function list(root) {
  const { functions } = await get("/functions?pagination.count=200");
  mount(
    root,
    heading("Functions"),
    section(
      "All functions",
      table(
        [
          ["Name", (f) => link(`functions/${f.id}`, f.displayName)],
          ["Kind", (f) => f.resourceType],
          ["Runtime", (f) => f.runtime],
          ["Deployed", (f) => (f.deployedVersionId ? when(f.deployedAt) : "not deployed")],
        ],
        functions,
        "No functions yet.",
      ),
    ),
    section("New function", createForm()),
  );
}

function createForm() {
  const form = h(
    "form",
    { class: "form", "aria-label": "New function" },
    field({ name: "displayName", label: "Name", required: true }),
    field({ name: "resourceType", label: "Kind", kind: "select", options: TYPES }),
    h("p", { class: "hint" }, "It starts as JavaScript from a template; edit it on the next page."),
    h("button", { type: "submit" }, "Create function"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const { function: fn } = await post("/functions", {
        displayName: valueOf(form.querySelector("[name=displayName]")) ?? "",
        resourceType: valueOf(form.querySelector("[name=resourceType]")),
        code: TEMPLATE,
      });
      location.hash = `#/functions/${fn.id}`;
    } catch (err) {
      showError(form, err);
    }
  });
  return guardForm(form, "functions");
}

async function detail(root, id) {
  const { function: fn } = await get(`/functions/${id}`);
  const writable = canWrite("functions");
  const status = h("p", { class: "status", id: "code-status", role: "status" });
  const holder = h("div", { class: "editor", id: "editor" });
  const declarations = settingsDeclarations(fn.settings);
  const versions = h("div", {});
  const attached = h("div", {});
  const logs = h("div", {});
  const state = { fn };
  const save = action("functions", "Save (new version)", () => saveCode());
  const deploy = action("functions", "Deploy latest", async () => {
    try {
      await post(`/functions/${id}/deploy`, { versionId: state.fn.versionId });
      refreshAll();
    } catch (err) {
      say(err.message, "error");
    }
  });
  const say = (text, kind = "") => {
    status.textContent = text;
    status.className = `status ${kind}`;
  };
  const editor = createEditor(holder, fn.code ?? "// A WebAssembly component: its source is not stored here.", {
    readOnly: !writable || fn.runtime !== "javascript",
    onChange: () => say("Unsaved changes: save to test them.", "muted"),
  });

  async function saveCode() {
    clearErrors(declarations);
    try {
      const body = { settings: readDeclarations(declarations) };
      if (fn.runtime === "javascript") body.code = editor.code;
      state.fn = (await patch(`/functions/${id}`, body)).function;
      editor.mark(null);
      say(`Saved as version ${state.fn.versionId.slice(-8)}.`, "ok");
      refreshAll();
    } catch (err) {
      const where = err.field === "code" ? parseCodeError(err.message) : null;
      if (where) editor.mark(where);
      if (err.field?.startsWith("settings")) showError(declarations, err);
      say(err.message, "error");
    }
  }

  const refreshAll = () => {
    loadVersions(versions, id, state, editor, refreshAll);
    attachPanel(attached, state.fn);
    loadLogs(logs, id);
  };

  mount(
    root,
    heading(
      fn.displayName,
      action("functions", "Delete", async () => {
        if (!confirm(`Delete the function ${fn.displayName} and its instances?`)) return;
        await del(`/functions/${id}`).then(() => (location.hash = "#/functions"), (err) => say(err.message, "error"));
      }, { class: "danger" }),
    ),
    h("p", { class: "muted" }, `${fn.resourceType} · ${fn.runtime} · id ${fn.id}`),
    h(
      "div",
      { class: "split" },
      h("div", { class: "pane" }, section("Code", holder, h("div", { class: "actions" }, save, deploy), status), section("Settings it declares", declarations)),
      h("div", { class: "pane" }, section("Test", testPanel(state, () => editor.code !== (state.fn.code ?? editor.code)))),
    ),
    section("Versions", versions),
    section("Attached to", attached),
    section("Logs (recent runs)", logs),
  );
  refreshAll();
}

const SETTING_TYPES = ["STRING", "BOOLEAN", "ARRAY", "TEXT_MAP"].map((t) => [t, t]);

function declarationRow(d = {}) {
  return h(
    "div",
    { class: "declaration" },
    field({ name: "name", label: "Name", value: d.name }),
    field({ name: "label", label: "Label", value: d.label }),
    field({ name: "type", label: "Type", kind: "select", options: SETTING_TYPES, value: d.type ?? "STRING" }),
    field({ name: "required", label: "Required", kind: "boolean", value: d.required }),
    field({ name: "description", label: "Description", value: d.description }),
    h("button", { type: "button", class: "small", onclick: (e) => e.target.closest(".declaration").remove() }, "Remove"),
  );
}

function settingsDeclarations(settings) {
  const rows = h("div", { class: "declarations" }, settings.map(declarationRow));
  const form = h(
    "form",
    { class: "form", "aria-label": "Declared settings", onsubmit: (e) => e.preventDefault() },
    h("p", { class: "hint" }, "What each instance is configured with (saved with the code)."),
    rows,
    h("button", { type: "button", class: "small", onclick: () => rows.append(declarationRow()) }, "Add a setting"),
  );
  return guardForm(form, "functions");
}

function readDeclarations(form) {
  return [...form.querySelectorAll(".declaration")]
    .map((row) => {
      const v = (n) => valueOf(row.querySelector(`[name=${n}]`));
      return { name: v("name") ?? "", label: v("label") ?? v("name") ?? "", type: v("type"), required: v("required"), description: v("description") ?? "" };
    })
    .filter((d) => d.name);
}

async function loadVersions(el, id, state, editor, refresh) {
  try {
    const [{ versions }, { function: fn }] = await Promise.all([get(`/functions/${id}/versions?pagination.count=200`), get(`/functions/${id}`)]);
    state.fn = fn;
    mount(
      el,
      table(
        [
          ["Version", (v) => h("code", {}, v.id.slice(-8))],
          ["Created", (v) => when(v.createdAt)],
          ["State", (v) => [v.isDeployed ? h("span", { class: "badge ok" }, "deployed") : null, v.id === fn.versionId ? h("span", { class: "badge" }, "latest") : null]],
          ["", (v) => [
            v.code != null ? h("button", { class: "small", onclick: () => (editor.code = v.code) }, "Open") : null,
            " ",
            action("functions", "Deploy", () => post(`/functions/${id}/deploy`, { versionId: v.id }).then(refresh, (err) => alert(err.message)), { class: "small", disabled: v.isDeployed }),
            " ",
            action("functions", "Restore", () => post(`/functions/${id}/versions`, { versionId: v.id }).then((r) => {
              if (r?.function?.code != null) editor.code = r.function.code;
              refresh();
            }, (err) => alert(err.message)), { class: "small", disabled: v.id === fn.versionId, title: "Make a new latest version with this code" }),
          ]],
        ],
        [...versions].reverse(),
      ),
    );
  } catch (err) {
    mount(el, failure(err));
  }
}

async function loadLogs(el, id) {
  try {
    const logs = (await get(`/functions/${id}/logs`)).logs.slice(-50).reverse();
    mount(
      el,
      table(
        [
          ["At", (l) => when(l.at)],
          ["Level", (l) => l.level],
          ["Message", (l) => l.message],
          ["Event", (l) => h("code", {}, l.messageId)],
        ],
        logs,
        "No logs yet: they appear once the deployed function runs on events.",
      ),
    );
  } catch (err) {
    mount(el, failure(err));
  }
}
