//! Gatus-style conditions: parse `[STATUS] == 200`, `[RESPONSE_TIME] < 500ms`,
//! `[BODY].status == UP`, `[BODY] contains "x"`, `[CERTIFICATE_EXPIRATION] > 72h`, and evaluate
//! them against one observation. A failed condition shows the actual value, as Gatus does:
//! `[STATUS] (500) == 200`.

use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// Why a condition string could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid condition {text:?}: {reason}")]
pub struct ConditionError {
    text: String,
    reason: String,
}

/// A parsed condition; `Display` gives back the text it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    left: Left,
    op: Op,
    right: Right,
}

/// What a probe observed, as the conditions see it.
#[derive(Debug, Default)]
pub struct Observation<'a> {
    /// HTTP status of the response, if one arrived.
    pub status: Option<u16>,
    /// Time from the start of the attempt to the end of the body.
    pub response_time: Duration,
    /// The response body (possibly truncated to the body limit).
    pub body: &'a [u8],
    /// The body was longer than the limit (`body` holds its first 1 MiB).
    pub body_over_limit: bool,
    /// Time left until the leaf certificate expires (negative: already expired).
    pub certificate_expiration: Option<i64>,
    /// Whether a connection was established.
    pub connected: bool,
    /// The address connected to.
    pub ip: Option<IpAddr>,
    /// A DNS answer's response code (`NOERROR`, `NXDOMAIN`, ...), for `dns://` targets.
    pub dns_rcode: Option<&'a str>,
    pub(crate) json: OnceLock<Option<serde_json::Value>>,
}

