//! Reaching a node's gRPC port: its address from the HTTP base URL, the local IP reported to
//! it, the TLS connector of an `https://` node's channel, and naming a connect failure.

use std::sync::Arc;

/// Offset from a node's HTTP port to its cluster gRPC port.
pub const CLUSTER_PORT_OFFSET: u16 = 1001;

/// The cluster gRPC address (`host:port`) of a node given by its HTTP base URL,
/// e.g. `http://127.0.0.1:18858/nacos` → `127.0.0.1:19859`.
pub fn cluster_grpc_addr(http_base: &str) -> Result<String, String> {
    let rest = http_base
        .split_once("://")
        .map_or(http_base, |(_, r)| r)
        .split('/')
        .next()
        .unwrap_or("");
    let (host, port) = match rest.rsplit_once(':') {
        // `[::1]` without a port has its last ':' inside the brackets.
        Some((h, p)) if !p.ends_with(']') => (h, p),
        _ => (rest, "8848"),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{http_base}: bad port {port:?}"))?;
    let grpc = port
        .checked_add(CLUSTER_PORT_OFFSET)
        .ok_or_else(|| format!("{http_base}: port {port} has no cluster gRPC port"))?;
    if host.is_empty() {
        return Err(format!("{http_base}: no host"));
    }
    Ok(format!("{host}:{grpc}"))
}

/// The source chain of an error on one line (tonic's top-level text is just "transport error").
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// The local IP the OS would use to reach `addr`, reported as the client IP like Java does;
/// a UDP "connect" sends no packet. Empty when unknown (the server accepts that).
pub(super) fn local_ip_towards(addr: &str) -> String {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect(addr)?;
            s.local_addr()
        })
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// The connector of a TLS channel: TCP, then a rustls handshake with the side's client config
/// (the same trust as its `https://` nodes: system roots plus its CA file, or none with
/// `nacos_tls_insecure_skip_verify`) offering only `h2`, as grpc-java's server requires.
pub(super) fn tls_connector(
    cfg: &Arc<rustls::ClientConfig>,
    addr: &str,
) -> impl tower::Service<
    tonic::codegen::http::Uri,
    Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    Error = Box<dyn std::error::Error + Send + Sync>,
    Future = impl Send,
> + Send
       + 'static {
    let mut cfg = (**cfg).clone();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let cfg = Arc::new(cfg);
    let addr = addr.to_owned();
    // The name checked against the certificate: the host of the node's URL (brackets off an
    // IPv6 literal).
    let host = addr
        .rsplit_once(':')
        .map_or(addr.as_str(), |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    tower::service_fn(move |_uri: tonic::codegen::http::Uri| {
        let (cfg, addr, host) = (cfg.clone(), addr.clone(), host.clone());
        async move {
            let name = rustls::pki_types::ServerName::try_from(host)?;
            let tcp = tokio::net::TcpStream::connect(&addr).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(hyper_util::rt::TokioIo::new(tls))
        }
    })
}

/// A connect failure, its certificate problem named when it has one (never just
/// "transport error"). A port that answers TLS with something else is said to be plain: the
/// cluster gRPC port of Nacos before 2.4.0 always is, and 2.4.0+ serves TLS there only with
/// `nacos.remote.peer.rpc.tls.enableTls` (`ClusterDefaultTlsProtocolNegotiatorBuilder`).
pub(super) fn connect_failure(text: &str, tls: bool) -> String {
    match crate::tls::name_failure_text(text) {
        Some(named) if tls && named.contains("did not answer in TLS") => format!(
            "TLS: the cluster gRPC port does not speak TLS (Nacos serves it in TLS only from 2.4.0, with nacos.remote.peer.rpc.tls.enableTls; this channel follows the node's https:// URL and never falls back to plain text): repair this node with the whole-node reload, `audit --fix --full` [{text}]"
        ),
        Some(named) if tls => named,
        _ => format!("connect failed: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_port_is_http_plus_1001() {
        assert_eq!(
            cluster_grpc_addr("http://127.0.0.1:18858/nacos").unwrap(),
            "127.0.0.1:19859"
        );
        assert_eq!(
            cluster_grpc_addr("http://nacos-1/nacos").unwrap(),
            "nacos-1:9849"
        );
        assert!(cluster_grpc_addr("http://h:65000/").is_err());
    }

    #[test]
    fn a_tls_connect_failure_is_named_and_a_plain_port_gets_the_way_out() {
        let plain = connect_failure(
            "transport error: received corrupt message of type InvalidContentType",
            true,
        );
        assert!(
            plain.starts_with("TLS: the cluster gRPC port does not speak TLS")
                && plain.contains("audit --fix --full"),
            "{plain}"
        );
        let ca = connect_failure("invalid peer certificate: UnknownIssuer", true);
        assert!(ca.contains("unknown certificate authority"), "{ca}");
        assert_eq!(
            connect_failure("Connection refused (os error 111)", true),
            "connect failed: Connection refused (os error 111)"
        );
    }
}
