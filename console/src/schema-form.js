// A settings form generated from a catalog type's options (`GET /catalog/destinations` and
// `/catalog/warehouses`: name, type, required, description per setting). The fields are named
// `settings.<name>`, which is how the API names them in its 422s, so errors land at the field.
import { field, h, valueOf } from "./ui.js";

/** The fields for `options`, filled with `values`. */
export function settingsFields(options, values = {}) {
  return h(
    "div",
    { class: "settings-fields" },
    options.map((o) =>
      field({
        name: `settings.${o.name}`,
        label: o.name,
        kind: ["string", "number", "boolean", "object"].includes(o.type) ? o.type : "string",
        required: o.required,
        description: o.description,
        value: values[o.name],
      }),
    ),
  );
}

/**
 * The settings object from the fields in `container`: empty fields are left out (so a missing
 * required one is the API's to name), unparseable JSON is an Error naming the field.
 */
export function readSettings(container) {
  const settings = {};
  for (const input of container.querySelectorAll("[name^='settings.']")) {
    const name = input.name.slice("settings.".length);
    let value;
    try {
      value = valueOf(input);
    } catch {
      const err = new Error(`\`${name}\` is not JSON`);
      err.field = input.name;
      throw err;
    }
    if (value !== undefined && !(input.dataset.kind === "boolean" && value === false && !input.dataset.touched)) settings[name] = value;
  }
  return settings;
}

/** Marks booleans the person changed, so an untouched unchecked box is not sent as `false`. */
export function trackTouches(container) {
  container.addEventListener("change", (e) => (e.target.dataset.touched = "1"));
  return container;
}
