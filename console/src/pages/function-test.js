// The function test panel: a sample event (pasted, or picked from a source's recent events),
// setting values, and `POST /functions/{id}/test` on the latest saved version; shows the
// outcome, the output event, the field-by-field diff, the logs, fuel and time.
import { get, post, query } from "../api.js";
import { clearErrors, failure, field, h, json, mount, showError, table } from "../ui.js";

const SAMPLE = {
  type: "track",
  event: "Order Completed",
  userId: "u-42",
  properties: { orderId: "o-1", total: 42, email: "ada@example.com" },
  context: { ip: "203.0.113.7" },
};

/** The panel for `state.fn` (kept current by the page); `dirty()` says the editor has unsaved changes. */
export function testPanel(state, dirty) {
  const event = field({ name: "event", label: "Sample event (JSON)", kind: "textarea", value: JSON.stringify(SAMPLE, null, 2) });
  event.querySelector("textarea").rows = 10;
  const settings = field({ name: "settings", label: "Settings (JSON object)", kind: "textarea", value: "{}" });
  const picker = h("select", { "aria-label": "Pick a recent event" }, h("option", { value: "" }, "Pick a recent event from a source…"));
  const result = h("div", { class: "test-result", id: "test-result" });
  const form = h(
    "form",
    { class: "form", "aria-label": "Test" },
    picker,
    event,
    settings,
    h("button", { type: "submit" }, "Run test"),
  );
  fillPicker(picker, event.querySelector("textarea"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    let body;
    try {
      body = { events: [JSON.parse(event.querySelector("textarea").value)], settings: JSON.parse(settings.querySelector("textarea").value || "{}"), versionId: state.fn.versionId };
    } catch (err) {
      return showError(form, { field: "event", message: `Not JSON: ${err.message}` });
    }
    mount(result, h("p", { class: "muted" }, dirty() ? "Running the last saved version (the editor has unsaved changes)…" : "Running…"));
    try {
      const report = await post(`/functions/${state.fn.id}/test`, body);
      mount(result, show(report.results[0], report));
    } catch (err) {
      const at = err.field?.replace(/^events\[\d+\]/, "event").split(".")[0];
      showError(form, { field: at === "settings" ? "settings" : at === "event" ? "event" : undefined, message: err.message });
      mount(result);
    }
  });
  // Testing runs code but changes nothing, so read-only tokens may too (the API allows it).
  return h("div", {}, form, result);
}

async function fillPicker(picker, textarea) {
  try {
    const { sources } = await get("/sources?pagination.count=200");
    for (const s of sources) {
      const { events } = await get(`/events${query({ sourceId: s.id, limit: 10 })}`);
      if (!events.length) continue;
      picker.append(h("optgroup", { label: s.name }, events.map((e, i) => h("option", { value: `${s.id}:${i}`, dataset: { event: JSON.stringify(e.event) } }, `${e.event.type} ${e.event.event ?? ""} ${e.messageId.slice(0, 8)}`))));
    }
  } catch {
    // No source readable: pasting still works.
  }
  picker.addEventListener("change", () => {
    const chosen = picker.selectedOptions[0]?.dataset.event;
    if (chosen) textarea.value = JSON.stringify(JSON.parse(chosen), null, 2);
  });
}

function show(r, report) {
  const fuel = r.fuelUsed.toLocaleString();
  const ms = (r.durationUs / 1000).toFixed(2);
  return h(
    "div",
    {},
    h(
      "p",
      { class: "facts" },
      h("span", { class: `badge outcome ${r.outcome === "error" ? "bad" : "ok"}`, dataset: { outcome: r.outcome } }, r.outcome),
      h("span", { class: "fuel" }, `fuel ${fuel}`),
      h("span", { class: "time" }, `${ms} ms`),
      h("span", { class: "muted" }, `version ${report.versionId.slice(-8)}`),
    ),
    r.error ? failure({ message: `${r.error.origin} ${r.error.kind}: ${r.error.message}${r.error.retryable ? " (would be retried)" : ""}` }) : null,
    r.changes
      ? [
          h("h3", {}, "Changes"),
          h(
            "div",
            { class: "diff" },
            table(
              [
                ["Field", (c) => h("code", {}, c.path)],
                ["", (c) => h("span", { class: `op ${c.op}` }, c.op)],
                ["Before", (c) => (c.before === undefined ? "" : h("code", { class: "before" }, JSON.stringify(c.before)))],
                ["After", (c) => (c.after === undefined ? "" : h("code", { class: "after" }, JSON.stringify(c.after)))],
              ],
              r.changes,
              "No field changed.",
            ),
          ),
        ]
      : null,
    h("h3", {}, "Logs"),
    r.logs.length ? h("pre", { class: "logs" }, r.logs.map((l) => `${l.level.padEnd(5)} ${l.message}`).join("\n")) : h("p", { class: "muted" }, "Nothing logged."),
    r.event ? [h("h3", {}, "Output event"), json(r.event)] : null,
    r.events ? [h("h3", {}, `Output events (${r.events.length})`), json(r.events)] : null,
  );
}
