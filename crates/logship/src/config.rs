//! Shipper configuration: the raw [`Options`] (the flags of [`crate::args::ShipArgs`] plus a
//! few settings that are not flags) are validated once into a [`Config`], pure data that cannot
//! be invalid; every error names its flag. Also the object key template:
//! `{date}` (UTC `YYYY-MM-DD` when the batch is packed), `{hour}` (`HH`), `{host}` (host or pod
//! name), `{role}` (the source's name; `{source}` is the same), `{seq}` (20-digit sequence
//! number, durable in the journal), `{ext}` (`jsonl.zst` or `jsonl.gz`). `{seq}` is required.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::args::defaults;
use crate::batch::{Limits, Source};
use crate::encoder::Compression;
use crate::sink::{S3Upload, S3UploadFlags, SinkOptions};

/// A configuration error, naming the flag.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct ConfigError {
    /// The flag (without dashes).
    pub flag: &'static str,
    /// What is wrong.
    pub message: String,
}

fn err(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        message: message.into(),
    }
}

/// Raw settings, one per flag and a few tuning knobs that are not flags (tests and the testkit
/// shorten them); [`Options::validate`] turns them into a [`Config`].
#[derive(Clone, Debug)]
pub struct Options {
    /// `--source DIR` or `NAME=DIR` (repeatable).
    pub sources: Vec<String>,
    /// `--to URL`.
    pub to: String,
    /// `--s3-endpoint URL`.
    pub s3_endpoint: Option<String>,
    /// `--s3-credentials-file FILE` (AWS shared-credentials format, re-read when it changes).
    pub s3_credentials_file: Option<PathBuf>,
    /// The profile read from that file (`AWS_PROFILE`, default `default`).
    pub s3_credentials_profile: String,
    /// `--s3-sse`, `--s3-sse-kms-key-id`, `--s3-storage-class`, `--s3-tags`.
    pub s3_upload: S3UploadFlags,
    /// object_store config keys and values (tests pass credentials this way).
    pub store_options: Vec<(String, String)>,
    /// `--state-dir`: journal and staged objects.
    pub state_dir: PathBuf,
    /// `--batch-max-files`.
    pub batch_max_files: usize,
    /// `--batch-max-bytes`.
    pub batch_max_bytes: u64,
    /// `--batch-max-age`.
    pub batch_max_age: Duration,
    /// `--quiet-period`.
    pub quiet_period: Duration,
    /// `--compression` zstd|gzip.
    pub compression: String,
    /// `--max-pending-bytes` (0 = no bound).
    pub max_pending_bytes: u64,
    /// `--key-template`.
    pub key_template: String,
    /// `--multipart-threshold`.
    pub multipart_threshold: u64,
    /// `--part-size`.
    pub part_size: u64,
    /// How often sources are listed (not a flag; default 1 s).
    pub scan_interval: Duration,
    /// `--shutdown-timeout`.
    pub shutdown_timeout: Duration,
    /// First backoff after an upload error (not a flag; default 500 ms).
    pub retry_initial: Duration,
    /// Backoff cap (not a flag; default 30 s).
    pub retry_max: Duration,
    /// `--request-timeout` for object store requests.
    pub request_timeout: Duration,
    /// `{host}`; `None` reads the host name.
    pub host: Option<String>,
}

impl Options {
    /// Defaults for everything but sources and destination: the flags' defaults
    /// ([`crate::args::defaults`], the admin server's for the timeouts), the environment
    /// ignored.
    pub fn new(sources: Vec<String>, to: impl Into<String>) -> Self {
        // The admin server's flag defaults (their parse is tested in runtime); the shipper
        // only uses these when no ShipArgs built the options, as in tests and `verify`.
        let server = runtime::args::defaults::<runtime::http::ServerArgs>().ok();
        let timeout = |f: fn(&runtime::http::ServerArgs) -> Duration| {
            server.as_ref().map_or(Duration::ZERO, f)
        };
        Self {
            sources,
            to: to.into(),
            s3_endpoint: None,
            s3_credentials_file: None,
            s3_credentials_profile: defaults::S3_PROFILE.into(),
            s3_upload: S3UploadFlags::default(),
            store_options: Vec::new(),
            state_dir: PathBuf::from(defaults::STATE_DIR),
            batch_max_files: defaults::BATCH_MAX_FILES,
            batch_max_bytes: defaults::BATCH_MAX_BYTES,
            batch_max_age: defaults::BATCH_MAX_AGE_DURATION,
            quiet_period: defaults::QUIET_PERIOD_DURATION,
            compression: defaults::COMPRESSION.into(),
            max_pending_bytes: logfile::DEFAULT_MAX_PENDING_BYTES,
            key_template: defaults::KEY_TEMPLATE.into(),
            multipart_threshold: defaults::MULTIPART_THRESHOLD,
            part_size: defaults::PART_SIZE,
            scan_interval: Duration::from_secs(1),
            shutdown_timeout: timeout(|s| s.shutdown_timeout),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            request_timeout: timeout(|s| s.request_timeout),
            host: None,
        }
    }

