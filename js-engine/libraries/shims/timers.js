// node's `timers`, as far as xml2js uses it (`setImmediate` between chunks of its `async: true`
// mode). The engine has no timers; a promise job runs before the handler's promise settles,
// which is all the ordering xml2js needs.
export function setImmediate(callback, ...args) {
  Promise.resolve().then(() => callback(...args));
}
