// sluice JavaScript engine prelude: the globals a Segment-style insert function may use.
//
// Evaluated once per instance, before the user's code, as its own script. It is a function
// expression: the engine calls it with the native (Rust) helpers, which therefore never become
// globals, and gets back the internal helpers the engine itself needs.
//
// Globals are defined as writable, configurable, non-enumerable properties, so user code may
// redefine any of them (even with `class ValidationError ...` at its top level).
(function (native) {
  "use strict";

  const define = (name, value) =>
    Object.defineProperty(globalThis, name, {
      value,
      writable: true,
      configurable: true,
      enumerable: false,
    });

  // Error kinds, numbered as the WIT `error-kind` enum; 6 is the engine's own "stack overflow".
  const KIND = {
    EventNotSupported: 0,
    InvalidEventPayload: 1,
    ValidationError: 2,
    RetryError: 3,
    DropEvent: 4,
    unknown: 5,
    stackOverflow: 6,
  };

  const classes = [];
  for (const name of Object.keys(KIND).slice(0, 5)) {
    // A computed key names the class after `name` (for `err.constructor.name`).
    const cls = {
      [name]: class extends Error {},
    }[name];
    Object.defineProperty(cls.prototype, "name", {
      value: name,
      writable: true,
      configurable: true,
      enumerable: false,
    });
    classes.push([cls, KIND[name]]);
    define(name, cls);
  }

  // Text for a log line: strings as they are, other values as JSON, else String().
  const show = (value) => {
    if (typeof value === "string") return value;
    if (value instanceof Error) return `${value.name}: ${value.message}`;
    try {
      const json = JSON.stringify(value);
      if (json !== undefined) return json;
    } catch (_) {
      // Cyclic or BigInt: fall through to String().
    }
    try {
      return String(value);
    } catch (_) {
      return Object.prototype.toString.call(value);
    }
  };
  const logger = (level) =>
    function (...args) {
      native.log(level, args.map(show).join(" "));
    };
  // Levels as in the WIT `level` enum: trace 0, debug 1, info 2, warn 3, error 4.
  define("console", {
    log: logger(2),
    info: logger(2),
    warn: logger(3),
    error: logger(4),
    debug: logger(1),
  });

  const invalidCharacter = (what) => {
    const err = new Error(`${what}: the string contains characters outside of the Latin1 range or is not valid base64`);
    err.name = "InvalidCharacterError";
    return err;
  };
  define("btoa", function btoa(data) {
    const out = native.btoa(String(data));
    if (out === null || out === undefined) throw invalidCharacter("btoa");
    return out;
  });
  define("atob", function atob(data) {
    const out = native.atob(String(data));
    if (out === null || out === undefined) throw invalidCharacter("atob");
    return out;
  });

  const hexToBase64 = (hex) => {
    let bytes = "";
    for (let i = 0; i < hex.length; i += 2) bytes += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
    return native.btoa(bytes);
  };

  // Node's `crypto.createHash('sha256')`, for strings: update(...).digest('hex' | 'base64').
  class Hash {
    #parts = [];
    #done = false;
    update(data) {
      if (this.#done) throw new Error("Digest already called");
      this.#parts.push(String(data));
      return this;
    }
    digest(encoding) {
      if (this.#done) throw new Error("Digest already called");
      this.#done = true;
      const hex = native.sha256(this.#parts.join(""));
      if (encoding === "hex") return hex;
      if (encoding === "base64") return hexToBase64(hex);
      throw new TypeError(`digest: unsupported encoding ${show(encoding)} (use 'hex' or 'base64')`);
    }
  }

  define("crypto", {
    randomUUID: () => native.randomUUID(),
    sha256: (text) => native.sha256(String(text)),
    createHash(algorithm) {
      if (String(algorithm).toLowerCase() !== "sha256") {
        throw new Error(`createHash: unsupported algorithm ${show(algorithm)} (only 'sha256')`);
      }
      return new Hash();
    },
  });

  // Seeded per instance (see globals.rs: QuickJS's own seed is in the build's snapshot).
  Object.defineProperty(Math, "random", {
    value: function random() {
      return native.random();
    },
    writable: true,
    configurable: true,
    enumerable: false,
  });

  // What the engine reports for a thrown value: [kind, message].
  const describeError = (err) => {
    try {
      if (err instanceof RangeError && err.message === "Maximum call stack size exceeded") {
        return [KIND.stackOverflow, err.message];
      }
      const isObject = err !== null && (typeof err === "object" || typeof err === "function");
      let kind;
      for (const [cls, k] of classes) {
        if (err instanceof cls) {
          kind = k;
          break;
        }
      }
      // The user's own classes of the same names count too.
      if (kind === undefined && isObject && Object.hasOwn(KIND, err.name) && KIND[err.name] < 5) {
        kind = KIND[err.name];
      }
      if (kind !== undefined) {
        const message = err.message === undefined || err.message === "" ? String(err.name) : String(err.message);
        return [kind, message];
      }
      if (!isObject) return [KIND.unknown, String(err)];
      // A thrown plain object (`throw {code: 1}`): show it rather than "undefined: undefined".
      if (!(err instanceof Error) && err.message === undefined) return [KIND.unknown, show(err)];
      let text = `${err.name}: ${err.message}`;
      if (typeof err.stack === "string" && err.stack !== "") text += `\n${err.stack.trimEnd()}`;
      return [KIND.unknown, text];
    } catch (_) {
      return [KIND.unknown, "the function threw a value that cannot be described"];
    }
  };

  return { describeError };
})
