//! The sink's errors, and the classification of object store failures into the `kind` label
//! of `ferrostack_logship_upload_errors_total`.

use std::io;
use std::path::PathBuf;

/// Upload failures; `kind()` is the `kind` label of `ferrostack_logship_upload_errors_total`.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The store answered with an error or could not be reached.
    #[error("object store ({kind}): {source}")]
    Store {
        /// Short classification.
        kind: &'static str,
        /// The cause.
        source: object_store::Error,
    },
    /// Reading the staged object failed.
    #[error("staged object {path}: {source}")]
    Io {
        /// The staged file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A different object already has this key.
    #[error("object {key} exists with different content (size {size}, sha256 {sha256})")]
    Conflict {
        /// The key.
        key: String,
        /// Its size in the store.
        size: u64,
        /// Its sha256 in the store (empty when only the size differed).
        sha256: String,
    },
    /// Recording multipart progress failed.
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
}

impl SinkError {
    /// Label for the upload error metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Store { kind, .. } => kind,
            Self::Io { .. } => "staging_io",
            Self::Conflict { .. } => "conflict",
            Self::Journal(_) => "journal",
        }
    }
}

/// Sink errors at construction.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The URL scheme has no backend here.
    #[error("unsupported URL {0:?} (use file://, s3://, gs://, az://)")]
    Scheme(String),
    /// object_store rejected the URL or an option.
    #[error("{0}")]
    Store(#[from] object_store::Error),
    /// The local archive directory could not be created.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The S3 credentials file is not usable.
    #[error("--s3-credentials-file: {0}")]
    Credentials(#[from] crate::credentials::CredentialsError),
}

/// An object store failure, classified for the metric.
pub(crate) fn store_err(source: object_store::Error) -> SinkError {
    SinkError::Store {
        kind: classify(&source),
        source,
    }
}

/// `not_found`, `auth`, `precondition`, `unsupported`, and for the rest (object_store wraps
/// HTTP failures in `Generic`) what the text of the error chain says: `timeout`, `connect`,
/// `server` (5xx) or `other`.
fn classify(error: &object_store::Error) -> &'static str {
    match error {
        object_store::Error::NotFound { .. } => "not_found",
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => "auth",
        object_store::Error::Precondition { .. } => "precondition",
        object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. } => {
            "unsupported"
        }
        other => {
            let mut text = String::new();
            let mut cause: Option<&dyn std::error::Error> = Some(other);
            while let Some(e) = cause {
                text.push_str(&e.to_string().to_ascii_lowercase());
                text.push('\n');
                cause = e.source();
            }
            // Every retry error names the `retry_timeout` setting; it says nothing of the cause.
            let text = text.replace("retry_timeout", "");
            if text.contains("timed out") || text.contains("timeout") {
                "timeout"
            } else if text.contains("connect") || text.contains("error sending request") {
                "connect"
            } else if text.contains("status: 5") || text.contains("server error") {
                "server"
            } else {
                "other"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: text.to_string().into(),
        }
    }

    #[test]
    fn store_errors_are_classified_for_the_metric() {
        let source = || Box::new(io::Error::other("x"));
        let cases = [
            (
                object_store::Error::NotFound {
                    path: "k".into(),
                    source: source(),
                },
                "not_found",
            ),
            (
                object_store::Error::PermissionDenied {
                    path: "k".into(),
                    source: source(),
                },
                "auth",
            ),
            (
                object_store::Error::Unauthenticated {
                    path: "k".into(),
                    source: source(),
                },
                "auth",
            ),
            (
                object_store::Error::Precondition {
                    path: "k".into(),
                    source: source(),
                },
                "precondition",
            ),
            (
                object_store::Error::NotSupported { source: source() },
                "unsupported",
            ),
            (generic("operation timed out"), "timeout"),
            (generic("tcp connect error: connection refused"), "connect"),
            (generic("error sending request for url"), "connect"),
            (generic("Server returned non-2xx status: 503"), "server"),
            (generic("Server error, body contains Error"), "server"),
            (generic("bad xml"), "other"),
            (
                generic("retry_timeout 10s exceeded after 2 retries: bad xml"),
                "other",
            ),
        ];
        for (error, kind) in cases {
            let text = error.to_string();
            assert_eq!(store_err(error).kind(), kind, "{text}");
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Wrapped(#[source] io::Error);

    #[test]
    fn the_cause_chain_is_read_too() {
        let inner = io::Error::new(io::ErrorKind::TimedOut, "operation timed out");
        let error = object_store::Error::Generic {
            store: "GCS",
            source: Box::new(Wrapped(inner)),
        };
        assert!(!error.to_string().contains("timed out"));
        assert_eq!(store_err(error).kind(), "timeout");
    }

    #[test]
    fn other_errors_have_fixed_kinds() {
        let io = SinkError::Io {
            path: "/x".into(),
            source: io::Error::other("x"),
        };
        let conflict = SinkError::Conflict {
            key: "k".into(),
            size: 1,
            sha256: String::new(),
        };
        assert_eq!(io.kind(), "staging_io");
        assert_eq!(conflict.kind(), "conflict");
    }
}
