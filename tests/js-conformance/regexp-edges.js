// The RegExp natives' edges that the corpus's plain calls do not reach: arguments that are
// not strings (QuickJS's original must coerce them, in the specification's order), a
// replacement that is neither a string nor a function, sticky and frozen RegExps, a replaced
// `exec` (on the object, on the prototype, in a subclass), replacement functions that throw
// or search again, lone surrogates, and the natives' `length` and `name`. The same file runs
// in node (generate.js writes regexp-edges-expected.json) and in sluice's engine
// (tests/tests/js_regexp.rs compares).
//
// runRegExpEdges() -> one result per edge, in order.
function runRegExpEdges() {
  const out = [];
  const warm = (re) => { for (let i = 0; i < 80; i++) 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx a1b22c333'.replace(re, '#'); re.lastIndex = 0; return re; };
  const attempt = (f) => { try { return f(); } catch (e) { return 'threw ' + e.name; } };
  const D = warm(/\d+/g);
  const log = [];
  const obj = { toString() { log.push('text'); return 'a1b22'; } };
  const tpl = { toString() { log.push('tpl'); return '<$&>'; } };
  out.push(attempt(() => 'a1b22'.replace(D, tpl)));
  out.push(attempt(() => D[Symbol.replace](obj, '[$&]')));
  out.push(attempt(() => D[Symbol.replace](obj, tpl)));
  out.push(log.join(','));
  out.push(attempt(() => 'a1b22'.replace(D, 42)));
  out.push(attempt(() => 'a1b22'.replace(D)));
  out.push(attempt(() => D[Symbol.replace](12345, 'n')));
  out.push(attempt(() => D.test(12345)));
  out.push(D.lastIndex);
  out.push(attempt(() => JSON.stringify(D.exec(777))));
  out.push(D.lastIndex);
  D.lastIndex = 0;
  out.push(attempt(() => JSON.stringify('a1b22'.match(D))));
  out.push(attempt(() => JSON.stringify(D[Symbol.match](9090))));
  out.push(attempt(() => D[Symbol.match].call({}, 'x')));
  out.push(attempt(() => D[Symbol.replace].call('str', 'x', 'y')));
  out.push(attempt(() => RegExp.prototype.exec.call({}, 'x')));
  out.push(attempt(() => RegExp.prototype.test.call(null, 'x')));
  // sticky, lastIndex moved by the replace
  const Y = warm(/\d/y);
  Y.lastIndex = 1;
  out.push('a1b22'.replace(Y, '#'), Y.lastIndex);
  out.push('a1b22'.replace(Y, '#'), Y.lastIndex);
  // frozen global regexp: lastIndex not writable
  const F = warm(/\d+/g);
  Object.freeze(F);
  out.push(attempt(() => 'a1b22'.replace(F, '#')));
  out.push(attempt(() => 'abc'.replace(F, '#')));
  out.push(attempt(() => F.test('a1')));
  // a replaced exec on the object, then on the prototype
  const E = warm(/\d+/g);
  E.exec = function (s) { return null; };
  out.push(attempt(() => 'a1b22'.replace(E, '#')), attempt(() => E.test('1')));
  const G = warm(/(\d)(\d)?/g);
  out.push('a1b22'.replace(G, (m, p1, p2, at, s) => [m, p1, p2, at, s.length].join('/')));
  out.push('a1b22'.replace(G, '$2$1'));
  out.push('a1b22'.replace(warm(/(?<x>\d)/g), '[$<x>]'));
  out.push('a1b22'.replace(warm(/(?<x>\d)/g), (...a) => JSON.stringify(a)));
  // lone surrogate template and text
  out.push(JSON.stringify('a1b22'.replace(D, '\ud800')));
  out.push(JSON.stringify('a1\ud800b22'.replace(D, '#')));
  // a replacer that throws, and one that re-enters
  out.push(attempt(() => 'a1b22'.replace(D, () => { throw new TypeError('x'); })));
  out.push('a1b22 c333'.replace(D, (m) => m.replace(warm(/\d/g), 'N')));
  out.push(D.lastIndex);
  // subclass and Symbol.species
  class R extends RegExp { exec(s) { return super.exec(s); } }
  out.push(attempt(() => 'a1b22'.replace(new R('\\d+', 'g'), '#')));
  out.push(attempt(() => 'a1b22'.replace(new R('\\d+', 'g'), '#')));
  RegExp.prototype.exec = RegExp.prototype.exec;
  out.push('a1b22'.replace(D, '#'));
  const origExec = RegExp.prototype.exec;
  RegExp.prototype.exec = function (s) { return origExec.call(this, s); };
  out.push('a1b22'.replace(D, '#'), D.test('x9'));
  RegExp.prototype.exec = origExec;
  out.push('a1b22'.replace(D, '#'));
  out.push(RegExp.prototype.exec.length, RegExp.prototype.test.length, RegExp.prototype[Symbol.replace].length, RegExp.prototype[Symbol.match].length);
  out.push(RegExp.prototype.exec.name, RegExp.prototype[Symbol.replace].name, RegExp.prototype[Symbol.match].name);
  return out;
}
