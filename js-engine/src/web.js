// sluice JavaScript engine: the web globals of Segment's function runtime. fetch, Request,
// Response, Headers, URL, URLSearchParams, AbortController and AbortSignal, TextEncoder and
// TextDecoder, setTimeout and setInterval, DOMException.
//
// Evaluated once, in the build's snapshot, after the prelude. Like it, this is a function
// expression: the engine calls it with the native helpers (web.rs) and gets back what its
// event loop needs: `pump()`, which makes one step of progress on timers and requests when no
// promise job is left, and `reset()`, which forgets them when an invocation ends.
//
// There are no threads and no callbacks from the host: a request is started at once (several
// can be in flight), and its promise settles when `pump` finds its response ready. Timers
// fire when their time has come and nothing else is left to run.
(function (native) {
  "use strict";

  const define = (name, value) =>
    Object.defineProperty(globalThis, name, {
      value,
      writable: true,
      configurable: true,
      enumerable: false,
    });

  // ---- Errors -------------------------------------------------------------------------

  class DOMException extends Error {
    #name;
    constructor(message = "", name = "Error") {
      super(String(message));
      this.#name = String(name);
    }
    get name() {
      return this.#name;
    }
  }
  define("DOMException", DOMException);

  // A host refusal carries its name first (`http-not-allowed: ...`); node-style `code`.
  const named = (err) => {
    if (err instanceof TypeError) {
      const match = /^(http-[a-z-]+):/.exec(String(err.message));
      if (match) err.code = match[1];
    }
    return err;
  };

  // ---- Bytes and text -----------------------------------------------------------------

  const bytesOf = (input, who) => {
    if (input instanceof Uint8Array) return input;
    if (input instanceof ArrayBuffer) return new Uint8Array(input);
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    throw new TypeError(`${who}: expected an ArrayBuffer or a typed array`);
  };

  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return native.utf8Encode(String(input));
    }
  }
  define("TextEncoder", TextEncoder);

  const UTF8 = ["utf-8", "utf8", "unicode-1-1-utf-8"];
  class TextDecoder {
    #fatal;
    constructor(label = "utf-8", options = undefined) {
      if (!UTF8.includes(String(label).trim().toLowerCase())) {
        throw new RangeError(`TextDecoder: unsupported encoding ${String(label)} (only utf-8)`);
      }
      this.#fatal = Boolean(options && options.fatal);
    }
    get encoding() {
      return "utf-8";
    }
    get fatal() {
      return this.#fatal;
    }
    decode(input = undefined) {
      if (input === undefined) return "";
      return native.utf8Decode(new Uint8Array(bytesOf(input, "TextDecoder.decode")), this.#fatal);
    }
  }
  define("TextDecoder", TextDecoder);

  // ---- URLSearchParams and URL (parsing and serialising are WHATWG's, in Rust) ----------

  // The URL a URLSearchParams belongs to, updated when the params change.
  const owners = new WeakMap();

  class URLSearchParams {
    #list = [];
    constructor(init = "") {
      if (init instanceof URLSearchParams) {
        this.#list = init.#list.map(([name, value]) => [name, value]);
      } else if (init !== null && typeof init === "object") {
        if (typeof init[Symbol.iterator] === "function") {
          for (const pair of init) {
            const items = [...pair];
            if (items.length !== 2) throw new TypeError("URLSearchParams: each pair must have two items");
            this.#list.push([String(items[0]), String(items[1])]);
          }
        } else {
          for (const name of Object.keys(init)) this.#list.push([name, String(init[name])]);
        }
      } else {
        const text = String(init);
        this.#list = native.formParse(text.startsWith("?") ? text.slice(1) : text);
      }
    }
    static _replace(params, text) {
      params.#list = native.formParse(text.startsWith("?") ? text.slice(1) : text);
    }
    #changed() {
      const url = owners.get(this);
      if (url) url._setSearch(this.toString());
    }
    get size() {
      return this.#list.length;
    }
    append(name, value) {
      this.#list.push([String(name), String(value)]);
      this.#changed();
    }
    delete(name, value = undefined) {
      name = String(name);
      this.#list = this.#list.filter(([n, v]) => n !== name || (value !== undefined && v !== String(value)));
      this.#changed();
    }
    get(name) {
      const found = this.#list.find(([n]) => n === String(name));
      return found ? found[1] : null;
    }
    getAll(name) {
      return this.#list.filter(([n]) => n === String(name)).map(([, v]) => v);
    }
    has(name, value = undefined) {
      return this.#list.some(([n, v]) => n === String(name) && (value === undefined || v === String(value)));
    }
    set(name, value) {
      name = String(name);
      const at = this.#list.findIndex(([n]) => n === name);
      if (at < 0) {
        this.#list.push([name, String(value)]);
      } else {
        this.#list[at] = [name, String(value)];
        this.#list = this.#list.filter(([n], i) => n !== name || i === at);
      }
      this.#changed();
    }
    sort() {
      // Array.prototype.sort is stable; names compare by UTF-16 code units, as specified.
      this.#list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      this.#changed();
    }
    forEach(callback, thisArg = undefined) {
      for (const [name, value] of this.#list) callback.call(thisArg, value, name, this);
    }
    *entries() {
      for (const [name, value] of this.#list) yield [name, value];
    }
    *keys() {
      for (const [name] of this.#list) yield name;
    }
    *values() {
      for (const [, value] of this.#list) yield value;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    toString() {
      return native.formSerialize(this.#list);
    }
  }
  define("URLSearchParams", URLSearchParams);

  const PARTS = ["href", "origin", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"];
  const parse = (url, base) => native.urlParse(String(url), base === undefined ? undefined : String(base));

  const invalidUrl = (input) => {
    const err = new TypeError("Invalid URL");
    err.code = "ERR_INVALID_URL";
    err.input = String(input);
    return err;
  };

  class URL {
    #parts;
    #params = null;
    constructor(url, base = undefined) {
      const parts = parse(url, base);
      if (parts == null) throw invalidUrl(url);
      this.#parts = parts;
    }
    static canParse(url, base = undefined) {
      return parse(url, base) != null;
    }
    static parse(url, base = undefined) {
      return URL.canParse(url, base) ? new URL(url, base) : null;
    }
    #part(name) {
      return this.#parts[PARTS.indexOf(name)];
    }
    #set(name, value) {
      const parts = native.urlSet(this.#parts[0], name, String(value));
      if (parts != null) this.#parts = parts;
      if (this.#params && name === "search") URLSearchParams._replace(this.#params, this.search);
    }
    _setSearch(text) {
      const parts = native.urlSet(this.#parts[0], "search", text);
      if (parts != null) this.#parts = parts;
    }
    get href() {
      return this.#parts[0];
    }
    set href(value) {
      const parts = parse(value);
      if (parts == null) throw invalidUrl(value);
      this.#parts = parts;
      if (this.#params) URLSearchParams._replace(this.#params, this.search);
    }
    get origin() {
      return this.#part("origin");
    }
    get protocol() {
      return this.#part("protocol");
    }
    set protocol(v) {
      this.#set("protocol", v);
    }
    get username() {
      return this.#part("username");
    }
    set username(v) {
      this.#set("username", v);
    }
    get password() {
      return this.#part("password");
    }
    set password(v) {
      this.#set("password", v);
    }
    get host() {
      return this.#part("host");
    }
    set host(v) {
      this.#set("host", v);
    }
    get hostname() {
      return this.#part("hostname");
    }
    set hostname(v) {
      this.#set("hostname", v);
    }
    get port() {
      return this.#part("port");
    }
    set port(v) {
      this.#set("port", v);
    }
    get pathname() {
      return this.#part("pathname");
    }
    set pathname(v) {
      this.#set("pathname", v);
    }
    get search() {
      return this.#part("search");
    }
    set search(v) {
      this.#set("search", v);
    }
    get hash() {
      return this.#part("hash");
    }
    set hash(v) {
      this.#set("hash", v);
    }
    get searchParams() {
      if (!this.#params) {
        this.#params = new URLSearchParams(this.search);
        owners.set(this.#params, this);
      }
      return this.#params;
    }
    toString() {
      return this.href;
    }
    toJSON() {
      return this.href;
    }
  }
  // `_setSearch` is for URLSearchParams only.
  Object.defineProperty(URL.prototype, "_setSearch", { enumerable: false });
  define("URL", URL);

  // ---- Headers ------------------------------------------------------------------------

  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const headerName = (name) => {
    const text = String(name);
    if (!TOKEN.test(text)) throw new TypeError(`Headers: ${JSON.stringify(text)} is not a valid header name`);
    return text.toLowerCase();
  };
  const headerValue = (value) => {
    const text = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
    if (/[\0\r\n]/.test(text)) throw new TypeError(`Headers: ${JSON.stringify(text)} is not a valid header value`);
    return text;
  };

  class Headers {
    #map = new Map();
    constructor(init = undefined) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        for (const [name, values] of init.#map) this.#map.set(name, [...values]);
      } else if (typeof init === "object" && typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const items = [...pair];
          if (items.length !== 2) throw new TypeError("Headers: each pair must have two items");
          this.append(items[0], items[1]);
        }
      } else if (typeof init === "object") {
        for (const name of Object.keys(init)) this.append(name, init[name]);
      } else {
        throw new TypeError("Headers: expected an object, an array of pairs or Headers");
      }
    }
    append(name, value) {
      name = headerName(name);
      value = headerValue(value);
      const values = this.#map.get(name);
      if (values) values.push(value);
      else this.#map.set(name, [value]);
    }
    set(name, value) {
      this.#map.set(headerName(name), [headerValue(value)]);
    }
    get(name) {
      const values = this.#map.get(headerName(name));
      return values ? values.join(", ") : null;
    }
    getSetCookie() {
      return [...(this.#map.get("set-cookie") || [])];
    }
    has(name) {
      return this.#map.has(headerName(name));
    }
    delete(name) {
      this.#map.delete(headerName(name));
    }
    forEach(callback, thisArg = undefined) {
      for (const [name, value] of this) callback.call(thisArg, value, name, this);
    }
    *entries() {
      for (const name of [...this.#map.keys()].sort()) {
        const values = this.#map.get(name);
        if (name === "set-cookie") for (const value of values) yield [name, value];
        else yield [name, values.join(", ")];
      }
    }
    *keys() {
      for (const [name] of this) yield name;
    }
    *values() {
      for (const [, value] of this) yield value;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    // node-fetch 2 (Segment's fetch): every value of every header.
    raw() {
      const raw = {};
      for (const [name, values] of this.#map) raw[name] = [...values];
      return raw;
    }
  }
  define("Headers", Headers);

  // ---- Bodies, Request, Response ------------------------------------------------------

  // A body is bytes, read at most once.
  const bodies = new WeakMap();

  // The bytes of a body given to Request or Response, and the content type it implies.
  const encodeBody = (body) => {
    if (body === undefined || body === null) return [null, null];
    if (typeof body === "string") return [native.utf8Encode(body), "text/plain;charset=UTF-8"];
    if (body instanceof URLSearchParams) {
      return [native.utf8Encode(body.toString()), "application/x-www-form-urlencoded;charset=UTF-8"];
    }
    if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return [new Uint8Array(bytesOf(body, "body")), null];
    return [native.utf8Encode(String(body)), "text/plain;charset=UTF-8"];
  };

  class Body {
    get bodyUsed() {
      return bodies.get(this).used;
    }
    _take() {
      const body = bodies.get(this);
      if (body.used) throw new TypeError("Body is unusable: it has already been read");
      body.used = true;
      return body.bytes || new Uint8Array(0);
    }
    async text() {
      return native.utf8Decode(this._take(), false);
    }
    async json() {
      return JSON.parse(await this.text());
    }
    async arrayBuffer() {
      const bytes = this._take();
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    }
    async bytes() {
      return new Uint8Array(await this.arrayBuffer());
    }
  }
  Object.defineProperty(Body.prototype, "_take", { enumerable: false });

  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"];
  const method = (name) => {
    const text = String(name);
    if (!TOKEN.test(text)) throw new TypeError(`Request: ${JSON.stringify(text)} is not a valid method`);
    return METHODS.includes(text.toUpperCase()) ? text.toUpperCase() : text;
  };

  class Request extends Body {
    constructor(input, init = {}) {
      super();
      init = init ?? {};
      const from = input instanceof Request ? input : null;
      this.url = from ? from.url : new URL(String(input)).href;
      this.method = method(init.method ?? (from ? from.method : "GET"));
      this.headers = new Headers(init.headers ?? (from ? from.headers : undefined));
      this.signal = init.signal ?? (from ? from.signal : null);
      this.redirect = String(init.redirect ?? (from ? from.redirect : "follow"));
      let bytes = null;
      let type = null;
      if (init.body !== undefined) [bytes, type] = encodeBody(init.body);
      else if (from) bytes = from._take();
      if (bytes && (this.method === "GET" || this.method === "HEAD")) {
        throw new TypeError(`Request: a ${this.method} request cannot have a body`);
      }
      if (type && !this.headers.has("content-type")) this.headers.set("content-type", type);
      bodies.set(this, { bytes, used: false });
    }
    clone() {
      const body = bodies.get(this);
      if (body.used) throw new TypeError("Request.clone: the body has already been read");
      return new Request(this, { body: body.bytes ?? undefined });
    }
  }
  define("Request", Request);

  class Response extends Body {
    constructor(body = null, init = {}) {
      super();
      init = init ?? {};
      const status = init.status ?? 200;
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`Response: status ${String(status)} is not in 200-599`);
      }
      this.status = status;
      this.statusText = String(init.statusText ?? "");
      this.headers = new Headers(init.headers);
      this.type = "default";
      this.url = "";
      this.redirected = false;
      const [bytes, type] = encodeBody(body);
      if (type && !this.headers.has("content-type")) this.headers.set("content-type", type);
      bodies.set(this, { bytes, used: false });
    }
    get ok() {
      return this.status >= 200 && this.status <= 299;
    }
    static json(data, init = {}) {
      const headers = new Headers(init?.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(JSON.stringify(data), { ...init, headers });
    }
    static redirect(url, status = 302) {
      return new Response(null, { status, headers: { location: new URL(String(url)).href } });
    }
    clone() {
      const body = bodies.get(this);
      if (body.used) throw new TypeError("Response.clone: the body has already been read");
      const copy = new Response(body.bytes, this);
      copy.url = this.url;
      copy.redirected = this.redirected;
      return copy;
    }
  }
  define("Response", Response);

  // A response from the host: its status (a redirect's 3xx included), headers and bytes.
  const received = (status, pairs, bytes, url, redirected) => {
    const response = new Response(null, { status: status < 200 ? 200 : status, headers: pairs });
    response.status = status;
    response.url = url;
    response.redirected = redirected;
    bodies.set(response, { bytes, used: false });
    return response;
  };

  // ---- Timers -------------------------------------------------------------------------

  const timers = new Map();
  let lastTimer = 0;

  const schedule = (callback, delay, args, repeat) => {
    if (typeof callback !== "function") throw new TypeError("the timer's callback must be a function");
    const ms = Math.max(0, Number(delay) || 0);
    const id = ++lastTimer;
    timers.set(id, { due: native.now() + ms, ms, callback, args, repeat });
    return id;
  };
  define("setTimeout", (callback, delay = 0, ...args) => schedule(callback, delay, args, false));
  define("setInterval", (callback, delay = 0, ...args) => schedule(callback, delay, args, true));
  define("clearTimeout", (id) => void timers.delete(id));
  define("clearInterval", (id) => void timers.delete(id));

  // The timer due first (the earliest set among equals).
  const nextTimer = () => {
    let first = null;
    for (const [id, timer] of timers) if (first === null || timer.due < first[1].due) first = [id, timer];
    return first;
  };

  const fire = ([id, timer]) => {
    if (timer.repeat) timer.due = native.now() + Math.max(1, timer.ms);
    else timers.delete(id);
    try {
      timer.callback(...timer.args);
    } catch (err) {
      console.error("uncaught exception in a timer:", err);
    }
  };

  // ---- AbortController ----------------------------------------------------------------

  let abortSignal;
  class AbortSignal {
    #aborted = false;
    #reason = undefined;
    #listeners = [];
    onabort = null;
    constructor(key) {
      if (key !== AbortSignal) throw new TypeError("AbortSignal: use AbortController or AbortSignal.abort/timeout");
    }
    get aborted() {
      return this.#aborted;
    }
    get reason() {
      return this.#reason;
    }
    throwIfAborted() {
      if (this.#aborted) throw this.#reason;
    }
    addEventListener(type, listener) {
      if (type === "abort" && typeof listener === "function") this.#listeners.push(listener);
    }
    removeEventListener(type, listener) {
      if (type === "abort") this.#listeners = this.#listeners.filter((l) => l !== listener);
    }
    static abort(reason = undefined) {
      const signal = new AbortSignal(AbortSignal);
      abortSignal(signal, reason);
      return signal;
    }
    static timeout(ms) {
      const signal = new AbortSignal(AbortSignal);
      setTimeout(() => abortSignal(signal, new DOMException("The operation timed out.", "TimeoutError")), ms);
      return signal;
    }
    static any(signals) {
      const signal = new AbortSignal(AbortSignal);
      for (const s of signals) {
        if (s.aborted) {
          abortSignal(signal, s.reason);
          break;
        }
        s.addEventListener("abort", () => abortSignal(signal, s.reason));
      }
      return signal;
    }
    static {
      abortSignal = (signal, reason) => {
        if (signal.#aborted) return;
        signal.#aborted = true;
        signal.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
        const event = { type: "abort", target: signal };
        for (const listener of [signal.onabort, ...signal.#listeners]) {
          if (typeof listener !== "function") continue;
          try {
            listener.call(signal, event);
          } catch (err) {
            console.error("uncaught exception in an abort listener:", err);
          }
        }
      };
    }
  }
  define("AbortSignal", AbortSignal);

  class AbortController {
    #signal = new AbortSignal(AbortSignal);
    get signal() {
      return this.#signal;
    }
    abort(reason = undefined) {
      abortSignal(this.#signal, reason);
    }
  }
  define("AbortController", AbortController);

  // ---- fetch --------------------------------------------------------------------------

  const MAX_REDIRECTS = 20;
  // Requests in flight, oldest first: { id, request, hops, resolve, reject, onAbort }.
  const inFlight = [];

  const forget = (entry) => {
    const at = inFlight.indexOf(entry);
    if (at >= 0) inFlight.splice(at, 1);
    if (entry.onAbort) entry.request.signal.removeEventListener("abort", entry.onAbort);
  };

  const send = (request, hops, resolve, reject) => {
    const signal = request.signal;
    if (signal && signal.aborted) return reject(signal.reason);
    const bytes = bodies.get(request).bytes;
    let id;
    try {
      id = native.httpStart(request.method, request.url, [...request.headers], bytes ?? undefined);
    } catch (err) {
      return reject(named(err));
    }
    const entry = { id, request, hops, resolve, reject, onAbort: null };
    if (signal) {
      entry.onAbort = () => {
        forget(entry);
        native.httpDrop(id);
        reject(signal.reason);
      };
      signal.addEventListener("abort", entry.onAbort);
    }
    inFlight.push(entry);
  };

  // The request a redirect leads to, or null when `response` is not one to follow.
  const redirection = (request, response) => {
    const location = response.headers.get("location");
    if (![301, 302, 303, 307, 308].includes(response.status) || location === null) return null;
    const url = new URL(location, request.url).href;
    // 303, and 301/302 after a POST, become a GET without a body (as browsers and node do).
    const toGet = response.status === 303 || ([301, 302].includes(response.status) && request.method === "POST");
    const headers = new Headers(request.headers);
    if (toGet) headers.delete("content-type");
    const body = toGet ? undefined : bodies.get(request).bytes ?? undefined;
    return new Request(url, { method: toGet ? "GET" : request.method, headers, body, signal: request.signal, redirect: request.redirect });
  };

  // The response of `entry`, whose head is ready: resolves it or follows its redirect.
  const settle = (entry) => {
    forget(entry);
    let head;
    try {
      head = native.httpFinish(entry.id);
    } catch (err) {
      return entry.reject(named(err));
    }
    const [status, pairs, bytes] = head;
    const response = received(status, pairs, bytes, entry.request.url, entry.hops > 0);
    const next = entry.request.redirect === "manual" ? null : redirection(entry.request, response);
    if (next === null) return entry.resolve(response);
    if (entry.request.redirect === "error") return entry.reject(new TypeError(`fetch: redirected to ${next.url} (redirect: "error")`));
    if (entry.hops >= MAX_REDIRECTS) return entry.reject(new TypeError(`fetch: more than ${MAX_REDIRECTS} redirects`));
    // Each hop is a new request, checked by the host against the allow-list again.
    send(next, entry.hops + 1, entry.resolve, entry.reject);
  };

  const INSERT_ONLY =
    "fetch: insert functions cannot use the network; make it a destination function (resourceType DESTINATION) or a source function (SOURCE), whose allowedHosts setting lists what it may reach";

  define("fetch", function fetch(input, init = undefined) {
    return new Promise((resolve, reject) => {
      if (!native.network()) throw named(new TypeError(`http-not-allowed: ${INSERT_ONLY}`));
      send(new Request(input, init), 0, resolve, reject);
    });
  });

  // ---- The event loop's steps ---------------------------------------------------------

  // One step of progress when no promise job is left: fires a timer that is due, else waits
  // for the oldest request (no longer than the next timer), else sleeps until the next timer.
  // `false` when nothing is left that could ever make progress.
  const pump = () => {
    const timer = nextTimer();
    const now = native.now();
    if (timer && timer[1].due <= now) {
      fire(timer);
      return true;
    }
    if (inFlight.length > 0) {
      const entry = inFlight[0];
      if (native.httpWait(entry.id, timer ? timer[1].due - now : -1)) settle(entry);
      return true;
    }
    if (timer) {
      native.sleep(timer[1].due - now);
      fire(timer);
      return true;
    }
    return false;
  };

  // When an invocation ends: requests nobody waited for are dropped, timers cleared.
  const reset = () => {
    for (const entry of inFlight.splice(0)) native.httpDrop(entry.id);
    timers.clear();
  };

  return { pump, reset };
})
