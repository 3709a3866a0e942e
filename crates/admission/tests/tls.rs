//! TLS: clients verify the server against the generated CA; certificate files swapped the way
//! kubelet swaps a Secret volume are picked up while serving.

use std::path::Path;
use std::sync::Arc;
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

/// Writes a pair the way kubelet populates a Secret volume: files in a timestamped directory,
/// `..data` a symlink to it, `tls.crt` / `tls.key` symlinks through `..data`; a later write
/// renames a new `..data` symlink over the old one.
fn kubelet_write(dir: &Path, generation: u32, pair: &tls::SelfSigned) {
    let ts = dir.join(format!("..2026_11_21_16_00_0{generation}.000000000"));
    std::fs::create_dir(&ts).unwrap();
    std::fs::write(ts.join("tls.crt"), &pair.cert_pem).unwrap();
    std::fs::write(ts.join("tls.key"), &pair.key_pem).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(ts.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.join(f)).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(f), dir.join(f)).unwrap();
        }
    }
}

async fn served_leaf(addr: std::net::SocketAddr, ca_pem: &str) -> Vec<u8> {
    let tls = support::connect(addr, ca_pem, "localhost").await.unwrap();
    let (_, conn) = tls.get_ref();
    conn.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn certificates_swapped_through_the_data_symlink_are_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = tls::self_signed(&["localhost".into()], 1).unwrap();
    kubelet_write(dir.path(), 1, &first);
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let store = CertStore::new(tls::load_files(&crt, &key).unwrap());
    let stop = CancellationToken::new();
    let reloads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&reloads);
    tls::watch(Arc::clone(&store), crt, key, stop.clone(), move |ok| {
        if ok {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .unwrap();
    let server = support::serve_with(
        Policies::load(None, None).unwrap(),
        Arc::clone(&store),
        first.ca_pem.clone(),
    )
    .await;
    let before = served_leaf(server.addr, &first.ca_pem).await;

    // A rotated pair from a new CA, as cert-manager or a Secret update would bring.
    let second = tls::self_signed(&["localhost".into()], 1).unwrap();
    kubelet_write(dir.path(), 2, &second);
    // Wait for the reload event (not a timing assertion: the bound only stops a hung test).
    let mut waited = Duration::ZERO;
    while reloads.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            waited < Duration::from_secs(30),
            "no reload after the ..data swap"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    let after = served_leaf(server.addr, &second.ca_pem).await;
    assert_ne!(before, after);
    // The old CA no longer verifies the new certificate; requests keep working.
    assert!(
        support::connect(server.addr, &first.ca_pem, "localhost")
            .await
            .is_err()
    );
    let server = support::Server {
        ca_pem: second.ca_pem.clone(),
        ..server
    };
    let req = review(
        gvk("Pod"),
        "CREATE",
        object("", "v1", "Pod", compliant_pod_spec()),
        Value::Null,
        false,
    );
    assert_eq!(post(&server, "/validate", &req).await.0, 200);

    // A broken pair is refused and the current certificate stays.
    let ts = dir.path().join("..2026_11_21_16_00_09.000000000");
    std::fs::create_dir(&ts).unwrap();
    std::fs::write(ts.join("tls.crt"), &first.cert_pem).unwrap();
    std::fs::write(ts.join("tls.key"), &second.key_pem).unwrap();
    let tmp = dir.path().join("..data_tmp");
    std::os::unix::fs::symlink(ts.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.path().join("..data")).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served_leaf(server.addr, &second.ca_pem).await, after);
    stop.cancel();
}
