//! Applying one group-commit batch. The requests of a batch are concurrent
//! (none of their callers has an answer yet), so any serial order is a valid
//! outcome. That allows coalescing: all enqueues of a batch become a few
//! multi-row INSERTs and all completes a few set-based statements, instead of
//! one statement (one round trip to the database) per request.

use brygga_core::{MessageMapping, NewOutboxEntry, StoreResult};
use sqlx::AnyConnection;

use crate::writer::{Op, Reply, apply};
use crate::write_outbox;

/// Row counts a coalesced statement is built for; bounding the shapes keeps
/// the prepared-statement cache small.
const CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

/// Splits `n` rows into chunk lengths drawn from [`CHUNKS`], largest first.
pub(crate) fn chunk_lengths(mut n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for size in CHUNKS {
        while n >= size {
            out.push(size);
            n -= size;
        }
    }
    out
}

/// Builds `(…), (…)` for `rows` rows of `per_row` parameters numbered from
/// `first`, each row followed by `tail` (constant columns).
pub(crate) fn values(rows: usize, per_row: usize, first: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(rows * (per_row * 5 + tail.len() + 4));
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..per_row {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(first + r * per_row + c).to_string());
        }
        sql.push_str(tail);
        sql.push(')');
    }
    sql
}

/// Builds `$first, $first+1, …` for an `IN (…)` list of `n` parameters.
pub(crate) fn params(n: usize, first: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Applies all ops; the error aborts the whole transaction.
pub(crate) async fn apply_all(
    conn: &mut AnyConnection,
    ops: &[&Op],
    now: i64,
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
            other => answers.push(Some(apply(conn, other, now).await?)),
        }
    }
    if !enqueues.is_empty() {
        let entries: Vec<&NewOutboxEntry> = enqueues.iter().map(|(_, e)| *e).collect();
        let seqs = write_outbox::enqueue_many(conn, &entries, now).await?;
        for ((i, _), seq) in enqueues.iter().zip(seqs) {
            answers[*i] = Some(Ok(Reply::Seq(seq)));
        }
    }
    if !completes.is_empty() {
        let items: Vec<(i64, &[MessageMapping])> = completes.iter().map(|(_, s, m)| (*s, *m)).collect();
        let results = write_outbox::complete_many(conn, &items, now).await?;
        for ((i, _, _), result) in completes.iter().zip(results) {
            answers[*i] = Some(result);
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or(Ok(Reply::Unit)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_with_few_shapes() {
        assert_eq!(chunk_lengths(0), Vec::<usize>::new());
        assert_eq!(chunk_lengths(1), vec![1]);
        assert_eq!(chunk_lengths(300), vec![256, 16, 16, 4, 4, 4]);
        for n in 0..1100 {
            assert_eq!(chunk_lengths(n).iter().sum::<usize>(), n);
        }
    }

    #[test]
    fn values_numbers_parameters_row_by_row() {
        assert_eq!(values(2, 2, 3, ", $1"), "($3, $4, $1), ($5, $6, $1)");
        assert_eq!(values(1, 1, 1, ""), "($1)");
        assert_eq!(params(3, 2), "$2, $3, $4");
    }
}
