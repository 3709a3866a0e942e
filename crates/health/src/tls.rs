//! TLS for probes: rustls client configs (Mozilla roots plus an optional CA file, or no
//! verification at all when a target asks for it), and the leaf certificate's expiry, read
//! during the handshake so that it is known even when verification rejects the certificate.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

/// A target's TLS client: the config, and how it verifies, kept apart because each
/// handshake installs its own verifier to record the server's certificate.
#[derive(Debug, Clone)]
pub struct TlsClient {
    pub(crate) config: Arc<ClientConfig>,
    check: Check,
}

/// How a client verifies servers: against roots (`webpki`), or not at all
/// (`tls.insecure-skip-verify: true`). Handshake signatures are checked either way.
#[derive(Debug, Clone)]
struct Check {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

/// The leaf certificate's expiry (Unix seconds) as seen by one handshake.
#[derive(Debug)]
pub(crate) struct SeenExpiry(AtomicI64);

/// One handshake's verifier: notes the leaf certificate's expiry, then checks as told.
#[derive(Debug)]
struct Verifier {
    check: Check,
    seen: Arc<SeenExpiry>,
}

// === impl TlsClient ===

impl TlsClient {
    /// Builds a client; `ca_file` adds PEM roots, `insecure` skips verification (the
    /// certificate is still read, so `[CERTIFICATE_EXPIRATION]` works).
    pub(crate) fn new(ca_file: Option<&Path>, insecure: bool) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let webpki = if insecure {
            None
        } else {
            let mut roots =
                RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(path) = ca_file {
                // Bounded: a wrong path (`/dev/zero`) is an error, not unbounded memory.
                let pem = runtime::files::read_capped(path, runtime::files::MAX_CONFIG_BYTES)
                    .map_err(|e| e.to_string())?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!("{} holds no PEM certificate", path.display()));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
                }
            }
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| e.to_string())?,
            )
        };
        let check = Check {
            webpki,
            provider: provider.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            // Replaced for every handshake (`for_handshake`); the builder needs one.
            .with_custom_certificate_verifier(Arc::new(check.verifier().0))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Every probe does a full handshake, as blackbox_exporter's do: the `tls` phase is a
        // real handshake, and a renewed or expired certificate is seen at once, not hidden
        // behind a resumed session that carries the old one.
        config.resumption = Resumption::disabled();
        Ok(Self {
            config: Arc::new(config),
            check,
        })
    }

    /// The config for one handshake, and where it records the leaf certificate's expiry
    /// (before verifying it, so a rejected certificate's expiry is known too).
    pub(crate) fn for_handshake(&self) -> (Arc<ClientConfig>, Arc<SeenExpiry>) {
        let (verifier, seen) = self.check.verifier();
        let mut config = (*self.config).clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(verifier));
        (Arc::new(config), seen)
    }
}

// === impl Check ===

impl Check {
    /// A verifier for one handshake and the expiry it will record.
    fn verifier(&self) -> (Verifier, Arc<SeenExpiry>) {
        let seen = Arc::new(SeenExpiry(AtomicI64::new(i64::MIN)));
        let verifier = Verifier {
            check: self.clone(),
            seen: seen.clone(),
        };
        (verifier, seen)
    }
}

// === impl SeenExpiry ===

impl SeenExpiry {
    /// The expiry, if the server presented a readable certificate.
    pub(crate) fn get(&self) -> Option<i64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|t| *t != i64::MIN)
    }
}

// === impl Verifier ===

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(t) = not_after(end_entity) {
            self.seen.0.store(t, Ordering::Relaxed);
        }
        match &self.check.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Ok(ServerCertVerified::assertion()),
        }
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
            &self.check.provider.signature_verification_algorithms,
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
            &self.check.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.check
            .provider
            .signature_verification_algorithms
            .supported_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.check.webpki.as_ref()?.root_hint_subjects()
    }
}

/// Unix time (seconds) at which a DER certificate stops being valid.
pub(crate) fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    x509_parser::parse_x509_certificate(cert.as_ref())
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp())
}
