//! Configuration: the YAML targets file (raw serde structs, then validated `Target`s that can
//! no longer be invalid) and the flag-built default targets. Every error names the file, the
//! target and the field.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde::Deserialize;
use serde_norway::Value;

use crate::condition::Condition;
use crate::maintenance::{self, Maintenance, RawWindow};
use crate::pushed::PushSpec;

mod external;
use crate::tls::TlsClient;

mod kind;

pub use kind::{DnsQuery, ProbeKind};

/// Default per-attempt timeout (the services' `GET /` takes 3 s by design).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default probe interval in serve mode (as Gatus).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest probe interval, for the config file and `--interval` alike: more often is a
/// load test, not a health check.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// A bad configuration: where (file, target, field) and why.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    file: String,
    target: Option<String>,
    field: Option<String>,
    message: String,
}

/// One validated probe target.
#[derive(Debug, Clone)]
pub struct Target {
    /// Unique name; the `target` label and the key in the history.
    pub name: String,
    /// Absolute URL; its scheme picks the probe type.
    pub url: Uri,
    /// The probe type, from the URL's scheme.
    pub kind: ProbeKind,
    /// Request method (default GET).
    pub method: Method,
    /// Extra request headers.
    pub headers: HeaderMap,
    /// Request body (empty by default); what `tcp://` and `tls://` probes send.
    pub body: Bytes,
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Further attempts after a failed one.
    pub retries: u32,
    /// Wait before the first retry; doubles on each further retry.
    pub retry_backoff: Duration,
    /// Probe interval in serve mode.
    pub interval: Duration,
    /// All must hold for the probe to succeed.
    pub conditions: Vec<Condition>,
    /// Follow up to 10 redirects (default true).
    pub follow_redirects: bool,
    /// TLS client settings for `https` URLs.
    pub tls: TlsClient,
    /// Maintenance windows: the target's own and the file's global one.
    pub maintenance: Maintenance,
    /// Set for a push target (`external-endpoints`): never probed, results are pushed.
    pub push: Option<PushSpec>,
    /// Service level objective (`slo: 99.9%`): the error budget on the page and in the API.
    pub slo: Option<crate::slo::Slo>,
}

/// The file's top level: `targets:` (or Gatus' `endpoints:`) and optional `defaults:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// Fields applied to every target unless the target sets them.
    #[serde(default)]
    defaults: Option<Value>,
    /// The targets, each a mapping parsed as a `RawTarget`.
    #[serde(alias = "endpoints", default)]
    targets: Vec<Value>,
    /// Push targets (Gatus' name), see `external`.
    #[serde(default, rename = "external-endpoints")]
    external_endpoints: Vec<Value>,
    /// Gatus' global maintenance window, for every target.
    #[serde(default)]
    maintenance: Option<RawWindow>,
}

/// One target as written in YAML.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTarget {
    /// Unique name.
    name: String,
    /// Absolute URL: http(s), tcp, tls, dns, grpc or icmp.
    url: String,
    /// HTTP method.
    method: Option<String>,
    /// Request headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Request body.
    body: Option<String>,
    /// Per-attempt timeout, e.g. `5s`.
    timeout: Option<String>,
    /// Retries after a failed attempt.
    retries: Option<u32>,
    /// First retry delay, doubled each retry.
    retry_backoff: Option<String>,
    /// Serve-mode interval.
    interval: Option<String>,
    /// Gatus-style conditions.
    conditions: Option<Vec<String>>,
    /// Follow redirects.
    follow_redirects: Option<bool>,
    /// TLS settings.
    tls: Option<RawTls>,
    /// The target's own maintenance windows.
    #[serde(default)]
    maintenance_windows: Vec<RawWindow>,
    /// Service level objective, e.g. `99.9%`.
    slo: Option<Value>,
}

/// TLS settings of a target.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTls {
    /// PEM file with extra trusted CA certificates.
    ca_file: Option<PathBuf>,
    /// Accept any certificate (expiry is still reported).
    #[serde(default)]
    insecure_skip_verify: bool,
}

// === impl ConfigError ===