/// The outcome of one condition: `shown` is the text with the actual value filled in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// Whether the condition held.
    pub success: bool,
    /// The condition, with the actual value in parentheses when it failed.
    pub shown: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Placeholder {
    Status,
    ResponseTime,
    Body(Vec<Segment>),
    CertificateExpiration,
    Connected,
    Ip,
    DnsRcode,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Left {
    Value(Placeholder),
    Len(Placeholder),
    Has(Placeholder),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
}

#[derive(Debug, Clone, PartialEq)]
enum Right {
    Number(f64),
    /// Milliseconds (response time) or seconds (certificate expiration).
    Duration(Duration),
    Text(String),
    Bool(bool),
    Pattern(String),
    Any(Vec<String>),
}

/// A resolved left-hand value.
enum Actual {
    Number(f64),
    Duration(Duration),
    /// Seconds, may be negative.
    Seconds(i64),
    Text(String),
    Bool(bool),
    Missing(&'static str),
}

const OPS: [(&str, Op); 7] = [
    (" == ", Op::Eq),
    (" != ", Op::Ne),
    (" <= ", Op::Le),
    (" >= ", Op::Ge),
    (" < ", Op::Lt),
    (" > ", Op::Gt),
    (" contains ", Op::Contains),
];

// === impl Condition ===

impl Condition {
    /// Parses `<left> <op> <right>`; the operator needs a space on each side.
    pub fn parse(text: &str) -> Result<Self, ConditionError> {
        let fail = |reason: &str| ConditionError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (at, token, op) = OPS
            .iter()
            .filter_map(|(token, op)| find_outside_quotes(text, token).map(|at| (at, *token, *op)))
            .min_by_key(|(at, _, _)| *at)
            .ok_or_else(|| {
                fail("expected `<placeholder> <op> <value>` with one of == != < <= > >= contains, spaced")
            })?;
        let left = parse_left(text[..at].trim()).map_err(|r| fail(&r))?;
        let right =
            parse_right(&left, op, text[at + token.len()..].trim()).map_err(|r| fail(&r))?;
        Ok(Self {
            text: text.trim().to_owned(),
            left,
            op,
            right,
        })
    }

    /// Evaluates the condition against what a probe observed.
    pub fn evaluate(&self, obs: &Observation<'_>) -> Outcome {
        let actual = self.resolve(obs);
        let success = compare(&actual, self.op, &self.right);
        let shown = if success {
            self.text.clone()
        } else {
            let (left, rest) = self.split_text();
            format!("{left} ({}){rest}", display_actual(&actual))
        };
        Outcome { success, shown }
    }

    /// The placeholder the condition reads, e.g. `[STATUS]` (`[BODY]` for any body path).
    pub fn placeholder(&self) -> &'static str {
        let (Left::Value(p) | Left::Len(p) | Left::Has(p)) = &self.left;
        match p {
            Placeholder::Status => "[STATUS]",
            Placeholder::ResponseTime => "[RESPONSE_TIME]",
            Placeholder::Body(_) => "[BODY]",
            Placeholder::CertificateExpiration => "[CERTIFICATE_EXPIRATION]",
            Placeholder::Connected => "[CONNECTED]",
            Placeholder::Ip => "[IP]",
            Placeholder::DnsRcode => "[DNS_RCODE]",
        }
    }

    fn split_text(&self) -> (&str, &str) {
        let at = OPS
            .iter()
            .filter_map(|(token, _)| find_outside_quotes(&self.text, token))
            .min()
            .unwrap_or(self.text.len());
        self.text.split_at(at)
    }

    fn resolve(&self, obs: &Observation<'_>) -> Actual {
        match &self.left {
            Left::Value(p) => resolve_placeholder(p, obs),
            Left::Len(p) => match resolve_placeholder(p, obs) {
                Actual::Text(s) => Actual::Number(len_of(p, &s) as f64),
                other => other,
            },
            Left::Has(p) => {
                Actual::Bool(!matches!(resolve_placeholder(p, obs), Actual::Missing(_)))
            }
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

// === impl Observation ===

impl Observation<'_> {
    fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }
}

fn find_outside_quotes(text: &str, token: &str) -> Option<usize> {
    let mut in_quotes = false;
    for (i, c) in text.char_indices() {
        if c == '"' {
            in_quotes = !in_quotes;
        } else if !in_quotes && text[i..].starts_with(token) {
            return Some(i);
        }
    }
    None
}

fn parse_left(s: &str) -> Result<Left, String> {
    for name in ["len(", "has("] {
        if let Some(inner) = s.strip_prefix(name).and_then(|r| r.strip_suffix(')')) {
            let p = parse_placeholder(inner.trim())?;
            if !matches!(p, Placeholder::Body(_)) {
                return Err(format!("{name}...) only applies to [BODY]"));
            }
            return Ok(if name == "len(" {
                Left::Len(p)
            } else {
                Left::Has(p)
            });
        }
    }
    parse_placeholder(s).map(Left::Value)
}

fn parse_placeholder(s: &str) -> Result<Placeholder, String> {
    Ok(match s {
        "[STATUS]" => Placeholder::Status,
        "[RESPONSE_TIME]" => Placeholder::ResponseTime,
        "[CERTIFICATE_EXPIRATION]" => Placeholder::CertificateExpiration,
        "[CONNECTED]" => Placeholder::Connected,
        "[IP]" => Placeholder::Ip,
        "[DNS_RCODE]" => Placeholder::DnsRcode,
        _ => match s.strip_prefix("[BODY]") {
            Some(path) => Placeholder::Body(parse_path(path)?),
            None => {
                return Err(format!(
                    "unknown placeholder {s:?} (use [STATUS], [RESPONSE_TIME], [BODY], [BODY].path, \
                     [CERTIFICATE_EXPIRATION], [CONNECTED], [IP], [DNS_RCODE], len(...) or has(...))"
                ));
            }
        },
    })
}

/// `.a.b[0].c` → keys and indexes.
fn parse_path(mut rest: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err("empty key in [BODY] path".into());
            }
            segments.push(Segment::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or("unclosed [ in [BODY] path")?;
            let index = r[..end]
                .parse()
                .map_err(|_| format!("index {:?} in [BODY] path is not a number", &r[..end]))?;
            segments.push(Segment::Index(index));
            rest = &r[end + 1..];
        } else {
            return Err(format!(
                "unexpected {rest:?} after [BODY] (use .key or [index])"
            ));
        }
    }
    Ok(segments)
}

