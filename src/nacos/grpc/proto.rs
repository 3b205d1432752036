//! The Nacos gRPC messages the cluster repair channel sends and reads: the `Payload` envelope
//! (Nacos `nacos_grpc_service.proto`, defined here so that no protoc is needed) and the JSON
//! bodies a cluster member of a given version sends.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// `google.protobuf.Any`, defined here so that no protoc / prost-types is needed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// Nacos `Metadata` message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metadata {
    #[prost(string, tag = "3")]
    pub r#type: String,
    #[prost(string, tag = "8")]
    pub client_ip: String,
    #[prost(map = "string, string", tag = "7")]
    pub headers: HashMap<String, String>,
}

/// Nacos `Payload` message: the only message type on both services.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<Metadata>,
    #[prost(message, optional, tag = "3")]
    pub body: Option<Any>,
}

impl Payload {
    pub(super) fn new(
        kind: &str,
        client_ip: &str,
        headers: HashMap<String, String>,
        body: &Value,
    ) -> Self {
        Payload {
            metadata: Some(Metadata {
                r#type: kind.to_owned(),
                client_ip: client_ip.to_owned(),
                headers,
            }),
            // Java leaves type_url empty too: the server dispatches on metadata.type only.
            body: Some(Any {
                type_url: String::new(),
                value: body.to_string().into_bytes(),
            }),
        }
    }

