// Tracking plans: the list, creating one, and one plan's page: its rules per event with their
// JSON Schemas (edit, add, remove), the sources it is connected to, and the violations seen
// recently in those sources' events (the debugger's enforcement stage).
import { del, get, patch, post, query, request } from "../api.js";
import { action, clearErrors, failure, field, guardForm, h, heading, json, link, mount, section, showError, table, valueOf, when } from "../ui.js";

const RULE_TYPES = ["TRACK", "IDENTIFY", "GROUP", "PAGE", "SCREEN", "COMMON"].map((t) => [t, t]);

export async function render(root, [id]) {
  return id ? detail(root, id) : list(root);
}

async function list(root) {
  const { trackingPlans } = await get("/tracking-plans?pagination.count=200");
  const form = h("form", { class: "form inline", "aria-label": "New tracking plan" }, field({ name: "name", label: "Name", required: true }), field({ name: "description", label: "Description" }), h("button", { type: "submit" }, "Create plan"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const { trackingPlan } = await post("/tracking-plans", { name: valueOf(form.querySelector("[name=name]")) ?? "", description: valueOf(form.querySelector("[name=description]")) });
      location.hash = `#/tracking-plans/${trackingPlan.id}`;
    } catch (err) {
      showError(form, err);
    }
  });
  mount(
    root,
    heading("Tracking plans"),
    section(
      "All plans",
      table(
        [
          ["Name", (p) => link(`tracking-plans/${p.id}`, p.name)],
          ["Sources", (p) => p.sourceIds?.length ?? 0],
          ["Updated", (p) => when(p.updatedAt)],
        ],
        trackingPlans,
        "No tracking plans yet.",
      ),
    ),
    section("New tracking plan", guardForm(form, "tracking-plans")),
  );
}

async function detail(root, id) {
  const [{ trackingPlan: plan }, { rules }, { sources: connected }, { sources }] = await Promise.all([
    get(`/tracking-plans/${id}`),
    get(`/tracking-plans/${id}/rules?pagination.count=200`),
    get(`/tracking-plans/${id}/sources?pagination.count=200`),
    get("/sources?pagination.count=200"),
  ]);
  const refresh = () => detail(root, id);
  const violations = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  mount(
    root,
    heading(
      plan.name,
      action("tracking-plans", "Delete", async () => {
        if (!confirm(`Delete the tracking plan ${plan.name}?`)) return;
        await del(`/tracking-plans/${id}`).then(() => (location.hash = "#/tracking-plans"), (err) => alert(err.message));
      }, { class: "danger" }),
    ),
    plan.description ? h("p", { class: "muted" }, plan.description) : null,
    section("Rules", rules.length ? rules.map((r) => ruleEditor(id, r, refresh)) : h("p", { class: "muted" }, "No rules yet."), h("h3", {}, "Add a rule"), ruleEditor(id, null, refresh)),
    section("Connected sources", connectedSources(id, connected, sources, refresh)),
    section("Recent violations", violations),
  );
  loadViolations(violations, connected);
}

function ruleEditor(planId, rule, refresh) {
  const schema = field({ name: "jsonSchema", label: "JSON Schema", kind: "object", value: rule?.jsonSchema ?? { type: "object", properties: { properties: { type: "object", required: [] } } } });
  schema.querySelector("textarea").rows = rule ? 8 : 6;
  const form = h(
    "form",
    { class: "form rule", "aria-label": rule ? `Rule ${rule.type} ${rule.key ?? ""}` : "New rule" },
    rule
      ? h("h3", {}, h("span", { class: "badge" }, rule.type), " ", rule.key ?? "", h("span", { class: "muted" }, ` v${rule.version}`))
      : [field({ name: "type", label: "Type", kind: "select", options: RULE_TYPES }), field({ name: "key", label: "Event name (track rules)" })],
    schema,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, rule ? "Save rule" : "Add rule"),
      rule
        ? h("button", { type: "button", class: "danger", onclick: () => request("DELETE", `/tracking-plans/${planId}/rules`, { rules: [{ type: rule.type, key: rule.key }] }).then(refresh, (err) => showError(form, err)) }, "Remove")
        : null,
    ),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const jsonSchema = JSON.parse(schema.querySelector("textarea").value);
      const next = rule ? { type: rule.type, key: rule.key, version: rule.version, jsonSchema } : { type: valueOf(form.querySelector("[name=type]")), key: valueOf(form.querySelector("[name=key]")), version: 1, jsonSchema };
      await patch(`/tracking-plans/${planId}/rules`, { rules: [next] });
      refresh();
    } catch (err) {
      showError(form, err instanceof SyntaxError ? { field: "jsonSchema", message: `Not JSON: ${err.message}` } : err);
    }
  });
  return guardForm(form, "tracking-plans");
}

function connectedSources(planId, connected, sources, refresh) {
  const others = sources.filter((s) => !connected.some((c) => c.id === s.id));
  const form = h(
    "form",
    { class: "form inline", "aria-label": "Connect a source" },
    field({ name: "sourceId", label: "Source", kind: "select", options: others.map((s) => [s.id, s.name]) }),
    h("button", { type: "submit", disabled: !others.length }, "Connect"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    await post(`/tracking-plans/${planId}/sources`, { sourceId: valueOf(form.querySelector("[name=sourceId]")) }).then(refresh, (err) => showError(form, err));
  });
  return h(
    "div",
    {},
    table(
      [
        ["Source", (s) => link(`sources/${s.id}`, s.name)],
        ["", (s) => action("tracking-plans", "Disconnect", () => del(`/tracking-plans/${planId}/sources${query({ sourceId: s.id })}`).then(refresh, (err) => alert(err.message)), { class: "small" })],
      ],
      connected,
      "No source is checked against this plan.",
    ),
    guardForm(form, "tracking-plans"),
  );
}

async function loadViolations(el, connected) {
  try {
    const found = [];
    for (const s of connected) {
      const { events } = await get(`/events${query({ sourceId: s.id, limit: 200 })}`);
      for (const t of events)
        for (const stage of t.stages)
          if (stage.stage === "enforce" && (stage.status === "violations" || stage.status === "blocked")) found.push({ source: s, trace: t, stage });
    }
    mount(
      el,
      table(
        [
          ["When", (v) => when(v.stage.at)],
          ["Source", (v) => v.source.name],
          ["Event", (v) => `${v.trace.event?.type ?? ""} ${v.trace.event?.event ?? ""}`],
          ["Status", (v) => h("span", { class: `chip ${v.stage.status}` }, v.stage.status)],
          ["Violations", (v) => json(v.stage.detail)],
        ],
        found,
        "No violations among the connected sources' recent events.",
      ),
    );
  } catch (err) {
    mount(el, failure(err));
  }
}
