//! SIP over TLS settings (RFC 3261 section 26.2.1, RFC 5922): whom we trust when
//! we connect to a carrier (the system's roots, and any CA given with
//! `--sip-tls-ca`), and our certificate when we take TLS connections
//! (`--sip-tls-cert`, `--sip-tls-key`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The client side: carriers' certificates are checked against the system's
/// roots and the certificates in `extra_ca` (PEM), and must name the host we
/// dialled.
pub fn client_config(extra_ca: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "a system CA certificate could not be read");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system CA certificates for SIP over TLS");
    if let Some(path) = extra_ca {
        let mut any = false;
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("--sip-tls-ca {}", path.display()))?
        {
            let cert = cert.with_context(|| format!("--sip-tls-ca {}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| anyhow!("--sip-tls-ca {}: {e}", path.display()))?;
            any = true;
        }
        if !any {
            return Err(anyhow!(
                "--sip-tls-ca {}: no PEM certificate in the file",
                path.display()
            ));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The server side: our certificate chain and its key, both PEM.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("--sip-tls-cert {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--sip-tls-cert {}", cert.display()))?;
    if chain.is_empty() {
        return Err(anyhow!(
            "--sip-tls-cert {}: no PEM certificate in the file",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("--sip-tls-key {}: no PEM private key", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| anyhow!("--sip-tls-cert/--sip-tls-key: {e}"))?;
    Ok(Arc::new(config))
}

/// The crypto the server uses everywhere (ring), named rather than left to
/// whichever provider was installed first.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_naming_the_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let err = client_config(Some(&path)).expect_err("refused");
        assert!(err.to_string().contains("--sip-tls-ca"), "{err:#}");
        let err = server_config(&path, &path).expect_err("refused");
        assert!(err.to_string().contains("--sip-tls-cert"), "{err:#}");
    }

    #[test]
    fn the_system_roots_alone_make_a_client() {
        client_config(None).expect("a client config");
    }
}
