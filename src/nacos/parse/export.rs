//! Parser of a namespace's config export: a zip with one entry per config (`group/dataId`, its
//! content as UTF-8) and a `.metadata.yml` entry listing each config's group, dataId, desc, type
//! and appName (Nacos 1.4.2+ `ConfigController#exportConfigV2`, 3.x `ConfigControllerV3#exportConfig`;
//! `ZipUtils.zip` writes each content with `getBytes(UTF_8)`, `YamlParserUtil.dumpObject` the
//! metadata, leaving out null fields). Neither version writes tags (`ConfigExportItem` has no
//! tags before 3.0, and 3.x's export does not set them).
//!
//! The zip is the node's answer, so attacker-controlled: every entry is checked against the
//! metadata and the other way round, each entry's CRC is checked as it is read, and what it
//! inflates to is capped (a zip bomb is an error, not an allocation).

use crate::model::{canonical_namespace, ConfigItem, ConfigKey};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;

/// The metadata entry of a v2 export (`Constants.CONFIG_EXPORT_METADATA_NEW`).
pub const METADATA_ENTRY: &str = ".metadata.yml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    #[serde(default)]
    metadata: Option<Vec<MetaItem>>,
}

/// `ConfigMetadata.ConfigExportItem`; 3.x adds `configTags` (never set by its export).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MetaItem {
    group: String,
    data_id: String,
    #[serde(default)]
    desc: Option<String>,
    #[serde(default)]
    r#type: Option<String>,
    #[serde(default)]
    app_name: Option<String>,
    #[serde(default)]
    config_tags: Option<String>,
}

/// Items per YAML parse of a block-style metadata list.
const METADATA_BATCH: usize = 256;

/// The items of the metadata entry. `serde_norway` loads a whole document's events before it
/// deserializes any (about 2 KB per item: 50 MB for a namespace of 25,000 configs), so the
/// block style every version writes (SnakeYAML's default in `YamlParserUtil.dumpObject`:
/// `metadata:`, then each item from a `- ` line at column 0) is parsed [`METADATA_BATCH`] items
/// at a time. A line at column 0 can only start the next item there: a scalar's own lines are
/// indented under its key. Anything else is parsed as one document.
fn metadata_items(text: &str) -> Result<Vec<MetaItem>, serde_norway::Error> {
    let Some(list) = text
        .strip_prefix("metadata:\n")
        .filter(|l| l.starts_with("- "))
    else {
        let meta: Metadata = serde_norway::from_str(text)?;
        return Ok(meta.metadata.unwrap_or_default());
    };
    // Where each item starts.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(list.match_indices("\n- ").map(|(i, _)| i + 1))
        .collect();
    let mut out = Vec::with_capacity(starts.len());
    for batch in starts.chunks(METADATA_BATCH) {
        let from = batch[0];
        let to = starts
            .get(out.len() + batch.len())
            .copied()
            .unwrap_or(list.len());
        let items: Vec<MetaItem> = serde_norway::from_str(&list[from..to])?;
        if items.len() != batch.len() {
            return Err(serde::de::Error::custom(format!(
                "{} item(s) where {} lines start one",
                items.len(),
                batch.len()
            )));
        }
        out.extend(items);
    }
    Ok(out)
}

