//! A JSON object's members borrowed from the request body: each key (unescaped only when it
//! has escapes) with its value's raw text. Ingestion reads the few members Segment's rules
//! look at and copies the rest as they came, so an event is never parsed into a tree.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::dataplane::event::JsonStr;

/// An object's members, in the order they came. Parsing validates the whole object's JSON
/// and allocates one vector; values are not parsed.
pub struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    /// Parses `text` as a JSON object.
    ///
    /// # Errors
    /// `text` is not JSON, or not an object.
    pub fn parse(text: &'a str) -> Result<Members<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The value of `key`: the last one, as a JSON parser keeps the last of duplicate keys.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// About how many bytes the members take as JSON (keys, values and separators).
    pub fn len_bytes(&self) -> usize {
        self.0
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum()
    }

    /// The members in order, each with whether a later member has the same key (and so
    /// replaces it).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue, bool)> + '_ {
        self.0.iter().enumerate().map(|(i, (k, v))| {
            let replaced = self.0[i + 1..].iter().any(|(later, _)| later == k);
            (k.as_ref(), *v, replaced)
        })
    }
}

/// `raw` as a string, if it is one (borrowed unless it has escapes).
pub fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<JsonStr<'_>>(raw.get())
        .ok()
        .map(|k| k.0)
}

/// Whether `raw` is a JSON object.
pub fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

/// Whether `raw` is `null`.
pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// Whether `raw` is a number.
pub fn is_number(raw: &RawValue) -> bool {
    raw.get()
        .as_bytes()
        .first()
        .is_some_and(|b| *b == b'-' || b.is_ascii_digit())
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((JsonStr(k), v)) = map.next_entry::<JsonStr<'de>, &'de RawValue>()? {
                    members.push((k, v));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(MembersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_members_keeps_the_last_duplicate_and_unescapes() {
        let text = r#"{"a": 1, "b\u0041": "x\"y", "a": {"n": [1, 2]}, "c": null}"#;
        let m = Members::parse(text).unwrap();
        assert_eq!(m.get("a").unwrap().get(), r#"{"n": [1, 2]}"#);
        assert_eq!(string(m.get("bA").unwrap()).unwrap(), "x\"y");
        assert!(is_null(m.get("c").unwrap()));
        assert!(is_object(m.get("a").unwrap()));
        let replaced: Vec<_> = m.iter().map(|(k, _, r)| (k.to_string(), r)).collect();
        assert_eq!(replaced[0], ("a".to_string(), true));
        assert_eq!(replaced[2], ("a".to_string(), false));
        assert!(Members::parse("[1]").is_err());
        assert!(Members::parse(r#"{"a": }"#).is_err());
        assert!(is_number(
            Members::parse(r#"{"n": -3}"#).unwrap().get("n").unwrap()
        ));
    }
}
