// Small DOM helpers shared by the pages: element building, tables, form fields that can show
// the API's field errors, buttons that a read-only token cannot press.
import { canWrite } from "./session.js";

/** An element: `h("button", {class: "x", onclick: f}, "text", child)`. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces `el`'s children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A page heading with optional actions on the right. */
export function heading(title, ...actions) {
  return h("div", { class: "heading" }, h("h1", {}, title), h("div", { class: "actions" }, actions));
}

/** A section with a title. */
export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}

/** A table: `columns` are `[title, row => cell]`. */
export function table(columns, rows, empty = "Nothing yet.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", {}, title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))),
  );
}

/**
 * A button that changes something in `area`: disabled, with the reason as its title, when the
 * token may not change anything there.
 */
export function action(area, label, onclick, props = {}) {
  const allowed = canWrite(area);
  return h(
    "button",
    { ...props, onclick, disabled: !allowed || props.disabled, title: allowed ? props.title : "Read-only: this token's roles do not allow changes here" },
    label,
  );
}

/** Disables every control of `form` when the token may not change things in `area`. */
export function guardForm(form, area) {
  if (canWrite(area)) return form;
  for (const el of form.querySelectorAll("input, select, textarea, button")) el.disabled = true;
  form.prepend(h("p", { class: "muted readonly" }, "Read-only: this token's roles do not allow changes here."));
  return form;
}

/**
 * A labelled input for a form built from a schema. `kind` is `string`, `number`, `boolean`,
 * `object` (JSON), `select` (with `options`) or `textarea`. Its error line shows what the API
 * said about `name` (see showError).
 */
export function field({ name, label, kind = "string", required = false, description, value, options = [] }) {
  const id = `f-${name.replace(/[^\w-]/g, "-")}`;
  let input;
  if (kind === "boolean") input = h("input", { type: "checkbox", id, name, checked: Boolean(value) });
  else if (kind === "select")
    input = h("select", { id, name }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
  else if (kind === "object" || kind === "textarea")
    input = h("textarea", { id, name, rows: 3, placeholder: kind === "object" ? "{}" : "" }, value === undefined ? "" : kind === "object" ? JSON.stringify(value, null, 2) : value);
  // No `required` attribute: the API's validation is the one shown, at the field.
  else input = h("input", { id, name, type: kind === "number" ? "number" : "text", value: value ?? "" });
  input.dataset.kind = kind;
  return h(
    "div",
    { class: "field", dataset: { field: name } },
    h("label", { for: id }, label ?? name, required ? h("span", { class: "required", title: "required" }, " *") : null),
    input,
    description ? h("p", { class: "hint" }, description) : null,
    h("p", { class: "field-error", role: "alert", hidden: true }),
  );
}

/** Reads a field's value as its kind says (`undefined` when empty). */
export function valueOf(input) {
  const kind = input.dataset.kind;
  if (kind === "boolean") return input.checked;
  const raw = input.value.trim();
  if (raw === "") return undefined;
  if (kind === "number") return Number(raw);
  if (kind === "object") return JSON.parse(raw);
  return raw;
}

/** Clears the errors shown in `form`. */
export function clearErrors(form) {
  for (const p of form.querySelectorAll(".field-error, .form-error")) {
    p.textContent = "";
    p.hidden = true;
  }
  for (const f of form.querySelectorAll(".field.invalid")) f.classList.remove("invalid");
}

/**
 * Shows `err` in `form`: at the field the API named (`settings.url` matches the field named
 * `settings.url` or `url`), else at the form's foot.
 */
export function showError(form, err) {
  const path = err.field ?? "";
  const last = path.split(".").pop();
  const target = [...form.querySelectorAll(".field")].find((f) => f.dataset.field === path) ??
    [...form.querySelectorAll(".field")].find((f) => path && f.dataset.field === last);
  if (target) {
    target.classList.add("invalid");
    const p = target.querySelector(".field-error");
    p.textContent = err.message;
    p.hidden = false;
    target.querySelector("input, select, textarea")?.focus();
    return;
  }
  let p = form.querySelector(".form-error");
  if (!p) form.append((p = h("p", { class: "form-error", role: "alert" })));
  p.textContent = err.message;
  p.hidden = false;
}

/** An error banner for a failed load. */
export function failure(err) {
  return h("p", { class: "form-error", role: "alert" }, err.message ?? String(err));
}

/** JSON, pretty. */
export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** An RFC 3339 time as local date and time. */
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A link inside the console. */
export function link(hash, text) {
  return h("a", { href: `#/${hash}` }, text);
}

/** A copy-to-clipboard button for `text`. */
export function copyButton(text, label = "Copy") {
  const b = h("button", {
    class: "small",
    onclick: async () => {
      await navigator.clipboard?.writeText(text).catch(() => {});
      b.textContent = "Copied";
      setTimeout(() => (b.textContent = label), 1200);
    },
  }, label);
  return b;
}

/** Runs `work` with `button` disabled; shows an error in `form` (or alerts). */
export async function busy(button, work) {
  const was = button.disabled;
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = was;
  }
}
