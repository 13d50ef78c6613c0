// The audit trail: every change, who made it (which token) and when, filtered by kind of
// resource, resource id and time (the API's own filters), a page at a time.
import { get, query } from "../api.js";
import { failure, field, h, heading, mount, section, table, valueOf, when } from "../ui.js";

const KINDS = ["", "source", "destination", "tracking_plan", "warehouse", "function", "insert_function_instance", "space", "user", "invite", "token"];

export async function render(root) {
  const results = h("div", {});
  const form = h(
    "form",
    { class: "form inline", "aria-label": "Filters" },
    field({ name: "resourceType", label: "Kind", kind: "select", options: KINDS.map((k) => [k, k || "any"]) }),
    field({ name: "resourceId", label: "Resource id" }),
    field({ name: "startTime", label: "From", description: "RFC 3339, e.g. 2026-11-30T00:00:00Z" }),
    field({ name: "endTime", label: "Until" }),
    h("button", { type: "submit" }, "Filter"),
  );
  const load = async (cursor) => {
    const params = { "pagination.count": 50, "pagination.cursor": cursor };
    for (const input of form.querySelectorAll("[name]")) params[input.name] = valueOf(input);
    try {
      const { events, pagination } = await get(`/audit-events${query(params)}`);
      mount(
        results,
        table(
          [
            ["When", (e) => when(e.timestamp)],
            ["What", (e) => e.type],
            ["Resource", (e) => [h("span", { class: "badge" }, e.resourceType), " ", e.resourceName ?? "", " ", h("code", { class: "muted" }, e.resourceId)]],
            ["Who", (e) => e.actor],
          ],
          events,
          "No audit events match.",
        ),
        h(
          "p",
          { class: "actions" },
          pagination?.previous ? h("button", { class: "small", onclick: () => load(pagination.previous) }, "Previous") : null,
          " ",
          pagination?.next ? h("button", { class: "small", onclick: () => load(pagination.next) }, "Next") : null,
        ),
      );
    } catch (err) {
      mount(results, failure(err));
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  mount(root, heading("Audit trail"), section("Filters", form), section("Events", results));
  await load();
}
