//! A statement's parameters, written once per row type and bound by either
//! driver: sqlx (`Any`, for Postgres and the API's reads and writes) or rusqlite
//! (the call rows' writer on a SQLite file, [`super::sqlite_thread`]). So the two
//! writers share their SQL text and the list of what each column gets.
//!
//! Shared SQL numbers its `$N` placeholders in the order they first appear
//! (`SET a = $1, b = $2 WHERE id = $3`, never `WHERE id = $1` last): SQLite reads
//! `$N` as a name and gives it the next index where it first appears, and rusqlite
//! binds by index.

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

/// One parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param<'a> {
    /// Text borrowed from the row.
    Text(&'a str),
    /// Text made for the statement (a column of JSON).
    Owned(String),
    /// An integer.
    Int(i64),
    /// SQL NULL (in a text column).
    Null,
}

impl<'a> Param<'a> {
    /// `Text` for `Some`, `Null` for `None`.
    pub fn opt(text: Option<&'a str>) -> Self {
        text.map_or(Param::Null, Param::Text)
    }

    /// `value` as JSON text.
    pub fn json<T: serde::Serialize>(value: &T) -> Self {
        Param::Owned(super::json::text(value))
    }
}

/// `params` bound to `query` in order.
pub fn bind_all<'q>(
    mut query: Query<'q, Any, AnyArguments>,
    params: &[Param<'_>],
) -> Query<'q, Any, AnyArguments> {
    for param in params {
        query = match param {
            Param::Text(s) => query.bind(*s),
            Param::Owned(s) => query.bind(s.as_str()),
            Param::Int(n) => query.bind(*n),
            Param::Null => query.bind(None::<&str>),
        };
    }
    query
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Owned(s) => ValueRef::Text(s.as_bytes()),
            Param::Int(n) => ValueRef::Integer(*n),
            Param::Null => ValueRef::Null,
        }))
    }
}
