//! One verdict everywhere: generated workloads (containers, security contexts, exceptions
//! around their expiry under a fixed clock, namespaces that may or may not grant them) get the
//! same violations, modes and messages from `/validate`'s review, from `webhook check` and from
//! `webhook audit` (over the same object as `kubectl get -o yaml` would give it).

use admission::check::{Input, Options, check};
use admission::engine::Policies;
use admission::exceptions::ANNOTATION;
use admission::review::{self, Endpoint};
use proptest::prelude::*;
use serde_json::{Value, json};
use time::macros::datetime;

use crate::properties::{opt, pod_spec};
use crate::support::{kinds, object, review as review_json};

/// An exceptions annotation for `policies`, expiring `minutes` from the fixed clock.
fn exception() -> impl Strategy<Value = Option<Value>> {
    let policies = prop::sample::subsequence(
        vec!["pod-security", "image-tag", "resources", "probes"],
        1..3,
    );
    opt(
        (policies, -90i64..90, any::<bool>()).prop_map(|(policies, minutes, malformed)| {
            let expires = datetime!(2026-12-06 12:00 UTC) + time::Duration::minutes(minutes);
            let expires = expires
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            let owner = if malformed { "" } else { "team-a" };
            json!([{"policies": policies, "owner": owner, "reason": "r", "expires": expires}])
                .to_string()
                .into()
        }),
    )
}

/// What `webhook audit` reports for `object`, as (policy, severity, field, message).
fn audited(policies: &Policies, object: &Value) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let text = serde_json::to_string(object).unwrap();
    let summary = admission::audit::audit_inputs(
        policies,
        &[Input {
            name: "-".into(),
            text,
        }],
        &mut out,
    )
    .unwrap();
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(summary.objects, 1);
    let field = |l: &Value, k: &str| l[k].as_str().unwrap_or_default().to_owned();
    lines
        .iter()
        .filter(|l| l.get("policy").is_some())
        .map(|l| {
            (
                field(l, "policy"),
                field(l, "severity"),
                field(l, "field"),
                field(l, "message"),
            )
        })
        .collect()
}

/// The same, from the violations.
fn described(violations: &[admission::policy::Violation]) -> Vec<(String, String, String, String)> {
    let severity = |v: &admission::policy::Violation| {
        if v.mode == admission::policy::Mode::Enforce {
            "error"
        } else {
            "warning"
        }
    };
    violations
        .iter()
        .map(|v| {
            (
                v.policy.to_owned(),
                severity(v).to_owned(),
                v.field.clone(),
                v.message.clone(),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn validate_and_check_agree(
        spec in pod_spec(),
        k in 0..kinds().len(),
        annotation in exception(),
        granting in any::<bool>(),
    ) {
        let mut policies = Policies::from_yaml("exceptions: {namespaces: [shop]}", "p.yaml", None).unwrap();
        policies.fixed_now = Some(datetime!(2026-12-06 12:00 UTC));
        let namespace = if granting { "shop" } else { "other" };
        let (g, v, kind, p) = kinds()[k];
        let mut object = object(g, v, kind, spec);
        object["metadata"]["namespace"] = json!(namespace);
        if let Some(a) = annotation {
            object["metadata"]["annotations"] = json!({ANNOTATION: a});
        }

        let mut body = review_json((g, v, kind, p), "CREATE", object.clone(), Value::Null, false);
        body["request"]["namespace"] = json!(namespace);
        let req = review::parse(&serde_json::to_vec(&body).unwrap()).unwrap();
        let endpoint = Endpoint::Validate { namespace_labelled: false };
        let validated = review::review(&policies, &req, endpoint, None);

        let input = Input { name: "gen.yaml".into(), text: serde_json::to_string(&object).unwrap() };
        let options = Options { no_mutate: true, namespace: None };
        let report = check(&policies, &[input], &options);
        let checked: Vec<_> = report.findings.into_iter().map(|f| f.violation).collect();

        prop_assert_eq!(&validated.violations, &checked);
        prop_assert_eq!(audited(&policies, &object), described(&checked));
        let denied = checked.iter().any(|v| v.mode == admission::policy::Mode::Enforce);
        prop_assert_eq!(validated.answer.response.allowed, !denied);
    }
}
