//! TLS to a PostgreSQL warehouse, by `sslmode` as libpq reads it: `disable` (none), `prefer`
//! (TLS when the server offers it, else in the clear; the default), `require` (TLS, the
//! certificate not checked, unless `sslrootcert` is given: then as `verify-ca`), `verify-ca`
//! (the chain checked against `sslrootcert`, or the webpki roots, not the name) and
//! `verify-full` (the chain and the host name). rustls with ring, as everywhere else in sluice.
//!
//! `sslrootcert` holds the CA certificates' PEM text, not a path as in libpq: the setting is
//! stored in the workspace and must mean the same on every node.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;

/// What a warehouse's `sslmode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS, whatever the certificate.
    Require,
    /// TLS, the chain checked.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

/// Why the TLS settings cannot describe a connection.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `sslmode` is not one of the five.
    #[error(
        "sslmode `{0}` is not supported: use `disable`, `prefer` (the default), `require`, \
         `verify-ca` or `verify-full`"
    )]
    Mode(String),
    /// `sslrootcert` holds no certificate.
    #[error(
        "sslrootcert holds no PEM certificate: paste the CA certificate's text, from \
         `-----BEGIN CERTIFICATE-----` to `-----END CERTIFICATE-----`"
    )]
    RootCert,
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

impl Mode {
    /// The mode `sslmode` names (empty: the default, `prefer`).
    ///
    /// # Errors
    /// [`TlsError::Mode`] for anything else.
    pub fn parse(sslmode: &str) -> Result<Mode, TlsError> {
        Ok(match sslmode {
            "disable" => Mode::Disable,
            "" | "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => return Err(TlsError::Mode(other.to_string())),
        })
    }

    /// tokio-postgres's own mode: whether TLS is tried, and whether it must succeed.
    pub fn ssl_mode(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// The rustls configuration for `mode`, with `root_pem` (may be empty) as the trusted CAs.
/// Built per connection: a handful of microseconds next to the handshake.
///
/// # Errors
/// [`TlsError`]: no certificate in a non-empty `root_pem`, or rustls refusing the config.
pub fn client_config(mode: Mode, root_pem: &str) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mode = match mode {
        Mode::Require if !root_pem.trim().is_empty() => Mode::VerifyCa,
        other => other,
    };
    let chain = match mode {
        Mode::Disable | Mode::Prefer | Mode::Require => None,
        Mode::VerifyCa | Mode::VerifyFull => Some(webpki(&provider, root_pem)?),
    };
    let verifier = Arc::new(Verifier {
        chain,
        name_checked: mode == Mode::VerifyFull,
        algorithms: provider.signature_verification_algorithms,
    });
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The chain checker over `root_pem`'s certificates, or the webpki (Mozilla) roots.
fn webpki(
    provider: &Arc<CryptoProvider>,
    root_pem: &str,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    if root_pem.trim().is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(root_pem.as_bytes())
                .filter_map(Result::ok)
                .collect();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(TlsError::RootCert);
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))
}

/// The server's certificate as the mode wants it checked: the handshake's signature always
/// (so the session is encrypted to the certificate's key); the chain only when `chain` is set
/// (`verify-*`; `prefer` and `require` accept any certificate, libpq's meaning); the name only
/// when `name_checked` (`verify-full`).
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    name_checked: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name_checked => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_libpq_names_them() {
        assert_eq!(Mode::parse("").unwrap(), Mode::Prefer);
        assert_eq!(Mode::parse("verify-full").unwrap(), Mode::VerifyFull);
        let e = Mode::parse("allow").unwrap_err().to_string();
        assert!(
            e.contains("sslmode `allow`") && e.contains("verify-full"),
            "{e}"
        );
    }

    #[test]
    fn a_root_cert_without_pem_is_refused_by_name() {
        let e = client_config(Mode::VerifyCa, "/etc/ssl/ca.pem").unwrap_err();
        assert!(matches!(e, TlsError::RootCert), "{e}");
        assert!(client_config(Mode::VerifyFull, "").is_ok());
    }
}
