//! Typed values inside an action's `option` object, read leniently and written back
//! canonically.
//!
//! Every option field is read through [`OptionValue`], so a wrong type is reported with
//! the field's name and what was expected, and every field the user wrote is written
//! back exactly as its canonical value.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::address::Address;

/// A value that can stand in an action option.
pub trait OptionValue: Sized {
    /// Reads the value, or says what was expected ("an integer", ...).
    fn from_json(value: &Value) -> Result<Self, String>;
    /// Writes the value in its canonical JSON form.
    fn to_json(&self) -> Value;
    /// Replaces placeholders in every string inside the value: `sub` returns the new
    /// text, or `None` to keep a string as it is. Numbers and booleans have none.
    fn substitute(&mut self, _sub: &dyn Fn(&str) -> Option<String>) {}
}

impl OptionValue for String {
    fn from_json(value: &Value) -> Result<Self, String> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "expected a string".to_owned())
    }
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
    fn substitute(&mut self, sub: &dyn Fn(&str) -> Option<String>) {
        if let Some(new) = sub(self) {
            *self = new;
        }
    }
}

impl OptionValue for bool {
    fn from_json(value: &Value) -> Result<Self, String> {
        value
            .as_bool()
            .ok_or_else(|| "expected true or false".to_owned())
    }
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
}

impl OptionValue for i64 {
    fn from_json(value: &Value) -> Result<Self, String> {
        if let Some(n) = value.as_i64() {
            return Ok(n);
        }
        // 3.0 is an integer too; 3.5 is not.
        match value.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
            _ => Err("expected an integer".to_owned()),
        }
    }
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
}

impl OptionValue for f64 {
    fn from_json(value: &Value) -> Result<Self, String> {
        value.as_f64().ok_or_else(|| "expected a number".to_owned())
    }
    fn to_json(&self) -> Value {
        serde_json::Number::from_f64(*self).map_or(Value::Null, Value::Number)
    }
}

impl OptionValue for Value {
    fn from_json(value: &Value) -> Result<Self, String> {
        Ok(value.clone())
    }
    fn to_json(&self) -> Value {
        self.clone()
    }
    fn substitute(&mut self, sub: &dyn Fn(&str) -> Option<String>) {
        match self {
            Value::String(s) => s.substitute(sub),
            Value::Array(items) => items.iter_mut().for_each(|v| v.substitute(sub)),
            Value::Object(map) => map.values_mut().for_each(|v| v.substitute(sub)),
            _ => {}
        }
    }
}

impl<T: OptionValue> OptionValue for Vec<T> {
    fn from_json(value: &Value) -> Result<Self, String> {
        let items = value
            .as_array()
            .ok_or_else(|| "expected an array".to_owned())?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| T::from_json(item).map_err(|e| format!("[{i}]: {e}")))
            .collect()
    }
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(OptionValue::to_json).collect())
    }
    fn substitute(&mut self, sub: &dyn Fn(&str) -> Option<String>) {
        self.iter_mut().for_each(|v| v.substitute(sub));
    }
}

impl<T: OptionValue> OptionValue for BTreeMap<String, T> {
    fn from_json(value: &Value) -> Result<Self, String> {
        let obj = value
            .as_object()
            .ok_or_else(|| "expected an object".to_owned())?;
        obj.iter()
            .map(|(k, v)| {
                T::from_json(v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| format!(".{k}: {e}"))
            })
            .collect()
    }
    fn to_json(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
    }
    fn substitute(&mut self, sub: &dyn Fn(&str) -> Option<String>) {
        self.values_mut().for_each(|v| v.substitute(sub));
    }
}

impl OptionValue for Address {
    fn from_json(value: &Value) -> Result<Self, String> {
        if !value.is_object() {
            return Err("expected an address object {\"type\",\"target\",...}".to_owned());
        }
        serde_json::from_value(value.clone()).map_err(|e| format!("invalid address: {e}"))
    }
    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
    fn substitute(&mut self, sub: &dyn Fn(&str) -> Option<String>) {
        for field in [
            &mut self.kind,
            &mut self.target,
            &mut self.target_name,
            &mut self.name,
            &mut self.detail,
        ] {
            field.substitute(sub);
        }
    }
}