    /// Validates into a [`Config`].
    pub fn validate(self) -> Result<Config, ConfigError> {
        let sources = parse_sources(&self.sources)?;
        let (to, sink) = self.destination()?;
        let compression = match self.compression.as_str() {
            "zstd" => Compression::Zstd(3),
            "gzip" => Compression::Gzip(6),
            other => return Err(err("compression", format!("{other:?}: use zstd or gzip"))),
        };
        if self.batch_max_files == 0 {
            return Err(err("batch-max-files", "must be at least 1"));
        }
        if self.batch_max_bytes == 0 {
            return Err(err("batch-max-bytes", "must be at least 1"));
        }
        if self.part_size < 5 * 1024 * 1024 {
            return Err(err("part-size", "must be at least 5 MiB (S3 minimum)"));
        }
        if self.multipart_threshold < self.part_size {
            return Err(err("multipart-threshold", "must be at least --part-size"));
        }
        let key_template = KeyTemplate::parse(&self.key_template)?;
        let host = sanitize(&self.host.clone().unwrap_or_else(read_hostname));
        Ok(Config {
            sources,
            to,
            state_dir: self.state_dir,
            limits: Limits {
                max_files: self.batch_max_files,
                max_bytes: self.batch_max_bytes,
                max_age: self.batch_max_age,
            },
            quiet_period: self.quiet_period,
            compression,
            max_pending_bytes: self.max_pending_bytes,
            key_template,
            scan_interval: self.scan_interval.max(Duration::from_millis(10)),
            shutdown_timeout: self.shutdown_timeout,
            retry_initial: self.retry_initial.max(Duration::from_millis(1)),
            retry_max: self.retry_max.max(self.retry_initial),
            host,
            sink,
        })
    }

    /// Validates only the destination (`--to`, `--s3-endpoint`), as `logship verify` needs.
    pub fn destination(&self) -> Result<(Url, SinkOptions), ConfigError> {
        let to = Url::parse(&self.to).map_err(|e| err("to", format!("{:?}: {e}", self.to)))?;
        if !matches!(
            to.scheme(),
            "file" | "s3" | "s3a" | "gs" | "az" | "azure" | "memory"
        ) {
            return Err(err(
                "to",
                format!("unsupported scheme {:?} (file, s3, gs, az)", to.scheme()),
            ));
        }
        if let Some(ep) = &self.s3_endpoint {
            Url::parse(ep).map_err(|e| err("s3-endpoint", format!("{ep:?}: {e}")))?;
        }
        let s3_credentials = match &self.s3_credentials_file {
            Some(file) => {
                if !matches!(to.scheme(), "s3" | "s3a") {
                    return Err(err("s3-credentials-file", "only for s3:// destinations"));
                }
                crate::credentials::load(file, &self.s3_credentials_profile)
                    .map_err(|e| err("s3-credentials-file", e.to_string()))?;
                Some((file.clone(), self.s3_credentials_profile.clone()))
            }
            None => None,
        };
        let s3_upload = self.s3_upload(&to)?;
        Ok((
            to,
            SinkOptions {
                s3_endpoint: self.s3_endpoint.clone(),
                s3_credentials,
                store_options: self.store_options.clone(),
                multipart_threshold: self.multipart_threshold,
                part_size: self.part_size as usize,
                request_timeout: self.request_timeout,
                s3_upload,
            },
        ))
    }
}

impl Options {
    /// The S3 upload options, validated; only for `s3://`.
    fn s3_upload(&self, to: &Url) -> Result<S3Upload, ConfigError> {
        let flags = &self.s3_upload;
        if !flags.is_empty() && !matches!(to.scheme(), "s3" | "s3a") {
            return Err(err(
                "s3-sse",
                "--s3-sse, --s3-sse-kms-key-id, --s3-storage-class and --s3-tags are only for s3:// destinations",
            ));
        }
        flags
            .validate()
            .map_err(|(flag, message)| err(flag, message))
    }
}