fn parse_right(left: &Left, op: Op, s: &str) -> Result<Right, String> {
    if s.is_empty() {
        return Err("missing value on the right".into());
    }
    let ordering = matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge);
    let equality = matches!(op, Op::Eq | Op::Ne);
    if let Some(matcher) = parse_matcher(equality, s) {
        return matcher;
    }
    match left {
        Left::Value(Placeholder::Status) | Left::Len(_) => {
            if op == Op::Contains {
                return Err("contains only applies to [BODY] and [IP]".into());
            }
            parse_number(s).map(Right::Number)
        }
        Left::Value(Placeholder::ResponseTime | Placeholder::CertificateExpiration) => {
            if !ordering && !equality {
                return Err("durations compare with == != < <= > >=".into());
            }
            parse_duration(s).map(Right::Duration)
        }
        Left::Value(Placeholder::Connected) | Left::Has(_) => {
            if !equality {
                return Err("booleans compare with == or !=".into());
            }
            parse_bool(s).map(Right::Bool)
        }
        Left::Value(Placeholder::DnsRcode) => {
            if !equality {
                return Err("[DNS_RCODE] compares with == or !=".into());
            }
            Ok(Right::Text(unquote(s).to_ascii_uppercase()))
        }
        Left::Value(Placeholder::Body(_) | Placeholder::Ip) => {
            if ordering {
                parse_number(s).map(Right::Number)
            } else {
                Ok(Right::Text(unquote(s).to_owned()))
            }
        }
    }
}

/// `pat(...)` and `any(...)`, whatever the left side; `None` when `s` is neither.
fn parse_matcher(equality: bool, s: &str) -> Option<Result<Right, String>> {
    if let Some(inner) = s.strip_prefix("pat(").and_then(|r| r.strip_suffix(')')) {
        if !equality {
            return Some(Err("pat(...) only works with == or !=".into()));
        }
        return Some(Ok(Right::Pattern(unquote(inner.trim()).to_owned())));
    }
    let inner = s.strip_prefix("any(").and_then(|r| r.strip_suffix(')'))?;
    if !equality {
        return Some(Err("any(...) only works with == or !=".into()));
    }
    Some(Ok(Right::Any(
        inner
            .split(',')
            .map(|v| unquote(v.trim()).to_owned())
            .collect(),
    )))
}

fn parse_number(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("{s:?} is not a number"))
}

/// Bare digits are milliseconds, anything else a humantime duration.
fn parse_duration(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => humantime::parse_duration(s)
            .map_err(|e| format!("{s:?} is not a duration ({e}); write e.g. 500ms or 72h")),
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s)
}