/// The configs of one namespace's export, sorted by key, with content, desc, type and appName.
/// `limit` caps what all entries together may inflate to (bytes).
pub fn export_zip(bytes: &[u8], namespace: &str, limit: usize) -> Result<Vec<ConfigItem>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("the export is not a readable zip ({e}); truncated answer?"))?;
    let mut budget = limit;
    let mut contents: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut metadata: Option<String> = None;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("export entry {i}: {e}"))?;
        let name = entry
            .name()
            .map_err(|e| format!("export entry {i} has no readable name ({e})"))?
            .into_owned();
        if entry.is_dir() {
            return Err(format!(
                "export entry {i} is a directory (`{}`), not a config",
                super::shape::snippet(&name)
            ));
        }
        let mut data = Vec::new();
        let read = (&mut entry)
            .take(budget as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|e| {
                format!(
                    "export entry `{}` cannot be read ({e}); corrupt or truncated answer?",
                    super::shape::snippet(&name)
                )
            })?;
        if read > budget {
            return Err(format!(
                "the export inflates to more than {limit} bytes (audit.max_body_mib): not read"
            ));
        }
        budget -= read;
        let text = String::from_utf8(data).map_err(|_| {
            format!(
                "export entry `{}` is not UTF-8",
                super::shape::snippet(&name)
            )
        })?;
        if name == METADATA_ENTRY {
            if metadata.replace(text).is_some() {
                return Err(format!("the export holds `{METADATA_ENTRY}` twice"));
            }
            continue;
        }
        // `group/dataId`: neither may hold a `/` (`ParamUtils.isValid`).
        let Some((group, data_id)) = name
            .split_once('/')
            .filter(|(g, d)| !g.is_empty() && !d.is_empty() && !d.contains('/'))
        else {
            return Err(format!(
                "export entry `{}` is not `group/dataId`",
                super::shape::snippet(&name)
            ));
        };
        let key = (group.to_owned(), data_id.to_owned());
        if contents.insert(key, text).is_some() {
            return Err(format!(
                "the export holds `{}` twice",
                super::shape::snippet(&name)
            ));
        }
    }
    let Some(metadata) = metadata else {
        return Err(format!(
            "the export has no `{METADATA_ENTRY}` (not a v2 export: desc, type and appName unknown)"
        ));
    };
    let items = metadata_items(&metadata)
        .map_err(|e| format!("`{METADATA_ENTRY}` of the export is not its YAML ({e})"))?;
    drop(metadata);
    if items.len() != contents.len() {
        return Err(format!(
            "the export lists {} config(s) in `{METADATA_ENTRY}` but holds {}",
            items.len(),
            contents.len()
        ));
    }
    let want = canonical_namespace(namespace);
    let mut out = Vec::with_capacity(items.len());
    for m in items {
        let Some(content) = contents.remove(&(m.group.clone(), m.data_id.clone())) else {
            return Err(format!(
                "`{METADATA_ENTRY}` lists `{}/{}`, which the export does not hold (or lists twice)",
                super::shape::snippet(&m.group),
                super::shape::snippet(&m.data_id)
            ));
        };
        let _ = m.config_tags;
        out.push(ConfigItem {
            key: ConfigKey {
                namespace: want.clone(),
                group: m.group,
                data_id: m.data_id,
                variant: String::new(),
            },
            md5: String::new(),
            content: Some(content),
            r#type: m.r#type.unwrap_or_default(),
            app: m.app_name.unwrap_or_default(),
            desc: m.desc.unwrap_or_default(),
            tags: Vec::new(),
            modified_ms: None,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LIMIT: usize = 1 << 20;

    /// Exports of one namespace captured from the bed's 2.0.4, 2.3.2 and 3.1 nodes: three
    /// configs, one with a two-line desc in quotes and non-ASCII text, one without desc, one
    /// with an empty desc (`fixtures/answers/export/`).
    #[test]
    fn real_exports_give_content_desc_type_and_app() {
        for (name, zip) in [
            (
                "2.0.4",
                &include_bytes!("../../../fixtures/answers/export/nacos-2.0.4.zip")[..],
            ),
            (
                "2.3.2",
                &include_bytes!("../../../fixtures/answers/export/nacos-2.3.2.zip")[..],
            ),
            (
                "3.1",
                &include_bytes!("../../../fixtures/answers/export/nacos-3.1.zip")[..],
            ),
        ] {
            let items = export_zip(zip, "apiscale-fixture", LIMIT).unwrap();
            let keys: Vec<&str> = items.iter().map(|c| c.key.data_id.as_str()).collect();
            assert_eq!(
                keys,
                ["empty-desc.txt", "odd.yaml", "plain.properties"],
                "{name}"
            );
            let odd = &items[1];
            assert_eq!(odd.key.group, "APP");
            assert_eq!(odd.key.namespace, "apiscale-fixture");
            assert_eq!(
                odd.content.as_deref(),
                Some("a: 1\nb: \"x\"\n# ünïcödé\n"),
                "{name}"
            );
            assert_eq!(
                odd.desc, "two lines: \"quoted\" 'single'\nsecond ünïcödé: # not a comment",
                "{name}"
            );
            assert_eq!((odd.r#type.as_str(), odd.app.as_str()), ("yaml", "orders"));
            assert!(odd.tags.is_empty(), "{name}: no export carries tags");
            assert_eq!(items[0].content.as_deref(), Some(": null"));
            assert_eq!(items[2].desc, "");
            assert_eq!(items[2].r#type, "text");
        }
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    const META: &str = "metadata:\n- dataId: a.yaml\n  group: APP\n  type: yaml\n";

    #[test]
    fn a_wrong_export_is_an_error_never_fewer_configs() {
        let good = zip_of(&[("APP/a.yaml", b"x: 1"), (METADATA_ENTRY, META.as_bytes())]);
        assert_eq!(export_zip(&good, "ns", LIMIT).unwrap().len(), 1);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("not a zip", b"{\"code\":500}".to_vec()),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("no metadata", zip_of(&[("APP/a.yaml", b"x: 1")])),
            (
                "metadata lists more",
                zip_of(&[
                    ("APP/a.yaml", b"x: 1"),
                    (
                        METADATA_ENTRY,
                        format!("{META}- dataId: b.yaml\n  group: APP\n").as_bytes(),
                    ),
                ]),
            ),
            (
                "an entry not in the metadata",
                zip_of(&[
                    ("APP/a.yaml", b"x: 1"),
                    ("APP/b.yaml", b"x: 2"),
                    (METADATA_ENTRY, META.as_bytes()),
                ]),
            ),
            (
                "metadata names another config",
                zip_of(&[("APP/b.yaml", b"x: 1"), (METADATA_ENTRY, META.as_bytes())]),
            ),
            (
                "metadata of another shape",
                zip_of(&[("APP/a.yaml", b"x: 1"), (METADATA_ENTRY, b"- 1\n- 2\n")]),
            ),
            (
                "an entry that is no group/dataId",
                zip_of(&[("a.yaml", b"x: 1"), (METADATA_ENTRY, META.as_bytes())]),
            ),
            (
                "content that is not UTF-8",
                zip_of(&[
                    ("APP/a.yaml", b"\xff\xfe"),
                    (METADATA_ENTRY, META.as_bytes()),
                ]),
            ),
            (
                "metadata twice",
                zip_of(&[
                    ("APP/a.yaml", b"x: 1"),
                    (METADATA_ENTRY, META.as_bytes()),
                    ("APP/../.metadata.yml", META.as_bytes()),
                ]),
            ),
        ];
        for (what, body) in cases {
            assert!(export_zip(&body, "ns", LIMIT).is_err(), "{what}");
        }
        // A zip bomb: what the entries inflate to is capped.
        let big = vec![b'a'; 4 << 20];
        let bomb = zip_of(&[("APP/a.yaml", &big), (METADATA_ENTRY, META.as_bytes())]);
        assert!(bomb.len() < LIMIT);
        let e = export_zip(&bomb, "ns", LIMIT).unwrap_err();
        assert!(e.contains("inflates to more than"), "{e}");
    }

    #[test]
    fn a_corrupt_entry_fails_its_crc() {
        let mut z = zip_of(&[("APP/a.yaml", b"x: 1"), (METADATA_ENTRY, META.as_bytes())]);
        // Stored (deflate of 4 bytes may store): flip a byte of the first entry's data.
        let at = z.windows(4).position(|w| w == b"x: 1");
        if let Some(at) = at {
            z[at] = b'y';
            assert!(export_zip(&z, "ns", LIMIT).is_err());
        }
    }

    /// The block-style metadata is parsed in batches and gives exactly what one parse of the
    /// whole document gives; anything else still goes through one parse, and an extra line at
    /// column 0 is an error either way.
    #[test]
    fn metadata_in_batches_is_the_whole_documents_parse() {
        let whole = |t: &str| {
            serde_norway::from_str::<Metadata>(t)
                .map(|m| m.metadata.unwrap_or_default())
                .map(|v| {
                    v.into_iter()
                        .map(|m| (m.group, m.data_id, m.desc, m.r#type, m.app_name))
                        .collect::<Vec<_>>()
                })
        };
        let batched = |t: &str| {
            metadata_items(t).map(|v| {
                v.into_iter()
                    .map(|m| (m.group, m.data_id, m.desc, m.r#type, m.app_name))
                    .collect::<Vec<_>>()
            })
        };
        let mut docs: Vec<String> = Vec::new();
        for zip in [
            &include_bytes!("../../../fixtures/answers/export/nacos-2.0.4.zip")[..],
            &include_bytes!("../../../fixtures/answers/export/nacos-3.1.zip")[..],
        ] {
            let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
            let mut t = String::new();
            z.by_name(METADATA_ENTRY)
                .unwrap()
                .read_to_string(&mut t)
                .unwrap();
            docs.push(t);
        }
        // 600 items: three batches, the last one short; block scalars and quotes among them.
        let mut big = String::from("metadata:\n");
        for i in 0..600 {
            big.push_str(&format!(
                "- appName: app-{i}\n  dataId: d-{i}.yaml\n  desc: |-\n    line one {i}\n\n    - not an item\n  group: G\n  type: yaml\n"
            ));
        }
        docs.push(big);
        docs.push("metadata:\n- dataId: a\n  group: G\n  desc: \"x\\n- y\"\n".into());
        for d in &docs {
            let w = whole(d).unwrap();
            assert_eq!(batched(d).unwrap(), w, "{d}");
        }
        assert_eq!(batched(&docs[2]).unwrap().len(), 600);
        assert_eq!(batched(&docs[2]).unwrap()[599].1, "d-599.yaml");
        // Not the block style: one parse, same answer.
        let flow = "metadata: [{dataId: a, group: G}]\n";
        assert_eq!(batched(flow).unwrap(), whole(flow).unwrap());
        assert!(batched("metadata: []\n").unwrap().is_empty());
        // What the whole parse refuses, the batches refuse.
        for bad in [
            "metadata:\n- dataId: a\n  group: G\nother: 1\n",
            "metadata:\n- dataId: a\n  group: G\n  extra: 1\n",
            "metadata:\n- dataId: a\n  group: G\n---\n- dataId: b\n  group: G\n",
        ] {
            assert!(whole(bad).is_err(), "{bad}");
            assert!(batched(bad).is_err(), "{bad}");
        }
    }
}
