// Sources: the list, creating one from the catalog, and one source's page: write keys (copy,
// add, remove), enforcement settings, connected destinations and insert functions, and how
// to send it events.
import { del, get, patch, post, query } from "../api.js";
import { action, clearErrors, copyButton, field, guardForm, h, heading, link, mount, section, showError, table, valueOf, when } from "../ui.js";

export async function render(root, [id]) {
  return id ? detail(root, id) : list(root);
}

async function list(root) {
  const [{ sources }, { sourcesCatalog }] = await Promise.all([get("/sources?pagination.count=200"), get("/catalog/sources?pagination.count=200")]);
  mount(
    root,
    heading("Sources"),
    section(
      "All sources",
      table(
        [
          ["Name", (s) => link(`sources/${s.id}`, s.name)],
          ["Slug", (s) => s.slug],
          ["Type", (s) => s.metadata?.name ?? s.metadata?.id],
          ["Enabled", (s) => (s.enabled ? "yes" : "no")],
          ["Created", (s) => when(s.createdAt)],
        ],
        sources,
        "No sources yet: create one below.",
      ),
    ),
    section("New source", createForm(sourcesCatalog)),
  );
}

function createForm(catalog) {
  const form = h(
    "form",
    { class: "form", "aria-label": "New source" },
    field({ name: "name", label: "Name", required: true }),
    field({ name: "slug", label: "Slug", required: true, description: "Lower case letters, digits and dashes; how the CLI names it." }),
    field({ name: "metadataId", label: "Type", kind: "select", options: catalog.map((c) => [c.id, c.name]), value: "javascript" }),
    h("button", { type: "submit" }, "Create source"),
  );
  form.querySelector("[name=name]").addEventListener("input", (e) => {
    const slug = form.querySelector("[name=slug]");
    if (!slug.dataset.touched) slug.value = e.target.value.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  });
  form.querySelector("[name=slug]").addEventListener("input", (e) => (e.target.dataset.touched = "1"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = { enabled: true };
    for (const input of form.querySelectorAll("[name]")) body[input.name] = valueOf(input);
    try {
      const { source } = await post("/sources", body);
      location.hash = `#/sources/${source.id}`;
    } catch (err) {
      showError(form, err);
    }
  });
  return guardForm(form, "sources");
}

async function detail(root, id) {
  const { source } = await get(`/sources/${id}`);
  const [{ destinations }, { insertFunctionInstances }, settings, functions] = await Promise.all([
    get(`/sources/${id}/connected-destinations?pagination.count=200`),
    get(`/insert-function-instances${query({ integrationId: id, "pagination.count": 200 })}`),
    get(`/sources/${id}/settings`),
    // A token without a functions role still sees the instances, by id.
    get("/functions?pagination.count=200").then((d) => d.functions, () => []),
  ]);
  const functionName = (fid) => functions.find((f) => f.id === fid)?.displayName ?? fid;
  const refresh = () => detail(root, id);
  mount(
    root,
    heading(
      source.name,
      link(`debugger/${id}`, "Open in the debugger"),
      action("sources", source.enabled ? "Disable" : "Enable", async () => {
        await patch(`/sources/${id}`, { enabled: !source.enabled });
        refresh();
      }),
      action("sources", "Delete", async () => {
        if (!confirm(`Delete the source ${source.name} and its destinations?`)) return;
        await del(`/sources/${id}`);
        location.hash = "#/sources";
      }, { class: "danger" }),
    ),
    h("p", { class: "muted" }, `${source.slug} · ${source.metadata?.name ?? ""} · ${source.enabled ? "enabled" : "disabled"} · id ${source.id}`),
    section("Write keys", writeKeys(source, refresh)),
    section("Send events", snippet(source)),
    section(
      "Connected destinations",
      table(
        [
          ["Name", (d) => link(`destinations/${d.id}`, d.name)],
          ["Type", (d) => d.metadata?.name ?? d.metadata?.id],
          ["Enabled", (d) => (d.enabled ? "yes" : "no")],
        ],
        destinations,
        "None: add one on the Destinations page.",
      ),
      link("destinations", "Add a destination"),
    ),
    section(
      "Insert functions",
      table(
        [
          ["Function", (i) => link(`functions/${i.functionId}`, functionName(i.functionId))],
          ["Order", (i) => i.order],
          ["Enabled", (i) => (i.enabled ? "yes" : "no")],
        ],
        insertFunctionInstances,
        "None: attach one from a function's page.",
      ),
    ),
    section("Tracking plan enforcement", enforcement(id, settings)),
  );
}

