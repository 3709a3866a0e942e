//! Policy exceptions with an owner, a reason and an expiry: the `ferrostack.io/exceptions`
//! annotation on an object (or its pod template) excuses it from named policies until a time.
//!
//! ```yaml
//! metadata:
//!   annotations:
//!     ferrostack.io/exceptions: >-
//!       [{"policies": ["pod-security"], "owner": "team-db",
//!         "reason": "INC-42: the agent needs hostPath until 3.2", "expires": "2027-01-31T00:00:00Z"}]
//! ```
//!
//! An unexpired exception turns the policy's enforced violations into warnings saying until
//! when; an expired one is ignored and the denial says it expired; one in a namespace the
//! policy file does not let grant exceptions is ignored and the denial says so; a malformed one
//! is itself a violation. Applied after every policy ran, by `/validate`, `webhook check` and
//! `webhook audit` alike, so all three give one verdict.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::policy::registry::names;
use crate::policy::{Mode, Subject, Violation};

/// The annotation holding an object's exceptions.
pub const ANNOTATION: &str = "ferrostack.io/exceptions";

/// The policy name of a malformed exception's violation.
pub const POLICY: &str = "exceptions";

/// What became of an exception, for `ferrostack_webhook_exceptions{policy,state}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Honoured: the violation is a warning until it expires.
    Active,
    /// Past its expiry: ignored.
    Expired,
    /// In a namespace that may not grant exceptions: ignored.
    Refused,
    /// Not readable: a violation of its own.
    Malformed,
}

impl State {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Expired => "expired",
            State::Refused => "refused",
            State::Malformed => "malformed",
        }
    }
}

/// Which namespaces may grant exceptions (policy file `exceptions.namespaces`; `*` is every
/// namespace, the default none).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grants {
    /// Namespace names, or `*`.
    pub namespaces: BTreeSet<String>,
}

impl Grants {
    fn allows(&self, namespace: Option<&str>) -> bool {
        self.namespaces.contains("*") || namespace.is_some_and(|ns| self.namespaces.contains(ns))
    }
}

/// One exception as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    policies: Vec<String>,
    owner: String,
    reason: String,
    expires: String,
}

/// One readable exception.
#[derive(Debug)]
struct Exception {
    policies: Vec<String>,
    owner: String,
    reason: String,
    expires: OffsetDateTime,
    expires_text: String,
}

/// Applies the subject's exceptions to `violations` as of `now`.
pub fn apply(
    grants: &Grants,
    subject: &Subject<'_>,
    now: OffsetDateTime,
    violations: &mut Vec<Violation>,
) {
    let (exceptions, malformed) = read(subject);
    violations.extend(malformed);
    if exceptions.is_empty() {
        return;
    }
    let granted = grants.allows(subject.namespace);
    for v in violations.iter_mut() {
        if v.mode != Mode::Enforce || v.policy == POLICY {
            continue;
        }
        let mut covering = exceptions
            .iter()
            .filter(|e| e.policies.iter().any(|p| p == v.policy));
        let Some(e) = covering.clone().max_by_key(|e| e.expires) else {
            continue;
        };
        if !granted {
            let ns = subject.namespace.unwrap_or("(none)");
            v.message = format!(
                "{} (exception by {} not honoured: namespace {ns} may not grant exceptions)",
                v.message, e.owner
            );
            v.exception = Some(State::Refused);
        } else if let Some(live) = covering.find(|e| e.expires > now) {
            v.mode = Mode::Warn;
            v.message = format!(
                "{} (excepted until {} by {}: {})",
                v.message, live.expires_text, live.owner, live.reason
            );
            v.exception = Some(State::Active);
        } else {
            v.message = format!(
                "{} (the exception by {} expired at {})",
                v.message, e.owner, e.expires_text
            );
            v.exception = Some(State::Expired);
        }
    }
}

