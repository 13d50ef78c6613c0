// Destinations: the list, creating one from the catalog with a settings form generated from
// the type's options (the API's validation shown at the field), and one destination's page:
// enable/disable, settings, delivery metrics over the last hour as a chart, failed events with
// replay.
import { del, get, patch, post, query } from "../api.js";
import { barChart } from "../chart.js";
import { readSettings, settingsFields, trackTouches } from "../schema-form.js";
import { action, clearErrors, failure, field, guardForm, h, heading, json, link, mount, section, showError, table, valueOf, when } from "../ui.js";

export async function render(root, [id]) {
  return id ? detail(root, id) : list(root);
}

async function list(root) {
  const [{ destinations }, { sources }, { destinationsCatalog }] = await Promise.all([
    get("/destinations?pagination.count=200"),
    get("/sources?pagination.count=200"),
    get("/catalog/destinations?pagination.count=200"),
  ]);
  const sourceName = (sid) => sources.find((s) => s.id === sid)?.name ?? sid;
  mount(
    root,
    heading("Destinations"),
    section(
      "All destinations",
      table(
        [
          ["Name", (d) => link(`destinations/${d.id}`, d.name)],
          ["Type", (d) => d.metadata?.name ?? d.metadata?.id],
          ["Source", (d) => link(`sources/${d.sourceId}`, sourceName(d.sourceId))],
          ["Enabled", (d) => (d.enabled ? "yes" : "no")],
        ],
        destinations,
        "No destinations yet.",
      ),
    ),
    section("New destination", createForm(sources, destinationsCatalog)),
  );
}

function createForm(sources, catalog) {
  const settings = h("div", { class: "settings" });
  const type = field({ name: "metadataId", label: "Type", kind: "select", options: catalog.map((c) => [c.id, c.name]) });
  const form = trackTouches(
    h(
      "form",
      { class: "form", "aria-label": "New destination" },
      field({ name: "sourceId", label: "Source", kind: "select", options: sources.map((s) => [s.id, s.name]) }),
      type,
      field({ name: "name", label: "Name" }),
      h("h3", {}, "Settings"),
      settings,
      h("button", { type: "submit" }, "Create destination"),
    ),
  );
  const select = type.querySelector("select");
  const showSettings = () => {
    const meta = catalog.find((c) => c.id === select.value);
    mount(settings, meta ? [h("p", { class: "hint" }, meta.description), settingsFields(meta.options)] : null);
  };
  select.addEventListener("change", showSettings);
  showSettings();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const body = {
        sourceId: valueOf(form.querySelector("[name=sourceId]")),
        metadataId: select.value,
        name: valueOf(form.querySelector("[name=name]")),
        enabled: true,
        settings: readSettings(settings),
      };
      const { destination } = await post("/destinations", body);
      location.hash = `#/destinations/${destination.id}`;
    } catch (err) {
      showError(form, err);
    }
  });
  if (!sources.length) form.prepend(h("p", { class: "muted" }, "Create a source first: a destination receives one source's events."));
  return guardForm(form, "sources");
}

async function detail(root, id) {
  const [{ destination }, { destinationsCatalog }] = await Promise.all([get(`/destinations/${id}`), get("/catalog/destinations?pagination.count=200")]);
  const meta = destinationsCatalog.find((c) => c.id === destination.metadata?.id);
  const refresh = () => detail(root, id);
  const metrics = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const failed = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  mount(
    root,
    heading(
      destination.name,
      action("sources", destination.enabled ? "Disable" : "Enable", async () => {
        await patch(`/destinations/${id}`, { enabled: !destination.enabled });
        refresh();
      }),
      action("sources", "Delete", async () => {
        if (!confirm(`Delete the destination ${destination.name}?`)) return;
        try {
          await del(`/destinations/${id}`);
        } catch (err) {
          if (err.status !== 409 || !confirm(`${err.message}\n\nDelete anyway, moving them to the failed events?`)) return alert(err.message);
          await del(`/destinations/${id}?force=true`);
        }
        location.hash = "#/destinations";
      }, { class: "danger" }),
    ),
    h("p", { class: "muted" }, `${meta?.name ?? destination.metadata?.id} · `, link(`sources/${destination.sourceId}`, "its source"), ` · ${destination.enabled ? "enabled" : "disabled"} · id ${destination.id}`),
    section("Delivery over the last hour", metrics),
    section("Failed events", failed),
    section("Settings", settingsForm(destination, meta)),
  );
  loadMetrics(metrics, id);
  loadFailed(failed, id);
}

function settingsForm(destination, meta) {
  const settings = settingsFields(meta?.options ?? [], destination.settings);
  const form = trackTouches(
    h("form", { class: "form", "aria-label": "Settings" }, field({ name: "name", label: "Name", value: destination.name }), settings, h("button", { type: "submit" }, "Save settings"), h("span", { class: "saved muted", hidden: true }, " saved")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await patch(`/destinations/${destination.id}`, { name: valueOf(form.querySelector("[name=name]")), settings: readSettings(settings) });
      form.querySelector(".saved").hidden = false;
    } catch (err) {
      showError(form, err);
    }
  });
  return guardForm(form, "sources");
}

const SERIES = ["delivered", "retried", "failed", "dropped", "filtered"];

/**
 * Twelve five-minute buckets from the API's windowed totals: the counts over the last 5, 10,
 * ..., 60 minutes, each bucket the difference of two windows.
 */
async function loadMetrics(el, id) {
  try {
    const windows = await Promise.all(Array.from({ length: 13 }, (_, i) => (i === 0 ? null : get(`/destinations/${id}/delivery-metrics${query({ minutes: i * 5 })}`))));
    const buckets = [];
    for (let i = 12; i >= 1; i--) {
      const outer = windows[i].counts, inner = i > 1 ? windows[i - 1].counts : {};
      const counts = Object.fromEntries(SERIES.map((s) => [s, (outer[s] ?? 0) - (inner[s] ?? 0)]));
      buckets.push({ label: i === 1 ? "now" : `-${(i - 1) * 5}m`, counts });
    }
    const total = windows[12].counts;
    mount(
      el,
      barChart(buckets, SERIES),
      h("p", { class: "totals" }, SERIES.map((s) => h("span", { class: "total", dataset: { series: s } }, `${s}: ${total[s] ?? 0}`)), h("span", { class: "total" }, `pending: ${windows[12].pending}`)),
    );
  } catch (err) {
    mount(el, failure(err));
  }
}

async function loadFailed(el, id) {
  try {
    const { failedEvents } = await get(`/destinations/${id}/failed-events`);
    const replay = action("sources", `Replay ${failedEvents.length} failed events`, async () => {
      try {
        const { replayed } = await post(`/destinations/${id}/failed-events/replay`);
        mount(el, h("p", {}, `${replayed} events queued again.`));
        setTimeout(() => loadFailed(el, id), 1500);
      } catch (err) {
        el.append(failure(err));
      }
    }, { disabled: !failedEvents.length });
    mount(
      el,
      table(
        [
          ["Failed", (f) => when(f.failedAt)],
          ["Event", (f) => h("details", {}, h("summary", {}, `${f.event?.type ?? ""} ${f.event?.event ?? ""}`), json(f.event))],
          ["Attempts", (f) => f.attempts],
          ["Last error", (f) => f.lastError],
        ],
        failedEvents,
        "No failed events.",
      ),
      replay,
    );
  } catch (err) {
    mount(el, failure(err));
  }
}
