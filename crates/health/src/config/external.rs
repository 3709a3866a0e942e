//! Push targets, Gatus' `external-endpoints`: results arrive by `POST /api/push/<name>`
//! instead of being probed; a target silent for longer than its `heartbeat` fails.
//!
//! ```yaml
//! external-endpoints:
//!   - name: nightly-backup
//!     heartbeat: 25h            # or Gatus' form, heartbeat: {interval: 25h}
//!     token-file: /etc/ferrostack/push-token/backup   # else --push-token-file
//! ```

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;
use serde_norway::Value;

use super::{ConfigError, RawTarget, Target, TlsCache, parse_duration, validate};
use crate::maintenance::{self, RawWindow};
use crate::pushed::{PushSpec, Token};

/// One push target as written in YAML.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawExternal {
    /// Unique name (among targets too); the `<name>` of `/api/push/<name>`.
    name: String,
    /// Longest silence before a failure is recorded (none: silence never fails).
    heartbeat: Option<RawHeartbeat>,
    /// File holding this target's bearer token (a mounted Secret).
    token_file: Option<PathBuf>,
    /// The target's own maintenance windows.
    #[serde(default)]
    maintenance_windows: Vec<RawWindow>,
}

/// `heartbeat: 5m`, or Gatus' `heartbeat: {interval: 5m}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawHeartbeat {
    Short(String),
    Gatus { interval: String },
}

/// Validates `external-endpoints`; `seen` holds the names taken so far.
pub(super) fn parse(
    file: &str,
    values: Vec<Value>,
    tls: &mut TlsCache,
    seen: &mut HashSet<String>,
) -> Result<Vec<Target>, ConfigError> {
    let mut out = Vec::with_capacity(values.len());
    for (i, value) in values.into_iter().enumerate() {
        let label = value
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("external-endpoints#{}", i + 1), str::to_owned);
        let err =
            |field: Option<&str>, msg: String| ConfigError::new(file, Some(&label), field, msg);
        let raw: RawExternal = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = (path != ".").then_some(path);
            err(field.as_deref(), e.into_inner().to_string())
        })?;
        let windows = maintenance::for_target(raw.maintenance_windows)
            .map_err(|(field, msg)| err(Some(&field), msg))?;
        let name_ok = !raw.name.is_empty()
            && raw
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !name_ok {
            return Err(err(
                Some("name"),
                "must be letters, digits, '.', '_' or '-' (it is a URL path segment)".into(),
            ));
        }
        let heartbeat = match raw.heartbeat {
            None => None,
            Some(RawHeartbeat::Short(s) | RawHeartbeat::Gatus { interval: s }) => Some(
                parse_duration("heartbeat", Some(s), super::DEFAULT_INTERVAL)
                    .map_err(|(f, m)| err(Some(f), m))?,
            ),
        };
        if let Some(h) = heartbeat {
            super::check_interval(h).map_err(|m| err(Some("heartbeat"), m))?;
        }
        let token = raw
            .token_file
            .map(|p| Token::read(&p))
            .transpose()
            .map_err(|m| err(Some("token-file"), m))?;
        let mut target = target(&raw.name, heartbeat, tls).map_err(|(f, m)| err(Some(f), m))?;
        target.maintenance = windows;
        target.push = Some(PushSpec { heartbeat, token });
        if !seen.insert(target.name.clone()) {
            return Err(err(Some("name"), "duplicate target name".into()));
        }
        out.push(target);
    }
    Ok(out)
}

/// A target that is never probed: the URL shown is where results are pushed to, and the
/// interval (which sets how long Alertmanager keeps a firing alert) is the heartbeat.
fn target(
    name: &str,
    heartbeat: Option<std::time::Duration>,
    tls: &mut TlsCache,
) -> Result<Target, super::FieldError> {
    let raw = RawTarget {
        name: name.to_owned(),
        url: "http://push.invalid/".to_owned(),
        interval: heartbeat.map(|h| humantime::format_duration(h).to_string()),
        ..RawTarget::default()
    };
    let mut target = validate(raw, tls)?;
    target.url = format!("/api/push/{name}")
        .parse()
        .map_err(|_| ("name", "is not a URL path segment".to_owned()))?;
    Ok(target)
}