/// Validated shipper configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Directories to ship.
    pub sources: Vec<Source>,
    /// Destination URL.
    pub to: Url,
    /// Journal and staging directory.
    pub state_dir: PathBuf,
    /// Batch bounds.
    pub limits: Limits,
    /// A file is read only once unmodified this long (the plain-file contract).
    pub quiet_period: Duration,
    /// Codec.
    pub compression: Compression,
    /// Pending bound (0 = none).
    pub max_pending_bytes: u64,
    /// Object key template.
    pub key_template: KeyTemplate,
    /// How often sources are listed.
    pub scan_interval: Duration,
    /// Time to ship what it can after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// Backoff start.
    pub retry_initial: Duration,
    /// Backoff cap.
    pub retry_max: Duration,
    /// `{host}`.
    pub host: String,
    /// Store settings.
    pub sink: SinkOptions,
}

/// The `file://` URL of a local directory (created, made absolute), for `--to`.
pub fn file_url(dir: &std::path::Path) -> std::io::Result<String> {
    std::fs::create_dir_all(dir)?;
    let abs = dir.canonicalize()?;
    Url::from_directory_path(&abs)
        .map(String::from)
        .map_err(|()| std::io::Error::other(format!("{} is not an absolute path", abs.display())))
}

/// `--source` values: at least one, none a symbolic link, no two with the same name.
fn parse_sources(raw: &[String]) -> Result<Vec<Source>, ConfigError> {
    if raw.is_empty() {
        return Err(err("source", "at least one source directory is required"));
    }
    let mut sources: Vec<Source> = Vec::new();
    for raw in raw {
        let source = parse_source(raw)?;
        if std::fs::symlink_metadata(&source.dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(err(
                "source",
                format!(
                    "{}: is a symbolic link; give the real directory (logship never follows a source out of itself)",
                    source.dir.display()
                ),
            ));
        }
        if sources.iter().any(|s| s.name == source.name) {
            return Err(err(
                "source",
                format!("two sources are named {:?}; use NAME=DIR", source.name),
            ));
        }
        sources.push(source);
    }
    Ok(sources)
}

fn parse_source(raw: &str) -> Result<Source, ConfigError> {
    let (name, dir) = match raw.split_once('=') {
        Some((name, dir)) => (name.to_string(), PathBuf::from(dir)),
        None => {
            let dir = PathBuf::from(raw);
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .unwrap_or_default();
            (name, dir)
        }
    };
    let name = sanitize(&name);
    if name.is_empty() || dir.as_os_str().is_empty() {
        return Err(err("source", format!("{raw:?}: expected DIR or NAME=DIR")));
    }
    Ok(Source { name, dir })
}

/// Keeps key components to `[A-Za-z0-9._-]`.
fn sanitize(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

fn read_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Date,
    Hour,
    Host,
    Role,
    Seq,
    Ext,
}

/// A parsed object key template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<Part>,
}

/// Values for a key.
#[derive(Clone, Copy, Debug)]
pub struct KeyVars<'a> {
    /// UTC time the batch was packed.
    pub time: time::OffsetDateTime,
    /// `{host}`.
    pub host: &'a str,
    /// `{role}`.
    pub role: &'a str,
    /// `{seq}`.
    pub seq: u64,
    /// `{ext}`.
    pub ext: &'a str,
}

// === impl KeyTemplate ===

