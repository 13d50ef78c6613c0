// Warehouses: the list, creating one from the catalog (a settings form from the type's
// options), and one warehouse's page: connection state, connected sources (connect,
// disconnect), "sync now", and the sync reports (rows per table, notices).
import { del, get, patch, post } from "../api.js";
import { readSettings, settingsFields, trackTouches } from "../schema-form.js";
import { action, clearErrors, failure, field, guardForm, h, heading, json, link, mount, section, showError, table, valueOf, when } from "../ui.js";

export async function render(root, [id]) {
  return id ? detail(root, id) : list(root);
}

async function list(root) {
  const [{ warehouses }, { warehousesCatalog }] = await Promise.all([get("/warehouses?pagination.count=200"), get("/catalog/warehouses?pagination.count=200")]);
  mount(
    root,
    heading("Warehouses"),
    section(
      "All warehouses",
      table(
        [
          ["Name", (w) => link(`warehouses/${w.id}`, w.name ?? w.id)],
          ["Type", (w) => w.metadata?.name ?? w.metadata?.id],
          ["Enabled", (w) => (w.enabled ? "yes" : "no")],
        ],
        warehouses,
        "No warehouses yet.",
      ),
    ),
    section("New warehouse", createForm(warehousesCatalog)),
  );
}

function createForm(catalog) {
  const settings = h("div", {});
  const type = field({ name: "metadataId", label: "Type", kind: "select", options: catalog.map((c) => [c.id, c.name]) });
  const form = trackTouches(h("form", { class: "form", "aria-label": "New warehouse" }, type, field({ name: "name", label: "Name" }), h("h3", {}, "Settings"), settings, h("button", { type: "submit" }, "Create warehouse")));
  const select = type.querySelector("select");
  const show = () => {
    const meta = catalog.find((c) => c.id === select.value);
    mount(settings, meta ? [h("p", { class: "hint" }, meta.description), settingsFields(meta.options)] : null);
  };
  select.addEventListener("change", show);
  show();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const { warehouse } = await post("/warehouses", { metadataId: select.value, name: valueOf(form.querySelector("[name=name]")), enabled: true, settings: readSettings(settings) });
      location.hash = `#/warehouses/${warehouse.id}`;
    } catch (err) {
      showError(form, err);
    }
  });
  return guardForm(form, "warehouses");
}

async function detail(root, id) {
  const [{ warehouse }, { sources: connected }, { sources }, { reports }] = await Promise.all([
    get(`/warehouses/${id}`),
    get(`/warehouses/${id}/connected-sources?pagination.count=200`),
    get("/sources?pagination.count=200"),
    get(`/warehouses/${id}/syncs?pagination.count=50`),
  ]);
  const refresh = () => detail(root, id);
  const state = h("span", { class: "muted" }, "checking the connection…");
  const status = h("p", { class: "status", role: "status" });
  const others = sources.filter((s) => !connected.some((c) => c.id === s.id));
  const connect = h("form", { class: "form inline", "aria-label": "Connect a source" }, field({ name: "sourceId", label: "Source", kind: "select", options: others.map((s) => [s.id, s.name]) }), h("button", { type: "submit", disabled: !others.length }, "Connect"));
  connect.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(connect);
    await post(`/warehouses/${id}/connected-sources/${valueOf(connect.querySelector("[name=sourceId]"))}`).then(refresh, (err) => showError(connect, err));
  });
  mount(
    root,
    heading(
      warehouse.name ?? warehouse.id,
      action("warehouses", "Sync now", async (e) => {
        e.target.disabled = true;
        status.textContent = "Syncing…";
        await post(`/warehouses/${id}/syncs`).then(refresh, (err) => {
          status.textContent = err.message;
          e.target.disabled = false;
        });
      }),
      action("warehouses", warehouse.enabled ? "Disable" : "Enable", () => patch(`/warehouses/${id}`, { enabled: !warehouse.enabled }).then(refresh, (err) => alert(err.message))),
      action("warehouses", "Delete", async () => {
        if (!confirm("Delete this warehouse? Its loaded data stays in the database.")) return;
        await del(`/warehouses/${id}`).then(() => (location.hash = "#/warehouses"), (err) => alert(err.message));
      }, { class: "danger" }),
    ),
    h("p", { class: "muted" }, `${warehouse.metadata?.name ?? ""} · id ${warehouse.id} · `, state),
    status,
    section(
      "Connected sources",
      table(
        [
          ["Source", (s) => link(`sources/${s.id}`, s.name)],
          ["", (s) => action("warehouses", "Disconnect", () => del(`/warehouses/${id}/connected-sources/${s.id}`).then(refresh, (err) => alert(err.message)), { class: "small" })],
        ],
        connected,
        "No source is loaded into this warehouse.",
      ),
      guardForm(connect, "warehouses"),
    ),
    section(
      "Sync reports",
      table(
        [
          ["Started", (r) => when(r.start)],
          ["Source", (r) => sources.find((s) => s.id === r.sourceId)?.name ?? r.sourceId],
          ["Status", (r) => h("span", { class: `chip ${String(r.status).toLowerCase()}` }, r.status)],
          ["Took", (r) => r.humanDuration],
          ["Events", (r) => r.count],
          ["Tables", (r) => h("details", {}, h("summary", {}, `${Object.keys(r.tables ?? {}).length} tables`), json(r.tables))],
          ["Notices", (r) => (r.notices?.length ? json(r.notices) : "")],
        ],
        reports,
        "No syncs yet.",
      ),
    ),
    section("Settings", json(warehouse.settings)),
  );
  get(`/warehouses/${id}/connection-state`).then(
    (s) => (state.textContent = s.reason ? `${s.connectionState}: ${s.reason}` : s.connectionState),
    (err) => (state.textContent = err.message),
  );
}
