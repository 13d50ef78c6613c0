// The function editor: CodeMirror 6 with JavaScript highlighting, and diagnostics from two
// places: the parser's error nodes while typing (Lezer, in the browser), and what the server's
// JavaScript engine said at the last save (`line L, column C: message`), which is the verdict
// that counts (QuickJS is what will run the code). The server's stays shown until the code
// changes.
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { javascript } from "@codemirror/lang-javascript";
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting, syntaxTree } from "@codemirror/language";
import { forceLinting, lintGutter, linter } from "@codemirror/lint";
import { EditorState } from "@codemirror/state";
import { EditorView, highlightActiveLine, highlightActiveLineGutter, keymap, lineNumbers } from "@codemirror/view";

/** An editor in `parent` holding `code`; `onChange()` is called on every edit. */
export function createEditor(parent, code, { readOnly = false, onChange = () => {} } = {}) {
  let server = null; // {doc, diagnostic}: the server's verdict on exactly that text
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: code,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightActiveLine(),
        history(),
        indentOnInput(),
        bracketMatching(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        javascript(),
        lintGutter(),
        linter((v) => diagnostics(v, server), { delay: 300 }),
        keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
        EditorState.readOnly.of(readOnly),
        EditorView.editable.of(!readOnly),
        EditorView.updateListener.of((u) => u.docChanged && onChange()),
      ],
    }),
  });
  return {
    view,
    get code() {
      return view.state.doc.toString();
    },
    set code(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    /** Marks the server's error (`line`, `column` 1-based) until the code changes; null clears it. */
    mark(error) {
      server = error && { doc: view.state.doc, diagnostic: at(view.state.doc, error) };
      forceLinting(view);
    },
  };
}

function diagnostics(view, server) {
  const found = [];
  if (server && server.doc === view.state.doc) found.push(server.diagnostic);
  else
    syntaxTree(view.state).iterate({
      enter(node) {
        if (!node.type.isError || found.length >= 5) return;
        const line = view.state.doc.lineAt(node.from);
        found.push({ from: node.from, to: Math.max(node.to, Math.min(node.from + 1, line.to)), severity: "error", source: "parser", message: `Syntax error at line ${line.number}, column ${node.from - line.from + 1}` });
      },
    });
  return found;
}

/**
 * The diagnostic for 1-based `line`/`column`: from there to the end of the word. A column past
 * the line's end (QuickJS's parser sometimes reports one) marks the whole line instead.
 */
function at(doc, { line, column, message }) {
  const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
  const text = { message: `line ${line}, column ${column}: ${message}`, severity: "error", source: "sluice" };
  if (column - 1 >= l.length) return { ...text, from: l.from + (l.text.length - l.text.trimStart().length), to: l.to };
  const from = l.from + Math.max(column - 1, 0);
  const word = doc.sliceString(from, l.to).match(/^\w+|^\S/)?.[0].length ?? 1;
  return { ...text, from, to: Math.min(from + word, l.to) };
}

/** `{line, column, message}` from the API's message (`... line 3, column 5: unexpected token`). */
export function parseCodeError(text) {
  const m = /line (\d+), column (\d+): (.*)$/s.exec(text ?? "");
  return m ? { line: Number(m[1]), column: Number(m[2]), message: m[3] } : null;
}