/// The exceptions on the object and its pod template, and a violation for each unreadable one.
fn read(subject: &Subject<'_>) -> (Vec<Exception>, Vec<Violation>) {
    let w = &subject.workload;
    let mut places = vec![("metadata", &w.object["metadata"])];
    if !std::ptr::eq(w.template, w.object) {
        places.push((w.shape.meta_path(), &w.template["metadata"]));
    }
    let mut exceptions = Vec::new();
    let mut malformed = Vec::new();
    for (path, metadata) in places {
        let Some(value) = metadata["annotations"].get(ANNOTATION) else {
            continue;
        };
        match parse(value) {
            Ok(mut found) => exceptions.append(&mut found),
            Err(message) => malformed.push(Violation {
                policy: POLICY,
                mode: Mode::Enforce,
                container: None,
                field: format!("{path}.annotations[{ANNOTATION:?}]"),
                message,
                exception: Some(State::Malformed),
            }),
        }
    }
    (exceptions, malformed)
}

/// The exceptions of one annotation value, or why it cannot be read.
fn parse(value: &Value) -> Result<Vec<Exception>, String> {
    let text = value.as_str().ok_or("the annotation must be a string")?;
    let raw: Vec<Raw> = serde_json::from_str(text).map_err(|e| {
        format!(r#"not a JSON list of {{"policies", "owner", "reason", "expires"}}: {e}"#)
    })?;
    raw.into_iter().map(validate).collect()
}

fn validate(raw: Raw) -> Result<Exception, String> {
    if raw.policies.is_empty() {
        return Err("an exception must name at least one policy".into());
    }
    if let Some(p) = raw
        .policies
        .iter()
        .find(|p| !names().any(|n| n == p.as_str()))
    {
        let known: Vec<_> = names().collect();
        return Err(format!(
            "unknown policy {p:?} (known: {})",
            known.join(", ")
        ));
    }
    if raw.owner.trim().is_empty() || raw.reason.trim().is_empty() {
        return Err("an exception needs an owner and a reason".into());
    }
    let expires = OffsetDateTime::parse(&raw.expires, &Rfc3339)
        .map_err(|e| format!("expires {:?} is not an RFC 3339 time: {e}", raw.expires))?;
    Ok(Exception {
        policies: raw.policies,
        owner: raw.owner,
        reason: raw.reason,
        expires,
        expires_text: raw.expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Policies;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 12:00 UTC);

    /// The default policies, exceptions granted in `shop`, judged at NOW.
    fn policies() -> Policies {
        let yaml = "exceptions: {namespaces: [shop]}";
        let mut p = Policies::from_yaml(yaml, "p.yaml", None).unwrap();
        p.fixed_now = Some(NOW);
        p
    }

    /// A Deployment in `ns` running `nginx:latest` privileged, with `exceptions` on its template.
    fn evaluate(ns: &str, exceptions: Value) -> Vec<Violation> {
        let object = json!({"metadata": {"name": "web", "namespace": ns},
            "spec": {"template": {"metadata": {"annotations": {ANNOTATION: exceptions}},
                "spec": {"containers": [{"name": "web", "image": "nginx:latest",
                    "securityContext": {"privileged": true}}]}}}});
        policies()
            .evaluate_object("Deployment", &object, Some(ns), false, None)
            .unwrap()
    }

    fn one(expires: &str) -> Value {
        json!(
            json!([{"policies": ["pod-security"], "owner": "team-db",
            "reason": "INC-42", "expires": expires}])
            .to_string()
        )
    }

    fn of<'a>(v: &'a [Violation], policy: &str) -> Vec<&'a Violation> {
        v.iter().filter(|v| v.policy == policy).collect()
    }

    #[test]
    fn an_unexpired_exception_turns_that_policys_denials_into_dated_warnings() {
        let v = evaluate("shop", one("2027-01-31T00:00:00Z"));
        let excused = of(&v, "pod-security");
        assert!(!excused.is_empty());
        for e in &excused {
            assert_eq!((e.mode, e.exception), (Mode::Warn, Some(State::Active)));
            assert!(
                e.message
                    .ends_with("(excepted until 2027-01-31T00:00:00Z by team-db: INC-42)"),
                "{}",
                e.message
            );
        }
        // Other policies are untouched: image-tag still denies latest.
        assert!(
            of(&v, "image-tag")
                .iter()
                .all(|e| e.mode == Mode::Enforce && e.exception.is_none())
        );
    }

    #[test]
    fn an_expired_exception_is_ignored_and_the_denial_says_so() {
        let v = evaluate("shop", one("2026-12-06T11:59:59Z"));
        for e in of(&v, "pod-security") {
            assert_eq!((e.mode, e.exception), (Mode::Enforce, Some(State::Expired)));
            assert!(
                e.message.contains("expired at 2026-12-06T11:59:59Z"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn a_namespace_not_allowed_to_grant_gets_no_exception() {
        let v = evaluate("other", one("2027-01-31T00:00:00Z"));
        for e in of(&v, "pod-security") {
            assert_eq!((e.mode, e.exception), (Mode::Enforce, Some(State::Refused)));
            assert!(
                e.message
                    .contains("namespace other may not grant exceptions"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn a_malformed_exception_is_a_violation_naming_what_is_wrong() {
        let cases = [
            (json!(5), "must be a string"),
            (json!("not json"), "not a JSON list"),
            (
                json!(
                    r#"[{"policies": [], "owner": "o", "reason": "r", "expires": "2027-01-01T00:00:00Z"}]"#
                ),
                "at least one policy",
            ),
            (
                json!(
                    r#"[{"policies": ["pod-sec"], "owner": "o", "reason": "r", "expires": "2027-01-01T00:00:00Z"}]"#
                ),
                "unknown policy \"pod-sec\"",
            ),
            (
                json!(
                    r#"[{"policies": ["probes"], "owner": " ", "reason": "r", "expires": "2027-01-01T00:00:00Z"}]"#
                ),
                "owner and a reason",
            ),
            (
                json!(
                    r#"[{"policies": ["probes"], "owner": "o", "reason": "r", "expires": "next week"}]"#
                ),
                "RFC 3339",
            ),
            (
                json!(
                    r#"[{"policies": ["probes"], "owner": "o", "reason": "r", "expires": "2027-01-01T00:00:00Z", "extra": 1}]"#
                ),
                "unknown field",
            ),
        ];
        for (value, why) in cases {
            let v = evaluate("shop", value);
            let bad = of(&v, POLICY);
            assert_eq!(bad.len(), 1, "{why}: {v:?}");
            assert_eq!(
                (bad[0].mode, bad[0].exception),
                (Mode::Enforce, Some(State::Malformed))
            );
            assert!(bad[0].message.contains(why), "{why}: {}", bad[0].message);
            assert_eq!(
                bad[0].field,
                format!("spec.template.metadata.annotations[{ANNOTATION:?}]")
            );
        }
    }

    #[test]
    fn the_latest_live_exception_wins_and_any_namespace_may_grant_with_a_star() {
        let two = json!(json!([
            {"policies": ["pod-security"], "owner": "old", "reason": "r", "expires": "2026-01-01T00:00:00Z"},
            {"policies": ["pod-security", "image-tag"], "owner": "new", "reason": "r", "expires": "2027-06-01T00:00:00Z"}
        ]).to_string());
        let v = evaluate("shop", two.clone());
        let named = || {
            v.iter()
                .filter(|e| ["pod-security", "image-tag"].contains(&e.policy))
        };
        assert!(named().count() > 1, "{v:?}");
        let live =
            |e: &&Violation| e.exception == Some(State::Active) && e.message.contains("by new");
        assert!(named().all(|e| live(&e)), "{v:?}");
        let mut p = Policies::from_yaml("exceptions: {namespaces: ['*']}", "p.yaml", None).unwrap();
        p.fixed_now = Some(NOW);
        let object = json!({"metadata": {"name": "w", "namespace": "any",
            "annotations": {ANNOTATION: two}},
            "spec": {"template": {"spec": {"containers": [{"name": "w", "image": "nginx:latest"}]}}}});
        let v = p
            .evaluate_object("Deployment", &object, Some("any"), false, None)
            .unwrap();
        let image = of(&v, "image-tag");
        assert!(
            !image.is_empty() && image.iter().all(|e| e.mode == Mode::Warn),
            "{v:?}"
        );
    }
}
