//! `faultfs BACKING MOUNTPOINT CONTROL`: a FUSE passthrough of BACKING on MOUNTPOINT (root
//! only; the pure-Rust mount of `fuser`, no libfuse) that makes chosen operations fail with a
//! real errno, for the logship disk-fault suite (dev-only, not in the image). The kernel hands
//! that errno to the caller exactly as from a failing disk. Rules are read from the file
//! CONTROL whenever it changes ([`rules`]); an empty file heals the "disk". Every injected
//! failure is printed on stderr. Runs until unmounted (`umount MOUNTPOINT`).

mod fs;
mod rules;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [backing, mountpoint, control] = args.as_slice() else {
        eprintln!("usage: faultfs BACKING MOUNTPOINT CONTROL");
        return ExitCode::from(2);
    };
    let fs = match fs::FaultFs::new(backing.clone(), control.clone()) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("faultfs: {}: {e}", backing.display());
            return ExitCode::from(2);
        }
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("faultfs".into()),
        fuser::MountOption::DefaultPermissions,
    ];
    config.acl = fuser::SessionACL::All;
    match fuser::mount(fs, mountpoint, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultfs: mount {}: {e}", mountpoint.display());
            ExitCode::from(1)
        }
    }
}
