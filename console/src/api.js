// The console's only door to sluice: the public API (the same routes as `GET /openapi.json`
// describes), with the signed-in token sent as `Authorization: Bearer`. The token lives in
// sessionStorage: it is gone when the tab closes, and no cookie carries it anywhere else.

const KEY = "sluice.token";

/** An error answer of the API: Segment's envelope `{errors: [{type, message, field?}]}`. */
export class ApiError extends Error {
  constructor(status, errors) {
    super(errors[0]?.message || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
  /** The JSON path of the offending input (`settings.url`), when the API named one. */
  get field() {
    return this.errors[0]?.field;
  }
}

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

let unauthorized = () => {};
/** What to do when the API answers 401 (the token was revoked or expired): sign out. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${token.get()}`, Accept: "application/json", ...extra };
}

/** One request; resolves to the envelope's `data`, or throws an ApiError. */
export async function request(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    if (response.status === 401) unauthorized();
    throw new ApiError(response.status, json?.errors ?? [{ message: text || response.statusText }]);
  }
  return json?.data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const patch = (path, body) => request("PATCH", path, body);
export const put = (path, body) => request("PUT", path, body);
export const del = (path) => request("DELETE", path);

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * Reads a Server-Sent Events stream (`GET path`, `text/event-stream`) until `signal` aborts,
 * calling `onEvent(name, data)` per event, and `onEvent("open", "")` once the server has
 * answered (the subscription is in place). fetch rather than EventSource, because
 * EventSource cannot send the Authorization header.
 */
export async function stream(path, onEvent, signal) {
  const response = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!response.ok) {
    const json = await response.json().catch(() => null);
    throw new ApiError(response.status, json?.errors ?? [{ message: response.statusText }]);
  }
  onEvent("open", "");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}
