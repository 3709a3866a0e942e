//! A real small filesystem for disk-fault tests: an ext4 image on a loop device
//! (`mount -o loop`, detached again by the kernel on unmount), so a full disk is a real ENOSPC
//! from the kernel. Needs root, `mkfs.ext4` and loop devices; without them the test is
//! skipped locally with one `SKIP` line and fails under `CI=true`. Unmounted on drop, also when
//! the test panics.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted ext4 filesystem of a chosen size in a temporary directory.
#[derive(Debug)]
pub struct LoopFs {
    mount: PathBuf,
    // Dropped after the unmount in `Drop` (fields drop after `drop` runs).
    _dir: tempfile::TempDir,
}

impl LoopFs {
    /// Makes and mounts a `mib` MiB ext4 filesystem (no reserved blocks), or `None` after the
    /// skip line (a failure under `CI=true`) when this machine cannot.
    pub fn mount(mib: u64) -> Option<Self> {
        if let Some(why) = unavailable() {
            crate::tools::unavailable(&why);
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        File::create(&image).unwrap().set_len(mib << 20).unwrap();
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", "-E", "nodiscard"],
            &image,
        );
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let status = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount)
            .status()
            .unwrap();
        assert!(status.success(), "mount -o loop {}", image.display());
        Some(Self { mount, _dir: dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// Fills the filesystem until write(2) fails with ENOSPC; the returned file holds the
    /// space until it is removed ([`LoopFs::heal`]).
    pub fn fill(&self) -> PathBuf {
        let filler = self.mount.join("filler");
        let mut file = File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 << 10];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", filler.display()),
            }
        }
        // Small writes take the last partial blocks too.
        while file.write(&[0u8; 512]).is_ok_and(|n| n > 0) {}
        let _ = file.sync_all();
        filler
    }

    /// Frees the space [`LoopFs::fill`] took.
    pub fn heal(&self) {
        std::fs::remove_file(self.mount.join("filler")).unwrap();
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        // Lazy, so a process still inside does not keep the image mounted; the loop device is
        // released with the last reference (autoclear of mount -o loop).
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// Why this machine cannot mount a loop filesystem, if it cannot.
fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("root (for mount -o loop)".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("loop devices (/dev/loop-control)".into());
    }
    if crate::tools::find_quiet("mkfs.ext4").is_none() {
        return Some("mkfs.ext4 (Debian e2fsprogs)".into());
    }
    None
}

pub(crate) fn is_root() -> bool {
    // The effective uid from /proc (no libc call: the workspace forbids unsafe code).
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn run(cmd: &str, args: &[&str], path: &Path) {
    let out = Command::new(cmd).args(args).arg(path).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("{cmd}: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("{cmd}: {e}"),
    }
}
