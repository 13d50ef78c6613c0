// The live debugger: a source's events as they arrive (`GET /sources/{id}/events/live`,
// Server-Sent Events), after its recent ones (`GET /events`), each expandable to its stages:
// ingest, enforcement, each function, routing and each destination's delivery. Pause holds new
// updates back (and shows how many wait); the filter narrows by type and name.
import { get, query, stream } from "../api.js";
import { failure, h, json, mount, section, when } from "../ui.js";

const TYPES = ["", "track", "identify", "page", "screen", "group", "alias"];
const MAX = 500;

export async function render(root, [sourceId]) {
  const { sources } = await get("/sources?pagination.count=200");
  if (!sourceId && sources.length) sourceId = sources[0].id;
  const select = h("select", { "aria-label": "Source", onchange: () => (location.hash = `#/debugger/${select.value}`) }, sources.map((s) => h("option", { value: s.id, selected: s.id === sourceId }, s.name)));
  if (!sourceId) return mount(root, h("h1", {}, "Debugger"), h("p", { class: "muted" }, "No source to watch: create one first."));

  const events = new Map(); // messageId -> {event, stages, row}
  const list = h("div", { class: "events", id: "live-events" });
  const status = h("span", { class: "live-status muted", role: "status" }, "connecting…");
  let paused = false;
  const held = [];
  const type = h("select", { "aria-label": "Type", onchange: () => refilter() }, TYPES.map((t) => h("option", { value: t }, t || "any type")));
  const name = h("input", { type: "search", placeholder: "event name contains…", "aria-label": "Event name", oninput: () => refilter() });
  const pause = h("button", { onclick: () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) held.splice(0).forEach(apply);
    showStatus();
  } }, "Pause");
  let connected = false;
  const showStatus = () => {
    status.textContent = paused ? `paused: ${held.length} updates waiting` : connected ? "live" : "connecting…";
    status.className = `live-status ${paused ? "paused" : connected ? "ok" : "muted"}`;
  };

  const matches = (e) => (!type.value || e.event?.type === type.value) && (!name.value || `${e.event?.event ?? e.event?.name ?? ""}`.toLowerCase().includes(name.value.toLowerCase()));
  const refilter = () => {
    for (const e of events.values()) e.row.hidden = !matches(e);
  };

  function entry(messageId) {
    let e = events.get(messageId);
    if (e) return e;
    e = { messageId, event: null, stages: [], row: h("details", { class: "event", dataset: { messageId } }) };
    events.set(messageId, e);
    list.prepend(e.row);
    if (events.size > MAX) {
      const [oldest] = events.keys();
      events.get(oldest).row.remove();
      events.delete(oldest);
    }
    return e;
  }

  function draw(e) {
    const open = e.row.open;
    mount(
      e.row,
      h(
        "summary",
        {},
        h("span", { class: "at" }, e.stages[0] ? new Date(e.stages[0].at).toLocaleTimeString() : ""),
        h("span", { class: "type" }, e.event?.type ?? "?"),
        h("span", { class: "name" }, e.event?.event ?? e.event?.name ?? ""),
        h("span", { class: "chips" }, e.stages.map((s) => h("span", { class: `chip ${s.status}`, dataset: { stage: s.stage, status: s.status } }, `${s.stage}: ${s.status}`))),
      ),
      h(
        "div",
        { class: "stages" },
        h("ol", {}, e.stages.map((s) => h("li", { dataset: { stage: s.stage } }, h("strong", {}, s.stage), ` ${s.status} `, h("span", { class: "muted" }, when(s.at)), s.detail && Object.keys(s.detail).length ? json(s.detail) : null))),
        e.event ? [h("h3", {}, "Event"), json(e.event)] : null,
      ),
    );
    e.row.open = open;
    e.row.hidden = !matches(e);
  }

  function apply(update) {
    const e = entry(update.messageId);
    if (update.event) e.event = update.event;
    e.stages.push(update.stage);
    draw(e);
  }

  mount(
    root,
    h("div", { class: "heading" }, h("h1", {}, "Debugger"), h("div", { class: "actions" }, select, type, name, pause, status)),
    section("Events (newest first)", h("p", { class: "hint" }, "Each event with what every stage did to it. Click one to see the details."), list),
  );

  try {
    const recent = await get(`/events${query({ sourceId, limit: 100 })}`);
    for (const t of [...recent.events].reverse()) {
      const e = entry(t.messageId);
      e.event = t.event;
      e.stages = t.stages;
      draw(e);
    }
  } catch (err) {
    list.append(failure(err));
  }

  const abort = new AbortController();
  stream(
    `/sources/${sourceId}/events/live`,
    (kind, data) => {
      if (kind === "open") {
        connected = true;
        return showStatus();
      }
      if (kind === "lagged") return list.prepend(h("p", { class: "muted" }, `${data} updates were missed (the feed fell behind).`));
      if (kind !== "stage") return;
      const update = JSON.parse(data);
      if (paused) held.push(update);
      else apply(update);
      showStatus();
    },
    abort.signal,
  )
    .then(() => {
      connected = false;
      status.textContent = "the server ended the stream";
    })
    .catch((err) => {
      if (abort.signal.aborted) return;
      status.textContent = `disconnected: ${err.message}`;
    });
  return () => abort.abort();
}
