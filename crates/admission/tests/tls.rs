//! TLS: clients verify the server against the generated CA; certificate files swapped the way
//! kubelet swaps a Secret volume are picked up while serving.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use admission::engine::Policies;
use admission::tls::{self, CertStore};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{self, compliant_pod_spec, gvk, object, post, review};

#[tokio::test]
async fn a_client_trusting_the_printed_ca_completes_a_review() {
    let server = support::serve(Policies::load(None, None).unwrap()).await;
    for name in ["localhost", "127.0.0.1"] {
        support::connect(server.addr, &server.ca_pem, name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let req = review(
        gvk("Pod"),
        "CREATE",
        object("", "v1", "Pod", compliant_pod_spec()),
        Value::Null,
        false,
    );
    let (status, answer) = post(&server, "/validate", &req).await;
    assert_eq!(
        (status, answer["response"]["allowed"].as_bool()),
        (200, Some(true))
    );
}

#[tokio::test]
async fn clients_reject_another_ca_and_names_outside_the_sans() {
    let server = support::serve(Policies::load(None, None).unwrap()).await;
    let other = tls::self_signed(&["localhost".into()], 1).unwrap();
    let err = support::connect(server.addr, &other.ca_pem, "localhost")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    let err = support::connect(server.addr, &server.ca_pem, "webhook.ferrostack.svc")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
}

/// Writes a pair the way kubelet's atomic writer updates a Secret volume: the files go into a
/// new timestamped directory, a `..data_tmp` symlink to it is renamed over `..data`, the
/// `tls.crt` / `tls.key` symlinks through `..data` are created once, and the previous
/// timestamped directory is removed.
fn kubelet_write(dir: &Path, generation: u32, cert_pem: &str, key_pem: &str) {
    let ts = dir.join(format!("..2026_11_21_16_00_0{generation}.000000000"));
    std::fs::create_dir(&ts).unwrap();
    std::fs::write(ts.join("tls.crt"), cert_pem).unwrap();
    std::fs::write(ts.join("tls.key"), key_pem).unwrap();
    let previous = std::fs::read_link(dir.join("..data")).ok();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(ts.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.join(f)).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(f), dir.join(f)).unwrap();
        }
    }
    if let Some(old) = previous {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

async fn served_leaf(addr: std::net::SocketAddr, ca_pem: &str) -> Vec<u8> {
    let tls = support::connect(addr, ca_pem, "localhost").await.unwrap();
    let (_, conn) = tls.get_ref();
    conn.peer_certificates().unwrap()[0].to_vec()
}

/// Waits until `counter` exceeds `seen` (the bound only stops a hung test; not a timing
/// assertion).
async fn wait_above(counter: &AtomicUsize, seen: usize, what: &str) {
    let what = format!("{what} after the ..data swap");
    test_support::wait_until_async(&what, Duration::from_secs(30), || {
        counter.load(Ordering::SeqCst) > seen
    })
    .await;
}

fn pod_review() -> Vec<u8> {
    serde_json::to_vec(&review(
        gvk("Pod"),
        "CREATE",
        object("", "v1", "Pod", compliant_pod_spec()),
        Value::Null,
        false,
    ))
    .unwrap()
}

/// A webhook serving the pair kubelet wrote into a Secret volume in `dir`, watched for swaps:
/// successful and refused reloads are counted.
struct Watched {
    dir: tempfile::TempDir,
    server: support::Server,
    first: tls::SelfSigned,
    reloads: Arc<AtomicUsize>,
    failures: Arc<AtomicUsize>,
    stop: CancellationToken,
}

async fn serve_a_watched_secret_volume() -> Watched {
    let dir = tempfile::tempdir().unwrap();
    let first = tls::self_signed(&["localhost".into()], 1).unwrap();
    kubelet_write(dir.path(), 1, &first.cert_pem, &first.key_pem);
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let store = CertStore::new(tls::load_files(&crt, &key).unwrap());
    let stop = CancellationToken::new();
    let reloads = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let (ok, failed) = (Arc::clone(&reloads), Arc::clone(&failures));
    tls::watch(Arc::clone(&store), crt, key, stop.clone(), move |success| {
        let counter = if success { &ok } else { &failed };
        counter.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let policies = Policies::load(None, None).unwrap();
    let server = support::serve_with(policies, store, first.ca_pem.clone()).await;
    Watched {
        dir,
        server,
        first,
        reloads,
        failures,
        stop,
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The status of a Pod review sent on `conn`.
async fn review_status(conn: &mut support::Client) -> u16 {
    support::send(conn, "/validate", "application/json", pod_review())
        .await
        .0
}

#[tokio::test]
async fn certificates_swapped_through_the_data_symlink_are_served_without_a_restart() {
    let w = serve_a_watched_secret_volume().await;
    let before = served_leaf(w.server.addr, &w.first.ca_pem).await;
    // A keep-alive connection made before the swap, as the API server keeps them.
    let mut kept = support::client(&w.server, &w.first.ca_pem).await;
    assert_eq!(review_status(&mut kept).await, 200);

    // A rotated pair from a new CA, as cert-manager or a Secret update would bring.
    let second = tls::self_signed(&["localhost".into()], 1).unwrap();
    kubelet_write(w.dir.path(), 2, &second.cert_pem, &second.key_pem);
    wait_above(&w.reloads, 0, "reload").await;
    let after = served_leaf(w.server.addr, &second.ca_pem).await;
    assert_ne!(before, after);
    // New connections verify only against the new CA; the open one keeps serving.
    let old_ca = support::connect(w.server.addr, &w.first.ca_pem, "localhost").await;
    assert!(old_ca.is_err());
    assert_eq!(review_status(&mut kept).await, 200);
    let mut fresh = support::client(&w.server, &second.ca_pem).await;
    assert_eq!(review_status(&mut fresh).await, 200);
}

#[tokio::test]
async fn a_mismatched_pair_is_refused_and_a_good_pair_after_it_is_picked_up() {
    let w = serve_a_watched_secret_volume().await;
    let current = served_leaf(w.server.addr, &w.first.ca_pem).await;
    // A mismatched pair is refused (the failure is reported) and the current one stays.
    let other = tls::self_signed(&["localhost".into()], 1).unwrap();
    kubelet_write(w.dir.path(), 2, &w.first.cert_pem, &other.key_pem);
    wait_above(&w.failures, 0, "refused reload").await;
    assert_eq!(served_leaf(w.server.addr, &w.first.ca_pem).await, current);
    assert_eq!(w.reloads.load(Ordering::SeqCst), 0);

    // A good pair after the broken one is picked up again.
    let third = tls::self_signed(&["localhost".into()], 1).unwrap();
    kubelet_write(w.dir.path(), 3, &third.cert_pem, &third.key_pem);
    wait_above(&w.reloads, 0, "reload").await;
    assert_ne!(served_leaf(w.server.addr, &third.ca_pem).await, current);
}
