//! SIP over TLS: the listener's certificate and key, the roots that outbound connections (to a
//! TLS trunk) verify the provider's certificate against, and rustls's process-wide crypto
//! provider (ring), installed once.

use std::net::SocketAddr;
use std::sync::Once;

use rsipstack::transport::tls::{ReloadableCertResolver, TlsConfig};

/// Where SIP over TLS listens, and with what.
#[derive(Clone)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    /// The certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// Its private key (PKCS#8 or PKCS#1), PEM.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("listen", &self.listen)
            .field("cert_pem_bytes", &self.cert_pem.len())
            .field("key", &"(hidden)")
            .finish()
    }
}

/// Installs ring as rustls's crypto provider, once per process.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider is installed already: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A certificate and key that cannot serve TLS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The certificate file holds no PEM certificate at all.
    #[error("no PEM certificate (BEGIN CERTIFICATE) in the certificate file")]
    NoCertificate,
    /// The certificate or the key does not parse, or the key is not the certificate's.
    #[error("{reason}")]
    Unusable { reason: String },
}

/// Checks that the certificate and key load and belong together, so a bad file stops the
/// start instead of every TLS handshake.
pub fn check_certificate(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), CertificateError> {
    if count_certificates(cert_pem) == 0 {
        return Err(CertificateError::NoCertificate);
    }
    install_crypto_provider();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    ReloadableCertResolver::new(cert_pem, key_pem, provider)
        .map(|_| ())
        .map_err(|e| CertificateError::Unusable {
            reason: e.to_string(),
        })
}

/// The listener's rsipstack configuration.
pub(crate) fn listener_config(settings: &TlsSettings) -> TlsConfig {
    TlsConfig {
        cert: Some(settings.cert_pem.clone()),
        key: Some(settings.key_pem.clone()),
        ..TlsConfig::default()
    }
}

/// The outbound configuration: the provider's certificate is verified against `roots_pem`.
pub(crate) fn client_config(roots_pem: Vec<u8>) -> TlsConfig {
    TlsConfig {
        ca_certs: Some(roots_pem),
        ..TlsConfig::default()
    }
}

/// Whether `pem` holds at least one certificate (for the roots file).
pub fn count_certificates(pem: &[u8]) -> usize {
    String::from_utf8_lossy(pem)
        .matches("-----BEGIN CERTIFICATE-----")
        .count()
}
