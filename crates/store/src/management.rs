//! Management rooms: where a Matrix user gives the bridge bot commands.

use brygga_core::{MatrixRoomId, MatrixUserId, StoreError, StoreResult};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::codec::db_err;
use crate::ops::{Applied, Reply};

pub(crate) async fn put(conn: &mut AnyConnection, room: &MatrixRoomId, user: &MatrixUserId, now: i64) -> Applied {
    sqlx::query(
        "INSERT INTO management_rooms (room_id, user_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (room_id) DO UPDATE SET user_id = excluded.user_id",
    )
    .bind(room.as_str())
    .bind(user.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(Ok(Reply::Unit))
}

pub(crate) async fn remove(conn: &mut AnyConnection, room: &MatrixRoomId) -> Applied {
    let done = sqlx::query("DELETE FROM management_rooms WHERE room_id = $1").bind(room.as_str()).execute(conn).await?;
    Ok(Ok(Reply::Flag(done.rows_affected() > 0)))
}

pub(crate) async fn get(pool: &AnyPool, room: &MatrixRoomId) -> StoreResult<Option<MatrixUserId>> {
    let row = sqlx::query("SELECT user_id FROM management_rooms WHERE room_id = $1")
        .bind(room.as_str())
        .fetch_optional(pool)
        .await
        .map_err(|e| db_err("read management room", e))?;
    let Some(row) = row else { return Ok(None) };
    let user: String = row.try_get("user_id").map_err(|e| db_err("read management room", e))?;
    MatrixUserId::new(user).map(Some).map_err(|e| StoreError::Corrupt(format!("management room user: {e}")))
}
