//! Properties of the mutations over generated pod specs: mutating twice adds nothing, the
//! base64 JSON Patch applied by a JSON Patch implementation gives the mutated object, and
//! validation after mutation is stable and never worse.

use admission::engine::Policies;
use admission::review::{self, Endpoint};
use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{kinds, object, review as review_json};

pub(crate) fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![Just(None), s.prop_map(Some)].boxed()
}

pub(crate) fn container() -> impl Strategy<Value = Value> {
    (
        "[a-z]{1,8}",
        opt(prop_oneof![
            Just("app:1"),
            Just("app:latest"),
            Just("app"),
            Just("app@sha256:00")
        ]),
        opt(any::<bool>()),
        opt(any::<bool>()),
        opt(prop_oneof![Just("100m"), Just("1")]),
        opt(prop_oneof![Just("64Mi"), Just("1Gi")]),
        opt(prop_oneof![Just("RuntimeDefault"), Just("Unconfined")]),
        opt(prop_oneof![
            Just(json!(["SYS_ADMIN"])),
            Just(json!(["NET_BIND_SERVICE"]))
        ]),
    )
        .prop_map(
            |(name, image, ape, privileged, cpu, mem_limit, seccomp, add)| {
                let mut c = json!({"name": name});
                if let Some(i) = image {
                    c["image"] = json!(i);
                }
                let mut sc = serde_json::Map::new();
                if let Some(a) = ape {
                    sc.insert("allowPrivilegeEscalation".into(), json!(a));
                }
                if let Some(p) = privileged {
                    sc.insert("privileged".into(), json!(p));
                }
                if let Some(s) = seccomp {
                    sc.insert("seccompProfile".into(), json!({"type": s}));
                }
                if let Some(a) = add {
                    sc.insert("capabilities".into(), json!({"add": a}));
                }
                if !sc.is_empty() {
                    c["securityContext"] = Value::Object(sc);
                }
                if let Some(cpu) = cpu {
                    c["resources"] = json!({"requests": {"cpu": cpu}});
                }
                if let Some(m) = mem_limit {
                    c["resources"]["limits"] = json!({"memory": m});
                }
                c
            },
        )
}

pub(crate) fn pod_spec() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(container(), 1..4),
        prop::collection::vec(container(), 0..2),
        opt(prop_oneof![Just("RuntimeDefault"), Just("Localhost")]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(containers, init, seccomp, windows, affinity)| {
            let mut s = json!({"containers": containers});
            if !init.is_empty() {
                s["initContainers"] = json!(init);
            }
            if let Some(t) = seccomp {
                s["securityContext"] = json!({"seccompProfile": {"type": t}});
            }
            if windows {
                s["os"] = json!({"name": "windows"});
            }
            if affinity {
                s["affinity"] = json!({"nodeAffinity": {}});
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn mutation_is_idempotent_and_its_patch_reproduces_it(spec in pod_spec(), k in 0..kinds().len()) {
        let policies = Policies::load(None, None).unwrap();
        let (g, v, kind, p) = kinds()[k];
        let original = object(g, v, kind, spec);

        let mut once = original.clone();
        policies.mutations.apply(kind, &mut once);
        let mut twice = once.clone();
        prop_assert!(policies.mutations.apply(kind, &mut twice).is_empty());
        prop_assert_eq!(&twice, &once);

        // The webhook's base64 patch, applied by json-patch, gives the same object.
        let body = serde_json::to_vec(&review_json((g, v, kind, p), "CREATE", original.clone(), Value::Null, false)).unwrap();
        let req = review::parse(&body).unwrap();
        let out = review::review(&policies, &req, Endpoint::Mutate, None);
        let mut patched = original.clone();
        if let Some(b64) = &out.answer.response.patch {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
            let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
            json_patch::patch(&mut patched, &patch).unwrap();
        }
        prop_assert_eq!(&patched, &once);

        // Validation after mutation is stable, and mutation never adds a violation.
        let before = policies.evaluate_object(kind, &original, Some("shop"), false, None).unwrap();
        let after = policies.evaluate_object(kind, &once, Some("shop"), false, None).unwrap();
        let again = policies.evaluate_object(kind, &twice, Some("shop"), false, None).unwrap();
        prop_assert_eq!(&after, &again);
        for violation in &after {
            prop_assert!(before.contains(violation), "mutation introduced {:?}", violation);
        }
    }
}
