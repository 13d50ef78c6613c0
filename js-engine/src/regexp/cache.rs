//! Compiled patterns per instance, by (source, flags): translated on first sight, compiled
//! once QuickJS's engine has run them on a few KB of text (see [`COMPILE_AFTER_BYTES`]).

use std::collections::HashMap;

use super::matcher::Compiled;
use super::translate::{Translated, translate};

/// Text a pattern must have been applied to (each call counting at least [`CALL_BYTES`])
/// before it is compiled: until then QuickJS's engine runs it. Compiling costs about as much
/// as QuickJS spends on ~5 KB of searching, so a fresh instance that uses a pattern a few
/// times never pays for it, and a warm one compiles it early in its first events.
const COMPILE_AFTER_BYTES: usize = 4096;
const CALL_BYTES: usize = 64;

/// A pattern the translation accepted.
enum Entry {
    /// Not compiled yet: QuickJS's engine runs it until `remaining` bytes of text are used up.
    Pending(Box<Translated>, usize),
    Compiled(Box<Compiled>),
    /// `regex` refused it (e.g. too large): QuickJS's engine runs it.
    Refused,
}

/// Patterns by (source, flags): an index into `entries`, or `None` for those that fall back.
#[derive(Default)]
pub struct Cache {
    ids: HashMap<(String, String), Option<usize>>,
    entries: Vec<Entry>,
}

impl Cache {
    /// The id of the pattern `source` with `flags`, translating it on first sight; `None` for
    /// patterns the compiled engine cannot express. Costs a hash lookup once seen.
    pub fn id(&mut self, source: &str, flags: &str) -> Option<usize> {
        if let Some(id) = self.ids.get(&(source.to_string(), flags.to_string())) {
            return *id;
        }
        let id = translate(source, flags).map(|translated| {
            self.entries
                .push(Entry::Pending(Box::new(translated), COMPILE_AFTER_BYTES));
            self.entries.len() - 1
        });
        self.ids.insert((source.to_string(), flags.to_string()), id);
        id
    }

    /// The compiled pattern of entry `id` for a call on `len` bytes of text; `None` while
    /// QuickJS's engine should run it (compiling it once enough text has gone by).
    pub fn ready(&mut self, id: usize, len: usize) -> Option<&mut Compiled> {
        let entry = self.entries.get_mut(id)?;
        if let Entry::Pending(translated, remaining) = entry {
            *remaining = remaining.saturating_sub(len.max(CALL_BYTES));
            if *remaining > 0 {
                return None;
            }
            *entry = match Compiled::new((**translated).clone()) {
                Some(compiled) => Entry::Compiled(Box::new(compiled)),
                None => Entry::Refused,
            };
        }
        self.get(id)
    }

    /// The compiled pattern of entry `id`, if it is compiled.
    pub fn get(&mut self, id: usize) -> Option<&mut Compiled> {
        match self.entries.get_mut(id)? {
            Entry::Compiled(compiled) => Some(compiled),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_compiled_after_enough_text_and_untranslatable_ones_fall_back() {
        let mut cache = Cache::default();
        let id = cache.id("a+b", "g").expect("translatable");
        assert_eq!(
            cache.id("a+b", "g"),
            Some(id),
            "one entry per (source, flags)"
        );
        assert_ne!(cache.id("a+b", ""), Some(id));
        assert!(cache.ready(id, 1000).is_none(), "QuickJS runs it first");
        assert!(cache.get(id).is_none());
        assert!(cache.ready(id, COMPILE_AFTER_BYTES).is_some());
        assert!(cache.get(id).is_some());
        assert_eq!(cache.id("(a)\\1", ""), None, "backreferences fall back");
    }
}