impl KeyTemplate {
    /// Parses a template; unknown placeholders and a missing `{seq}` are errors.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_string()));
            }
            let Some(len) = rest[start..].find('}') else {
                return Err(err("key-template", format!("{s:?}: unclosed '{{'")));
            };
            let name = &rest[start + 1..start + len];
            parts.push(match name {
                "date" => Part::Date,
                "hour" => Part::Hour,
                "host" => Part::Host,
                "role" | "source" => Part::Role,
                "seq" => Part::Seq,
                "ext" => Part::Ext,
                other => {
                    return Err(err(
                        "key-template",
                        format!(
                            "unknown placeholder {{{other}}} (date, hour, host, role, seq, ext)"
                        ),
                    ));
                }
            });
            rest = &rest[start + len + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        if !parts.contains(&Part::Seq) {
            return Err(err(
                "key-template",
                "must contain {seq} (keys must be unique)",
            ));
        }
        if parts
            .iter()
            .any(|p| matches!(p, Part::Lit(l) if l.contains('}')))
        {
            return Err(err("key-template", format!("{s:?}: stray '}}'")));
        }
        Ok(Self { parts })
    }

    /// Renders a key.
    pub fn render(&self, vars: &KeyVars<'_>) -> String {
        let t = vars.time;
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Date => out.push_str(&format!(
                    "{:04}-{:02}-{:02}",
                    t.year(),
                    u8::from(t.month()),
                    t.day()
                )),
                Part::Hour => out.push_str(&format!("{:02}", t.hour())),
                Part::Host => out.push_str(vars.host),
                Part::Role => out.push_str(vars.role),
                Part::Seq => out.push_str(&format!("{:020}", vars.seq)),
                Part::Ext => out.push_str(vars.ext),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_renders_deterministic_keys() {
        let t = KeyTemplate::parse(defaults::KEY_TEMPLATE).unwrap();
        let vars = KeyVars {
            time: time::macros::datetime!(2026-11-21 16:05:00 UTC),
            host: "pod-0",
            role: "backend-api",
            seq: 42,
            ext: "jsonl.zst",
        };
        assert_eq!(
            t.render(&vars),
            "2026-11-21/pod-0/backend-api/00000000000000000042.jsonl.zst"
        );
    }

    #[test]
    fn bad_templates_name_the_flag() {
        for bad in ["{date}/{nope}/{seq}", "{date}/x", "{seq", "a}{seq}"] {
            let e = KeyTemplate::parse(bad).unwrap_err();
            assert_eq!(e.flag, "key-template", "{bad}");
        }
    }

    /// One invalid variation of `ok` per check, with the flag its error must name.
    fn invalid_options(ok: &Options) -> Vec<(&'static str, Options)> {
        vec![
            (
                "to",
                Options {
                    to: "not a url".into(),
                    ..ok.clone()
                },
            ),
            (
                "to",
                Options {
                    to: "ftp://x/y".into(),
                    ..ok.clone()
                },
            ),
            (
                "source",
                Options {
                    sources: vec![],
                    ..ok.clone()
                },
            ),
            (
                "source",
                Options {
                    sources: vec!["a/x".into(), "b/x".into()],
                    ..ok.clone()
                },
            ),
            (
                "compression",
                Options {
                    compression: "lz4".into(),
                    ..ok.clone()
                },
            ),
            (
                "s3-endpoint",
                Options {
                    s3_endpoint: Some("::".into()),
                    ..ok.clone()
                },
            ),
            (
                "batch-max-files",
                Options {
                    batch_max_files: 0,
                    ..ok.clone()
                },
            ),
            (
                "part-size",
                Options {
                    part_size: 1,
                    ..ok.clone()
                },
            ),
        ]
    }

    #[test]
    fn s3_upload_options_are_validated_naming_the_flag() {
        let ok = Options::new(vec!["/var/log/app".into()], "file:///tmp/archive");
        let sse = S3UploadFlags {
            sse: Some("AES256".into()),
            ..S3UploadFlags::default()
        };
        let on_file = Options {
            s3_upload: sse.clone(),
            ..ok.clone()
        };
        assert_eq!(on_file.validate().unwrap_err().flag, "s3-sse");
        let on_s3 = Options {
            to: "s3://bucket/logs".into(),
            s3_upload: sse,
            ..ok.clone()
        };
        assert_eq!(
            on_s3.validate().unwrap().sink.s3_upload.sse.as_deref(),
            Some("AES256")
        );
        let bad_class = Options {
            to: "s3://bucket/logs".into(),
            s3_upload: S3UploadFlags {
                storage_class: Some("COLD".into()),
                ..S3UploadFlags::default()
            },
            ..ok
        };
        assert_eq!(bad_class.validate().unwrap_err().flag, "s3-storage-class");
    }

    #[test]
    fn validation_names_the_flag() {
        let ok = Options::new(vec!["/var/log/app".into()], "file:///tmp/archive");
        let c = ok.clone().validate().unwrap();
        assert_eq!(c.sources[0].name, "app");
        for (flag, opts) in invalid_options(&ok) {
            let e = opts.validate().unwrap_err();
            assert_eq!(e.flag, flag);
            assert!(e.to_string().starts_with(&format!("--{flag}: ")));
        }
        let named = Options {
            sources: vec!["own=/a/b".into()],
            ..ok
        };
        assert_eq!(named.validate().unwrap().sources[0].name, "own");
    }
}
