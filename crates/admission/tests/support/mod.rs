//! Shared fixtures: real-shaped AdmissionReviews for every workload kind, and a webhook served
//! over TLS on loopback with a client that trusts only the printed CA.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use admission::engine::Policies;
use admission::metrics::Metrics;
use admission::server::{AppState, INFLIGHT_BODY_BYTES, Inflight, app};
use admission::tls::{self, CertStore, TlsListener};
use axum::extract::DefaultBodyLimit;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Every kind with a pod template: (group, version, kind, plural), from the webhook's own list.
pub fn kinds() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    admission::workload::KINDS
        .iter()
        .map(|k| (k.group, k.version, k.kind, k.plural))
        .collect()
}

/// A pod spec that passes every default policy as written.
pub fn compliant_pod_spec() -> Value {
    json!({
        "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}}]}},
        "containers": [{
            "name": "web",
            "image": "ghcr.io/ferrostack/ferrostack:0.1.0",
            "args": ["backend-api"],
            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]}},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent"
        }],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30
    })
}

/// An object of `kind` around `pod_spec`, shaped as the API server sends it.
pub fn object(group: &str, version: &str, kind: &str, pod_spec: Value) -> Value {
    let api_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    let labels =
        json!({"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "ferrostack"});
    let metadata = json!({
        "name": "web",
        "namespace": "shop",
        "uid": "3d4bd0ea-6f1b-4a59-9a3c-4ad1f4b0c001",
        "creationTimestamp": null,
        "labels": labels,
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
            "apiVersion": api_version, "time": "2026-11-21T16:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app.kubernetes.io/name": {}}}}}]
    });
    let template = json!({"metadata": {"labels": labels}, "spec": pod_spec});
    let spec = match kind {
        "Pod" => pod_spec,
        "CronJob" => json!({"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": template}}}),
        "Job" | "DaemonSet" => {
            json!({"selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}, "template": template})
        }
        _ => json!({"replicas": 3, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
            "strategy": {"type": "RollingUpdate"}, "template": template}),
    };
    let mut o =
        json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec});
    if kind != "Pod" {
        o["status"] = json!({});
    }
    o
}

/// A real-shaped AdmissionReview v1 request.
pub fn review(
    (group, version, kind, plural): (&str, &str, &str, &str),
    operation: &str,
    object: Value,
    old_object: Value,
    dry_run: bool,
) -> Value {
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": plural});
    let options_kind = match operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("0df28fbd-5f5f-11e8-bc74-{:012x}", rand_uid()),
            "kind": gvk, "resource": gvr,
            "requestKind": gvk, "requestResource": gvr,
            "name": "web",
            "namespace": "shop",
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "uid": "aws-iam-authenticator:0123",
                "groups": ["system:masters", "system:authenticated"],
                "extra": {"accessKeyId": ["AKIAEXAMPLE"]}},
            "object": object,
            "oldObject": old_object,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind, "fieldManager": "kubectl-client-side-apply"}
        }
    })
}

fn rand_uid() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The (group, version, kind, plural) of `kind`.
pub fn gvk(kind: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    kinds()
        .into_iter()
        .find(|k| k.2 == kind)
        .expect("known kind")
}

/// A webhook serving on loopback over TLS.
pub struct Server {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub metrics: Metrics,
    pub store: Arc<CertStore>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the webhook with `policies` and a fresh self-signed CA for 127.0.0.1 and localhost.
pub async fn serve(policies: Policies) -> Server {
    let generated = tls::self_signed(&["localhost".into(), "127.0.0.1".into()], 1).unwrap();
    let store = CertStore::new(
        tls::certified_key(generated.cert_pem.as_bytes(), generated.key_pem.as_bytes()).unwrap(),
    );
    serve_with(policies, store, generated.ca_pem).await
}

/// Starts the webhook serving from `store`.
pub async fn serve_with(policies: Policies, store: Arc<CertStore>, ca_pem: String) -> Server {
    serve_budget(policies, store, ca_pem, Duration::from_secs(5)).await
}

/// Starts the webhook with a fresh self-signed CA and the review budget `review_timeout`.
pub async fn serve_with_budget(policies: Policies, review_timeout: Duration) -> Server {
    let generated = tls::self_signed(&["localhost".into(), "127.0.0.1".into()], 1).unwrap();
    let store = CertStore::new(
        tls::certified_key(generated.cert_pem.as_bytes(), generated.key_pem.as_bytes()).unwrap(),
    );
    serve_budget(policies, store, generated.ca_pem, review_timeout).await
}

async fn serve_budget(
    policies: Policies,
    store: Arc<CertStore>,
    ca_pem: String,
    review_timeout: Duration,
) -> Server {
    let metrics = Metrics::default();
    let state = AppState {
        namespaces: None,
        policies: Arc::new(policies),
        metrics: metrics.clone(),
        review_timeout,
        inflight: Inflight::new(INFLIGHT_BODY_BYTES, 1024 * 1024),
    };
    let router = app(state).layer(DefaultBodyLimit::max(1024 * 1024));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener::new(tcp, tls::server_config(Arc::clone(&store)).unwrap()).unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server {
        addr,
        ca_pem,
        metrics,
        store,
        task,
    }
}

/// A TLS connector trusting only `ca_pem`.
pub fn connector(ca_pem: &str) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Connects over TLS, verifying the server against `ca_pem` for `server_name`.
pub async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    server_name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    connector(ca_pem).connect(name, tcp).await
}

/// An HTTP/1.1 keep-alive connection over verified TLS.
pub type Client = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Opens a keep-alive connection to `server`, verified against `ca_pem`.
pub async fn client(server: &Server, ca_pem: &str) -> Client {
    let tls = connect(server.addr, ca_pem, "localhost").await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// POSTs `body` with `content_type` over a fresh verified TLS connection; returns the status
/// and the body.
pub async fn post_raw(
    server: &Server,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Bytes) {
    let mut sender = client(server, &server.ca_pem).await;
    send(&mut sender, path, content_type, body).await
}

/// POSTs `body` on an open connection; returns the status and the body.
pub async fn send(
    sender: &mut Client,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Bytes) {
    sender.ready().await.unwrap();
    let req = hyper::Request::post(path)
        .header("host", "localhost")
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

/// POSTs a review as JSON; returns the status and the parsed body.
pub async fn post(server: &Server, path: &str, review: &Value) -> (u16, Value) {
    let (status, body) = post_raw(
        server,
        path,
        "application/json",
        serde_json::to_vec(review).unwrap(),
    )
    .await;
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{status} {e}: {}", String::from_utf8_lossy(&body)));
    (status, value)
}

/// The decoded JSON Patch of a mutate answer (none when there is no patch).
pub fn patch_of(answer: &Value) -> Option<json_patch::Patch> {
    let b64 = answer["response"]["patch"].as_str()?;
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("standard base64");
    Some(serde_json::from_slice(&bytes).expect("a JSON Patch"))
}
