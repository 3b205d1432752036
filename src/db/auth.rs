//! Reading the auth tables (`users`, `roles`, `permissions`) and the capacity quotas
//! (`tenant_capacity`, `group_capacity`) of one Nacos database (schema: Nacos
//! `distribution/conf/mysql-schema.sql`).
//!
//! The password hash never leaves the server: `SHA2` digests it there, behind a prefix of ours, so
//! only a digest that can be compared for equality is read.

use super::{tagged, DbError, NacosDb};
use crate::accounts::{AuthTables, Permission, Quota, Quotas, RoleBinding, User};
use crate::model::{canonical_namespace, CaptureError, DbSnapshot};
use mysql_async::prelude::Queryable;

/// The prefix digested with each stored hash (a digest of ours, not a bare hash of the hash).
const DIGEST_PREFIX: &str = "nacos-drift users.password ";

type QuotaRow = (Option<String>, u32, u32, u32, u32, u32);

fn quota(
    (id, quota, max_size, max_aggr_count, max_aggr_size, max_history_count): QuotaRow,
) -> Quota {
    Quota {
        id: id.unwrap_or_default(),
        quota,
        max_size,
        max_aggr_count,
        max_aggr_size,
        max_history_count,
    }
}

impl NacosDb {
    /// Users (with a digest of the password hash), roles and permissions; `None` when the DB
    /// has no `users` table (Nacos without built-in auth tables).
    pub async fn auth_tables(&self, tables: &[String]) -> Result<Option<AuthTables>, DbError> {
        let has = |t: &str| tables.iter().any(|x| x.eq_ignore_ascii_case(t));
        if !has("users") {
            return Ok(None);
        }
        let mut conn = self.conn().await?;
        let id = conn.id();
        let sql = tagged(&format!(
            "SELECT username, SHA2(CONCAT('{DIGEST_PREFIX}', password), 256) FROM users"
        ));
        let users: Vec<(String, Option<String>)> =
            self.bounded(id, "reading users", conn.query(sql)).await?;
        let roles: Vec<(String, String)> = if has("roles") {
            let sql = tagged("SELECT username, role FROM roles");
            self.bounded(id, "reading roles", conn.query(sql)).await?
        } else {
            Vec::new()
        };
        let permissions: Vec<(String, String, String)> = if has("permissions") {
            let sql = tagged("SELECT role, resource, action FROM permissions");
            self.bounded(id, "reading permissions", conn.query(sql))
                .await?
        } else {
            Vec::new()
        };
        Ok(Some(AuthTables {
            users: users
                .into_iter()
                .map(|(username, password_sha256)| User {
                    username,
                    password_sha256,
                })
                .collect(),
            roles: roles
                .into_iter()
                .map(|(username, role)| RoleBinding { username, role })
                .collect(),
            permissions: permissions
                .into_iter()
                .map(|(role, resource, action)| Permission {
                    role,
                    resource,
                    action,
                })
                .collect(),
            permissions_not_read: None,
        }))
    }

    /// Tenant and group quotas; `None` when the DB has neither capacity table.
    pub async fn quotas(&self, tables: &[String]) -> Result<Option<Quotas>, DbError> {
        let has = |t: &str| tables.iter().any(|x| x.eq_ignore_ascii_case(t));
        if !has("tenant_capacity") && !has("group_capacity") {
            return Ok(None);
        }
        let mut conn = self.conn().await?;
        let id = conn.id();
        let cols = "quota, max_size, max_aggr_count, max_aggr_size, max_history_count";
        let mut out = Quotas::default();
        if has("tenant_capacity") {
            let sql = tagged(&format!("SELECT tenant_id, {cols} FROM tenant_capacity"));
            let rows: Vec<QuotaRow> = self
                .bounded(id, "reading tenant_capacity", conn.query(sql))
                .await?;
            out.tenants = rows
                .into_iter()
                .map(quota)
                .map(|mut q| {
                    q.id = canonical_namespace(&q.id);
                    q
                })
                .collect();
        }
        if has("group_capacity") {
            let sql = tagged(&format!("SELECT group_id, {cols} FROM group_capacity"));
            let rows: Vec<QuotaRow> = self
                .bounded(id, "reading group_capacity", conn.query(sql))
                .await?;
            out.groups = rows.into_iter().map(quota).collect();
        }
        Ok(Some(out))
    }
}

/// Read the auth tables, the quotas and the 3.x namespace conflicts into `snap` (a DB whose scan already failed is not asked
/// again); a failure is a capture error of the DB layer, never an empty list.
pub async fn capture(db: &NacosDb, snap: &mut DbSnapshot) {
    if !snap.errors.is_empty() {
        return;
    }
    let result = async {
        let mut conn = db.conn().await?;
        let tables = db.tables(&mut conn).await?;
        drop(conn);
        let auth = db.auth_tables(&tables).await?;
        let quotas = db.quotas(&tables).await?;
        let conflicts = db.namespace_conflicts(&tables).await?;
        Ok::<_, DbError>((auth, quotas, conflicts))
    }
    .await;
    match result {
        Ok((auth, quotas, conflicts)) => {
            snap.auth = auth;
            snap.quotas = quotas;
            snap.namespace_conflicts = conflicts;
        }
        Err(e) => snap.errors.push(CaptureError {
            origin: snap.origin.clone(),
            namespace: None,
            message: e.0,
        }),
    }
}
