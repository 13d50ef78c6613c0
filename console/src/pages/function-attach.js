// Where a function runs: its insert function instances (one per source or destination it is
// attached to, with setting values), and attaching it to another one.
import { del, get, patch, post, query } from "../api.js";
import { action, clearErrors, failure, field, guardForm, h, link, mount, showError, table, valueOf } from "../ui.js";

/** Fills `el` with the instances of `fn` and a form to attach it. */
export async function attachPanel(el, fn) {
  try {
    const toDestination = fn.resourceType === "INSERT_DESTINATION";
    const [{ insertFunctionInstances }, targets] = await Promise.all([
      get(`/insert-function-instances${query({ functionId: fn.id, "pagination.count": 200 })}`),
      toDestination ? get("/destinations?pagination.count=200").then((d) => d.destinations) : get("/sources?pagination.count=200").then((d) => d.sources),
    ]);
    const name = (id) => targets.find((t) => t.id === id)?.name ?? id;
    const refresh = () => attachPanel(el, fn);
    mount(
      el,
      table(
        [
          [toDestination ? "Destination" : "Source", (i) => link(`${toDestination ? "destinations" : "sources"}/${i.integrationId}`, name(i.integrationId))],
          ["Enabled", (i) => (i.enabled ? "yes" : "no")],
          ["Settings", (i) => h("code", {}, JSON.stringify(i.settings))],
          ["", (i) => [
            action("sources", i.enabled ? "Disable" : "Enable", () => patch(`/insert-function-instances/${i.id}`, { enabled: !i.enabled }).then(refresh, (err) => alert(err.message)), { class: "small" }),
            " ",
            action("sources", "Detach", () => del(`/insert-function-instances/${i.id}`).then(refresh, (err) => alert(err.message)), { class: "small danger" }),
          ]],
        ],
        insertFunctionInstances,
        "Not attached anywhere.",
      ),
      attachForm(fn, targets, toDestination, refresh),
    );
  } catch (err) {
    mount(el, failure(err));
  }
}

function settingField(d) {
  const kind = { BOOLEAN: "boolean", ARRAY: "object", TEXT_MAP: "object" }[d.type] ?? "string";
  return field({ name: `settings.${d.name}`, label: d.label || d.name, kind, required: d.required, description: d.type === "ARRAY" ? `${d.description ?? ""} (a JSON list of strings)` : d.description });
}

function attachForm(fn, targets, toDestination, refresh) {
  const form = h(
    "form",
    { class: "form inline", "aria-label": "Attach" },
    field({ name: "integrationId", label: toDestination ? "Attach to destination" : "Attach to source", kind: "select", options: targets.map((t) => [t.id, t.name]) }),
    fn.settings.map(settingField),
    h("button", { type: "submit" }, "Attach"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const settings = {};
      for (const input of form.querySelectorAll("[name^='settings.']")) {
        const v = valueOf(input);
        if (v !== undefined) settings[input.name.slice(9)] = v;
      }
      await post("/insert-function-instances", { functionId: fn.id, integrationId: valueOf(form.querySelector("[name=integrationId]")), settings });
      refresh();
    } catch (err) {
      showError(form, err);
    }
  });
  return guardForm(form, "sources");
}
