//! Exceptions through the served webhook: an unexpired one allows the workload with a dated
//! warning, an expired one denies saying so, and both are counted by state.

use admission::engine::Policies;
use admission::exceptions::ANNOTATION;
use admission::metrics::ExceptionLabels;
use serde_json::{Value, json};

use crate::support::{self, compliant_pod_spec, gvk, object, post, review};

/// A privileged Deployment review in `shop` carrying one pod-security exception.
fn privileged_with_exception(expires: &str) -> Value {
    let mut spec = compliant_pod_spec();
    spec["containers"][0]["securityContext"]["privileged"] = json!(true);
    let mut deployment = object("apps", "v1", "Deployment", spec);
    let exception = json!([{"policies": ["pod-security"], "owner": "team-db",
        "reason": "INC-42", "expires": expires}]);
    deployment["metadata"]["annotations"] = json!({ANNOTATION: exception.to_string()});
    review(gvk("Deployment"), "CREATE", deployment, Value::Null, false)
}

#[tokio::test]
async fn validate_honours_live_exceptions_and_counts_them_by_state() {
    let policies = Policies::from_yaml("exceptions: {namespaces: [shop]}", "p.yaml", None).unwrap();
    let server = support::serve(policies).await;

    let (status, answer) = post(
        &server,
        "/validate",
        &privileged_with_exception("2999-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(
        (status, &answer["response"]["allowed"]),
        (200, &json!(true)),
        "{answer}"
    );
    let warnings = answer["response"]["warnings"].to_string();
    assert!(
        warnings.contains("excepted until 2999-01-01T00:00:00Z by team-db: INC-42"),
        "{warnings}"
    );

    let (status, answer) = post(
        &server,
        "/validate",
        &privileged_with_exception("2001-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(
        (status, &answer["response"]["allowed"]),
        (200, &json!(false)),
        "{answer}"
    );
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("the exception by team-db expired at 2001-01-01T00:00:00Z"),
        "{message}"
    );

    for state in ["active", "expired"] {
        let labels = ExceptionLabels {
            policy: "pod-security",
            state,
        };
        let count = server.metrics.exceptions.get(&labels).map(|c| c.get());
        assert_eq!(count, Some(1), "{state}");
    }
}