    pub(super) fn kind(&self) -> &str {
        self.metadata.as_ref().map_or("", |m| m.r#type.as_str())
    }

    pub(super) fn json(&self) -> Value {
        self.body
            .as_ref()
            .and_then(|b| serde_json::from_slice(&b.value).ok())
            .unwrap_or(Value::Null)
    }
}

pub(super) fn codec() -> tonic_prost::ProstCodec<Payload, Payload> {
    tonic_prost::ProstCodec::default()
}

/// A process-unique request id (the server only echoes it back).
pub(super) fn request_id() -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    format!("nacos-drift-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A request with no fields of its own (ServerCheckRequest, HealthCheckRequest).
pub(super) fn internal_request(kind: &str, client_ip: &str) -> Payload {
    Payload::new(
        kind,
        client_ip,
        HashMap::new(),
        &json!({"headers": {}, "requestId": request_id(), "module": "internal"}),
    )
}

/// A Nacos `Response` is a success when resultCode is 200 (ErrorResponse carries 500).
pub(super) fn is_success(resp: &Payload, v: &Value) -> bool {
    resp.kind() != "ErrorResponse" && v["resultCode"].as_i64() == Some(200)
}

pub(super) fn response_message(v: &Value) -> String {
    format!(
        "(resultCode {}, errorCode {}): {}",
        v["resultCode"],
        v["errorCode"],
        v["message"].as_str().unwrap_or("no message")
    )
}

/// The `clientVersion` a cluster member of `version` registers with: `GrpcClusterClient`
/// sends `Nacos-Server:v<version>` from 2.5.0; before, its parent `GrpcClient` sent
/// `VersionUtils.getFullClientVersion()`, `Nacos-Java-Client:v<version>`. Always `x.y.z`:
/// `VersionUtils.compareVersion` (3.x's namespace check) throws on anything else, and a throw
/// there means a namespace migration in the DB.
#[must_use]
pub fn cluster_client_version((major, minor, patch): (u32, u32, u32)) -> String {
    let prefix = if (major, minor) >= (2, 5) {
        "Nacos-Server:v"
    } else {
        "Nacos-Java-Client:v"
    };
    format!("{prefix}{major}.{minor}.{patch}")
}

/// The tenant a node of `version` expects for a namespace id: 3.x keeps the default namespace
/// as `public` (`NamespaceUtil.processNamespaceParameter`, and its members send that tenant in
/// `AsyncNotifyService`), earlier versions as "".
#[must_use]
pub fn sync_tenant((major, _, _): (u32, u32, u32), namespace: &str) -> String {
    let default = namespace.is_empty() || namespace == "public";
    match (default, major >= 3) {
        (true, true) => "public".to_owned(),
        (true, false) => String::new(),
        (false, _) => namespace.to_owned(),
    }
}

/// The `ConfigChangeClusterSyncRequest` body a member of `version` sends for a formal config:
/// `beta` false and no `tag` (so 2.5+'s gray-compatibility migration in `checkCompatity` never
/// runs), and from 2.5.0, where the handler reads it into the dump request, `grayName` null
/// (formal). `lastModified` is the dump timestamp 2.1–2.2 use; 2.3+ take the row's gmt_modified.
#[must_use]
pub fn sync_body(
    version: (u32, u32, u32),
    data_id: &str,
    group: &str,
    namespace: &str,
    last_modified_ms: i64,
) -> Value {
    let mut body = json!({
        "headers": {},
        "requestId": request_id(),
        "dataId": data_id,
        "group": group,
        "tenant": sync_tenant(version, namespace),
        "tag": null,
        "lastModified": last_modified_ms,
        "beta": false,
        "batch": false,
        "module": "config",
    });
    if version >= (2, 5, 0) {
        body["grayName"] = Value::Null;
    }
    body
}

/// [`sync_body`] for a variant (`beta`, `tag:<t>`, `gray:<g>`; "" is the formal config): up to
/// 2.4, `beta` true or the `tag` (`ConfigChangeClusterSyncRequestHandler` sets them on the dump
/// request; 2.2.x drops the tag); from 2.5.0 the `grayName` the row has in `config_info_gray`
/// (`beta`, `tag_<t>`, `<g>`), so `checkCompatity` migrates nothing.
#[must_use]
pub fn sync_body_variant(
    version: (u32, u32, u32),
    data_id: &str,
    group: &str,
    namespace: &str,
    variant: &str,
    last_modified_ms: i64,
) -> Value {
    let mut body = sync_body(version, data_id, group, namespace, last_modified_ms);
    let gray = match variant.split_once(':') {
        None if variant.is_empty() => return body,
        None => variant.to_owned(),
        Some(("tag", t)) => format!("tag_{t}"),
        Some((_, g)) => g.to_owned(),
    };
    if version >= (2, 5, 0) {
        body["grayName"] = Value::String(gray);
    } else if variant == "beta" {
        body["beta"] = Value::Bool(true);
    } else if let Some(t) = variant.strip_prefix("tag:") {
        body["tag"] = Value::String(t.to_owned());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_variant_reload_names_the_variant_as_the_nodes_version_reads_it() {
        let b = |v, variant| sync_body_variant(v, "d", "g", "ns", variant, 1);
        let mut formal = b((2, 3, 2), "");
        formal["requestId"] = Value::Null;
        let mut plain = sync_body((2, 3, 2), "d", "g", "ns", 1);
        plain["requestId"] = Value::Null;
        assert_eq!(formal, plain);
        assert_eq!(b((2, 3, 2), "beta")["beta"], true);
        assert_eq!(b((2, 3, 2), "tag:blue")["tag"], "blue");
        assert_eq!(b((2, 3, 2), "tag:blue")["beta"], false);
        assert!(b((2, 3, 2), "beta").get("grayName").is_none());
        for (variant, gray) in [("beta", "beta"), ("tag:blue", "tag_blue"), ("gray:c", "c")] {
            let x = b((3, 1, 0), variant);
            assert_eq!(x["grayName"], gray, "{variant}");
            assert_eq!(
                (x["beta"].clone(), x["tag"].clone()),
                (json!(false), Value::Null)
            );
        }
    }

    #[test]
    fn requests_look_like_a_member_of_the_nodes_version() {
        // (version, clientVersion, tenant of the default namespace, grayName sent)
        let cases = [
            ((2, 0, 4), "Nacos-Java-Client:v2.0.4", "", false),
            ((2, 3, 2), "Nacos-Java-Client:v2.3.2", "", false),
            ((2, 4, 3), "Nacos-Java-Client:v2.4.3", "", false),
            ((2, 5, 1), "Nacos-Server:v2.5.1", "", true),
            ((3, 0, 0), "Nacos-Server:v3.0.0", "public", true),
            ((3, 1, 0), "Nacos-Server:v3.1.0", "public", true),
        ];
        for (v, client, tenant, gray) in cases {
            assert_eq!(cluster_client_version(v), client, "{v:?}");
            for ns in ["", "public"] {
                let b = sync_body(v, "d", "g", ns, 1);
                assert_eq!(b["tenant"], tenant, "{v:?} {ns:?}");
                assert_eq!(b.get("grayName").is_some(), gray, "{v:?}");
                assert_eq!(b["grayName"], Value::Null);
                assert_eq!(b["beta"], false);
                assert_eq!(b["tag"], Value::Null);
            }
            assert_eq!(sync_body(v, "d", "g", "prod", 1)["tenant"], "prod");
        }
        // What 3.x's checkNamespaceCompatible needs to skip the migration: the prefix, then
        // exactly three dot-separated parts.
        let v3 = cluster_client_version((3, 1, 0));
        let after = v3.split("Nacos-Server:v").nth(1).unwrap();
        assert_eq!(after.split('.').count(), 3);
    }

    #[test]
    fn payload_round_trips_with_json_body() {
        let p = Payload::new(
            "ServerCheckRequest",
            "10.0.0.1",
            HashMap::from([("k".to_owned(), "v".to_owned())]),
            &json!({"requestId": "1"}),
        );
        let back = Payload::decode(p.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.kind(), "ServerCheckRequest");
        assert_eq!(back.json()["requestId"], "1");
        assert_eq!(back.metadata.unwrap().headers["k"], "v");
    }
}
