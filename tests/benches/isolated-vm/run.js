// Runs a Segment-style insert function in isolated-vm (V8), the way RudderStack and Jitsu run
// user JavaScript, for tests/benches/javascript.rs: one warm isolate, each event handed in as
// JSON text and the result handed back as JSON text (JSON.parse, the handler, JSON.stringify,
// all inside the isolate), the same work sluice does per event.
//
// Usage: node run.js CODE.js EVENTS.jsonl OUT.jsonl PASSES
// Writes one line per event to OUT (the forwarded event's JSON, or `drop`, or `error: ...`) and
// prints {"usPerEvent": best pass} on stdout.
'use strict';
const fs = require('fs');
const ivm = require('isolated-vm');

const [codePath, eventsPath, outPath, passesText] = process.argv.slice(2);
const code = fs.readFileSync(codePath, 'utf8');
const events = fs.readFileSync(eventsPath, 'utf8').split('\n').filter((line) => line.trim() !== '');
const passes = Math.max(1, Number(passesText) || 3);

// The globals sluice's prelude gives (those the examples use), and the dispatch by event type.
const PRELUDE = `
for (const name of ['EventNotSupported', 'InvalidEventPayload', 'ValidationError', 'RetryError', 'DropEvent']) {
  globalThis[name] = { [name]: class extends Error {} }[name];
  globalThis[name].prototype.name = name;
}
globalThis.console = { log() {}, info() {}, warn() {}, error() {}, debug() {} };
globalThis.crypto = { sha256() { throw new Error('crypto.sha256 is not offered in this bench'); } };
`;
const DISPATCH = `
(() => {
  const pick = (f) => (typeof f === 'function' ? f : undefined);
  const handlers = {
    track: typeof onTrack === 'undefined' ? undefined : pick(onTrack),
    identify: typeof onIdentify === 'undefined' ? undefined : pick(onIdentify),
    page: typeof onPage === 'undefined' ? undefined : pick(onPage),
    screen: typeof onScreen === 'undefined' ? undefined : pick(onScreen),
    group: typeof onGroup === 'undefined' ? undefined : pick(onGroup),
    alias: typeof onAlias === 'undefined' ? undefined : pick(onAlias),
    delete: typeof onDelete === 'undefined' ? undefined : pick(onDelete),
  };
  const settings = {};
  const shown = (value) => (value === null || value === undefined ? 'drop' : JSON.stringify(value));
  // isolated-vm cannot block on a promise from Node's thread, but it runs the isolate's
  // microtasks when each call returns; so each call starts one event and returns the result of
  // the one before it (settled by then), one call per event as for a synchronous handler.
  let previous;
  return function run(text) {
    const done = previous;
    previous = undefined;
    if (text === undefined) return done;
    try {
      const event = JSON.parse(text);
      const handler = handlers[event.type];
      if (handler === undefined) {
        previous = 'error: no handler';
      } else {
        Promise.resolve(handler(event, settings)).then(
          (value) => { previous = shown(value); },
          (err) => { previous = 'error: ' + err; },
        );
      }
    } catch (err) {
      previous = 'error: ' + err;
    }
    return done;
  };
})()
`;

async function main() {
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  const context = await isolate.createContext();
  await context.eval(PRELUDE);
  // A classic script, as sluice evaluates it: top-level functions become globals.
  const script = await isolate.compileScript(code, { filename: 'function.js' });
  await script.run(context);
  const run = await context.eval(DISPATCH, { reference: true });
  let best = Infinity;
  let outputs = [];
  for (let pass = 0; pass < passes; pass++) {
    const out = new Array(events.length);
    const start = process.hrtime.bigint();
    run.applySync(undefined, [events[0]]);
    for (let i = 1; i < events.length; i++) {
      out[i - 1] = run.applySync(undefined, [events[i]]);
    }
    out[events.length - 1] = run.applySync(undefined, []);
    const elapsed = Number(process.hrtime.bigint() - start) / 1e3;
    best = Math.min(best, elapsed / events.length);
    outputs = out;
  }
  fs.writeFileSync(outPath, outputs.join('\n') + '\n');
  process.stdout.write(JSON.stringify({ usPerEvent: best }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`isolated-vm bench failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
