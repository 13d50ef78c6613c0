//! JavaScript regular expressions on a compiled engine (`regex-automata`): the translation of
//! JavaScript's syntax, JavaScript's matching rules on top of the compiled automaton, and
//! (in the component) the natives installed on `RegExp.prototype`. Patterns the translation
//! cannot express keep QuickJS's own backtracking engine.

pub mod cache;
#[cfg(target_arch = "wasm32")]
pub mod glue;
pub mod matcher;
pub mod required;
pub mod translate;
