// Writes what node (V8) gives for the conformance cases: regexp-expected.json for every case
// of regexp-corpus.json run by regexp-runner.js, regexp-edges-expected.json for
// regexp-edges.js, and json-expected.json for every case of json-cases.js (JSON.stringify of
// the properties, or the name of the error it throws).
// Run it again after changing a corpus or the runner:
//   node tests/js-conformance/generate.js
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const here = __dirname;
const corpus = JSON.parse(fs.readFileSync(path.join(here, 'regexp-corpus.json'), 'utf8'));
const context = vm.createContext({});
vm.runInContext(fs.readFileSync(path.join(here, 'regexp-runner.js'), 'utf8'), context);
const results = corpus.map((c) => context.runRegExpCase(c));
fs.writeFileSync(path.join(here, 'regexp-expected.json'), '[\n' + results.map((r) => JSON.stringify(r)).join(',\n') + '\n]\n');
console.log(`${corpus.length} RegExp cases, ${results.flat().length} inputs`);

// In a context of its own: the edges replace and restore RegExp.prototype.exec.
const edgesContext = vm.createContext({});
vm.runInContext(fs.readFileSync(path.join(here, 'regexp-edges.js'), 'utf8'), edgesContext);
const edges = edgesContext.runRegExpEdges();
fs.writeFileSync(path.join(here, 'regexp-edges-expected.json'), JSON.stringify(edges, null, 1) + '\n');
console.log(`${edges.length} RegExp edges`);

vm.runInContext(fs.readFileSync(path.join(here, 'json-cases.js'), 'utf8') + '\nthis.JSON_CASES = JSON_CASES;', context);
const json = context.JSON_CASES.map((build) => {
  try {
    return { json: JSON.stringify(build()) };
  } catch (err) {
    return { threw: err.name };
  }
});
fs.writeFileSync(path.join(here, 'json-expected.json'), JSON.stringify(json, null, 1) + '\n');
console.log(`${json.length} JSON cases`);
