//! MySQL/MariaDB reader for a Nacos database: namespaces, config rows with digests computed inside the server, tags.
//!
//! Content never crosses the wire during the scan: MySQL computes `MD5(content)` (over the UTF-8
//! bytes of a utf8/utf8mb4 column, the same digest Nacos serves), and content is fetched afterwards
//! only for the keys that differ, to build their diff.

use crate::model::{canonical_namespace, ConfigItem, ConfigKey, Namespace};
use crate::settings::Secret;
use futures::TryStreamExt;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, Row};
use std::collections::HashMap;
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
    pool: Pool,
    /// DSN without password, for messages.
    pub origin: String,
    connect_timeout: Duration,
}

/// A failure reading the DB, never carrying the password.
#[derive(Debug, Clone)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl NacosDb {
    /// Prepare a pool (no connection is made yet).
    pub fn new(dsn: &str, password: Option<&Secret>, timeout_secs: u64) -> Result<Self, DbError> {
        let opts = Opts::from_url(dsn)
            .map_err(|e| DbError(format!("database {dsn}: invalid DSN: {e}")))?;
        let builder = OptsBuilder::from_opts(opts)
            .pass(password.map(|p| p.expose().to_owned()))
            .pool_opts(
                mysql_async::PoolOpts::default()
                    .with_constraints(mysql_async::PoolConstraints::new(0, 8).unwrap_or_default())
                    // Keep returned connections for the next step of the run instead of closing
                    // each one (with no idle TTL, mysql_async keeps none above the minimum).
                    .with_inactive_connection_ttl(Duration::from_secs(60)),
            );
        // One pool per database for the whole run, however many steps read it (digest check,
        // scan, narrowing, diffs, re-check): one set of connections, closed by [`close_all`].
        let key = format!("{dsn}\u{0}{}", password.map_or("", Secret::expose));
        Ok(NacosDb {
            pool: shared_pool(&key, || Pool::new(builder)),
            origin: dsn.to_owned(),
            connect_timeout: Duration::from_secs(timeout_secs),
        })
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> DbError {
        let msg = e.to_string();
        let hint = if msg.contains("Access denied") {
            " (wrong user or password)"
        } else if msg.contains("onnection refused") || msg.contains("timed out") {
            " (database unreachable)"
        } else {
            ""
        };
        DbError(format!("database {}: {what}: {msg}{hint}", self.origin))
    }

    /// A connection; fails with a message naming the database.
    pub async fn conn(&self) -> Result<Conn, DbError> {
        match tokio::time::timeout(self.connect_timeout, self.pool.get_conn()).await {
            Ok(r) => r.map_err(|e| self.err("cannot connect", e)),
            Err(_) => Err(self.err("cannot connect", "timed out")),
        }
    }

    /// Whether the server can run the [`ContentDigest::Crc`] scan: it has `CRC32C()` (MariaDB
    /// 10.8+; MySQL has none) and both functions give the standard check values.
    pub async fn supports_crc(&self) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let r: Result<Option<(u64, u64)>, _> = conn
            .query_first("SELECT CRC32('123456789'), CRC32C('123456789')")
            .await;
        match r {
            Ok(v) => Ok(v == Some((0xCBF4_3926, 0xE306_9283))),
            // "FUNCTION CRC32C does not exist" and the like: the server cannot, which is no failure.
            Err(mysql_async::Error::Server(e)) => {
                tracing::debug!("{}: no CRC32C(): {e}", self.origin);
                Ok(false)
            }
            Err(e) => Err(self.err("checking for CRC32C()", e)),
        }
    }

    /// Names of the Nacos tables present.
    pub async fn tables(&self, conn: &mut Conn) -> Result<Vec<String>, DbError> {
        conn.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
        )
        .await
        .map_err(|e| self.err("listing tables", e))
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
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = conn
            .query("SELECT tenant_id, tenant_name, tenant_desc FROM tenant_info WHERE kp = '1'")
            .await
            .map_err(|e| self.err("reading tenant_info", e))?;
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
            let mut stream = conn
                .query_iter(sql.as_str())
                .await
                .map_err(|e| self.err(&format!("scanning {table}"), e))?;
            let mut out = Vec::new();
            while let Some(mut rs) = stream
                .stream::<Row>()
                .await
                .map_err(|e| self.err(&format!("scanning {table}"), e))?
            {
                while let Some(mut row) = rs
                    .try_next()
                    .await
                    .map_err(|e| self.err(&format!("scanning {table}"), e))?
                {
                    out.push(row_to_item(&mut row));
                }
            }
            Ok::<_, DbError>(out)
        });
        let results = futures::future::try_join_all(scans).await?;
        let mut items: Vec<ConfigItem> = results.into_iter().flatten().collect();
        if has("config_tags_relation") {
            let mut conn = self.conn().await?;
            let rows: Vec<TagRow> = conn
                .query("SELECT tenant_id, group_id, data_id, tag_name FROM config_tags_relation")
                .await
                .map_err(|e| self.err("reading config_tags_relation", e))?;
            if !rows.is_empty() {
                let mut tags: HashMap<(String, String, String), Vec<String>> = HashMap::new();
                for (t, g, d, name) in rows {
                    tags.entry((
                        canonical_namespace(&t.unwrap_or_default()),
                        g.unwrap_or_default(),
                        d.unwrap_or_default(),
                    ))
                    .or_default()
                    .push(name.unwrap_or_default());
                }
                for it in &mut items {
                    if it.key.variant.is_empty() {
                        if let Some(t) = tags.get(&(
                            it.key.namespace.clone(),
                            it.key.group.clone(),
                            it.key.data_id.clone(),
                        )) {
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
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = conn
            .exec(
                "SELECT DISTINCT h.tenant_id, h.group_id, h.data_id FROM his_config_info h \
                 LEFT JOIN config_info c ON c.data_id = h.data_id AND c.group_id = h.group_id AND c.tenant_id = h.tenant_id \
                 WHERE h.op_type = 'D' AND h.nid > ? AND c.id IS NULL",
                (since_nid,),
            )
            .await
            .map_err(|e| self.err("reading his_config_info", e))?;
        let max: Option<Option<u64>> = conn
            .query_first("SELECT MAX(nid) FROM his_config_info")
            .await
            .map_err(|e| self.err("reading his_config_info", e))?;
        let keys = rows.into_iter().map(key_of).collect();
        Ok((keys, max.flatten()))
    }

    /// Content of specific configs (formal or variant), for diffs. Missing rows are skipped.
    pub async fn contents(
        &self,
        keys: &[ConfigKey],
    ) -> Result<HashMap<ConfigKey, String>, DbError> {
        let mut conn = self.conn().await?;
        let mut out = HashMap::new();
        for k in keys {
            let tenant = if k.namespace == "public" {
                String::new()
            } else {
                k.namespace.clone()
            };
            let (sql, extra): (&str, Option<String>) = match k.variant.split_once(':') {
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
            let row: Option<Option<String>> = match extra {
                None => {
                    conn.exec_first(sql, (tenant, alt, &k.group, &k.data_id))
                        .await
                }
                Some(x) => {
                    conn.exec_first(sql, (tenant, alt, &k.group, &k.data_id, x))
                        .await
                }
            }
            .map_err(|e| self.err("reading content", e))?;
            if let Some(Some(c)) = row {
                out.insert(k.clone(), c);
            }
        }
        Ok(out)
    }
}

/// The run's pools, by DSN and password (in memory only, never shown).
fn pools() -> &'static std::sync::Mutex<HashMap<String, Pool>> {
    static POOLS: std::sync::OnceLock<std::sync::Mutex<HashMap<String, Pool>>> =
        std::sync::OnceLock::new();
    POOLS.get_or_init(Default::default)
}

fn shared_pool(key: &str, make: impl FnOnce() -> Pool) -> Pool {
    let mut m = pools()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    m.entry(key.to_owned()).or_insert_with(make).clone()
}

/// Disconnect every pool of the run cleanly (the servers would log an aborted connection for
/// each one dropped instead). Call once, at the end of a run, on the runtime that used them.
pub async fn close_all() {
    let all: Vec<Pool> = pools()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .drain()
        .map(|(_, p)| p)
        .collect();
    for p in all {
        let _ = p.disconnect().await;
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
        q.push((3, "config_info_gray", format!("SELECT id, tenant_id, group_id, data_id, CONCAT('gray:', gray_name), MD5(content), NULL, app_name, NULL, {ms} FROM config_info_gray")));
    }
    q
}

/// How the compact L1 scan has each server digest a row's content.
///
/// Both sides must use the same one; [`NacosDb::supports_crc`] tells which a server can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentDigest {
    /// `MD5(content)`: the digest Nacos itself uses; about three times the server CPU of `Crc`.
    Md5,
    /// `CRC32(content)` and `CRC32C(content)` (MariaDB 10.8+): two different 32-bit polynomials,
    /// so a changed row goes unnoticed with a chance of about 1 in 2^64, and both are computed by
    /// the CPU's CRC instructions instead of a hash the server runs in software.
    Crc,
}

impl ContentDigest {
    /// Name shown in reports and logs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ContentDigest::Md5 => "md5",
            ContentDigest::Crc => "crc32+crc32c",
        }
    }

    /// The two select-list columns that carry the digest.
    fn columns(self) -> &'static str {
        match self {
            ContentDigest::Md5 => "MD5(content), NULL",
            ContentDigest::Crc => "CRC32(content), CRC32C(content)",
        }
    }

    /// The digest of one row, from its two digest columns.
    fn decode(self, a: &[u8], b: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        match self {
            ContentDigest::Md5 => {
                if a.len() == 32 {
                    let _ = hex::decode_to_slice(a, &mut out);
                }
            }
            ContentDigest::Crc => {
                out[..8].copy_from_slice(&parse_u64(a).to_le_bytes());
                out[8..].copy_from_slice(&parse_u64(b).to_le_bytes());
            }
        }
        out
    }
}

