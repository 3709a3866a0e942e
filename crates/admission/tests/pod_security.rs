//! The official Pod Security Admission conformance fixtures (test/testdata of the Go module
//! k8s.io/pod-security-admission, fetched by scripts/psa-fixtures.sh at the pinned Kubernetes
//! release) through the `pod-security` policy at each level and version, both as `webhook
//! check --no-mutate` reads a manifest and as `/validate` reads an AdmissionReview: a `fail`
//! fixture must draw a `[pod-security]` finding and a denial, a `pass` fixture neither.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use admission::check::{Input, Options, check};
use admission::engine::Policies;
use admission::policy::registry::names;
use admission::review::{self, Endpoint};
use serde_json::Value;

use crate::support::{gvk, review as review_json};

/// The oldest version the fixtures are held to (the range: v1.25 to the newest).
const OLDEST_MINOR: u32 = 25;

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("PSA_FIXTURES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/psa-fixtures"),
        PathBuf::from,
    );
    if dir.join(".source").is_file() {
        return Some(dir);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci,
        "{} is missing: run scripts/psa-fixtures.sh",
        dir.display()
    );
    eprintln!(
        "SKIP pod_security: {} missing (scripts/psa-fixtures.sh)",
        dir.display()
    );
    None
}

/// Every policy off but `pod-security`, which enforces `level` at `version`.
fn policies(level: &str, version: &str) -> Policies {
    let mut yaml = String::from("policies:\n");
    for name in names() {
        if name != "pod-security" {
            yaml.push_str(&format!("  {name}: {{mode: off}}\n"));
        }
    }
    yaml.push_str(&format!(
        "  pod-security: {{mode: enforce, level: {level}, version: {version}}}\n"
    ));
    Policies::from_yaml(&yaml, "conformance", None).expect("policy")
}

/// `v1.N` directories from OLDEST_MINOR on, in version order.
fn versions(level_dir: &Path) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = std::fs::read_dir(level_dir)
        .expect("level dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let minor = name.strip_prefix("v1.")?.parse().ok()?;
            (minor >= OLDEST_MINOR).then_some((minor, name))
        })
        .collect();
    out.sort();
    out
}

/// The fixtures of `dir` that got the wrong verdict.
fn wrong(policies: &Policies, dir: &Path, expect_finding: bool) -> (usize, Vec<String>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.sort();
    let options = Options {
        no_mutate: true,
        namespace: Some("default".into()),
    };
    let mut bad = Vec::new();
    for file in &files {
        let input = Input {
            name: file.display().to_string(),
            text: std::fs::read_to_string(file).expect("fixture"),
        };
        let report = check(policies, std::slice::from_ref(&input), &options);
        assert!(
            report.errors.is_empty(),
            "{}: {:?}",
            file.display(),
            report.errors
        );
        let found = report
            .findings
            .iter()
            .any(|f| f.violation.policy == "pod-security");
        if found != expect_finding || validated(policies, &input.text) == expect_finding {
            let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
            bad.push(stem.unwrap_or_default());
        }
    }
    (files.len(), bad)
}

/// Whether `/validate` admits the fixture Pod, sent as a CREATE review in `default`.
fn validated(policies: &Policies, yaml: &str) -> bool {
    let pod: Value = serde_norway::from_str(yaml).expect("fixture YAML");
    let body = review_json(gvk("Pod"), "CREATE", pod, Value::Null, false);
    let req = review::parse(&serde_json::to_vec(&body).expect("json")).expect("review");
    let endpoint = Endpoint::Validate {
        namespace_labelled: false,
    };
    review::review(policies, &req, endpoint, None)
        .answer
        .response
        .allowed
}

#[test]
fn every_fixture_of_every_version_and_level_gets_upstreams_verdict() {
    let Some(root) = fixtures() else { return };
    let mut tally = BTreeMap::new();
    let mut misses = Vec::new();
    for level in ["baseline", "restricted"] {
        for (minor, version) in versions(&root.join(level)) {
            let policies = policies(level, &version);
            for (outcome, expect) in [("fail", true), ("pass", false)] {
                let (n, bad) = wrong(
                    &policies,
                    &root.join(level).join(&version).join(outcome),
                    expect,
                );
                let entry = tally.entry((level, outcome)).or_insert((0, 0));
                entry.0 += n - bad.len();
                entry.1 += n;
                if !bad.is_empty() {
                    misses.push(format!("{level} v1.{minor} {outcome}: {}", bad.join(" ")));
                }
            }
        }
    }
    for ((level, outcome), (right, all)) in &tally {
        eprintln!("{level:<10} {outcome}: {right}/{all}");
    }
    assert!(misses.is_empty(), "wrong verdicts:\n{}", misses.join("\n"));
}
