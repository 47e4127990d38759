//! One batch of call rows and their webhook deliveries, in one transaction, by
//! either writer: sqlx on Postgres (and on an in-memory SQLite database), or the
//! SQLite file's own connection and thread ([`crate::store::sqlite_thread`]), where
//! statements are prepared once and a batch is one job. What a batch writes is
//! written once, over [`RowTx`].

use std::collections::HashMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use rusqlite::OptionalExtension;

use super::{Cause, Row, StoreError, Write};
use crate::events::{Event, EventBus, WebhookTarget};
use crate::store::param::{Param, bind_all};
use crate::store::upsert::{Upserts, chunks};
use crate::store::{Backend, activeflows, calls, deliveries, groupcalls, recordings};

/// What a batch needs of an open transaction.
pub(crate) trait RowTx {
    /// The database (the upserts' placeholders differ).
    fn backend(&self) -> Backend;
    /// Runs a statement that writes.
    async fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<(), StoreError>;
    /// Where the customer's events go ([`WebhookTarget::QUERY`]).
    async fn webhook_target(
        &mut self,
        customer_id: &str,
    ) -> Result<Option<WebhookTarget>, StoreError>;
}

impl RowTx for sqlx::AnyConnection {
    fn backend(&self) -> Backend {
        if self.backend_name().eq_ignore_ascii_case("sqlite") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    async fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<(), StoreError> {
        bind_all(sqlx::query(sql), params)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn webhook_target(
        &mut self,
        customer_id: &str,
    ) -> Result<Option<WebhookTarget>, StoreError> {
        Ok(EventBus::webhook_target(self, customer_id).await?)
    }
}

impl RowTx for rusqlite::Transaction<'_> {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<(), StoreError> {
        self.prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params))?;
        Ok(())
    }

    async fn webhook_target(
        &mut self,
        customer_id: &str,
    ) -> Result<Option<WebhookTarget>, StoreError> {
        let columns = self
            .prepare_cached(WebhookTarget::QUERY)?
            .query_row([customer_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(columns.and_then(|(uri, method)| WebhookTarget::from_columns(uri, method)))
    }
}

/// Commits `writes` on the SQLite thread's connection (see [`write_batch`]).
pub(crate) fn commit_on_sqlite(
    conn: &mut rusqlite::Connection,
    bus: &EventBus,
    writes: &[Write],
) -> Result<Vec<Event>, StoreError> {
    // As `Store::begin`: take the write lock at once, so that an API write in
    // between makes this wait on `busy_timeout` rather than fail.
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let writes: Vec<&Write> = writes.iter().collect();
    let events =
        run_ready(write_batch(&mut tx, bus, &writes)).ok_or(StoreError(Cause::Waited))??;
    tx.commit()?;
    Ok(events)
}

/// Runs a future that never waits: the batch on the SQLite thread, whose
/// statements run as they are called. `None` if it did wait (a bug).
fn run_ready<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// Writes the rows and their webhook deliveries in the transaction `tx`; returns
/// the events to announce once it has committed.
///
/// Rows are full snapshots, so a row written several times in one batch (a call's
/// status, an activeflow's every action) is written once, in its last state (and
/// inserted first when one of its writes was its insert); calls and activeflows
/// go in multi-row upserts, a few statements for the whole batch. Every write's
/// events are still recorded and announced, in order. Under load this is what
/// keeps the database abreast of the calls.
pub(crate) async fn write_batch<T: RowTx>(
    tx: &mut T,
    bus: &EventBus,
    writes: &[&Write],
) -> Result<Vec<Event>, StoreError> {
    let rows = coalesce(writes);
    // Calls and activeflows, most of every batch, go in a few multi-row upserts;
    // a snapshot is the whole row, so one that was inserted is also up to date.
    let mut call_rows = Vec::new();
    let mut flow_rows = Vec::new();
    for (write, _) in &rows {
        match &write.row {
            Row::Call { call, .. } => call_rows.push(&**call),
            Row::Activeflow { flow, .. } => flow_rows.push(&**flow),
            _ => {}
        }
    }
    upsert(tx, &calls::UPSERTS, &call_rows, calls::upsert_params).await?;
    upsert(
        tx,
        &activeflows::UPSERTS,
        &flow_rows,
        activeflows::upsert_params,
    )
    .await?;
    for (write, insert) in rows {
        match &write.row {
            Row::Call { .. } | Row::Activeflow { .. } | Row::Notice { .. } => {}
            Row::Recording { recording, .. } => {
                if insert {
                    let params = recordings::insert_params(recording);
                    tx.execute(recordings::INSERT, &params).await?;
                }
                if recording.tm_end.is_some() {
                    let params = recordings::finish_params(recording);
                    tx.execute(recordings::FINISH, &params).await?;
                }
            }
            Row::Groupcall { groupcall, .. } => {
                if insert {
                    let params = groupcalls::insert_params(groupcall);
                    tx.execute(groupcalls::INSERT, &params).await?;
                }
                let params = groupcalls::update_params(groupcall);
                tx.execute(groupcalls::UPDATE, &params).await?;
            }
        }
    }
    let mut targets: HashMap<&str, Option<WebhookTarget>> = HashMap::new();
    let mut events = Vec::new();
    let watched = bus.has_subscribers();
    for write in writes {
        // One lookup of the customer's webhook per batch.
        let customer = write.customer_id();
        if !targets.contains_key(customer) {
            let found = tx.webhook_target(customer).await?;
            targets.insert(customer, found);
        }
        let target = targets.get(customer).and_then(Option::as_ref);
        if target.is_none() && !watched {
            // No webhook and nobody on a WebSocket: nobody to tell.
            continue;
        }
        for event in write.events(bus) {
            if let Some(target) = target {
                let delivery = bus.delivery(&event, target);
                let params = deliveries::insert_params(&delivery);
                tx.execute(deliveries::INSERT, &params).await?;
            }
            events.push(event);
        }
    }
    Ok(events)
}

/// Writes `rows` in the multi-row statements of `upserts`, each row's values from
/// `params`.
async fn upsert<'a, T: RowTx, R, const N: usize>(
    tx: &mut T,
    upserts: &'static Upserts,
    rows: &[&'a R],
    params: fn(&'a R) -> [Param<'a>; N],
) -> Result<(), StoreError> {
    let mut values = Vec::new();
    for (sql, chunk) in chunks(upserts.for_backend(tx.backend()), rows) {
        values.clear();
        for row in chunk {
            values.extend(params(row));
        }
        tx.execute(sql, &values).await?;
    }
    Ok(())
}

/// Each row of `writes` once: its last write, and whether any of its writes
/// inserted it; in the order the rows first appear.
fn coalesce<'a>(writes: &[&'a Write]) -> Vec<(&'a Write, bool)> {
    let mut at: HashMap<(&'static str, &str), usize> = HashMap::with_capacity(writes.len());
    let mut rows: Vec<(&'a Write, bool)> = Vec::with_capacity(writes.len());
    for write in writes {
        let insert = match &write.row {
            Row::Call { insert, .. }
            | Row::Activeflow { insert, .. }
            | Row::Recording { insert, .. }
            | Row::Groupcall { insert, .. } => *insert,
            Row::Notice { .. } => continue,
        };
        match at.get(&write.subject()) {
            Some(&i) => {
                rows[i].0 = write;
                rows[i].1 |= insert;
            }
            None => {
                at.insert(write.subject(), rows.len());
                rows.push((write, insert));
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call_store::Verb;
    use crate::store::calls::Call;

    fn call(id: &str, status: &str, insert: bool) -> Write {
        let row = Call {
            id: id.into(),
            customer_id: "c".into(),
            status: status.into(),
            ..Call::default()
        };
        Write::call(&row, insert, &[Verb::Updated])
    }

    #[test]
    fn a_row_written_many_times_in_a_batch_is_written_once_in_its_last_state() {
        let writes = [
            call("a", "ringing", true),
            call("b", "ringing", true),
            call("a", "progressing", false),
            call("a", "hangup", false),
            call("b", "progressing", false),
        ];
        let refs: Vec<&Write> = writes.iter().collect();
        let rows: Vec<(String, String, bool)> = coalesce(&refs)
            .into_iter()
            .map(|(w, insert)| match &w.row {
                Row::Call { call, .. } => (call.id.clone(), call.status.clone(), insert),
                _ => unreachable!("only calls here"),
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("a".into(), "hangup".into(), true),
                ("b".into(), "progressing".into(), true)
            ]
        );
    }

    /// The `$N` placeholders of `sql`, in the order each first appears.
    fn first_appearances(sql: &str) -> Vec<usize> {
        let mut seen = Vec::new();
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            rest = &rest[at + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let n: usize = digits.parse().expect("a number after $");
            if !seen.contains(&n) {
                seen.push(n);
            }
        }
        seen
    }

    #[test]
    fn shared_statements_number_their_placeholders_in_the_order_they_appear() {
        // SQLite takes `$N` as a name, given the next index where it first
        // appears, and rusqlite binds by index: a statement whose `$2` comes
        // before its `$1` would bind each value to the wrong column.
        let statements: [(&str, usize); 6] = [
            (
                recordings::INSERT,
                recordings::insert_params(&Default::default()).len(),
            ),
            (
                recordings::FINISH,
                recordings::finish_params(&Default::default()).len(),
            ),
            (
                groupcalls::INSERT,
                groupcalls::insert_params(&Default::default()).len(),
            ),
            (
                groupcalls::UPDATE,
                groupcalls::update_params(&Default::default()).len(),
            ),
            (
                deliveries::INSERT,
                deliveries::insert_params(&Default::default()).len(),
            ),
            (WebhookTarget::QUERY, 1),
        ];
        for (sql, params) in statements {
            assert_eq!(
                first_appearances(sql),
                (1..=params).collect::<Vec<_>>(),
                "{sql}"
            );
        }
        for upserts in [&calls::UPSERTS, &activeflows::UPSERTS] {
            for sql in upserts.for_backend(Backend::Postgres) {
                let n = first_appearances(sql).len();
                assert_eq!(first_appearances(sql), (1..=n).collect::<Vec<_>>(), "{sql}");
            }
        }
    }
}
