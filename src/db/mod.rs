//! MySQL/MariaDB reader for a Nacos database: namespaces, config rows with digests computed inside the server, tags.
//!
//! Content never crosses the wire during the scan: MySQL computes `MD5(content)` (over the UTF-8
//! bytes of a utf8/utf8mb4 column, the same digest Nacos serves), and content is fetched afterwards
//! only for the keys that differ, to build their diff. Every wait on the server is bounded (see
//! [`session`]).

pub mod auth;
mod digest;
mod hint;
mod session;
mod v3;
mod variants;

pub use crate::model::DigestRow;
pub use digest::ContentDigest;
pub use variants::RuleText;

use crate::model::{canonical_namespace, ConfigItem, ConfigKey, Namespace};
use crate::secret::Secret;
use crate::tls::SslMode;
use futures::TryStreamExt;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Row};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// `(tenant_id, group_id, data_id, tag_name)` of `config_tags_relation`.
type TagRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A connection pool to one Nacos database.
pub struct NacosDb {
    shared: Arc<session::Shared>,
    /// DSN without password, for messages.
    pub origin: String,
    /// `--timeout`: connecting, and the server's lock waits; a statement that does not answer
    /// within this plus [`session::GRACE`] is given up on.
    wait: Duration,
    /// `ssl-mode=disabled`: the same options with TLS, to tell a server that requires TLS
    /// (MariaDB refuses a plain login with the same "Access denied" as a wrong password).
    tls_probe: Option<Opts>,
}

/// One side's database for a run: its pool, built once by the run's owner and borrowed by every
/// stage, or why it could not be had (an invalid DSN), reported by the stages that need it.
pub type Handle = Result<NacosDb, DbError>;

/// A failure reading the DB, never carrying the password.
#[derive(Debug, Clone)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SQL of a statement, marked so that the server's process list tells whose it is.
fn tagged(sql: &str) -> String {
    format!("/* nacos-drift pid {} */ {sql}", std::process::id())
}