fn resolve_placeholder(p: &Placeholder, obs: &Observation<'_>) -> Actual {
    match p {
        Placeholder::Status => match obs.status {
            Some(s) => Actual::Number(f64::from(s)),
            None => Actual::Missing("no response"),
        },
        Placeholder::ResponseTime => Actual::Duration(obs.response_time),
        Placeholder::CertificateExpiration => match obs.certificate_expiration {
            Some(s) => Actual::Seconds(s),
            None => Actual::Missing("no certificate"),
        },
        Placeholder::Connected => Actual::Bool(obs.connected),
        Placeholder::Ip => match obs.ip {
            Some(ip) => Actual::Text(ip.to_string()),
            None => Actual::Missing("no address"),
        },
        Placeholder::DnsRcode => match obs.dns_rcode {
            Some(code) => Actual::Text(code.to_owned()),
            None => Actual::Missing("no DNS answer"),
        },
        Placeholder::Body(path) if path.is_empty() => {
            Actual::Text(String::from_utf8_lossy(obs.body).into_owned())
        }
        Placeholder::Body(path) => {
            // A cut-off body is never valid JSON; say why it cannot be read instead.
            const _: () = assert!(crate::probe::BODY_LIMIT == 1 << 20, "the message names it");
            if obs.body_over_limit {
                return Actual::Missing("body over the 1 MiB limit");
            }
            let Some(mut v) = obs.json() else {
                return Actual::Missing("body is not JSON");
            };
            for seg in path {
                let next = match seg {
                    Segment::Key(k) => v.get(k.as_str()),
                    Segment::Index(i) => v.get(*i),
                };
                match next {
                    Some(n) => v = n,
                    None => return Actual::Missing("missing"),
                }
            }
            Actual::Text(match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        }
    }
}

/// `len([BODY].x)`: array or object size for JSON containers, characters otherwise.
fn len_of(p: &Placeholder, text: &str) -> usize {
    if let Placeholder::Body(path) = p
        && !path.is_empty()
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
    {
        match v {
            serde_json::Value::Array(a) => return a.len(),
            serde_json::Value::Object(o) => return o.len(),
            _ => {}
        }
    }
    text.chars().count()
}

fn compare(actual: &Actual, op: Op, right: &Right) -> bool {
    use std::cmp::Ordering;
    let ordered = |o: Option<Ordering>| match (o, op) {
        (None, _) => false,
        (Some(o), Op::Eq) => o == Ordering::Equal,
        (Some(o), Op::Ne) => o != Ordering::Equal,
        (Some(o), Op::Lt) => o == Ordering::Less,
        (Some(o), Op::Le) => o != Ordering::Greater,
        (Some(o), Op::Gt) => o == Ordering::Greater,
        (Some(o), Op::Ge) => o != Ordering::Less,
        (Some(_), Op::Contains) => false,
    };
    let text_of = |a: &Actual| match a {
        Actual::Number(n) => Some(format_number(*n)),
        Actual::Text(t) => Some(t.clone()),
        _ => None,
    };
    match (actual, right) {
        (Actual::Missing(_), _) => false,
        (_, Right::Pattern(p)) => text_of(actual).is_some_and(|t| glob(p, &t)) == (op == Op::Eq),
        (_, Right::Any(vs)) => {
            text_of(actual).is_some_and(|t| vs.iter().any(|v| text_eq(&t, v))) == (op == Op::Eq)
        }
        (Actual::Number(a), Right::Number(b)) => ordered(a.partial_cmp(b)),
        (Actual::Text(a), Right::Number(b)) => {
            ordered(a.trim().parse::<f64>().ok().and_then(|a| a.partial_cmp(b)))
        }
        (Actual::Duration(a), Right::Duration(b)) => ordered(Some(a.cmp(b))),
        (Actual::Seconds(a), Right::Duration(b)) => {
            let b = i64::try_from(b.as_secs()).unwrap_or(i64::MAX);
            ordered(Some(a.cmp(&b)))
        }
        (Actual::Bool(a), Right::Bool(b)) => ordered(Some(a.cmp(b))),
        (Actual::Text(a), Right::Text(b)) => match op {
            Op::Contains => a.contains(b.as_str()),
            Op::Eq => text_eq(a, b),
            Op::Ne => !text_eq(a, b),
            _ => false,
        },
        _ => false,
    }
}

/// Equal as text, or as numbers when both sides are numbers (`1.0 == 1`).
fn text_eq(a: &str, b: &str) -> bool {
    a == b || matches!((a.trim().parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

/// Glob with `*` (any run) and `?` (one character).
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn display_actual(a: &Actual) -> String {
    match a {
        Actual::Number(n) => format_number(*n),
        Actual::Duration(d) => format_duration(*d),
        Actual::Seconds(s) if *s < 0 => {
            format!(
                "expired {} ago",
                humantime::format_duration(Duration::from_secs(s.unsigned_abs()))
            )
        }
        Actual::Seconds(s) => {
            humantime::format_duration(Duration::from_secs(s.unsigned_abs())).to_string()
        }
        Actual::Text(t) => truncate(t, 80),
        Actual::Bool(b) => b.to_string(),
        Actual::Missing(why) => (*why).to_owned(),
    }
}

/// `0.4ms`, `734ms`, `1.204s`: tenths below 10 ms, milliseconds below a second, seconds
/// with millisecond precision above.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 10 {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests;
