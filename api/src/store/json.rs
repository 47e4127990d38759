//! JSON kept in text columns (the same on SQLite and Postgres through sqlx `Any`):
//! read back with a decode error sqlx understands, written as text.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use sqlx::Row;
use sqlx::any::AnyRow;

/// The JSON text in `column`, decoded.
pub fn column<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The JSON text in a nullable `column`, decoded; `None` for NULL.
pub fn optional_column<T: DeserializeOwned>(
    row: &AnyRow,
    column: &str,
) -> Result<Option<T>, sqlx::Error> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// `value` as JSON text for a column.
pub fn text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// A JSON document kept as its text: written to its column as it is, shown in the
/// API and in events as the JSON it holds, and cloned by sharing. For documents a
/// writer rewrites often (an activeflow's current and executed actions), which as a
/// [`serde_json::Value`] cost a deep copy per snapshot and a serialization per write.
#[derive(Clone)]
pub struct JsonText(Arc<RawValue>);

impl JsonText {
    /// `value` written as JSON (`null` if it cannot be).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Self {
        serde_json::value::to_raw_value(value)
            .map(Self::from)
            .unwrap_or_else(|_| Self::null())
    }

    /// `null`.
    pub fn null() -> Self {
        Self::of(&())
    }

    /// `{}`.
    pub fn empty_object() -> Self {
        Self::of(&serde_json::Map::new())
    }

    /// `[]`.
    pub fn empty_array() -> Self {
        Self::of(&[(); 0])
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The JSON text in `column`, checked to be JSON.
    pub fn column(row: &AnyRow, column: &str) -> Result<Self, sqlx::Error> {
        let text: String = row.try_get(column)?;
        RawValue::from_string(text)
            .map(Self::from)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }
}

impl From<Box<RawValue>> for JsonText {
    fn from(raw: Box<RawValue>) -> Self {
        Self(Arc::from(raw))
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_is_shown_as_the_json_it_holds() {
        let text = JsonText::of(&serde_json::json!({"type": "talk", "option": {"text": "hi"}}));
        assert_eq!(text.as_str(), r#"{"type":"talk","option":{"text":"hi"}}"#);
        let shown = serde_json::to_value(serde_json::json!({"current_action": text.clone()}))
            .expect("serializes");
        assert_eq!(shown["current_action"]["option"]["text"], "hi");
        let row = serde_json::to_string(&serde_json::json!({"a": text})).expect("serializes");
        assert_eq!(row, r#"{"a":{"type":"talk","option":{"text":"hi"}}}"#);
        assert_eq!(JsonText::empty_array().as_str(), "[]");
        assert_eq!(JsonText::empty_object().as_str(), "{}");
        assert_eq!(JsonText::null().as_str(), "null");
    }
}
