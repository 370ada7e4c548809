//! Sharding on PostgreSQL: node liveness and tenant leases
//! ([`brygga_core::LeaseStore`]), timed by the database's clock. Each call
//! is one statement on the read pool (whose PostgreSQL connections may
//! write), so leases never wait behind the writer's group commits.

use async_trait::async_trait;
use brygga_core::{Lease, LeaseStore, Node, StoreError, StoreResult, TenantId};
use sqlx::Row;

use crate::SqlStore;
use crate::codec::db_err;
use crate::options::Backend;

/// The database's clock in milliseconds since the Unix epoch.
const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

impl SqlStore {
    fn shard_pool(&self) -> StoreResult<&sqlx::AnyPool> {
        match self.inner.backend {
            Backend::Postgres => Ok(&self.inner.read),
            Backend::Sqlite => Err(StoreError::Database("sharding across processes needs the PostgreSQL store".into())),
        }
    }
}

/// A node from a row of (node, admin_url, appservice_url).
fn node_of(row: &sqlx::any::AnyRow) -> Result<Node, sqlx::Error> {
    Ok(Node::new(row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?, row.try_get::<String, _>(2)?))
}

fn tenant_of(value: String) -> StoreResult<TenantId> {
    TenantId::new(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl LeaseStore for SqlStore {
    async fn heartbeat(&self, node: &Node, live_ms: i64) -> StoreResult<Vec<Node>> {
        let pool = self.shard_pool()?;
        let upsert = format!(
            "INSERT INTO nodes (node, admin_url, appservice_url, seen_at) VALUES ($1, $2, $3, {NOW_MS}) \
             ON CONFLICT (node) DO UPDATE SET admin_url = excluded.admin_url, \
             appservice_url = excluded.appservice_url, seen_at = excluded.seen_at"
        );
        sqlx::query(sqlx::AssertSqlSafe(upsert))
            .bind(&node.id)
            .bind(&node.admin_url)
            .bind(&node.appservice_url)
            .execute(pool)
            .await
            .map_err(|e| db_err("node heartbeat", e))?;
        let live =
            format!("SELECT node, admin_url, appservice_url FROM nodes WHERE seen_at > {NOW_MS} - $1 ORDER BY node");
        let rows = sqlx::query(sqlx::AssertSqlSafe(live))
            .bind(live_ms)
            .fetch_all(pool)
            .await
            .map_err(|e| db_err("live nodes", e))?;
        rows.iter().map(node_of).collect::<Result<_, _>>().map_err(|e| db_err("live nodes", e))
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        let sql = format!("SELECT tenant, node, expires_at - {NOW_MS} FROM tenant_leases ORDER BY tenant");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.shard_pool()?)
            .await
            .map_err(|e| db_err("read leases", e))?;
        let mut leases = Vec::with_capacity(rows.len());
        for row in rows {
            let tenant: String = row.try_get(0).map_err(|e| db_err("read leases", e))?;
            let node: String = row.try_get(1).map_err(|e| db_err("read leases", e))?;
            let remaining_ms: i64 = row.try_get(2).map_err(|e| db_err("read leases", e))?;
            leases.push(Lease::new(tenant_of(tenant)?, node, remaining_ms));
        }
        Ok(leases)
    }

    async fn owner(&self, tenant: &TenantId) -> StoreResult<Option<Node>> {
        let sql = format!(
            "SELECT n.node, n.admin_url, n.appservice_url FROM tenant_leases l JOIN nodes n ON n.node = l.node \
             WHERE l.tenant = $1 AND l.expires_at > {NOW_MS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .fetch_optional(self.shard_pool()?)
            .await
            .map_err(|e| db_err("read a tenant's owner", e))?;
        row.as_ref().map(node_of).transpose().map_err(|e| db_err("read a tenant's owner", e))
    }

    async fn claim(&self, tenant: &TenantId, node: &str, ttl_ms: i64) -> StoreResult<bool> {
        // The row lock of ON CONFLICT makes two claimants see each other:
        // the second finds a live lease and takes nothing.
        let sql = format!(
            "INSERT INTO tenant_leases (tenant, node, expires_at, epoch) VALUES ($1, $2, {NOW_MS} + $3, 1) \
             ON CONFLICT (tenant) DO UPDATE SET node = excluded.node, expires_at = excluded.expires_at, \
             epoch = tenant_leases.epoch + 1 WHERE tenant_leases.expires_at <= {NOW_MS} RETURNING epoch"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(node)
            .bind(ttl_ms)
            .fetch_optional(self.shard_pool()?)
            .await
            .map_err(|e| db_err("claim lease", e))?;
        Ok(row.is_some())
    }

    async fn renew(&self, node: &str, ttl_ms: i64) -> StoreResult<Vec<TenantId>> {
        let sql = format!(
            "UPDATE tenant_leases SET expires_at = {NOW_MS} + $2 WHERE node = $1 AND expires_at > {NOW_MS} \
             RETURNING tenant"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(node)
            .bind(ttl_ms)
            .fetch_all(self.shard_pool()?)
            .await
            .map_err(|e| db_err("renew leases", e))?;
        rows.into_iter().map(|row| tenant_of(row.try_get(0).map_err(|e| db_err("renew leases", e))?)).collect()
    }

    async fn release(&self, tenant: &TenantId, node: &str) -> StoreResult<()> {
        sqlx::query("UPDATE tenant_leases SET expires_at = 0 WHERE tenant = $1 AND node = $2")
            .bind(tenant.as_str())
            .bind(node)
            .execute(self.shard_pool()?)
            .await
            .map_err(|e| db_err("release lease", e))?;
        Ok(())
    }
}
