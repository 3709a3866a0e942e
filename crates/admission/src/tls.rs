//! TLS: a rustls server whose certificate can be swapped while serving, PEM files reloaded
//! when Kubernetes swaps a mounted Secret (`..data` symlink), a self-signed CA plus serving
//! certificate, and a TLS listener for `axum::serve`.
//!
//! kubelet updates a Secret volume by writing a new timestamped directory and renaming the
//! `..data` symlink over the old one; the `tls.crt` / `tls.key` paths are symlinks through
//! `..data`, so their own inode never changes. The watcher therefore watches the *directory*
//! holding the files and re-reads both paths on any event there (plus a slow poll as a
//! fallback); a pair that does not parse or does not match is logged and the old one kept.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use runtime::files::{self, MAX_CONFIG_BYTES};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Longest a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the files are re-read even without a file-system event.
const POLL_INTERVAL: Duration = Duration::from_secs(60);

/// Why TLS material cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// PEM text without a usable certificate or key.
    #[error("{what}: {message}")]
    Pem {
        /// `certificate` or `private key`.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// rustls refused the pair or the configuration.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// Certificate generation failed.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The file watcher could not start.
    #[error("watching certificate files: {0}")]
    Watch(#[from] notify::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds a signing certificate chain from PEM text, checking that the key matches.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: "certificate",
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            what: "certificate",
            message: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
        what: "private key",
        message: e.to_string(),
    })?;
    let signer = provider().key_provider.load_private_key(key)?;
    let ck = CertifiedKey::new(chain, signer);
    ck.keys_match()?;
    Ok(ck)
}

/// Reads and checks a certificate chain and key from PEM files.
pub fn load_files(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    certified_key(&read_pem(cert)?, &read_pem(key)?)
}

/// Reads one PEM file: a regular file of at most [`MAX_CONFIG_BYTES`] (a FIFO there would stall
/// every later reload; a refused file keeps the old pair).
fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let err = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    // TlsError::Read names the path already: only the reason goes into its source.
    files::read_regular_capped(path, MAX_CONFIG_BYTES).map_err(|e| match e {
        files::ReadError::Io { source, .. } => err(source),
        _ => err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_CONFIG_BYTES} bytes"),
        )),
    })
}

/// The serving certificate, swappable while connections are accepted.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

// === impl CertStore ===

impl CertStore {
    /// A store serving `key`.
    pub fn new(key: CertifiedKey) -> Arc<Self> {
        Arc::new(CertStore {
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// Serves `key` from the next handshake on.
    pub fn set(&self, key: CertifiedKey) {
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(key);
        }
    }

    /// The certificate served now (leaf first).
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// A rustls server configuration (TLS 1.2 and 1.3, HTTP/1.1) serving from `store`.
pub fn server_config(store: Arc<CertStore>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A CA and a serving certificate it signed, as PEM.
#[derive(Clone, Debug)]
pub struct SelfSigned {
    /// The CA certificate: the `caBundle` of the webhook configuration.
    pub ca_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving certificate's private key.
    pub key_pem: String,
}

/// Generates a CA valid for `days` and a serving certificate for the DNS names and IP
/// addresses in `sans` (e.g. `webhook.ferrostack.svc`, `127.0.0.1`).
pub fn self_signed(sans: &[String], days: u32) -> Result<SelfSigned, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let now = time::OffsetDateTime::now_utc();
    let not_before = now - time::Duration::hours(1);
    let not_after = now + time::Duration::days(i64::from(days));

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "ferrostack webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(sans.to_vec())?;
    if let Some(first) = sans.first() {
        leaf.distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let cert = leaf.signed_by(&key, &Issuer::new(ca, &ca_key))?;
    Ok(SelfSigned {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Reloads `store` from `cert` and `key` whenever their directories change, until `stop`.
/// Returns once the watch is installed.
pub fn watch(
    store: Arc<CertStore>,
    cert: PathBuf,
    key: PathBuf,
    stop: CancellationToken,
    on_reload: impl Fn(bool) + Send + 'static,
) -> Result<(), TlsError> {
    use notify::Watcher as _;
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            // A full channel already holds a pending reload.
            let _ = tx.try_send(());
        }
    })?;
    let mut dirs: Vec<PathBuf> = [&cert, &key]
        .iter()
        .map(|p| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        })
        .collect();
    dirs.dedup();
    for dir in &dirs {
        watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        let _watcher = watcher;
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                Some(()) = rx.recv() => {
                    // kubelet writes several entries per update: let them settle.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = poll.tick() => {}
            }
            let (c, k) = (cert.clone(), key.clone());
            let loaded = tokio::task::spawn_blocking(move || load_files(&c, &k)).await;
            match loaded {
                Ok(Ok(new)) => {
                    let unchanged = store.current().is_some_and(|old| old.cert == new.cert);
                    if !unchanged {
                        store.set(new);
                        tracing::info!(cert = %cert.display(), "serving certificate reloaded");
                        on_reload(true);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "serving certificate not reloaded; keeping the current one");
                    on_reload(false);
                }
                Err(e) => tracing::warn!(error = %e, "certificate reload task failed"),
            }
        }
    });
    Ok(())
}

/// A listener that completes TLS handshakes in the background (a slow client cannot hold up
/// others) and hands finished connections to `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    _accept: AbortOnDropHandle<()>,
}

// === impl TlsListener ===

impl TlsListener {
    /// Accepts on `tcp` with `config`.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls handshake failed"),
                        Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            rx,
            local,
            _accept: AbortOnDropHandle::new(task),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task ended: nothing will ever arrive.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pairs_load_and_mismatched_pairs_do_not() {
        let a = self_signed(&["webhook.ferrostack.svc".into(), "127.0.0.1".into()], 30).unwrap();
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        certified_key(a.cert_pem.as_bytes(), a.key_pem.as_bytes()).unwrap();
        let b = self_signed(&["other".into()], 30).unwrap();
        assert!(certified_key(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).is_err());
        assert!(matches!(
            certified_key(b"not pem", a.key_pem.as_bytes()),
            Err(TlsError::Pem {
                what: "certificate",
                ..
            })
        ));
    }
}
