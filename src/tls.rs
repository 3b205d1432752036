//! TLS for both kinds of connection: the rustls client config of a side's Nacos nodes (system
//! roots plus an optional CA bundle, or verification off when the user said so loudly), the
//! MySQL `ssl-mode` values, and naming a TLS failure from an error's source chain.
//!
//! rustls with the `ring` provider throughout: no OpenSSL is needed to build or run.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// Make `ring` the process's rustls provider (reqwest and mysql_async build their own configs
/// from it); harmless when one is installed already.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificates of a PEM bundle, or why it cannot be used (names the file).
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{}`: not a PEM certificate bundle ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "`{}`: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// The client config for a side's Nacos nodes: the system's roots plus the certificates of
/// `ca_file`; with `insecure`, no certificate is checked at all.
pub fn nacos_client_config(ca_file: Option<&Path>, insecure: bool) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    // A system store that cannot be read (a container without ca-certificates) leaves the CA
    // file as the only trust: said in the failure when a node's certificate is then unknown.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(p) = ca_file {
        for c in read_ca_file(p)? {
            roots
                .add(c)
                .map_err(|e| format!("`{}`: unusable CA certificate ({e})", p.display()))?;
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts every certificate (`nacos_tls_insecure_skip_verify`); signatures are still checked
/// so that the handshake itself is sound.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// MySQL's `--ssl-mode` values, with the mysql client's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain text only.
    Disabled,
    /// TLS when the server offers it, plain text otherwise; the certificate is not checked.
    #[default]
    Preferred,
    /// TLS or fail; the certificate is not checked.
    Required,
    /// TLS with a certificate signed by a trusted CA; the host name is not checked.
    VerifyCa,
    /// TLS with a trusted certificate issued for the host connected to.
    VerifyIdentity,
}

impl SslMode {
    /// Every value, as written in settings and DSNs.
    pub const NAMES: &'static str = "disabled, preferred, required, verify_ca or verify_identity";

    /// Parse a setting or DSN value (case and `-`/`_` insensitive: `VERIFY_CA`, `verify-ca`).
    pub fn parse(s: &str) -> Option<SslMode> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" => Some(SslMode::Disabled),
            "preferred" => Some(SslMode::Preferred),
            "required" => Some(SslMode::Required),
            "verify_ca" => Some(SslMode::VerifyCa),
            "verify_identity" => Some(SslMode::VerifyIdentity),
            _ => None,
        }
    }

    /// The name as written in settings.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "disabled",
            SslMode::Preferred => "preferred",
            SslMode::Required => "required",
            SslMode::VerifyCa => "verify_ca",
            SslMode::VerifyIdentity => "verify_identity",
        }
    }
}

/// DSN parameters that carry the TLS settings (the mysql client's option names, with `-` or `_`).
pub fn is_tls_param(k: &str) -> bool {
    matches!(k, "ssl-mode" | "ssl_mode" | "ssl-ca" | "ssl_ca")
}

/// What a TLS failure was, told from the text of an error and its sources, or `None` when the
/// error is not about TLS.
pub fn name_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut text = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut depth = 0;
    while let Some(err) = cur {
        text.push_str(&err.to_string());
        text.push('\n');
        // io::Error hides the error it wraps from `source()`: look inside it too.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            text.push_str(&inner.to_string());
            text.push('\n');
        }
        cur = err.source();
        depth += 1;
        if depth > 8 {
            break;
        }
    }
    name_failure_text(&text)
}

/// [`name_failure`] on the text of the error chain (rustls' `Display` names the cause): what
/// failed, then the line of the chain that says it, in brackets.
pub fn name_failure_text(text: &str) -> Option<String> {
    let what = failure_kind(text)?;
    let detail = text
        .lines()
        .find(|l| l.contains("certificate") || l.contains("alert") || l.contains("message"))
        .unwrap_or("")
        .trim();
    Some(if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what} [{detail}]")
    })
}

/// What a TLS failure was, without the error text (for a message that already shows it).
pub fn failure_kind(text: &str) -> Option<&'static str> {
    Some(
        if text.contains("UnknownIssuer") || text.contains("unknown issuer") {
            "TLS: the server's certificate is signed by an unknown certificate authority (give its CA file, or check that the right server answers)"
        } else if text.contains("NotValidForName") || text.contains("not valid for name") {
            "TLS: the server's certificate name does not match the host connected to"
        } else if text.contains("Expired") || text.contains("certificate expired") {
            "TLS: the server's certificate has expired"
        } else if text.contains("NotValidYet") {
            "TLS: the server's certificate is not valid yet (check the clocks)"
        } else if text.contains("Revoked") {
            "TLS: the server's certificate is revoked"
        } else if text.contains("InvalidContentType") || text.contains("corrupt message") {
            "TLS: the server did not answer in TLS (is this port plain HTTP? use http://)"
        } else if text.contains("invalid peer certificate") || text.contains("BadEncoding") {
            "TLS: the server's certificate was refused"
        } else if text.contains("received fatal alert") || text.contains("HandshakeFailure") {
            "TLS: the handshake failed"
        } else {
            return None;
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_modes_parse_as_the_mysql_client_writes_them() {
        assert_eq!(SslMode::parse("VERIFY_CA"), Some(SslMode::VerifyCa));
        assert_eq!(
            SslMode::parse("verify-identity"),
            Some(SslMode::VerifyIdentity)
        );
        assert_eq!(SslMode::parse("REQUIRED"), Some(SslMode::Required));
        assert_eq!(SslMode::parse("on"), None);
        assert_eq!(SslMode::default(), SslMode::Preferred);
    }

    #[test]
    fn certificate_problems_are_named() {
        let cases = [
            (
                "invalid peer certificate: UnknownIssuer",
                "unknown certificate authority",
            ),
            (
                "invalid peer certificate: NotValidForNameContext { expected: .. }",
                "does not match",
            ),
            (
                "invalid peer certificate: ExpiredContext { time: .. }",
                "expired",
            ),
            (
                "received corrupt message of type InvalidContentType",
                "did not answer in TLS",
            ),
        ];
        for (text, want) in cases {
            let got = name_failure_text(text).unwrap_or_default();
            assert!(got.contains(want), "{text}: {got}");
        }
        assert_eq!(name_failure_text("Connection refused (os error 111)"), None);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("nd-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("empty.pem");
        std::fs::write(&p, "hello").unwrap();
        let e = read_ca_file(&p).unwrap_err();
        assert!(
            e.contains("empty.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = read_ca_file(&dir.join("missing.pem")).unwrap_err();
        assert!(e.contains("missing.pem"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
