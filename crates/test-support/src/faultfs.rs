//! A directory whose disk fails on command: the dev-only `faultfs` FUSE passthrough
//! (crates/faultfs) mounted over a temporary backing directory. [`FaultMount::fail`] writes
//! its rules (`OP SUBSTRING EIO|ENOSPC COUNT|always`), [`FaultMount::heal`] clears them; the
//! kernel then returns that errno to the process under test as from a failing disk. Needs
//! root, /dev/fuse and the `faultfs` binary (`FAULTFS`, or beside the test binary after
//! `cargo build -p ferrostack-faultfs`); without them the test is skipped locally with one
//! `SKIP` line and fails under `CI=true`. Unmounted and stopped on drop, also on a panic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A mounted faultfs.
#[derive(Debug)]
pub struct FaultMount {
    child: Child,
    mount: PathBuf,
    control: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl FaultMount {
    /// Mounts a fresh faultfs with no rules, or `None` after the skip line.
    pub fn mount() -> Option<Self> {
        let bin = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let (backing, mount) = (dir.path().join("backing"), dir.path().join("mnt"));
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mount).unwrap();
        let (control, log) = (dir.path().join("rules"), dir.path().join("faultfs.log"));
        std::fs::write(&control, "").unwrap();
        let child = Command::new(bin)
            .args([&backing, &mount, &control])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let fm = Self {
            child,
            mount,
            control,
            log,
            _dir: dir,
        };
        crate::wait_until("faultfs to mount", Duration::from_secs(10), || {
            std::fs::read_to_string("/proc/self/mounts")
                .is_ok_and(|m| m.contains(&format!(" {} fuse", fm.mount.display())))
        });
        Some(fm)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// Replaces the rules (one a line: `OP SUBSTRING EIO|ENOSPC COUNT|always`).
    pub fn fail(&self, rules: &str) {
        // Write then rename: faultfs never reads a half-written rule file.
        let tmp = self.control.with_extension("new");
        std::fs::write(&tmp, rules).unwrap();
        std::fs::rename(&tmp, &self.control).unwrap();
    }

    /// Clears every rule: the "disk" works again.
    pub fn heal(&self) {
        self.fail("# healed\n");
    }

    /// How many failures faultfs has injected so far.
    pub fn injected(&self) -> usize {
        self.log_text().matches("injected errno").count()
    }

    /// faultfs's stderr: the rules read and each injected failure.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for FaultMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        // Unmounted, faultfs's session ends; kill it if it has not.
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The faultfs binary if this machine can mount it; otherwise the skip line and `None`.
fn binary() -> Option<PathBuf> {
    let missing = if !crate::loopfs::is_root() {
        Some("root (to mount faultfs)")
    } else if !Path::new("/dev/fuse").exists() {
        Some("/dev/fuse")
    } else {
        None
    };
    if let Some(what) = missing {
        crate::unavailable(what);
        return None;
    }
    // Beside the test binary (target/debug/deps/..), else the tool lookup (FAULTFS, PATH).
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("faultfs")))
        .filter(|p| p.is_file());
    beside.or_else(|| crate::tool("faultfs"))
}
