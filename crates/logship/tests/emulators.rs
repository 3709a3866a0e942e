//! `az://` against Azurite (the Azure Blob emulator, `scripts/tools.sh azurite`), started by
//! the test on loopback: real shipper processes ship a producer's segments plus a file large
//! enough for a multipart upload, `verify` checks the archive; then a second shipper with a
//! lost state directory (its keys start again at sequence 0) collides with every first-run key
//! and must neither overwrite an object nor lose a line. Without Azurite the test is skipped,
//! except under `CI=true`, where it fails.
//!
//! `gs://` has no test: no GCS emulator that installs here speaks the XML API object_store
//! uses (see README "logship", Tests).

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::support::{Producer, count_files, http, wait_for, writer_config};

const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (public, in every Azure SDK).
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Azurite blob service on loopback; killed on drop.
struct Azurite {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Azurite {
    /// Starts azurite-blob (`AZURITE_BLOB`, else `.tools`, else `PATH`); `None` (skip, with a
    /// line naming it) when it is missing, a failure under `CI=true`.
    fn start() -> Option<Self> {
        let bin = test_support::tool("azurite-blob")?;
        // In memory; the working directory takes whatever else it writes.
        let dir = tempfile::tempdir().unwrap();
        let port = test_support::free_port();
        let child = Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--silent", "--disableTelemetry"])
            .arg("--skipApiVersionCheck")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite-blob");
        let azurite = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        wait_for("azurite to listen", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Some(azurite)
    }

    /// Creates a container with a SharedKey-signed request.
    fn create_container(&self, name: &str) {
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .unwrap();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
             /{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(KEY)
            .unwrap();
        let signature =
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, to_sign.as_bytes()));
        let auth = format!("SharedKey {ACCOUNT}:{signature}");
        let resp = http(
            &self.endpoint,
            "PUT",
            &format!("/{ACCOUNT}/{name}?restype=container"),
            &[
                ("x-ms-date", &date),
                ("x-ms-version", version),
                ("Authorization", &auth),
            ],
            b"",
        );
        assert!(resp.starts_with("HTTP/1.1 201"), "create container: {resp}");
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn testkit(args: &[&str], azurite: &Azurite) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logship-testkit"));
    cmd.args(args)
        .env("AZURE_STORAGE_USE_EMULATOR", "true")
        .env("AZURITE_BLOB_STORAGE_URL", &azurite.endpoint)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A producer's segments plus one ~12 MB file of random hex lines (≈6 MB compressed, so the
/// batch is uploaded in two 5 MiB parts), shipped by a real shipper process until the source
/// is empty; returns how many producer lines were written and the shipper's log.
fn produce_and_ship(azurite: &Azurite, root: &Path, producer: &str) -> (u64, String) {
    let src = root.join(producer);
    let state = root.join(format!("state-{producer}"));
    std::fs::create_dir_all(&src).unwrap();
    let mut big = std::fs::File::create(src.join(format!("0-{producer}-big.json"))).unwrap();
    let mut random = [0u8; 500];
    for _ in 0..12_000 {
        rand::rng().fill_bytes(&mut random);
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(big, "{{\"pad\":\"{hex}\"}}").unwrap();
    }
    drop(big);
    let p = Producer::start(
        writer_config(&src, 4096),
        producer,
        Duration::from_micros(200),
    );
    std::thread::sleep(Duration::from_millis(500));
    let written = p.stop();
    let (src_s, state_s) = (src.display().to_string(), state.display().to_string());
    let mut ship = testkit(
        &[
            "ship",
            "--source",
            &format!("own={src_s}"),
            "--to",
            "az://logs/archive",
            "--state-dir",
            &state_s,
            "--multipart-threshold",
            "5242880",
            "--part-size",
            "5242880",
        ],
        azurite,
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    wait_for("the source to drain", Duration::from_secs(120), || {
        count_files(&src) == 0 || ship.try_wait().unwrap().is_some()
    });
    let pid = ship.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let out = ship.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "shipper failed: {log}");
    assert_eq!(count_files(&src), 0, "everything shipped: {log}");
    (written, log.into_owned())
}

#[test]
fn az_ship_then_verify_and_a_lost_state_dir_neither_overwrites_nor_loses_a_line() {
    let Some(azurite) = Azurite::start() else {
        return;
    };
    azurite.create_container("logs");
    let tmp = tempfile::tempdir().unwrap();

    let (first, log) = produce_and_ship(&azurite, tmp.path(), "az1");
    assert!(!log.contains("already has this key"), "{log}");
    let (second, log) = produce_and_ship(&azurite, tmp.path(), "az2");
    assert!(
        log.contains("a different object already has this key"),
        "the second run collided: {log}"
    );

    let out = testkit(&["verify", "--to", "az://logs/archive"], &azurite)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (producer, lines) in [("az1", first), ("az2", second)] {
        let max = lines - 1;
        let line =
            format!("producer {producer}: lines={lines} max_seq={max} missing=0 duplicates=0");
        assert!(report.contains(&line), "{line} in\n{report}");
    }
    // Every first-run key was taken again by the second run (sequence 0 on): each collision
    // was detected, re-keyed, and the 2 x 12,000 large-file lines are all there.
    let lines: u64 = report
        .split_whitespace()
        .find_map(|w| w.strip_prefix("lines="))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(lines, first + second + 24_000, "{report}");
    assert!(report.trim_end().ends_with("OK"), "{report}");
}