/// A decimal column in the text protocol, without going through `str`.
fn parse_u64(b: &[u8]) -> u64 {
    b.iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u64, |n, c| {
            n.wrapping_mul(10).wrapping_add(u64::from(c - b'0'))
        })
}

/// `WHERE tenant_id IN (...)` for an audit restricted to these namespaces (the default one under
/// both spellings), so the servers digest only their rows. Empty when there is no restriction, or
/// when an id holds a character outside what Nacos allows in namespace ids: such ids are filtered
/// on the client instead of being quoted into SQL.
fn tenant_filter(only: Option<&[String]>) -> String {
    let Some(ids) = only.filter(|ids| !ids.is_empty()) else {
        return String::new();
    };
    let safe = |id: &str| {
        id.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    };
    if !ids.iter().all(|id| safe(id)) {
        return String::new();
    }
    let mut list: Vec<String> = Vec::new();
    for id in ids {
        if canonical_namespace(id) == "public" {
            list.extend(["''".to_owned(), "'public'".to_owned()]);
        } else {
            list.push(format!("'{id}'"));
        }
    }
    list.sort();
    list.dedup();
    format!(" WHERE tenant_id IN ({})", list.join(", "))
}

/// The compact scan of every config table: `id, tenant_id, group_id, data_id, variant`, the two
/// digest columns of `digest`, then `type, app_name, c_desc`. Only the digest is computed by the
/// server, so content never crosses the wire. `only` restricts the scan to those namespaces.
fn digest_queries(
    tables: &[String],
    digest: ContentDigest,
    only: Option<&[String]>,
) -> Vec<(u8, &'static str, String)> {
    // Raw columns: measured on MariaDB 10.11, server-side CONCAT_WS and UNHEX cost more than the
    // few bytes they save on the wire.
    let cols = digest.columns();
    let filter = tenant_filter(only);
    let q = |t: u8, table: &'static str, variant: &str, meta: &str| {
        (
            t,
            table,
            format!(
                "SELECT id, tenant_id, group_id, data_id, {variant}, {cols}, {meta} FROM {table}{filter}"
            ),
        )
    };
    let has = |t: &str| tables.iter().any(|x| x.eq_ignore_ascii_case(t));
    let mut out = vec![q(0, "config_info", "''", "type, app_name, c_desc")];
    if has("config_info_beta") {
        out.push(q(1, "config_info_beta", "'beta'", "NULL, app_name, NULL"));
    }
    if has("config_info_tag") {
        out.push(q(
            2,
            "config_info_tag",
            "CONCAT('tag:', tag_id)",
            "NULL, app_name, NULL",
        ));
    }
    if has("config_info_gray") {
        out.push(q(
            3,
            "config_info_gray",
            "CONCAT('gray:', gray_name)",
            "NULL, app_name, NULL",
        ));
    }
    out
}

