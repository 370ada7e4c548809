//! Applying one group-commit batch. The requests of a batch are concurrent
//! (none of their callers has an answer yet), so any serial order is a valid
//! outcome. That allows coalescing: all enqueues of a batch become one
//! INSERT and all completes a few set-based statements, each fed the whole
//! batch as one JSON parameter, instead of one statement (one round trip to
//! the database) per request or per chunk of rows.

use brygga_core::{MessageMapping, NewOutboxEntry, StoreResult};
use sqlx::AnyConnection;

use crate::feed::FirstInsert;
use crate::ops::{Op, Reply, apply};
use crate::options::Backend;
use crate::{write_complete, write_outbox};

/// Placeholder text for generated statements. SQLite gets anonymous `?`:
/// sqlx resolves `$n` on SQLite through a name lookup per parameter that is
/// linear in the parameter count, which makes big multi-row statements
/// quadratic. So the SQL text must list parameters in bind order.
pub(crate) struct Placeholders {
    backend: Backend,
    next: usize,
}

impl Placeholders {
    pub(crate) fn new(backend: Backend) -> Self {
        Self { backend, next: 1 }
    }

    /// The next parameter.
    pub(crate) fn one(&mut self) -> String {
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => {
                self.next += 1;
                format!("${}", self.next - 1)
            }
        }
    }

    /// A table `j` of the rows of a JSON array bound as one parameter:
    /// `j.value` is one element, `j.key` its position. A whole batch thus
    /// becomes one statement (one round trip) of one shape.
    pub(crate) fn json_rows(&mut self) -> String {
        match self.backend {
            Backend::Sqlite => format!("json_each({}) AS j", self.one()),
            Backend::Postgres => {
                format!("jsonb_array_elements({}::jsonb) WITH ORDINALITY AS j(value, key)", self.one())
            }
        }
    }
}

/// Applies all ops: the rare ones one by one in arrival order, then all
/// enqueues (in arrival order, so their seqs follow it), then all completes.
/// The error aborts the whole transaction. Inserted outbox rows are noted
/// in `first`.
pub(crate) async fn apply_all(
    conn: &mut AnyConnection,
    backend: Backend,
    ops: &[&Op],
    now: i64,
    first: &mut FirstInsert,
) -> Result<Vec<StoreResult<Reply>>, sqlx::Error> {
    let mut answers: Vec<Option<StoreResult<Reply>>> = Vec::with_capacity(ops.len());
    let mut enqueues: Vec<(usize, &NewOutboxEntry)> = Vec::new();
    let mut completes: Vec<(usize, i64, &[MessageMapping])> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Enqueue(entry) => {
                enqueues.push((i, entry));
                answers.push(None);
            }
            Op::Complete { seq, mappings } => {
                completes.push((i, *seq, mappings));
                answers.push(None);
            }
            other => answers.push(Some(apply(conn, backend, other, now, first).await?)),
        }
    }
    if !enqueues.is_empty() {
        let entries: Vec<&NewOutboxEntry> = enqueues.iter().map(|(_, e)| *e).collect();
        let seqs = write_outbox::enqueue_many(conn, backend, &entries, now, first).await?;
        for ((i, _), seq) in enqueues.iter().zip(seqs) {
            answers[*i] = Some(Ok(Reply::Seq(seq)));
        }
    }
    if !completes.is_empty() {
        let items: Vec<(i64, &[MessageMapping])> = completes.iter().map(|(_, s, m)| (*s, *m)).collect();
        let results = write_complete::complete_many(conn, backend, &items, now).await?;
        for ((i, _, _), result) in completes.iter().zip(results) {
            answers[*i] = Some(result);
        }
    }
    Ok(answers.into_iter().map(|a| a.unwrap_or(Ok(Reply::Unit))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_bind_order() {
        let mut pg = Placeholders::new(Backend::Postgres);
        assert_eq!(pg.one(), "$1");
        assert_eq!(pg.json_rows(), "jsonb_array_elements($2::jsonb) WITH ORDINALITY AS j(value, key)");
        let mut lite = Placeholders::new(Backend::Sqlite);
        assert_eq!(lite.one(), "?");
        assert_eq!(lite.json_rows(), "json_each(?) AS j");
    }
}
