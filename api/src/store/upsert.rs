//! Multi-row upserts (`INSERT ... VALUES (...), (...) ON CONFLICT (id) DO UPDATE`),
//! which SQLite (3.24+) and Postgres both take: the writer's batch of snapshots
//! goes to the database in a few statements rather than one or two per row. A
//! batch is cut into a few fixed sizes, so every statement's text is one of
//! [`SIZES`] and is prepared once per connection.

/// Rows per statement, largest first. SQLite takes `?` placeholders, which bind in
/// order: a `$N` placeholder is found by a walk of the statement's list of names,
/// so binding those costs the square of a statement's parameters (64 rows of 22
/// columns spent more binding than writing). Postgres takes `$N`.
pub const SIZES: [usize; 4] = [64, 16, 4, 1];

/// The statements of one table's upsert, one per size of [`SIZES`], in each
/// database's placeholders.
pub struct Upserts {
    sqlite: Vec<String>,
    postgres: Vec<String>,
}

/// The statement for each of [`SIZES`]: `written` columns inserted, `changing`
/// ones updated when the id exists (`id` must be the first written column).
pub fn statements(table: &str, written: &[&str], changing: &[&str]) -> Upserts {
    let cols = written.join(", ");
    let set = changing
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let make = |placeholder: &dyn Fn(usize) -> String| -> Vec<String> {
        SIZES
            .iter()
            .map(|&rows| {
                let values = (0..rows)
                    .map(|r| {
                        let row = (1..=written.len())
                            .map(|c| placeholder(r * written.len() + c))
                            .collect::<Vec<_>>()
                            .join(", ");
                        format!("({row})")
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "INSERT INTO {table} ({cols}) VALUES {values} ON CONFLICT (id) DO UPDATE SET {set}"
                )
            })
            .collect()
    };
    Upserts {
        sqlite: make(&|_| "?".to_owned()),
        postgres: make(&|n| format!("${n}")),
    }
}

impl Upserts {
    /// The statements in `backend`'s placeholders.
    pub fn for_backend(&'static self, backend: super::Backend) -> &'static [String] {
        match backend {
            super::Backend::Sqlite => &self.sqlite,
            super::Backend::Postgres => &self.postgres,
        }
    }
}

/// `rows` cut into runs of [`SIZES`], largest first, each with its statement
/// (`statements[i]` is for `SIZES[i]` rows).
pub fn chunks<'r, T>(
    statements: &'static [String],
    mut rows: &'r [T],
) -> impl Iterator<Item = (&'static str, &'r [T])> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let i = SIZES
            .iter()
            .position(|&n| n <= rows.len())
            .unwrap_or(SIZES.len() - 1);
        let (chunk, rest) = rows.split_at(SIZES[i].min(rows.len()));
        rows = rest;
        Some((statements[i].as_str(), chunk))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_cut_into_the_fixed_sizes_largest_first() {
        static SQL: std::sync::LazyLock<Upserts> =
            std::sync::LazyLock::new(|| statements("t", &["id", "a"], &["a"]));
        let rows: Vec<u32> = (0..89).collect();
        let sizes: Vec<usize> = chunks(&SQL.postgres, &rows).map(|(_, c)| c.len()).collect();
        assert_eq!(sizes, [64, 16, 4, 4, 1]);
        let (sql, _) = chunks(&SQL.postgres, &rows[..4]).next().expect("a chunk");
        assert_eq!(
            sql,
            "INSERT INTO t (id, a) VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8) \
             ON CONFLICT (id) DO UPDATE SET a = excluded.a"
        );
        let (sql, _) = chunks(&SQL.sqlite, &rows[..1]).next().expect("a chunk");
        assert_eq!(
            sql,
            "INSERT INTO t (id, a) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET a = excluded.a"
        );
    }
}
