//! Process limits set at start: the soft open-files limit raised to the hard one.
//!
//! Every connection is a file descriptor. A shell's soft limit is often 1,024 while the hard
//! limit is far higher, so a server left at the soft limit refuses connections (accept fails
//! with EMFILE) long before the machine would; Go's runtime raises it the same way at start.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Linux's default ceiling for open files (`fs.nr_open`); a hard limit of "unlimited" cannot
/// be set as a soft limit beyond it.
const NR_OPEN_DEFAULT: u64 = 1 << 20;

/// What [`raise_open_files`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenFiles {
    /// The soft limit already was the hard one.
    Unchanged(u64),
    /// Raised `from` the old soft limit `to` the new one.
    Raised {
        /// The soft limit before.
        from: u64,
        /// The soft limit now.
        to: u64,
    },
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (at most 2^20). Never lowers it.
pub fn raise_open_files() -> nix::Result<OpenFiles> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let target = hard.min(NR_OPEN_DEFAULT);
    if soft >= target {
        return Ok(OpenFiles::Unchanged(soft));
    }
    setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
    Ok(OpenFiles::Raised {
        from: soft,
        to: target,
    })
}

/// Logs what [`raise_open_files`] did, once telemetry is up (it ran before, so that no
/// connection could be accepted under the old limit).
pub fn log_open_files(raised: &nix::Result<OpenFiles>) {
    match raised {
        Ok(OpenFiles::Raised { from, to }) => {
            tracing::debug!(from, to, "raised the open-files limit");
        }
        Ok(OpenFiles::Unchanged(limit)) => tracing::debug!(limit, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit_or_the_ceiling() {
        raise_open_files().unwrap();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert!(soft == hard || soft == NR_OPEN_DEFAULT, "{soft} of {hard}");
        // A second call has nothing left to do.
        assert_eq!(raise_open_files().unwrap(), OpenFiles::Unchanged(soft));
    }
}
