// sluice JavaScript engine: Segment's preinstalled libraries as lazy globals, and `cache`.
//
// Evaluated once, in the build's snapshot, after the prelude. A function expression: the engine
// calls it with the libraries' global names and `load(name)` (a native that evaluates the
// library's bytecode and returns its value).
//
// Each library's global starts as an accessor, so a function that never names it never pays for
// it; the first read evaluates the library and replaces the accessor by a plain writable data
// property holding the value. All are configurable and non-enumerable, like the prelude's
// globals, so user code may declare or assign the same names (`const _ = ...`, `var moment`).
(function (names, load) {
  "use strict";

  const settle = (name, value) => {
    Object.defineProperty(globalThis, name, {
      value,
      writable: true,
      configurable: true,
      enumerable: false,
    });
    return value;
  };

  const lazy = (name) =>
    Object.defineProperty(globalThis, name, {
      get() {
        // While it runs, the library sees no global of its own name, as under node: lodash
        // reads `root._` (for `noConflict`), which would otherwise load lodash again.
        settle(name, undefined);
        try {
          return settle(name, load(name));
        } catch (err) {
          lazy(name);
          throw err;
        }
      },
      // An assignment before any read (`_ = helpers`) takes the name over, unevaluated.
      set(value) {
        settle(name, value);
      },
      configurable: true,
      enumerable: false,
    });
  names.forEach(lazy);

  // Segment's `cache`: per instance and in memory (a fresh instance starts empty; an instance
  // retires after its uses), so it can only save repeated work within one warm instance.
  const now = Date.now; // captured: user code replacing Date.now cannot stretch a TTL
  const entries = new Map();
  const cache = {
    // The value stored under `key` if younger than its TTL, else `await loader()`, stored for
    // `ttlMs` from when it settled. Concurrent loads of one key share one call of `loader`;
    // a rejection is returned to every waiter and stores nothing.
    load(key, ttlMs, loader) {
      if (typeof loader !== "function") {
        return Promise.reject(new TypeError("cache.load(key, ttlMs, fn): fn must be a function"));
      }
      key = String(key);
      const hit = entries.get(key);
      if (hit !== undefined && now() < hit.expires) return hit.value;
      const entry = { value: undefined, expires: Infinity };
      entry.value = new Promise((resolve) => resolve(loader())).then(
        (value) => {
          entry.expires = now() + Number(ttlMs);
          return value;
        },
        (err) => {
          if (entries.get(key) === entry) entries.delete(key);
          throw err;
        },
      );
      entries.set(key, entry);
      return entry.value;
    },
    delete(key) {
      entries.delete(String(key));
    },
  };
  settle("cache", cache);
})
