// sluice JavaScript engine: source functions. `onRequest(request, settings)` gets the webhook
// request; its `Segment.track(...)`, `identify`, `page`, `screen`, `group` and `alias` calls
// are queued and become the events of the request, only if `onRequest` ends without error.
//
// Evaluated once, in the build's snapshot, after the web globals. A function expression,
// called with nothing; it gives the engine `run(onRequest, requestText, settings)`, a promise
// of the queued calls (an array of event objects), which the engine returns as a fan-out.
(function () {
  "use strict";

  // The fields each call takes, as Segment's source functions document them; anything else
  // given is kept too (Segment's emulator takes integrations, messageId, timestamp, sentAt).
  const CALLS = {
    track: ["event", "userId", "anonymousId", "properties", "context"],
    identify: ["userId", "anonymousId", "traits", "context"],
    page: ["name", "userId", "anonymousId", "properties", "context"],
    screen: ["name", "userId", "anonymousId", "properties", "context"],
    group: ["groupId", "userId", "anonymousId", "traits", "context"],
    alias: ["previousId", "userId", "anonymousId"],
  };

  // `Segment` for one request: its calls go to `queue`.
  const segmentFor = (queue) => {
    const segment = {};
    for (const type of Object.keys(CALLS)) {
      segment[type] = (fields) => {
        if (fields === null || typeof fields !== "object") {
          throw new TypeError(`Segment.${type}: pass an object of fields (${CALLS[type].join(", ")})`);
        }
        queue.push({ ...fields, type });
      };
    }
    segment.set = () => {
      throw new Error("Segment.set: sluice has no object API (warehouse-only objects); send identify or group calls instead");
    };
    return Object.freeze(segment);
  };

  // The webhook request as Segment's source functions see it.
  class WebhookRequest {
    #text;
    constructor(envelope) {
      this.#text = typeof envelope.body === "string" ? envelope.body : "";
      this.method = String(envelope.method ?? "POST");
      // The host gives an absolute URL; a relative one is read against localhost.
      this.url = new URL(String(envelope.url ?? "/"), "http://localhost");
      this.headers = new Headers(envelope.headers ?? {});
    }
    async text() {
      return this.#text;
    }
    async json() {
      try {
        return JSON.parse(this.#text);
      } catch (err) {
        throw new InvalidEventPayload(`the request body is not JSON: ${err.message}`);
      }
    }
  }

  const run = async (onRequest, requestText, settings) => {
    const envelope = JSON.parse(requestText);
    const queue = [];
    const previous = Object.getOwnPropertyDescriptor(globalThis, "Segment");
    Object.defineProperty(globalThis, "Segment", { value: segmentFor(queue), writable: true, configurable: true, enumerable: false });
    try {
      await onRequest(new WebhookRequest(envelope), settings);
    } finally {
      if (previous) Object.defineProperty(globalThis, "Segment", previous);
      else delete globalThis.Segment;
    }
    return queue;
  };

  return { run };
})
