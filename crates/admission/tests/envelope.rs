//! A review whose `request.uid` can be read is answered as an AdmissionReview to that uid,
//! however broken the rest: `/validate` denies with 400 naming the field, `/mutate` allows
//! unchanged with a warning. The API server then sees an answer, not a failed call it would
//! settle by failurePolicy.

use admission::engine::Policies;
use serde_json::{Value, json};

use crate::support::{self, compliant_pod_spec, gvk, object, post, review};

/// A valid Pod review.
fn valid() -> Value {
    let pod = object("", "v1", "Pod", compliant_pod_spec());
    review(gvk("Pod"), "CREATE", pod, Value::Null, false)
}

/// (name, path under `request` to replace, the JSON put there, the field the answer names).
/// `None` removes the field.
#[rustfmt::skip]
const MALFORMATIONS: [(&str, &str, Option<&str>, &str); 20] = [
    ("unknown operation", "operation", Some(r#""EXPLODE""#), "request.operation"),
    ("numeric operation", "operation", Some(r#"5"#), "request.operation"),
    ("no kind", "kind", None, "request"),
    ("numeric kind.kind", "kind/kind", Some(r#"7"#), "request.kind.kind"),
    ("kind as a string", "kind", Some(r#""Pod""#), "request.kind"),
    ("no resource", "resource", None, "request"),
    ("resource.resource a list", "resource/resource", Some(r#"["pods"]"#), "request.resource.resource"),
    ("userInfo a string", "userInfo", Some(r#""admin""#), "request.userInfo"),
    ("groups a string", "userInfo/groups", Some(r#""system:masters""#), "request.userInfo.groups"),
    ("extra values not lists", "userInfo/extra", Some(r#"{"scopes": "x"}"#), "request.userInfo.extra.scopes"),
    ("userInfo.uid a number", "userInfo/uid", Some(r#"5"#), "request.userInfo.uid"),
    ("dryRun a string", "dryRun", Some(r#""yes""#), "request.dryRun"),
    ("namespace a number", "namespace", Some(r#"5"#), "request.namespace"),
    ("name an object", "name", Some(r#"{}"#), "request.name"),
    ("subResource a number", "subResource", Some(r#"1"#), "request.subResource"),
    ("requestKind a string", "requestKind", Some(r#""x""#), "request.requestKind"),
    ("requestResource a number", "requestResource", Some(r#"7"#), "request.requestResource"),
    ("object a list", "object", Some(r#"[1]"#), "request.object"),
    ("oldObject a string", "oldObject", Some(r#""s""#), "request.oldObject"),
    ("kind.group a number", "kind/group", Some(r#"5"#), "request.kind.group"),
];

fn broken(path: &str, value: Option<&str>) -> (String, Value) {
    let value: Option<Value> = value.map(|v| serde_json::from_str(v).unwrap());
    let mut r = valid();
    let uid = r["request"]["uid"].as_str().expect("uid").to_owned();
    let (parent, key) = match path.rsplit_once('/') {
        Some((parent, key)) => (&mut r["request"][parent], key),
        None => (&mut r["request"], path),
    };
    let fields = parent.as_object_mut().expect("an object");
    match value {
        Some(v) => fields.insert(key.to_owned(), v),
        None => fields.remove(key),
    };
    (uid, r)
}

#[tokio::test]
async fn twenty_malformed_reviews_are_answered_to_their_uid() {
    let server = support::serve(Policies::load(None, None).unwrap()).await;
    for (name, path, value, field) in MALFORMATIONS {
        let (uid, body) = broken(path, value);
        let (status, answer) = post(&server, "/validate", &body).await;
        assert_eq!(status, 200, "{name}: {answer}");
        let response = &answer["response"];
        assert_eq!(
            (&answer["kind"], &response["uid"]),
            (&json!("AdmissionReview"), &json!(uid)),
            "{name}"
        );
        assert_eq!(
            (&response["allowed"], &response["status"]["code"]),
            (&json!(false), &json!(400)),
            "{name}"
        );
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{field}:")), "{name}: {message}");

        let (status, answer) = post(&server, "/mutate", &body).await;
        assert_eq!(status, 200, "{name}: {answer}");
        let response = &answer["response"];
        assert_eq!(
            (&response["uid"], &response["allowed"]),
            (&json!(uid), &json!(true)),
            "{name}"
        );
        assert!(
            response["patch"].is_null(),
            "{name}: mutated a review it cannot read"
        );
        assert!(
            response["warnings"][0].as_str().unwrap().contains(field),
            "{name}: {answer}"
        );
    }
}

#[tokio::test]
async fn an_odd_object_inside_a_sound_envelope_is_evaluated() {
    // The API server decodes objects before it sends them; an annotation given as a number is
    // still a review the policies can read: answered to its uid like any other.
    let server = support::serve(Policies::load(None, None).unwrap()).await;
    let mut body = valid();
    body["request"]["object"]["metadata"]["annotations"] = json!({"a": 1});
    let uid = body["request"]["uid"].clone();
    let (status, answer) = post(&server, "/validate", &body).await;
    assert_eq!(
        (status, &answer["response"]["uid"]),
        (200, &uid),
        "{answer}"
    );
}