impl ConfigError {
    pub(crate) fn new(
        file: &str,
        target: Option<&str>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            target: target.map(str::to_owned),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// An error in a command-line flag.
    pub(crate) fn flag(flag: &str, message: impl Into<String>) -> Self {
        Self::new("flags", None, Some(flag), message)
    }

    /// The file (or `flags`) the error is in.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The target's name (or `#index` when it has none), if the error is in one.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The field, if the error is in one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(t) = &self.target {
            write!(f, ": target {t:?}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field {field:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

// === load ===

/// Reads and validates a targets file.
pub fn load_targets(path: &Path) -> Result<Vec<Target>, ConfigError> {
    let file = path.display().to_string();
    // Bounded: a wrong path (`/dev/zero`, a FIFO) is an error, not unbounded memory.
    let text = runtime::files::read_capped_string(path, runtime::files::MAX_CONFIG_BYTES)
        .map_err(|e| ConfigError::new(&file, None, None, read_error(&e)))?;
    parse_targets(&file, &text)
}

/// A read error without the path, which `ConfigError` already names first.
fn read_error(e: &runtime::files::ReadError) -> String {
    use runtime::files::ReadError;
    match e {
        ReadError::Io { source, .. } => format!("cannot read: {source}"),
        ReadError::TooLarge { limit, .. } => {
            format!("larger than {limit} bytes (not a regular file, or not the file meant?)")
        }
        ReadError::NotUtf8 { .. } => "not valid UTF-8".to_owned(),
    }
}

/// Validates a targets document; `file` names it in errors.
pub fn parse_targets(file: &str, text: &str) -> Result<Vec<Target>, ConfigError> {
    let raw: RawFile = serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(text))
        .map_err(|e| {
            let path = e.path().to_string();
            let field = (path != ".").then_some(path);
            ConfigError::new(file, None, field.as_deref(), e.into_inner().to_string())
        })?;
    let defaults = defaults_mapping(file, raw.defaults)?;
    if raw.targets.is_empty() && raw.external_endpoints.is_empty() {
        return Err(ConfigError::new(file, None, Some("targets"), "no targets"));
    }
    let mut seen = HashSet::new();
    let mut tls = TlsCache::default();
    let mut targets = Vec::with_capacity(raw.targets.len());
    for (i, value) in raw.targets.into_iter().enumerate() {
        let label = value
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{}", i + 1), str::to_owned);
        let err =
            |field: Option<&str>, msg: String| ConfigError::new(file, Some(&label), field, msg);
        let Value::Mapping(mut fields) = value else {
            return Err(err(None, "must be a mapping".into()));
        };
        for (k, v) in &defaults {
            if !fields.contains_key(k) {
                fields.insert(k.clone(), v.clone());
            }
        }
        let mut raw: RawTarget =
            serde_path_to_error::deserialize(Value::Mapping(fields)).map_err(|e| {
                let path = e.path().to_string();
                let field = (path != ".").then_some(path);
                err(field.as_deref(), e.into_inner().to_string())
            })?;
        let windows = std::mem::take(&mut raw.maintenance_windows);
        let mut target = validate(raw, &mut tls).map_err(|(field, msg)| err(Some(field), msg))?;
        target.maintenance =
            maintenance::for_target(windows).map_err(|(field, msg)| err(Some(&field), msg))?;
        if !seen.insert(target.name.clone()) {
            return Err(err(Some("name"), "duplicate target name".into()));
        }
        targets.push(target);
    }
    targets.extend(external::parse(
        file,
        raw.external_endpoints,
        &mut tls,
        &mut seen,
    )?);
    maintenance::add_global(file, raw.maintenance, &mut targets)?;
    Ok(targets)
}

/// The `defaults:` mapping (empty when absent).
fn defaults_mapping(
    file: &str,
    defaults: Option<Value>,
) -> Result<serde_norway::Mapping, ConfigError> {
    match defaults {
        None | Some(Value::Null) => Ok(serde_norway::Mapping::new()),
        Some(Value::Mapping(m)) => Ok(m),
        Some(_) => Err(ConfigError::new(
            file,
            None,
            Some("defaults"),
            "must be a mapping",
        )),
    }
}

/// The case study's three checks, from flags: backend-api `/`, data-api `/` and
/// `/download_external_logs?env=<env>` on the backend.
pub fn default_targets(
    backend_url: &str,
    data_url: &str,
    env: &str,
) -> Result<Vec<Target>, ConfigError> {
    let backend = backend_url.trim_end_matches('/');
    let data = data_url.trim_end_matches('/');
    let mut tls = TlsCache::default();
    let specs = [
        ("backend-api", "--backend-url", format!("{backend}/")),
        ("data-api", "--data-url", format!("{data}/")),
        (
            "download-external-logs",
            "--external-logs-env",
            format!("{backend}/download_external_logs?env={env}"),
        ),
    ];
    specs
        .into_iter()
        .map(|(name, flag, url)| {
            let raw = RawTarget {
                name: name.to_owned(),
                url,
                method: None,
                headers: BTreeMap::new(),
                body: None,
                timeout: None,
                retries: None,
                retry_backoff: None,
                interval: None,
                conditions: None,
                follow_redirects: None,
                tls: None,
                maintenance_windows: Vec::new(),
                slo: None,
            };
            validate(raw, &mut tls)
                .map_err(|(_, msg)| ConfigError::new("flags", Some(name), Some(flag), msg))
        })
        .collect()
}

/// The one interval rule, shared by the file's `interval` and the `--interval` flag.
pub(crate) fn check_interval(interval: Duration) -> Result<(), String> {
    if interval < MIN_INTERVAL {
        return Err(format!(
            "must be at least 1s, not {}",
            humantime::format_duration(interval)
        ));
    }
    Ok(())
}

/// One rustls config per distinct TLS setting: the root store is large, targets are many.
#[derive(Default)]
struct TlsCache(HashMap<(Option<PathBuf>, bool), TlsClient>);

// === impl TlsCache ===

impl TlsCache {
    fn get(&mut self, raw: RawTls) -> Result<TlsClient, String> {
        let key = (raw.ca_file, raw.insecure_skip_verify);
        if let Some(c) = self.0.get(&key) {
            return Ok(c.clone());
        }
        let config = TlsClient::new(key.0.as_deref(), key.1)?;
        self.0.insert(key, config.clone());
        Ok(config)
    }
}

/// The field at fault and why.
type FieldError = (&'static str, String);

fn validate(raw: RawTarget, tls: &mut TlsCache) -> Result<Target, FieldError> {
    if raw.name.trim().is_empty() {
        return Err(("name", "must not be empty".into()));
    }
    let url = parse_url(&raw.url)?;
    let kind = ProbeKind::parse(&raw.url, &url)?;
    if kind == ProbeKind::Icmp {
        crate::probe::check_ping_socket().map_err(|e| ("url", e))?;
    }
    let method = match raw.method {
        None => Method::GET,
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| ("method", format!("{m:?} is not an HTTP method")))?,
    };
    let headers = parse_headers(raw.headers)?;
    let timeout = parse_duration("timeout", raw.timeout, DEFAULT_TIMEOUT)?;
    let interval = parse_duration("interval", raw.interval, DEFAULT_INTERVAL)?;
    let retry_backoff = parse_duration("retry-backoff", raw.retry_backoff, DEFAULT_BACKOFF)?;
    if timeout.is_zero() {
        return Err(("timeout", "must be more than 0".into()));
    }
    check_interval(interval).map_err(|e| ("interval", e))?;
    let retries = raw.retries.unwrap_or(0);
    if retries > 10 {
        return Err(("retries", format!("{retries} is more than 10")));
    }
    let conditions = parse_conditions(raw.conditions, kind.default_condition())?;
    kind.check_conditions(&conditions)?;
    let tls = tls
        .get(raw.tls.unwrap_or_default())
        .map_err(|e| ("tls.ca-file", e))?;
    let slo = raw
        .slo
        .as_ref()
        .map(crate::slo::Slo::parse)
        .transpose()
        .map_err(|e| ("slo", e))?;
    Ok(Target {
        name: raw.name,
        url,
        kind,
        method,
        headers,
        body: Bytes::from(raw.body.unwrap_or_default()),
        timeout,
        retries,
        retry_backoff,
        interval,
        conditions,
        follow_redirects: raw.follow_redirects.unwrap_or(true),
        tls,
        maintenance: Maintenance::default(),
        push: None,
        slo,
    })
}

/// Only absolute URLs with a host: anything else cannot be probed (`ProbeKind::parse`
/// then checks the scheme).
fn parse_url(raw: &str) -> Result<Uri, FieldError> {
    let url: Uri = raw
        .parse()
        .map_err(|e| ("url", format!("{raw:?} is not a URL: {e}")))?;
    match (url.scheme_str(), url.host()) {
        (Some(_), Some(h)) if !h.is_empty() => Ok(url),
        _ => Err((
            "url",
            format!("{raw:?} must be an absolute URL with a host, e.g. https://host/path"),
        )),
    }
}

fn parse_headers(raw: BTreeMap<String, String>) -> Result<HeaderMap, FieldError> {
    let mut headers = HeaderMap::new();
    for (k, v) in raw {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| ("headers", format!("{k:?} is not a header name")))?;
        let value = HeaderValue::from_str(&v)
            .map_err(|_| ("headers", format!("value of {k:?} is not a header value")))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn parse_duration(
    field: &'static str,
    raw: Option<String>,
    default: Duration,
) -> Result<Duration, FieldError> {
    match raw {
        None => Ok(default),
        Some(s) => humantime::parse_duration(&s).map_err(|e| {
            (
                field,
                format!("{s:?} is not a duration ({e}); write e.g. 500ms, 10s, 5m"),
            )
        }),
    }
}

/// Omitted means the type's default (`[STATUS] == 200` for http); present but empty is a
/// mistake, not "no checks".
fn parse_conditions(raw: Option<Vec<String>>, default: &str) -> Result<Vec<Condition>, FieldError> {
    let texts = raw.unwrap_or_else(|| vec![default.to_owned()]);
    if texts.is_empty() {
        return Err((
            "conditions",
            format!("must not be empty (omit it for {default})"),
        ));
    }
    texts
        .iter()
        .map(|c| Condition::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ("conditions", e.to_string()))
}

#[cfg(test)]
mod tests;
