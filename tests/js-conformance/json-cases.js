// Values a handler may return inside an event, for the JSON conformance test: each case is a
// function that builds `properties`. generate.js writes what node's JSON.stringify gives for
// each (json-expected.json); tests/tests/js_json.rs checks that the host receives exactly that.
const JSON_CASES = [
  () => ({ a: 1, b: 'two', c: true, d: null, e: [1, 2, 3] }),
  () => ({ n: [0, -0, 1.5, -2.25, 0.1 + 0.2, 1e21, 1e-7, 123456789012345680000, 2 ** 53, 5e-324, 1.7976931348623157e308] }),
  () => ({ n: [NaN, Infinity, -Infinity, 100, 1e20, 0.000001, 1 / 3] }),
  () => ({ s: ['quote " backslash \\ slash /', 'controls \n\r\t\b\f \u0001 \u001f \u007f', 'é 日本 😀', '\u2028\u2029'] }),
  () => ({ s: ['lone \ud83d surrogate', 'low \ude00 first', 'pair \ud83d\ude00'] }),
  () => ({ skipped: undefined, f() {}, sym: Symbol('x'), kept: 1 }),
  () => ({ arr: [undefined, function () {}, Symbol('y'), 1] }),
  () => ({ b: 1, a: 2, 10: 'ten', 2: 'two', '-1': 'minus', z: 3 }),
  () => ({ nested: { deeper: { deepest: [{ x: 1 }, [], {}] } } }),
  () => ({ date: new Date(0), invalid: new Date(NaN) }),
  () => {
    class Money {
      constructor(cents) {
        this.cents = cents;
      }
      toJSON(key) {
        return `${this.cents / 100} EUR (${key})`;
      }
    }
    return { price: new Money(1250), list: [new Money(5)] };
  },
  () => ({ own: { toJSON: () => 'own toJSON', hidden: 1 } }),
  () => ({ boxed: [Object(1.5), Object('str'), Object(false)] }),
  () => {
    const o = {};
    Object.defineProperty(o, 'getter', { get: () => 'computed', enumerable: true });
    Object.defineProperty(o, 'hidden', { value: 1, enumerable: false });
    return { o };
  },
  () => ({ sparse: [1, , 3], long: new Array(3) }),
  () => {
    const shared = { x: 1 };
    return { a: shared, b: shared };
  },
  () => ({ error: new Error('boom'), map: new Map([[1, 2]]), re: /x/g }),
  () => {
    const cyclic = { name: 'loop' };
    cyclic.self = cyclic;
    return { cyclic };
  },
  () => ({ big: 10n }),
];
