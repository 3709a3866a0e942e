//! The sample API's integration keys: one per environment, generated on first start and kept
//! across restarts, never in a file others can read.

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use runtime::files::{self, ReadError};
use secrecy::SecretString;

/// Why the keys could not be had; each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The keys directory (or its parent) cannot be created.
    #[error("cannot create {}", path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why not.
        #[source]
        source: io::Error,
    },
    /// A key file cannot be opened or inspected.
    #[error("cannot read {}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: io::Error,
    },
    /// A directory, symlink or device where a key file belongs.
    #[error("{} is not a regular file (up keeps its generated keys there)", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A key file others can read that cannot be set to 0600.
    #[error(
        "{} is mode {mode:04o} (others can read the key) and cannot be set to 0600",
        path.display()
    )]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
        /// Why the change failed.
        #[source]
        source: io::Error,
    },
    /// Too large, unreadable or not UTF-8.
    #[error(transparent)]
    Content(#[from] ReadError),
    /// A new key cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The key file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: io::Error,
    },
}

/// An integration key per environment under `dir`, generated on first start and kept across
/// restarts; the sample external-logs API accepts exactly these. Every key file ends up mode
/// 0600: a new key goes into a fresh 0600 file renamed into place (never into a file others
/// can read, even one left empty), and an existing file others can read is set to 0600 with a
/// warning naming it.
pub fn ensure(dir: &Path, environments: &[&str]) -> Result<Vec<SecretString>, KeyError> {
    let create = |path: &Path, source| KeyError::Create {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| create(parent, e))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(create(dir, e)),
        _ => {}
    }
    let mut keys = Vec::new();
    for env in environments {
        let key = match existing_key(&dir.join(env))? {
            Some(key) => key,
            None => new_key(dir, env)?,
        };
        keys.push(SecretString::from(key));
    }
    Ok(keys)
}

/// The key in `path`, trimmed; `None` when the file is absent or blank. A file others can
/// read or write is set to mode 0600 first.
fn existing_key(path: &Path) -> Result<Option<String>, KeyError> {
    let read = |source| KeyError::Read {
        path: path.to_owned(),
        source,
    };
    // Not followed through a symlink: the mode fixed below must be the key file's own.
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read(e)),
        Ok(meta) if !meta.is_file() => {
            return Err(KeyError::NotAFile {
                path: path.to_owned(),
            });
        }
        Ok(_) => {}
    }
    let file = std::fs::File::open(path).map_err(read)?;
    let mode = file.metadata().map_err(read)?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|source| KeyError::Exposed {
                path: path.to_owned(),
                mode: mode & 0o7777,
                source,
            })?;
        tracing::warn!(
            file = %path.display(),
            was = format!("{:04o}", mode & 0o7777).as_str(),
            "integration key file was readable by others; set to 0600"
        );
    }
    let text = files::read_capped_from(&file, path, files::MAX_CONFIG_BYTES)?;
    let text = String::from_utf8(text).map_err(|_| ReadError::NotUtf8 {
        path: path.to_owned(),
    })?;
    let key = text.trim();
    Ok((!key.is_empty()).then(|| key.to_owned()))
}

/// A new random key for `env`, written to a new 0600 file that then replaces `dir/env`.
fn new_key(dir: &Path, env: &str) -> Result<String, KeyError> {
    let key = hex::encode(rand::random::<[u8; 32]>());
    let path = dir.join(env);
    let temp = dir.join(format!(
        ".{env}.{}.tmp",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        io::Write::write_all(&mut file, key.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(KeyError::Write { path, source });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use secrecy::ExposeSecret;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn keys_are_generated_private_and_kept_across_restarts() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state/keys");
        let first = ensure(&dir, &["dev", "prod"]).unwrap();
        assert_eq!(first[0].expose_secret().len(), 64);
        assert_eq!((mode(&dir), mode(&dir.join("dev"))), (0o700, 0o600));
        let again = ensure(&dir, &["dev", "prod"]).unwrap();
        assert_eq!(again[1].expose_secret(), first[1].expose_secret());
    }

    #[test]
    fn a_key_file_others_can_read_is_made_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev");
        std::fs::write(&path, "kept\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let keys = ensure(dir.path(), &["dev"]).unwrap();
        assert_eq!((keys[0].expose_secret(), mode(&path)), ("kept", 0o600));
    }

    #[test]
    fn a_symlink_where_a_key_belongs_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("elsewhere"), "key").unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), dir.path().join("dev")).unwrap();
        let e = ensure(dir.path(), &["dev"]).unwrap_err();
        assert!(matches!(e, KeyError::NotAFile { .. }), "{e}");
    }
}
