//! Activeflow variables and `${name}` substitution (reference section 2.6).
//!
//! Substitution replaces `${name}` (and `{{name}}`, the spelling seed 001 uses) in every
//! string of an action's option when the action becomes current; an unknown name
//! becomes "". Caps keep one activeflow's variables bounded: 100 keys, 32 KiB per
//! value, 64 KiB in all.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// At most this many keys.
pub const MAX_KEYS: usize = 100;
/// At most this many bytes in one value.
pub const MAX_VALUE_BYTES: usize = 32 * 1024;
/// At most this many bytes of keys and values in all.
pub const MAX_TOTAL_BYTES: usize = 64 * 1024;
/// The prefix of the platform's own variables, which callers may not set.
pub const RESERVED_PREFIX: &str = "voipbin.";

/// Why a variable could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VariableError {
    /// The key is empty.
    #[error("a variable needs a non-empty key")]
    EmptyKey,
    /// The value is over 32 KiB.
    #[error("the value of {0:?} is over 32 KiB")]
    ValueTooLarge(String),
    /// A 101st key.
    #[error("at most 100 variables")]
    TooManyKeys,
    /// Over 64 KiB in all.
    #[error("variables are limited to 64 KiB in all")]
    TotalTooLarge,
    /// A caller tried to set a `voipbin.` variable.
    #[error("{0:?}: keys starting with voipbin. are the platform's")]
    Reserved(String),
}

/// The variables of one activeflow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct Variables {
    map: BTreeMap<String, String>,
    /// Bytes of keys and values in all, kept up to date by `set`.
    total: usize,
}

impl From<BTreeMap<String, String>> for Variables {
    fn from(map: BTreeMap<String, String>) -> Self {
        let total = map.iter().map(|(k, v)| k.len() + v.len()).sum();
        Self { map, total }
    }
}

impl From<Variables> for BTreeMap<String, String> {
    fn from(v: Variables) -> Self {
        v.map
    }
}

impl Variables {
    /// A value, or "" when unset.
    pub fn get(&self, key: &str) -> &str {
        self.map.get(key).map_or("", String::as_str)
    }

    /// Every variable.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.map.iter()
    }

    /// How many variables are set.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Sets a variable within the caps.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), VariableError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(VariableError::EmptyKey);
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(VariableError::ValueTooLarge(key.to_owned()));
        }
        let old = self.map.get(key).map(|v| key.len() + v.len());
        if old.is_none() && self.map.len() >= MAX_KEYS {
            return Err(VariableError::TooManyKeys);
        }
        let total = self.total - old.unwrap_or(0) + key.len() + value.len();
        if total > MAX_TOTAL_BYTES {
            return Err(VariableError::TotalTooLarge);
        }
        match self.map.get_mut(key) {
            // Reuses the value's buffer: setting a variable again allocates nothing.
            Some(existing) => {
                existing.clear();
                existing.push_str(value);
            }
            None => {
                self.map.insert(key.to_owned(), value.to_owned());
            }
        }
        self.total = total;
        Ok(())
    }

    /// Sets a variable given by a caller (the API, a simulation script): keys starting
    /// with `voipbin.` (any case) are refused.
    pub fn set_external(&mut self, key: &str, value: &str) -> Result<(), VariableError> {
        if key.trim().to_ascii_lowercase().starts_with(RESERVED_PREFIX) {
            return Err(VariableError::Reserved(key.trim().to_owned()));
        }
        self.set(key, value)
    }

    /// Replaces `${name}` and `{{name}}` in `text`; unknown names become "".
    pub fn substitute(&self, text: &str) -> String {
        if !has_placeholder(text) {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        loop {
            let dollar = rest.find("${");
            let braces = rest.find("{{");
            let (start, open, close) = match (dollar, braces) {
                (Some(d), Some(b)) if b < d => (b, 2, "}}"),
                (Some(d), _) => (d, 2, "}"),
                (None, Some(b)) => (b, 2, "}}"),
                (None, None) => break,
            };
            let after = &rest[start + open..];
            match after.find(close) {
                Some(end) => {
                    out.push_str(&rest[..start]);
                    out.push_str(self.get(after[..end].trim()));
                    rest = &after[end + close.len()..];
                }
                None => break,
            }
        }
        out.push_str(rest);
        out
    }

    /// Substitutes every string inside a JSON value, recursively.
    pub fn substitute_json(&self, value: &mut Value) {
        match value {
            Value::String(s) if has_placeholder(s) => *s = self.substitute(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.substitute_json(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.substitute_json(v)),
            _ => {}
        }
    }
}

/// Whether `text` may hold a placeholder.
pub fn has_placeholder(text: &str) -> bool {
    text.contains("${") || text.contains("{{")
}

/// Whether any string inside `value` may hold a placeholder.
pub fn json_has_placeholder(value: &Value) -> bool {
    match value {
        Value::String(s) => has_placeholder(s),
        Value::Array(items) => items.iter().any(json_has_placeholder),
        Value::Object(map) => map.values().any(json_has_placeholder),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Variables {
        let mut v = Variables::default();
        for (k, val) in pairs {
            v.set(k, val).expect("within caps");
        }
        v
    }

    #[test]
    fn substitutes_both_spellings_and_blanks_unknowns() {
        let v = vars(&[("customer.name", "John"), ("x", "1")]);
        assert_eq!(
            v.substitute("Hello ${customer.name}, {{x}}!"),
            "Hello John, 1!"
        );
        assert_eq!(v.substitute("[${missing}]"), "[]");
        assert_eq!(v.substitute("no placeholders"), "no placeholders");
        assert_eq!(v.substitute("${unclosed"), "${unclosed");
        assert_eq!(v.substitute("${x}${x}"), "11");
    }

    #[test]
    fn caps_are_enforced() {
        let mut v = Variables::default();
        assert_eq!(
            v.set("big", &"x".repeat(MAX_VALUE_BYTES + 1)),
            Err(VariableError::ValueTooLarge("big".into()))
        );
        for i in 0..MAX_KEYS {
            v.set(&format!("k{i}"), "v").expect("room");
        }
        assert_eq!(v.set("one-more", "v"), Err(VariableError::TooManyKeys));
        v.set("k0", "replaced").expect("replacing is not adding");
        let mut w = Variables::default();
        w.set("a", &"x".repeat(MAX_VALUE_BYTES)).expect("fits");
        w.set("b", &"x".repeat(MAX_VALUE_BYTES - 10)).expect("fits");
        assert_eq!(
            w.set("c", &"x".repeat(100)),
            Err(VariableError::TotalTooLarge)
        );
    }

    #[test]
    fn callers_cannot_set_platform_variables() {
        let mut v = Variables::default();
        assert!(matches!(
            v.set_external("VoIPBIN.call.id", "x"),
            Err(VariableError::Reserved(_))
        ));
        assert!(v.set_external("customer.tier", "gold").is_ok());
    }

    #[test]
    fn substitutes_inside_json() {
        let v = vars(&[("n", "+1555")]);
        let mut j = serde_json::json!({"a": ["${n}", 5], "b": {"c": "to {{n}}"}});
        v.substitute_json(&mut j);
        assert_eq!(
            j,
            serde_json::json!({"a": ["+1555", 5], "b": {"c": "to +1555"}})
        );
    }
}
