//! The shipper as a process for the fault suites (`disk_faults`, `full_disk`): started with
//! small batches, its stderr to a file, killed if a test fails before stopping it.

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub(crate) const TESTKIT: &str = env!("CARGO_BIN_EXE_logship-testkit");

/// The shipper process; killed if the test fails before stopping it.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `logship-testkit ship` from `src` to `to`, three files a batch, stderr to `log`.
pub(crate) fn spawn_ship(src: &Path, state: &Path, to: &str, log: &Path) -> Running {
    Running(
        Command::new(TESTKIT)
            .arg("ship")
            .arg("--source")
            .arg(src)
            .args(["--to", to, "--state-dir"])
            .arg(state)
            .args(["--batch-max-files", "3"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// SIGTERM, and a clean exit.
pub(crate) fn terminate(mut ship: Running) {
    let _ = Command::new("kill")
        .args(["-TERM", &ship.0.id().to_string()])
        .status();
    assert!(ship.0.wait().unwrap().success(), "clean exit on SIGTERM");
}

/// `logship-testkit verify`'s report, whatever its exit (the callers read the report).
pub(crate) fn verify(to: &str) -> String {
    let out = Command::new(TESTKIT)
        .args(["verify", "--to", to])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