/// A config row reduced to what the L1 pre-filter compares: 48 bytes, nothing on the heap.
///
/// At a million rows per side, full rows would cost about a gigabyte; these cost about 100 MB,
/// and full rows are then read again (by id) only for the few keys whose digests differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRow {
    /// 128-bit hash (two independent 64-bit hashes: collisions are negligible) of the key in
    /// source-namespace terms: namespace, group, dataId and variant.
    pub key: u128,
    /// The content digest computed by the server (see [`ContentDigest`]).
    pub content: [u8; 16],
    /// Hash of type, app, desc and tags.
    pub meta: u64,
    /// Row id within its table.
    pub id: u64,
    /// Table index (see [`table_queries`]).
    pub table: u8,
}

fn bytes_of(row: &Row, i: usize) -> &[u8] {
    match row.as_ref(i) {
        Some(mysql_async::Value::Bytes(b)) => b,
        _ => &[],
    }
}

/// Length-prefixed parts laid out in `buf`, so that ("ab","c") and ("a","bc") differ.
fn frame<'a>(buf: &'a mut Vec<u8>, parts: &[&[u8]]) -> &'a [u8] {
    buf.clear();
    for p in parts {
        buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
        buf.extend_from_slice(p);
    }
    buf
}

/// 64-bit hash of parts (xxh3: at a million rows per side SipHash was a sixth of the scan's CPU).
fn hash_parts(seed: u64, parts: &[&[u8]], buf: &mut Vec<u8>) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(frame(buf, parts), seed)
}