function writeKeys(source, refresh) {
  return h(
    "div",
    {},
    table(
      [
        ["Key", (k) => h("code", { class: "write-key" }, k)],
        ["", (k) => [
          copyButton(k),
          " ",
          action("sources", "Remove", async () => {
            if (!confirm("Remove this write key? Clients sending with it get 401 from now on.")) return;
            await del(`/sources/${source.id}/writekey/${encodeURIComponent(k)}`).then(refresh, (err) => alert(err.message));
          }, { class: "small danger", disabled: source.writeKeys.length < 2, title: "A source keeps at least one key" }),
        ]],
      ],
      source.writeKeys,
    ),
    h(
      "p",
      { class: "hint" },
      "To rotate: add a key, move clients to it, then remove the old one. ",
      action("sources", "Add a write key", async () => {
        await post(`/sources/${source.id}/writekey`).then(refresh, (err) => alert(err.message));
      }, { class: "small" }),
    ),
  );
}

function snippet(source) {
  const key = source.writeKeys[0] ?? "<write key>";
  const host = location.origin;
  const curl = `curl -u '${key}:' -H 'Content-Type: application/json' ${host}/v1/track \\
  -d '{"userId":"u-42","event":"Order Completed","properties":{"total":42}}'`;
  const node = `// npm install @segment/analytics-node
import { Analytics } from "@segment/analytics-node";
const analytics = new Analytics({ writeKey: "${key}", host: "${host}" });
analytics.track({ userId: "u-42", event: "Order Completed", properties: { total: 42 } });`;
  const browser = `// npm install @segment/analytics-next
import { AnalyticsBrowser } from "@segment/analytics-next";
const analytics = AnalyticsBrowser.load(
  { writeKey: "${key}", cdnSettings: { integrations: { "Segment.io": { apiHost: "${location.host}/v1", protocol: "${location.protocol.replace(":", "")}" } } } },
);
analytics.track("Order Completed", { total: 42 });`;
  const python = `# pip install segment-analytics-python
import segment.analytics as analytics
analytics.write_key = "${key}"
analytics.host = "${host}"
analytics.track("u-42", "Order Completed", {"total": 42})`;
  return h(
    "div",
    { class: "snippets" },
    [["curl", curl], ["Node.js", node], ["Browser (analytics.js)", browser], ["Python", python]].map(([title, code]) =>
      h("details", { open: title === "curl" }, h("summary", {}, title, " ", copyButton(code)), h("pre", {}, code)),
    ),
  );
}

const ENUMS = {
  track: ["ALLOW", "BLOCK", "OMIT_PROPERTIES"],
  identify: ["ALLOW", "BLOCK", "OMIT_TRAITS"],
  group: ["ALLOW", "BLOCK", "OMIT_TRAITS"],
};

function enforcement(id, settings) {
  const groups = ["track", "identify", "group"].map((group) =>
    h(
      "fieldset",
      {},
      h("legend", {}, group),
      Object.entries(settings[group] ?? {}).map(([key, value]) =>
        typeof value === "boolean"
          ? field({ name: `${group}.${key}`, label: key, kind: "boolean", value })
          : field({ name: `${group}.${key}`, label: key, kind: "select", value, options: ENUMS[group].map((v) => [v, v]) }),
      ),
    ),
  );
  const form = h(
    "form",
    { class: "form enforcement", "aria-label": "Enforcement" },
    h("div", { class: "columns" }, groups),
    field({ name: "forwardingViolationsTo", label: "Forward violations to (source id)", value: settings.forwardingViolationsTo ?? "" }),
    field({ name: "forwardingBlockedEventsTo", label: "Forward blocked events to (source id)", value: settings.forwardingBlockedEventsTo ?? "" }),
    h("button", { type: "submit" }, "Save enforcement"),
    h("span", { class: "saved muted", hidden: true }, " saved"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = {};
    for (const input of form.querySelectorAll("[name]")) {
      const [group, key] = input.name.split(".");
      const value = valueOf(input);
      if (key) (body[group] ??= {})[key] = value;
      else body[group] = value ?? null;
    }
    try {
      await patch(`/sources/${id}/settings`, body);
      form.querySelector(".saved").hidden = false;
    } catch (err) {
      showError(form, err);
    }
  });
  return guardForm(form, "sources");
}