/// Reads the fields of one option object, collecting every problem instead of stopping
/// at the first; the keys it did not read are kept as the option's unknown keys.
///
/// It reads from a borrowed map and clones only the unknown keys, so a flow is read
/// without copying its options twice.
#[derive(Debug)]
pub struct OptionReader<'a> {
    option: &'a Map<String, Value>,
    aliases: &'a [(&'a str, &'a str)],
    read: Vec<&'a str>,
    errors: Vec<(String, String)>,
}

impl<'a> OptionReader<'a> {
    /// Starts reading `option`; each alias is read as its canonical key
    /// (`(alias, canonical)` pairs). A canonical key that is present wins over its alias.
    pub fn new(option: &'a Map<String, Value>, aliases: &'a [(&'a str, &'a str)]) -> Self {
        Self {
            option,
            aliases,
            read: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Reads the field `name` (or its alias). Absent (or JSON null) gives `None`; a
    /// wrong type is recorded as an error, keeps the value as an unknown key so nothing
    /// is lost, and gives `None`.
    pub fn take<T: OptionValue>(&mut self, name: &'a str) -> Option<T> {
        let (key, value) = match self.option.get_key_value(name) {
            Some((k, v)) => {
                // A stale alias beside its canonical key is dropped, not kept.
                for (alias, canonical) in self.aliases {
                    if *canonical == name && self.option.contains_key(*alias) {
                        self.read.push(alias);
                    }
                }
                (k.as_str(), v)
            }
            None => {
                let alias = self
                    .aliases
                    .iter()
                    .find(|(_, canonical)| *canonical == name)?
                    .0;
                let (k, v) = self.option.get_key_value(alias)?;
                (k.as_str(), v)
            }
        };
        if value.is_null() {
            self.read.push(key);
            return None;
        }
        match T::from_json(value) {
            Ok(t) => {
                self.read.push(key);
                Some(t)
            }
            Err(e) => {
                self.errors.push((name.to_owned(), e));
                None
            }
        }
    }

    /// Ends reading: the unknown keys (cloned), and the (field, message) problems found.
    pub fn finish(self) -> (Map<String, Value>, Vec<(String, String)>) {
        let rest = self
            .option
            .iter()
            .filter(|(k, _)| !self.read.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (rest, self.errors)
    }
}

/// Writes `value` under `name` when it is present.
pub fn put<T: OptionValue>(out: &mut Map<String, Value>, name: &str, value: &Option<T>) {
    if let Some(v) = value {
        out.insert(name.to_owned(), v.to_json());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_type_is_reported_and_kept() {
        let map = json!({"loop_count": "two", "other": 1})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut r = OptionReader::new(&map, &[]);
        let n: Option<i64> = r.take("loop_count");
        assert_eq!(n, None);
        let (rest, errors) = r.finish();
        assert_eq!(
            errors,
            vec![("loop_count".to_owned(), "expected an integer".to_owned())]
        );
        assert_eq!(rest.get("loop_count"), Some(&json!("two")));
        assert_eq!(rest.get("other"), Some(&json!(1)));
    }

    #[test]
    fn alias_maps_to_canonical_key() {
        let map = json!({"stream_url": ["a"]})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut r = OptionReader::new(&map, &[("stream_url", "stream_urls")]);
        let urls: Option<Vec<String>> = r.take("stream_urls");
        assert_eq!(urls, Some(vec!["a".to_owned()]));
        assert!(r.finish().0.is_empty());
    }

    #[test]
    fn integral_float_reads_as_integer() {
        assert_eq!(i64::from_json(&json!(3.0)), Ok(3));
        assert!(i64::from_json(&json!(3.5)).is_err());
    }
}