/// mysql_async's TLS options for an `ssl-mode` (the mysql client's meanings): `required` and
/// `preferred` encrypt without checking the certificate, `verify_ca` checks it against the
/// built-in roots plus `ca`, `verify_identity` also checks the host name.
fn ssl_opts(mode: SslMode, ca: Option<&str>) -> Option<mysql_async::SslOpts> {
    let roots = ca
        .map(|c| vec![std::path::PathBuf::from(c).into()])
        .unwrap_or_default();
    let base = mysql_async::SslOpts::default().with_root_certs(roots);
    match mode {
        SslMode::Disabled => None,
        SslMode::Preferred | SslMode::Required => Some(
            base.with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        SslMode::VerifyCa => Some(base.with_danger_skip_domain_validation(true)),
        SslMode::VerifyIdentity => Some(base),
    }
}

impl NacosDb {
    /// Prepare a pool (no connection is made yet).
    ///
    /// Every session gets a server-side statement limit ending at `deadline` (the run's).
    pub fn new(
        dsn: &str,
        password: Option<&Secret>,
        timeout_secs: u64,
        deadline: Option<std::time::Instant>,
    ) -> Result<Self, DbError> {
        let invalid =
            |e: &dyn std::fmt::Display| DbError(format!("database {dsn}: invalid DSN: {e}"));
        let (plain, mode, ca) = crate::validate::take_tls_params(dsn).map_err(|e| invalid(&e))?;
        let mode = match mode {
            Some(m) => SslMode::parse(&m).ok_or_else(|| {
                invalid(&format!(
                    "unknown ssl-mode `{m}` (expected {})",
                    SslMode::NAMES
                ))
            })?,
            None => SslMode::Preferred,
        };
        let opts = Opts::from_url(&plain).map_err(|e| invalid(&e))?;
        let ssl = ssl_opts(mode, ca.as_deref());
        let builder = OptsBuilder::from_opts(opts)
            .ssl_opts(ssl)
            .pass(password.map(|p| p.expose().to_owned()))
            .pool_opts(
                mysql_async::PoolOpts::default()
                    // Room for both sides' concurrent scans even when they name the same DB: a
                    // wait for a free connection counts against the connect bound (`--timeout`).
                    .with_constraints(mysql_async::PoolConstraints::new(0, 16).unwrap_or_default())
                    // Keep returned connections for the next step of the run instead of closing
                    // each one (with no idle TTL, mysql_async keeps none above the minimum).
                    .with_inactive_connection_ttl(Duration::from_secs(60))
                    // A reset would drop the session limits; the run keeps no other session state.
                    .with_reset_connection(false),
            );
        let wait = Duration::from_secs(timeout_secs.max(1));
        // One pool per database for the whole run, however many steps read it (digest check,
        // scan, narrowing, diffs, re-check): the run builds this once and closes it
        // ([`NacosDb::close`]).
        // `preferred`: plain text when the server offers no TLS at all (mysql_async has no
        // such mode: the TLS pool gives way to this one on the first connection).
        let tls_probe = (mode == SslMode::Disabled).then(|| {
            OptsBuilder::from_opts(builder.clone())
                .ssl_opts(ssl_opts(SslMode::Required, None))
                .into()
        });
        let fallback = (mode == SslMode::Preferred).then(|| {
            OptsBuilder::from_opts(builder.clone())
                .ssl_opts(None)
                .into()
        });
        Ok(NacosDb {
            shared: session::Shared::new(builder.into(), deadline, fallback),
            origin: dsn.to_owned(),
            wait,
            tls_probe,
        })
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> DbError {
        let msg = e.to_string();
        let database = self
            .origin
            .rsplit('/')
            .next()
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("");
        let hint = hint::hint(&msg, database, self.wait.as_secs());
        DbError(format!("database {}: {what}: {msg}{hint}", self.origin))
    }

    /// Whether the server can run the [`ContentDigest::Crc`] scan: it has `CRC32C()` (MariaDB
    /// 10.8+; MySQL has none) and both functions give the standard check values.
    pub async fn supports_crc(&self) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let what = "checking for CRC32C()";
        let sql = tagged("SELECT CRC32('123456789'), CRC32C('123456789')");
        let r: Result<Option<(u64, u64)>, _> =
            self.answer(conn.id(), what, conn.query_first(sql)).await?;
        match r {
            Ok(v) => Ok(v == Some((0xCBF4_3926, 0xE306_9283))),
            // "FUNCTION CRC32C does not exist" and the like: the server cannot, which is no failure.
            Err(mysql_async::Error::Server(e)) => {
                tracing::debug!("{}: no CRC32C(): {e}", self.origin);
                Ok(false)
            }
            Err(e) => Err(self.err(what, e)),
        }
    }

    /// Names of the Nacos tables present.
    pub async fn tables(&self, conn: &mut Conn) -> Result<Vec<String>, DbError> {
        let sql = tagged(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
        );
        self.bounded(conn.id(), "listing tables", conn.query(sql))
            .await
    }

    /// The tables present and the namespaces, failing with a clear message if this is no Nacos database.
    pub async fn tables_and_namespaces(&self) -> Result<(Vec<String>, Vec<Namespace>), DbError> {
        let mut conn = self.conn().await?;
        let tables = self.tables(&mut conn).await?;
        if !tables.iter().any(|t| t.eq_ignore_ascii_case("config_info")) {
            return Err(DbError(format!(
                "database {}: no `config_info` table: is this a Nacos database?",
                self.origin
            )));
        }
        let namespaces = self.namespaces(&mut conn).await?;
        Ok((tables, namespaces))
    }

    /// Namespaces from `tenant_info`, plus the default `public`.
    pub async fn namespaces(&self, conn: &mut Conn) -> Result<Vec<Namespace>, DbError> {
        let sql =
            tagged("SELECT tenant_id, tenant_name, tenant_desc FROM tenant_info WHERE kp = '1'");
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = self
            .bounded(conn.id(), "reading tenant_info", conn.query(sql))
            .await?;
        let mut out: Vec<Namespace> = rows
            .into_iter()
            .map(|(id, name, desc)| Namespace {
                id: canonical_namespace(&id.unwrap_or_default()),
                name: name.unwrap_or_default(),
                desc: desc.unwrap_or_default(),
            })
            .collect();
        crate::model::normalise_namespaces(&mut out);
        Ok(out)
    }

    /// Every config row of `config_info` and of the beta/tag/gray tables that exist, digests only.
    pub async fn configs(&self, tables: &[String]) -> Result<Vec<ConfigItem>, DbError> {
        let queries = table_queries(tables);
        // One connection per table, scanned concurrently.
        let has = |t: &str| tables.iter().any(|x| x.eq_ignore_ascii_case(t));
        let scans = queries.iter().map(|(_, table, sql)| async move {
            let mut conn = self.conn().await?;
            let (id, what) = (conn.id(), format!("scanning {table}"));
            let sql = format!("{sql}{}", v3::and_where("", tables));
            let mut stream = self
                .bounded(id, &what, conn.query_iter(tagged(&sql)))
                .await?;
            let mut out = Vec::new();
            while let Some(mut rs) = self.bounded(id, &what, stream.stream::<Row>()).await? {
                while let Some(mut row) = self.bounded(id, &what, rs.try_next()).await? {
                    out.push(row_to_item(&mut row));
                }
            }
            Ok::<_, DbError>(out)
        });
        let results = futures::future::try_join_all(scans).await?;
        let mut items: Vec<ConfigItem> = results.into_iter().flatten().collect();
        if has("config_tags_relation") {
            let mut conn = self.conn().await?;
            let sql =
                tagged("SELECT tenant_id, group_id, data_id, tag_name FROM config_tags_relation");
            let rows: Vec<TagRow> = self
                .bounded(conn.id(), "reading config_tags_relation", conn.query(sql))
                .await?;
            if !rows.is_empty() {
                let mut tags: HashMap<crate::model::FormalKey, Vec<String>> = HashMap::new();
                for (t, g, d, name) in rows {
                    tags.entry(crate::model::FormalKey {
                        namespace: canonical_namespace(&t.unwrap_or_default()),
                        group: g.unwrap_or_default(),
                        data_id: d.unwrap_or_default(),
                    })
                    .or_default()
                    .push(name.unwrap_or_default());
                }
                for it in &mut items {
                    if it.key.variant.is_empty() {
                        if let Some(t) = tags.get(&it.key.formal()) {
                            let mut t = t.clone();
                            t.sort();
                            it.tags = t;
                        }
                    }
                }
            }
        }
        Ok(items)
    }

    /// Keys whose last history entry is a delete and which have no `config_info` row, plus the newest history nid.
    pub async fn deleted(&self, since_nid: u64) -> Result<(Vec<ConfigKey>, Option<u64>), DbError> {
        let mut conn = self.conn().await?;
        let (id, what) = (conn.id(), "reading his_config_info");
        let sql = tagged(
            "SELECT DISTINCT h.tenant_id, h.group_id, h.data_id FROM his_config_info h \
             LEFT JOIN config_info c ON c.data_id = h.data_id AND c.group_id = h.group_id AND c.tenant_id = h.tenant_id \
             WHERE h.op_type = 'D' AND h.nid > ? AND c.id IS NULL",
        );
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> =
            self.bounded(id, what, conn.exec(sql, (since_nid,))).await?;
        let sql = tagged("SELECT MAX(nid) FROM his_config_info");
        let max: Option<Option<u64>> = self.bounded(id, what, conn.query_first(sql)).await?;
        let keys = rows.into_iter().map(key_of).collect();
        Ok((keys, max.flatten()))
    }

    /// Content of specific configs (formal or variant), for diffs. Missing rows are skipped.
    pub async fn contents(
        &self,
        keys: &[ConfigKey],
    ) -> Result<HashMap<ConfigKey, String>, DbError> {
        let mut conn = self.conn().await?;
        let v3 = v3::is_v3(&self.tables(&mut conn).await?);
        let mut out = HashMap::new();
        for k in keys {
            let tenant = if k.namespace == "public" && !v3 {
                String::new()
            } else {
                k.namespace.clone()
            };
            let (sql, extra): (&str, Option<String>) = match k.variant.split_once(':') {
                // 3.x: every variant is a gray row (see [`v3`]).
                _ if v3 && !k.variant.is_empty() => (
                    "SELECT content FROM config_info_gray WHERE tenant_id IN (?, ?) AND group_id = ? AND data_id = ? AND gray_name = ? LIMIT 1",
                    v3::gray_name(&k.variant),
                ),
                None if k.variant.is_empty() => (
                    "SELECT content FROM config_info WHERE tenant_id IN (?, ?) AND group_id = ? AND data_id = ? LIMIT 1",
                    None,
                ),
                None => (
                    "SELECT content FROM config_info_beta WHERE tenant_id IN (?, ?) AND group_id = ? AND data_id = ? LIMIT 1",
                    None,
                ),
                Some(("tag", t)) => (
                    "SELECT content FROM config_info_tag WHERE tenant_id IN (?, ?) AND group_id = ? AND data_id = ? AND tag_id = ? LIMIT 1",
                    Some(t.to_owned()),
                ),
                Some((_, g)) => (
                    "SELECT content FROM config_info_gray WHERE tenant_id IN (?, ?) AND group_id = ? AND data_id = ? AND gray_name = ? LIMIT 1",
                    Some(g.to_owned()),
                ),
            };
            let alt = if tenant.is_empty() {
                "public".to_owned()
            } else {
                tenant.clone()
            };
            let (id, sql) = (conn.id(), tagged(sql));
            let row: Option<Option<String>> = match extra {
                None => {
                    let params = (tenant, alt, &k.group, &k.data_id);
                    self.bounded(id, "reading content", conn.exec_first(sql, params))
                        .await?
                }
                Some(x) => {
                    let params = (tenant, alt, &k.group, &k.data_id, x);
                    self.bounded(id, "reading content", conn.exec_first(sql, params))
                        .await?
                }
            };
            if let Some(Some(c)) = row {
                out.insert(k.clone(), c);
            }
        }
        Ok(out)
    }
}

/// A formal config key from a `(tenant_id, group_id, data_id)` row.
fn key_of((t, g, d): (Option<String>, Option<String>, Option<String>)) -> ConfigKey {
    ConfigKey {
        namespace: canonical_namespace(&t.unwrap_or_default()),
        group: g.unwrap_or_default(),
        data_id: d.unwrap_or_default(),
        variant: String::new(),
    }
}

fn take_str(row: &mut Row, i: usize) -> String {
    row.take::<Option<String>, _>(i)
        .flatten()
        .unwrap_or_default()
}

/// Column 0 is the row id (not kept here); see [`table_queries`].
fn row_to_item(row: &mut Row) -> ConfigItem {
    let tenant = take_str(row, 1);
    ConfigItem {
        key: ConfigKey {
            namespace: canonical_namespace(&tenant),
            group: take_str(row, 2),
            data_id: take_str(row, 3),
            variant: take_str(row, 4),
        },
        md5: take_str(row, 5),
        content: None,
        r#type: take_str(row, 6),
        app: take_str(row, 7),
        desc: take_str(row, 8),
        tags: Vec::new(),
        modified_ms: row.take::<Option<i64>, _>(9).flatten(),
    }
}

/// The scan query of every config table present: `(table index, name, SQL)`. Every query selects
/// `id, tenant_id, group_id, data_id, variant, MD5(content), type, app_name, c_desc, gmt_modified ms`.
/// `MD5(content)` runs inside the server, so content never crosses the wire during a scan.
fn table_queries(tables: &[String]) -> Vec<(u8, &'static str, String)> {
    let has = |t: &str| tables.iter().any(|x| x.eq_ignore_ascii_case(t));
    let ms = "CAST(UNIX_TIMESTAMP(gmt_modified) * 1000 AS SIGNED)";
    let mut q = vec![(
        0,
        "config_info",
        format!("SELECT id, tenant_id, group_id, data_id, '', MD5(content), type, app_name, c_desc, {ms} FROM config_info"),
    )];
    if has("config_info_beta") {
        q.push((1, "config_info_beta", format!("SELECT id, tenant_id, group_id, data_id, 'beta', MD5(content), NULL, app_name, NULL, {ms} FROM config_info_beta")));
    }
    if has("config_info_tag") {
        q.push((2, "config_info_tag", format!("SELECT id, tenant_id, group_id, data_id, CONCAT('tag:', tag_id), MD5(content), NULL, app_name, NULL, {ms} FROM config_info_tag")));
    }
    if has("config_info_gray") {
        let variant = v3::gray_variant(tables);
        q.push((3, "config_info_gray", format!("SELECT id, tenant_id, group_id, data_id, {variant}, MD5(content), NULL, app_name, NULL, {ms} FROM config_info_gray")));
    }
    q
}

impl NacosDb {
    /// `(table, id)` of the rows, every variant, of these `(tenant, group, dataId)` keys; the
    /// default namespace is looked for under both spellings a DB may use (`''` and `public`).
    pub async fn ids_by_keys(
        &self,
        tables: &[String],
        keys: &[crate::model::FormalKey],
    ) -> Result<Vec<(u8, u64)>, DbError> {
        let mut triples: Vec<(&str, &str, &str)> = Vec::new();
        for k in keys {
            let (g, d) = (k.group.as_str(), k.data_id.as_str());
            if canonical_namespace(&k.namespace) == "public" {
                for tenant in v3::default_tenants(tables) {
                    triples.push((tenant, g, d));
                }
            } else {
                triples.push((&k.namespace, g, d));
            }
        }
        let mut conn = self.conn().await?;
        let mut out = Vec::new();
        for (t, table, _) in table_queries(tables) {
            for chunk in triples.chunks(300) {
                let list = vec!["(?, ?, ?)"; chunk.len()].join(", ");
                let params: Vec<mysql_async::Value> = chunk
                    .iter()
                    .flat_map(|(t, g, d)| [(*t).into(), (*g).into(), (*d).into()])
                    .collect();
                let sql = tagged(&format!(
                    "SELECT id FROM {table} WHERE (tenant_id, group_id, data_id) IN ({list})"
                ));
                let what = format!("reading {table} rows by key");
                let ids: Vec<u64> = self
                    .bounded(conn.id(), &what, conn.exec(sql, params))
                    .await?;
                out.extend(ids.into_iter().map(|id| (t, id)));
            }
        }
        Ok(out)
    }

    /// Full rows (digests, metadata, tags) of the given `(table, id)`s.
    pub async fn items_by_id(
        &self,
        tables: &[String],
        ids: &[(u8, u64)],
    ) -> Result<Vec<ConfigItem>, DbError> {
        let mut conn = self.conn().await?;
        let mut out = Vec::new();
        for (t, table, sql) in table_queries(tables) {
            let wanted: Vec<u64> = ids
                .iter()
                .filter(|(x, _)| *x == t)
                .map(|(_, id)| *id)
                .collect();
            for chunk in wanted.chunks(1000) {
                let list = chunk
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let what = format!("reading {table} rows");
                let q = tagged(&format!("{sql} WHERE id IN ({list})"));
                let rows: Vec<Row> = self.bounded(conn.id(), &what, conn.query(q)).await?;
                let mut items: Vec<(u64, ConfigItem)> = rows
                    .into_iter()
                    .map(|mut r| {
                        let id = r.take::<Option<u64>, _>(0).flatten().unwrap_or(0);
                        (id, row_to_item(&mut r))
                    })
                    .collect();
                if t == 0
                    && tables
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case("config_tags_relation"))
                {
                    let q = tagged(&format!(
                        "SELECT id, tag_name FROM config_tags_relation WHERE id IN ({list})"
                    ));
                    let what = "reading config_tags_relation";
                    let tag_rows: Vec<(u64, Option<String>)> =
                        self.bounded(conn.id(), what, conn.query(q)).await?;
                    for (id, name) in tag_rows {
                        if let Some((_, it)) = items.iter_mut().find(|(i, _)| *i == id) {
                            it.tags.push(name.unwrap_or_default());
                        }
                    }
                    for (_, it) in &mut items {
                        it.tags.sort();
                    }
                }
                out.extend(items.into_iter().map(|(_, it)| it));
            }
        }
        Ok(out)
    }

    /// Keys of `config_info` rows modified at or after `since_ms` (epoch ms), for incremental runs.
    pub async fn modified_keys_since(&self, since_ms: i64) -> Result<Vec<ConfigKey>, DbError> {
        let mut conn = self.conn().await?;
        let sql = tagged(
            "SELECT tenant_id, group_id, data_id FROM config_info WHERE gmt_modified > FROM_UNIXTIME(?)",
        );
        let what = "reading changed config_info rows";
        let params = (since_ms.max(0) / 1000,);
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = self
            .bounded(conn.id(), what, conn.exec(sql, params))
            .await?;
        Ok(rows.into_iter().map(key_of).collect())
    }

    /// Keys with a history entry after `nid` (any operation), for incremental runs.
    pub async fn history_keys_since(&self, nid: u64) -> Result<Vec<ConfigKey>, DbError> {
        let mut conn = self.conn().await?;
        let sql = tagged(
            "SELECT DISTINCT tenant_id, group_id, data_id FROM his_config_info WHERE nid > ?",
        );
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = self
            .bounded(conn.id(), "reading his_config_info", conn.exec(sql, (nid,)))
            .await?;
        Ok(rows.into_iter().map(key_of).collect())
    }
}
