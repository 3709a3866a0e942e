//! `--s3-credentials-file`: S3 credentials from a mounted file in the AWS shared-credentials
//! format (`[profile]` sections with `aws_access_key_id`, `aws_secret_access_key` and optional
//! `aws_session_token`; `#` and `;` comments; parsed by rust-ini), for a Kubernetes Secret
//! mounted as a file.
//!
//! The file is checked when it changes (modification time, size or inode, looked up on every
//! request: one `stat` of a Secret's tmpfs file, no disk I/O, beside a request that signs and
//! sends megabytes), so a rotated Secret takes effect without a restart; a rotated file that
//! cannot be read keeps the last good credentials and logs a warning. Errors name the file,
//! the profile and the missing field, never a value; `Debug` shows neither key.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use object_store::CredentialProvider;
use object_store::aws::AwsCredential;

/// The file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// It could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// It is too large or not text (the message names it).
    #[error(transparent)]
    File(runtime::files::ReadError),
    /// It has no usable profile.
    #[error("{path}: [{profile}]: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The profile looked for.
        profile: String,
        /// What is missing (a field name, never a value).
        message: String,
    },
}

/// What identifies one version of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &Path) -> io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        ino: meta.ino(),
    })
}

/// Reads `profile` from the file at `path`.
pub fn load(path: &Path, profile: &str) -> Result<AwsCredential, CredentialsError> {
    use runtime::files::{MAX_CONFIG_BYTES, ReadError, read_capped_string};
    // Bounded: a credentials path pointing at /dev/zero must fail, not fill memory.
    let text = read_capped_string(path, MAX_CONFIG_BYTES).map_err(|e| match e {
        ReadError::Io { source, .. } => CredentialsError::Read {
            path: path.to_path_buf(),
            source,
        },
        other => CredentialsError::File(other),
    })?;
    parse(&text, profile).map_err(|message| CredentialsError::Parse {
        path: path.to_path_buf(),
        profile: profile.to_string(),
        message,
    })
}

/// The credentials of `profile` (`[name]` or `[profile name]`) in shared-credentials text.
fn parse(text: &str, profile: &str) -> Result<AwsCredential, String> {
    // Values are taken verbatim: no quotes or escapes, as the AWS CLI reads them.
    let options = ini::ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        ..ini::ParseOption::default()
    };
    // The parser's messages name a line and column and what it expected, never a value.
    let ini = ini::Ini::load_from_str_opt(text, options)
        .map_err(|e| format!("not in the shared-credentials format: {e}"))?;
    let section = ini
        .iter()
        .find(|(name, _)| {
            name.map(|n| n.strip_prefix("profile ").unwrap_or(n).trim()) == Some(profile)
        })
        .map(|(_, properties)| properties)
        .ok_or("no such profile")?;
    let field = |key: &str| {
        section
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    Ok(AwsCredential {
        key_id: field("aws_access_key_id").ok_or("missing aws_access_key_id")?,
        secret_key: field("aws_secret_access_key").ok_or("missing aws_secret_access_key")?,
        token: field("aws_session_token").or_else(|| field("aws_security_token")),
    })
}

/// A credential provider reading the file again whenever it changes.
pub struct FileCredentials {
    path: PathBuf,
    profile: String,
    current: Mutex<(Stamp, Arc<AwsCredential>)>,
}

impl std::fmt::Debug for FileCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCredentials")
            .field("path", &self.path)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl FileCredentials {
    /// Loads the file now (a bad file is an error here, at start-up).
    pub fn new(path: &Path, profile: &str) -> Result<Self, CredentialsError> {
        let read_err = |source| CredentialsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let before = stamp(path).map_err(read_err)?;
        let credential = load(path, profile)?;
        Ok(Self {
            path: path.to_path_buf(),
            profile: profile.to_string(),
            current: Mutex::new((before, Arc::new(credential))),
        })
    }

    /// The credentials, re-read first if the file changed.
    pub fn current(&self) -> Arc<AwsCredential> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let now = match stamp(&self.path) {
            Ok(now) if now != current.0 => now,
            Ok(_) => return current.1.clone(),
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e,
                    "logship: cannot read the S3 credentials file; keeping the last credentials");
                return current.1.clone();
            }
        };
        match load(&self.path, &self.profile) {
            Ok(credential) => {
                tracing::info!(file = %self.path.display(), "logship: S3 credentials file changed; using the new credentials");
                *current = (now, Arc::new(credential));
            }
            Err(e) => {
                tracing::warn!(error = %e,
                    "logship: the changed S3 credentials file is not usable; keeping the last credentials");
                current.0 = now; // warn once per version of the file
            }
        }
        current.1.clone()
    }
}

#[async_trait::async_trait]
impl CredentialProvider for FileCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        Ok(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n[other]\naws_access_key_id = OTHER\n\n[default]\n\
        aws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s3cr3t/value\n\
        ; comment\naws_session_token = tok\n[profile ci]\naws_access_key_id=CI\n\
        aws_secret_access_key=CISECRET\n";

    #[test]
    fn reads_the_profile_asked_for() {
        let c = parse(FILE, "default").unwrap();
        assert_eq!(
            (c.key_id.as_str(), c.secret_key.as_str(), c.token.as_deref()),
            ("AKIDEXAMPLE", "s3cr3t/value", Some("tok"))
        );
        let ci = parse(FILE, "ci").unwrap();
        assert_eq!((ci.key_id.as_str(), ci.token), ("CI", None));
    }

    #[test]
    fn an_endless_credentials_file_is_an_error_naming_it() {
        let e = load(Path::new("/dev/zero"), "default")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero") && e.contains("larger than"), "{e}");
    }

    #[test]
    fn errors_name_the_field_and_never_a_value() {
        let e = parse(FILE, "other").unwrap_err();
        assert_eq!(e, "missing aws_secret_access_key");
        assert_eq!(parse(FILE, "nope").unwrap_err(), "no such profile");
        let e = parse("[default]\naws_secret_access_key s3cr3t\n", "default").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn a_rotated_file_is_read_again_and_a_broken_one_keeps_the_last_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id=A\naws_secret_access_key=first-secret\n",
        )
        .unwrap();
        let provider = FileCredentials::new(&path, "default").unwrap();
        assert_eq!(provider.current().key_id, "A");
        assert!(!format!("{provider:?}").contains("first-secret"));
        // Kubernetes swaps a Secret's file by rename: a new inode.
        let next = dir.path().join("next");
        std::fs::write(
            &next,
            "[default]\naws_access_key_id=B\naws_secret_access_key=second\n",
        )
        .unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(provider.current().key_id, "B");
        std::fs::write(&next, "[default]\naws_access_key_id=C\n").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(provider.current().key_id, "B");
    }
}
