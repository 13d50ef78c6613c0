// Runs the RegExp conformance corpus (regexp-corpus.json): every operation a function may use,
// on every input of every case, as plain JSON. The same file runs in node (generate.js writes
// the expected results) and in sluice's engine (tests/tests/js_regexp.rs compares).
//
// runRegExpCase(c) -> one result object per input of case `c` ({pattern, flags, inputs}).
function runRegExpCase(c) {
  const show = (v) => {
    if (v === undefined) return '<undefined>';
    if (v === null) return null;
    if (Array.isArray(v)) return v.map(show);
    if (typeof v === 'object') {
      const out = {};
      for (const k of Object.keys(v)) out[k] = show(v[k]);
      return out;
    }
    return v;
  };
  let input;
  const execResult = (m) =>
    m === null ? null : { m: show(Array.from(m)), index: m.index, groups: show(m.groups), sameInput: m.input === input };
  const attempt = (f) => {
    try {
      return f();
    } catch (err) {
      return { threw: String(err && err.name) };
    }
  };
  const make = () => new RegExp(c.pattern, c.flags);
  // sluice compiles a pattern once it has run on a few KB of text (QuickJS's engine runs it
  // until then): use it enough first that the operations below run on the compiled engine.
  for (let i = 0; i < 80; i++) make().test('');
  const iterating = c.flags.includes('g') || c.flags.includes('y');
  return c.inputs.map((text) => {
    input = text;
    const r = {};
    r.exec = attempt(() => {
      const re = make();
      const steps = [];
      for (let i = 0; i < (iterating ? 12 : 1); i++) {
        const m = re.exec(input);
        steps.push({ result: execResult(m), lastIndex: re.lastIndex });
        if (m === null) break;
        if (m[0] === '') re.lastIndex++;
      }
      return steps;
    });
    r.execFromLastIndex = attempt(() => {
      const re = make();
      re.lastIndex = 2;
      const m = re.exec(input);
      return { result: execResult(m), lastIndex: re.lastIndex };
    });
    r.test = attempt(() => {
      const re = make();
      const results = [re.test(input), re.lastIndex, re.test(input), re.lastIndex];
      return results;
    });
    r.replaceTemplate = attempt(() => {
      const re = make();
      re.lastIndex = 1;
      const out = input.replace(re, "[$&|$1|$2|$<name>|$$|$`|$'|$0|$10]");
      return [out, re.lastIndex];
    });
    r.replaceConstant = attempt(() => input.replace(make(), '#'));
    r.replaceFunction = attempt(() => {
      const calls = [];
      const out = input.replace(make(), (...args) => {
        calls.push(show(args.map((a) => (a === input ? '<input>' : a))));
        return `<${args[0].length}>`;
      });
      return [out, calls];
    });
    r.replaceAll = attempt(() => input.replaceAll(make(), '{$&}'));
    r.match = attempt(() => {
      const m = input.match(make());
      return m === null ? null : c.flags.includes('g') ? m : execResult(m);
    });
    r.matchAll = attempt(() => Array.from(input.matchAll(make()), execResult));
    r.split = attempt(() => input.split(make()));
    r.splitLimited = attempt(() => input.split(make(), 2));
    r.search = attempt(() => input.search(make()));
    return r;
  });
}