/// 128-bit hash of parts: key identity for a million rows needs more than 64 bits.
fn hash_parts_128(parts: &[&[u8]], buf: &mut Vec<u8>) -> u128 {
    xxhash_rust::xxh3::xxh3_128(frame(buf, parts))
}

impl NacosDb {
    /// Digest rows of every config table, keys mapped by `ns` (the DB's tenant → source-space namespace, `None` = skip).
    pub async fn digests(
        &self,
        tables: &[String],
        digest: ContentDigest,
        only: Option<&[String]>,
        ns: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Vec<DigestRow>, DbError> {
        let queries = digest_queries(tables, digest, only);
        let scans = queries.iter().map(|(t, table, sql)| async move {
            let mut conn = self.conn().await?;
            let mut stream = conn
                .query_iter(sql.as_str())
                .await
                .map_err(|e| self.err(&format!("scanning {table}"), e))?;
            let mut out = Vec::new();
            // Few distinct tenants: map each once, not once per row.
            let mut tenants: HashMap<
                Vec<u8>,
                Option<String>,
                xxhash_rust::xxh3::Xxh3DefaultBuilder,
            > = HashMap::default();
            let mut buf = Vec::with_capacity(256);
            while let Some(mut rs) = stream
                .stream::<Row>()
                .await
                .map_err(|e| self.err(&format!("scanning {table}"), e))?
            {
                while let Some(row) = rs
                    .try_next()
                    .await
                    .map_err(|e| self.err(&format!("scanning {table}"), e))?
                {
                    let tenant = bytes_of(&row, 1);
                    if !tenants.contains_key(tenant) {
                        tenants.insert(tenant.to_vec(), ns(&String::from_utf8_lossy(tenant)));
                    }
                    // Rows of namespaces outside the audit are skipped here, before anything is kept.
                    let Some(namespace) = &tenants[tenant] else {
                        continue;
                    };
                    let parts: [&[u8]; 4] = [
                        namespace.as_bytes(),
                        bytes_of(&row, 2),
                        bytes_of(&row, 3),
                        bytes_of(&row, 4),
                    ];
                    let key = hash_parts_128(&parts, &mut buf);
                    out.push(DigestRow {
                        key,
                        content: digest.decode(bytes_of(&row, 5), bytes_of(&row, 6)),
                        meta: hash_parts(
                            0,
                            &[bytes_of(&row, 7), bytes_of(&row, 8), bytes_of(&row, 9)],
                            &mut buf,
                        ),
                        id: parse_u64(bytes_of(&row, 0)),
                        table: *t,
                    });
                }
            }
            Ok::<_, DbError>(out)
        });
        let t0 = std::time::Instant::now();
        let mut rows: Vec<DigestRow> = futures::future::try_join_all(scans)
            .await?
            .into_iter()
            .flatten()
            .collect();
        tracing::info!(
            "{}: scanned {} digest rows in {:?}",
            self.origin,
            rows.len(),
            t0.elapsed()
        );
        if tables
            .iter()
            .any(|x| x.eq_ignore_ascii_case("config_tags_relation"))
        {
            // Tags are part of the compared metadata: fold them into the formal rows' meta hash.
            let mut conn = self.conn().await?;
            let tag_rows: Vec<(u64, Option<String>)> = conn
                .query("SELECT id, tag_name FROM config_tags_relation ORDER BY id, tag_name")
                .await
                .map_err(|e| self.err("reading config_tags_relation", e))?;
            if !tag_rows.is_empty() {
                let mut tags: HashMap<u64, u64, xxhash_rust::xxh3::Xxh3DefaultBuilder> =
                    HashMap::default();
                let mut buf = Vec::new();
                for (id, name) in tag_rows {
                    let e = tags.entry(id).or_insert(0);
                    *e = hash_parts(*e, &[name.unwrap_or_default().as_bytes()], &mut buf);
                }
                for r in rows.iter_mut().filter(|r| r.table == 0) {
                    if let Some(t) = tags.get(&r.id) {
                        r.meta ^= *t;
                    }
                }
            }
        }
        Ok(rows)
    }

    /// `(table, id)` of the rows, every variant, of these `(tenant, group, dataId)` keys; the
    /// default namespace is looked for under both spellings a DB may use (`''` and `public`).
    pub async fn ids_by_keys(
        &self,
        tables: &[String],
        keys: &[(String, String, String)],
    ) -> Result<Vec<(u8, u64)>, DbError> {
        let mut triples: Vec<(&str, &str, &str)> = Vec::new();
        for (t, g, d) in keys {
            if canonical_namespace(t) == "public" {
                triples.push(("", g, d));
                triples.push(("public", g, d));
            } else {
                triples.push((t, g, d));
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
                let ids: Vec<u64> = conn
                    .exec(
                        format!(
                            "SELECT id FROM {table} WHERE (tenant_id, group_id, data_id) IN ({list})"
                        ),
                        params,
                    )
                    .await
                    .map_err(|e| self.err(&format!("reading {table} rows by key"), e))?;
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
                let rows: Vec<Row> = conn
                    .query(format!("{sql} WHERE id IN ({list})"))
                    .await
                    .map_err(|e| self.err(&format!("reading {table} rows"), e))?;
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
                    let tag_rows: Vec<(u64, Option<String>)> = conn
                        .query(format!(
                            "SELECT id, tag_name FROM config_tags_relation WHERE id IN ({list})"
                        ))
                        .await
                        .map_err(|e| self.err("reading config_tags_relation", e))?;
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
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = conn
            .exec(
                "SELECT tenant_id, group_id, data_id FROM config_info WHERE gmt_modified > FROM_UNIXTIME(?)",
                (since_ms.max(0) / 1000,),
            )
            .await
            .map_err(|e| self.err("reading changed config_info rows", e))?;
        Ok(rows.into_iter().map(key_of).collect())
    }

    /// Keys with a history entry after `nid` (any operation), for incremental runs.
    pub async fn history_keys_since(&self, nid: u64) -> Result<Vec<ConfigKey>, DbError> {
        let mut conn = self.conn().await?;
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = conn
            .exec(
                "SELECT DISTINCT tenant_id, group_id, data_id FROM his_config_info WHERE nid > ?",
                (nid,),
            )
            .await
            .map_err(|e| self.err("reading his_config_info", e))?;
        Ok(rows.into_iter().map(key_of).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_crc_columns_count_and_md5_is_decoded_from_hex() {
        let d = ContentDigest::Crc;
        let base = d.decode(b"3421780262", b"3808858755");
        assert_ne!(base, d.decode(b"3421780263", b"3808858755"));
        assert_ne!(base, d.decode(b"3421780262", b"3808858756"));
        assert_eq!(base, d.decode(b"3421780262", b"3808858755"));
        let m = ContentDigest::Md5.decode(b"0123456789abcdef0123456789abcdef", b"");
        assert_eq!(hex::encode(m), "0123456789abcdef0123456789abcdef");
        assert_eq!(parse_u64(b"18446744073709551615"), u64::MAX);
    }

    #[test]
    fn a_namespace_restriction_reaches_the_server_only_for_safe_ids() {
        let tables = ["config_info".to_owned()];
        let only = ["prod".to_owned(), "public".to_owned()];
        let q = digest_queries(&tables, ContentDigest::Crc, Some(&only));
        assert!(
            q[0].2
                .ends_with(" WHERE tenant_id IN ('', 'prod', 'public')"),
            "{}",
            q[0].2
        );
        let odd = ["x' OR '1'='1".to_owned()];
        let q = digest_queries(&tables, ContentDigest::Crc, Some(&odd));
        assert!(!q[0].2.contains("WHERE"), "{}", q[0].2);
        assert!(!digest_queries(&tables, ContentDigest::Md5, None)[0]
            .2
            .contains("WHERE"));
    }

    #[test]
    fn the_scan_selects_the_agreed_digest_and_never_content() {
        let tables = ["config_info".to_owned(), "config_info_beta".to_owned()];
        for (d, cols) in [
            (ContentDigest::Crc, "CRC32(content), CRC32C(content)"),
            (ContentDigest::Md5, "MD5(content), NULL"),
        ] {
            let q = digest_queries(&tables, d, None);
            assert_eq!(q.len(), 2);
            for (_, _, sql) in q {
                assert!(sql.contains(cols), "{sql}");
                assert!(!sql.contains(" content,"), "{sql}");
            }
        }
    }
}
