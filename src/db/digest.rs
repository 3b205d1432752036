//! The compact L1 scan: every config row reduced to a digest computed inside the server, so that
//! a million rows per side cost about 100 MB and content never crosses the wire.

use super::{DbError, NacosDb};
use crate::model::canonical_namespace;
use crate::model::DigestRow;
use futures::TryStreamExt;
use mysql_async::prelude::*;
use mysql_async::Row;
use std::collections::HashMap;

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
    let filter = super::v3::and_where(&tenant_filter(only), tables);
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
            super::v3::gray_variant(tables),
            "NULL, app_name, NULL",
        ));
    }
    out
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
            let (id, what) = (conn.id(), format!("scanning {table}"));
            let mut stream = self
                .bounded(id, &what, conn.query_iter(super::tagged(sql)))
                .await?;
            let mut out = Vec::new();
            // Few distinct tenants: map each once, not once per row.
            let mut tenants: HashMap<
                Vec<u8>,
                Option<String>,
                xxhash_rust::xxh3::Xxh3DefaultBuilder,
            > = HashMap::default();
            let mut buf = Vec::with_capacity(256);
            while let Some(mut rs) = self.bounded(id, &what, stream.stream::<Row>()).await? {
                while let Some(row) = self.bounded(id, &what, rs.try_next()).await? {
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
            let sql = super::tagged(
                "SELECT id, tag_name FROM config_tags_relation ORDER BY id, tag_name",
            );
            let what = "reading config_tags_relation";
            let tag_rows: Vec<(u64, Option<String>)> =
                self.bounded(conn.id(), what, conn.query(sql)).await?;
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
