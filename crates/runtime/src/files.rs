//! Bounded reads of operator-supplied files (configs, policies, CA bundles, manifests): a path
//! such as `/dev/zero` or a FIFO must end in a clear error, never in unbounded memory.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The most any configuration, policy, CA or key file may hold (16 MiB): far above any real one
/// (etcd caps a whole object at 1.5 MiB), small enough that a wrong path cannot exhaust memory.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Why a bounded read failed; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file holds more than the cap.
    #[error("{} is larger than {limit} bytes (not a regular file, or not the file meant?)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap in bytes.
        limit: u64,
    },
    /// The file is not text.
    #[error("{} is not valid UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
}

/// Reads at most `limit` bytes of `path`; more is [`ReadError::TooLarge`]. Works for regular
/// files and for endless ones (`/dev/zero`), which stop at `limit + 1` bytes.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    read_capped_from(file, path, limit)
}

/// [`read_capped`] into a `String`.
pub fn read_capped_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_capped(path, limit)?).map_err(|_| ReadError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// [`read_capped`] of a regular file only, for paths re-read while serving (mounted Secrets):
/// opened non-blocking, since opening a FIFO that has no writer blocks forever, then refused
/// unless it is a regular file (a FIFO, device or directory), so nothing ever waits on it.
pub fn read_regular_capped(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    read_capped_from(file, path, limit)
}

/// The bounded read over any reader (stdin for `-`); `path` only names it in errors.
pub fn read_capped_from(reader: impl Read, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_stops_at_the_limit() {
        let err = read_capped(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { limit: 1024, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("/dev/zero"), "{err}");
    }

    #[test]
    fn a_file_within_the_limit_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "a: 1\n").unwrap();
        assert_eq!(read_capped_string(&path, 5).unwrap(), "a: 1\n");
        assert!(matches!(
            read_capped(&path, 4),
            Err(ReadError::TooLarge { .. })
        ));
    }

    #[test]
    fn only_a_regular_file_is_read_and_a_fifo_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("tls.crt");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_regular_capped(&fifo, 10).unwrap_err().to_string();
        assert!(
            err.contains("not a regular file") && err.contains("tls.crt"),
            "{err}"
        );
        assert!(read_regular_capped(Path::new("/dev/zero"), 10).is_err());
        let file = dir.path().join("key");
        std::fs::write(&file, "k").unwrap();
        assert_eq!(read_regular_capped(&file, 10).unwrap(), b"k");
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let err = read_capped(Path::new("/nonexistent/x"), 10).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read /nonexistent/x"),
            "{err}"
        );
    }
}
