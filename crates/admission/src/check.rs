//! `webhook check`: the same policies over multi-document YAML files, printed like a linter.
//!
//! Each finding is one line, `FILE:DOC: KIND/NAME: FIELD: error|warning[POLICY]: MESSAGE`,
//! where DOC counts the file's YAML documents from 1. By default the mutations are applied
//! first, as the mutating webhook would before the validating one sees the object. Exit code:
//! 0 clean or warnings only, 1 an enforce violation, 2 an input that cannot be read or parsed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use runtime::files::{self, MAX_CONFIG_BYTES};
use serde::Deserialize;
use serde_json::Value;

use crate::config::PolicyArgs;
use crate::engine::Policies;
use crate::policy::{Mode, Violation};

/// `ferrostack webhook check` flags.
#[derive(clap::Args, Clone, Debug)]
#[command(mut_arg("namespace", |a| a.help("Namespace of objects that name none (as `kubectl apply -n`)")))]
pub struct CheckArgs {
    /// Manifests to check (multi-document YAML, e.g. `helm template` output); `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub policy: PolicyArgs,
    /// Check the objects as written, without applying the webhook's mutations first.
    #[arg(long, env = "FERROSTACK_NO_MUTATE")]
    pub no_mutate: bool,
    /// Output: text (a linter's lines), json, sarif (2.1.0, for GitHub code scanning) or junit
    /// (XML, for Jenkins and GitLab).
    #[arg(long, env = "FERROSTACK_FORMAT", value_enum, default_value_t = crate::format::Format::Text)]
    pub format: crate::format::Format,
}

/// The `webhook check` command: loads the policies (an unusable policy file is an error,
/// exit 2) and checks the files; print [`Report::render`], exit with [`Report::exit_code`].
pub fn run(args: &CheckArgs, stdin: impl Read) -> Result<Report, crate::config::PolicyFileError> {
    let policies = Policies::load(args.policy.policy_file.as_deref(), None)?;
    let options = Options {
        no_mutate: args.no_mutate,
        namespace: args.policy.namespace.clone(),
    };
    Ok(check_files(&policies, &args.files, stdin, &options))
}

/// One input: its display name and text.
#[derive(Clone, Debug)]
pub struct Input {
    /// The path as given, or `-` for stdin.
    pub name: String,
    /// The YAML text.
    pub text: String,
}

/// How `check` treats the objects.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Validate the objects as written, without applying the mutations first.
    pub no_mutate: bool,
    /// Namespace of objects that do not name one (as `kubectl apply -n` would).
    pub namespace: Option<String>,
}

/// An object the policies applied to, located in the inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// Input name.
    pub file: String,
    /// 1-based document number in the file.
    pub document: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// `kind` of the object.
    pub kind: String,
    /// `metadata.name` of the object.
    pub name: String,
}

/// One violation, located in the inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Input name.
    pub file: String,
    /// 1-based document number in the file.
    pub document: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// `kind` of the object.
    pub kind: String,
    /// `metadata.name` of the object.
    pub name: String,
    /// What is wrong.
    pub violation: Violation,
}

/// Annotation prefix that silences one policy for one object in `check` (kube-linter's
/// `ignore-check.kube-linter.io/<check>` form): `ignore-check.ferrostack.io/probes: "<reason>"`.
/// Only the linter honours it; the webhook's own escape hatch is an exception with an expiry.
pub const IGNORE_PREFIX: &str = "ignore-check.ferrostack.io/";

/// Everything `check` found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Findings in input order.
    pub findings: Vec<Finding>,
    /// Inputs or documents that could not be read or parsed.
    pub errors: Vec<String>,
    /// Documents read.
    pub documents: usize,
    /// Objects the policies applied to.
    pub workloads: usize,
    /// Those objects, in input order.
    pub checked: Vec<Checked>,
    /// Findings an `ignore-check.ferrostack.io/<policy>` annotation silenced.
    pub ignored: usize,
}

impl Report {
    /// 2 on an unreadable input, 1 on an enforce violation, else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.errors.is_empty() {
            2
        } else if self
            .findings
            .iter()
            .any(|f| f.violation.mode == Mode::Enforce)
        {
            1
        } else {
            0
        }
    }

    /// The linter output: one line per finding and error, then a summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let v = &f.violation;
            let severity = if v.mode == Mode::Enforce {
                "error"
            } else {
                "warning"
            };
            let container = v
                .container
                .as_ref()
                .map(|c| format!("container {c:?}: "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{}:{}: {}/{}: {}: {severity}[{}]: {container}{}",
                f.file, f.document, f.kind, f.name, v.field, v.policy, v.message
            );
        }
        for e in &self.errors {
            let _ = writeln!(out, "{e}");
        }
        let errors = self
            .findings
            .iter()
            .filter(|f| f.violation.mode == Mode::Enforce)
            .count();
        let _ = writeln!(
            out,
            "{} documents, {} workloads checked: {errors} errors, {} warnings{}",
            self.documents,
            self.workloads,
            self.findings.len() - errors,
            if self.errors.is_empty() {
                String::new()
            } else {
                format!(", {} unreadable inputs", self.errors.len())
            }
        );
        out
    }
}

/// Reads `paths` (`-` is `stdin`) into inputs, each at most [`MAX_CONFIG_BYTES`]; unreadable
/// or larger ones become errors in the report (exit 2), so `check /dev/zero` cannot exhaust
/// memory.
pub fn read_inputs(paths: &[impl AsRef<Path>], mut stdin: impl Read) -> (Vec<Input>, Vec<String>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let name = p.display().to_string();
        let text = if name == "-" {
            files::read_capped_from(&mut stdin, p, MAX_CONFIG_BYTES).and_then(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| files::ReadError::NotUtf8 { path: p.to_owned() })
            })
        } else {
            files::read_capped_string(p, MAX_CONFIG_BYTES)
        };
        match text {
            Ok(text) => inputs.push(Input { name, text }),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    (inputs, errors)
}

/// Splits a YAML text into JSON documents (empty documents are kept as `Null` so numbering
/// matches the file); stops at the first syntax error.
pub fn documents(text: &str) -> (Vec<Value>, Option<String>) {
    let mut docs = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(doc) {
            Ok(v) => docs.push(v),
            Err(e) => return (docs, Some(format!("document {}: {e}", i + 1))),
        }
    }
    (docs, None)
}

/// The `webhook check` entry point: reads `paths` (`-` is `stdin`) and checks them.
pub fn check_files(
    policies: &Policies,
    paths: &[impl AsRef<Path>],
    stdin: impl Read,
    options: &Options,
) -> Report {
    let (inputs, errors) = read_inputs(paths, stdin);
    let mut report = check(policies, &inputs, options);
    report.errors.splice(0..0, errors);
    report
}

/// Runs the policies over every document of every input.
pub fn check(policies: &Policies, inputs: &[Input], options: &Options) -> Report {
    let mut report = Report::default();
    let mut parsed = Vec::new();
    for input in inputs {
        let (docs, error) = documents(&input.text);
        if let Some(e) = error {
            report.errors.push(format!("{}: {e}", input.name));
        }
        parsed.push((input, docs));
    }
    // Namespaces declared in the inputs: their labels choose the priority-class rule and the
    // Pod Security level.
    let namespace_labels = declared_namespaces(parsed.iter().flat_map(|(_, docs)| docs.iter()));
    let scaled = autoscaled(&parsed, options);
    for (input, docs) in &parsed {
        let lines = document_lines(&input.text);
        for (i, doc) in docs.iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            report.documents += 1;
            if !doc.is_object() {
                report
                    .errors
                    .push(format!("{}:{}: not a Kubernetes object", input.name, i + 1));
                continue;
            }
            for object in expand(doc) {
                if is_list(object) {
                    report.errors.push(format!(
                        "{}:{}: Lists nested more than {MAX_LIST_DEPTH} deep are not checked",
                        input.name,
                        i + 1
                    ));
                    continue;
                }
                check_object(
                    policies,
                    options,
                    (&namespace_labels, &scaled),
                    object,
                    (&input.name, i + 1, lines.get(i).copied().unwrap_or(1)),
                    &mut report,
                );
            }
        }
    }
    report
}

/// Workloads an autoscaler in the inputs scales, by (namespace, kind, name): the replica
/// floor it keeps them at.
type Autoscaled = BTreeMap<(Option<String>, String, String), i64>;

/// The HorizontalPodAutoscalers (`minReplicas`, default 1) and KEDA ScaledObjects
/// (`minReplicaCount`, default 0) in the inputs. A workload they scale leaves `spec.replicas`
/// out on purpose (kube-score's rule), so its replica count is the autoscaler's floor, not
/// the API server's default of 1.
fn autoscaled(parsed: &[(&Input, Vec<Value>)], options: &Options) -> Autoscaled {
    let mut scaled = Autoscaled::new();
    for doc in parsed
        .iter()
        .flat_map(|(_, docs)| docs.iter().flat_map(expand))
    {
        let (floor, default_kind) = match doc["kind"].as_str() {
            Some("HorizontalPodAutoscaler") => {
                (doc["spec"]["minReplicas"].as_i64().unwrap_or(1), None)
            }
            Some("ScaledObject") => (
                doc["spec"]["minReplicaCount"].as_i64().unwrap_or(0),
                Some("Deployment"),
            ),
            _ => continue,
        };
        let target = &doc["spec"]["scaleTargetRef"];
        let (Some(kind), Some(name)) = (
            target["kind"].as_str().or(default_kind),
            target["name"].as_str(),
        ) else {
            continue;
        };
        scaled.insert(
            (namespace_of(doc, options), kind.to_owned(), name.to_owned()),
            floor,
        );
    }
    scaled
}

/// The object's namespace, or the one `--namespace` gives objects that name none.
fn namespace_of(object: &Value, options: &Options) -> Option<String> {
    object["metadata"]["namespace"]
        .as_str()
        .or(options.namespace.as_deref())
        .map(str::to_owned)
}

/// `object` with `spec.replicas` set; `None` when its `spec` is not an object (indexing into
/// anything else would panic).
fn with_replicas(object: &Value, replicas: i64) -> Option<Value> {
    let mut floored = object.clone();
    floored
        .get_mut("spec")?
        .as_object_mut()?
        .insert("replicas".to_owned(), Value::from(replicas));
    Some(floored)
}

/// How deep `List`s may nest; a deeper one is an error rather than a silent pass (kubectl
/// writes one level; the bound keeps a hostile file from recursing without end).
const MAX_LIST_DEPTH: usize = 8;

/// The labels of every Namespace among `docs` (Lists expanded), by name.
pub(crate) fn declared_namespaces<'a>(
    docs: impl Iterator<Item = &'a Value>,
) -> BTreeMap<String, Value> {
    let mut labels = BTreeMap::new();
    for doc in docs.flat_map(expand) {
        if doc["kind"] == "Namespace"
            && let Some(name) = doc["metadata"]["name"].as_str()
        {
            labels.insert(name.to_owned(), doc["metadata"]["labels"].clone());
        }
    }
    labels
}

/// Whether `doc` is a `List` (`v1/List`, `DeploymentList`, …) with items.
fn is_list(doc: &Value) -> bool {
    doc["items"].is_array() && doc["kind"].as_str().is_some_and(|k| k.ends_with("List"))
}

/// A `List` expands to its items, recursively (a `List` inside a `List` too, down to
/// [`MAX_LIST_DEPTH`], where the `List` itself is returned); anything else is itself.
pub(crate) fn expand(doc: &Value) -> Vec<&Value> {
    fn walk<'a>(doc: &'a Value, depth: usize, out: &mut Vec<&'a Value>) {
        match doc["items"].as_array() {
            Some(items) if is_list(doc) && depth < MAX_LIST_DEPTH => {
                for item in items {
                    walk(item, depth + 1, out);
                }
            }
            _ => out.push(doc),
        }
    }
    let mut out = Vec::new();
    walk(doc, 0, &mut out);
    out
}

fn check_object(
    policies: &Policies,
    options: &Options,
    (namespace_labels, scaled): (&BTreeMap<String, Value>, &Autoscaled),
    object: &Value,
    (file, document, line): (&str, usize, usize),
    report: &mut Report,
) {
    let Some(kind) = object["kind"].as_str() else {
        return;
    };
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .or(options.namespace.as_deref());
    let labels = namespace.and_then(|ns| namespace_labels.get(ns));
    let labelled = labels.is_some_and(|labels| policies.namespace_labelled(labels));
    let mut mutated;
    let mut subject = object;
    // Pods only, as the chart's MutatingWebhookConfiguration registers `/mutate`: a workload's
    // template reaches `/validate` as written, so judging it mutated would pass what the API
    // server then denies.
    if !options.no_mutate && kind == "Pod" && policies.mutations.applies(namespace) {
        mutated = object.clone();
        policies.mutations.apply(kind, &mut mutated);
        subject = &mutated;
    }
    let name = object["metadata"]["name"].as_str().unwrap_or("(unnamed)");
    let floored = subject["spec"]["replicas"]
        .is_null()
        .then(|| {
            scaled.get(&(
                namespace.map(str::to_owned),
                kind.to_owned(),
                name.to_owned(),
            ))
        })
        .flatten()
        .and_then(|floor| with_replicas(subject, *floor));
    let subject = floored.as_ref().unwrap_or(subject);
    let Some(violations) = policies.evaluate_object(kind, subject, namespace, labelled, labels)
    else {
        return;
    };
    report.workloads += 1;
    report.checked.push(Checked {
        file: file.to_owned(),
        document,
        line,
        kind: kind.to_owned(),
        name: name.to_owned(),
    });
    let annotations = &object["metadata"]["annotations"];
    let ignored = |v: &Violation| {
        annotations
            .get(format!("{IGNORE_PREFIX}{}", v.policy))
            .is_some()
    };
    let (silenced, kept): (Vec<_>, Vec<_>) = violations.into_iter().partition(|v| ignored(v));
    report.ignored += silenced.len();
    report
        .findings
        .extend(kept.into_iter().map(|violation| Finding {
            file: file.to_owned(),
            document,
            line,
            kind: kind.to_owned(),
            name: name.to_owned(),
            violation,
        }));
}

/// The 1-based line each YAML document of `text` starts on (after a leading `---`, the line of
/// each `---` separator), numbered as [`documents`] numbers them.
fn document_lines(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.starts_with("---") {
            starts.push(i + 1);
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  template:
    metadata: {labels: {app.kubernetes.io/name: web}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 100, podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app.kubernetes.io/name: web}}}}]}}
      containers:
        - name: web
          image: ghcr.io/ferrostack/web:1.0.0
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
          securityContext: {capabilities: {drop: [ALL]}, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
          livenessProbe: {tcpSocket: {port: 8080}}
          readinessProbe: {httpGet: {path: /readyz, port: 8080}}
"#;

    fn run(text: &str, options: &Options) -> Report {
        let p = Policies::load(None, None).unwrap();
        check(
            &p,
            &[Input {
                name: "m.yaml".into(),
                text: text.into(),
            }],
            options,
        )
    }

    #[test]
    fn mutations_apply_to_pods_as_the_chart_registers_them() {
        assert_eq!(run(GOOD, &Options::default()).exit_code(), 0);
        // The same template without seccomp and allowPrivilegeEscalation: a Pod passes once
        // mutated (and not as written); a Deployment reaches /validate as written.
        let bare = GOOD
            .replace(", seccompProfile: {type: RuntimeDefault}", "")
            .replace(", allowPrivilegeEscalation: false", "");
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: shop, labels: {{app.kubernetes.io/name: web}}}}\nspec: {}\n",
            serde_json::to_string(&documents(&bare).0[0]["spec"]["template"]["spec"]).unwrap()
        );
        let r = run(&pod, &Options::default());
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        let raw = Options {
            no_mutate: true,
            ..Options::default()
        };
        assert_eq!(run(&pod, &raw).exit_code(), 1);
        let deployment = run(&bare, &Options::default());
        assert_eq!(deployment.exit_code(), 1, "{}", deployment.render());
    }

    #[test]
    fn findings_name_file_document_object_and_field() {
        let text = format!(
            "# comment only\n---\n{GOOD}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers: [{{name: c, image: 'nginx:latest'}}]\n"
        );
        let r = run(&text, &Options::default());
        assert_eq!(r.documents, 2);
        assert_eq!(r.exit_code(), 1);
        let out = r.render();
        assert!(
            out.contains("m.yaml:2: Pod/p: spec.containers[0].image: error[image-tag]: container \"c\": image \"nginx:latest\" uses the tag latest"),
            "{out}"
        );
        assert!(out.contains("warning[probes]"), "{out}");
        assert!(out.ends_with("warnings\n"), "{out}");
    }

    #[test]
    fn warnings_alone_exit_zero() {
        let text = GOOD.replace(
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
        );
        let r = run(&text, &Options::default());
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!(r.findings.len(), 1);
    }

    #[test]
    fn an_autoscaled_workload_counts_the_autoscalers_floor_not_the_default_of_one() {
        let unscaled = GOOD.replace("  replicas: 2\n", "");
        let policy = |r: &Report| -> Vec<String> {
            r.findings
                .iter()
                .map(|f| f.violation.field.clone())
                .collect()
        };
        // No autoscaler: an absent spec.replicas means one pod.
        let r = run(&unscaled, &Options::default());
        assert_eq!(policy(&r), ["spec.replicas"], "{}", r.render());
        let hpa = |min: &str| {
            format!(
                "{unscaled}---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: web, namespace: shop}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n{min}  maxReplicas: 10\n"
            )
        };
        let r = run(&hpa("  minReplicas: 3\n"), &Options::default());
        assert!(r.findings.is_empty(), "{}", r.render());
        // The HPA's own default floor is one pod: still too few.
        let r = run(&hpa(""), &Options::default());
        assert_eq!(policy(&r), ["spec.replicas"], "{}", r.render());
        // An HPA in another namespace scales another workload.
        let r = run(
            &hpa("  minReplicas: 3\n").replace(
                "{name: web, namespace: shop}\nspec:\n  scaleTargetRef",
                "{name: web, namespace: other}\nspec:\n  scaleTargetRef",
            ),
            &Options::default(),
        );
        assert_eq!(policy(&r), ["spec.replicas"], "{}", r.render());
        // KEDA may scale to zero: no pods, nothing to spread.
        let keda = format!(
            "{unscaled}---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: web, namespace: shop}}\nspec:\n  scaleTargetRef: {{name: web}}\n"
        );
        let r = run(&keda, &Options::default());
        assert!(r.findings.is_empty(), "{}", r.render());
        // A scaled workload whose spec is not an object gets no floor, and no panic.
        let broken = hpa("").replace(
            &unscaled,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: oops\n",
        );
        let r = run(&broken, &Options::default());
        assert_eq!(r.documents, 2, "{}", r.render());
    }

    #[test]
    fn labelled_namespaces_in_the_input_require_a_priority_class() {
        let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {ferrostack.io/priority-required: 'true'}}\n---\n";
        let r = run(&format!("{ns}{GOOD}"), &Options::default());
        assert_eq!(r.exit_code(), 1, "{}", r.render());
        assert_eq!(r.findings[0].violation.policy, "priority-class");
    }

    #[test]
    fn pod_security_namespace_labels_in_the_input_choose_the_standard() {
        // Runs as root: restricted denies it, baseline (enforced) lets it through with the
        // restricted finding as a warning.
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec: {containers: [{name: c, image: 'app:1'}]}\n";
        let options = Options {
            no_mutate: true,
            namespace: None,
        };
        let only = |r: &Report| -> Vec<Mode> {
            let security = r
                .findings
                .iter()
                .filter(|f| f.violation.policy == "pod-security");
            security.map(|f| f.violation.mode).collect()
        };
        let r = run(pod, &options);
        assert!(
            !only(&r).is_empty() && only(&r).iter().all(|m| *m == Mode::Enforce),
            "{}",
            r.render()
        );
        let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {pod-security.kubernetes.io/enforce: baseline, pod-security.kubernetes.io/warn: restricted}}\n---\n";
        let r = run(&format!("{ns}{pod}"), &options);
        assert!(
            !only(&r).is_empty() && only(&r).iter().all(|m| *m == Mode::Warn),
            "{}",
            r.render()
        );
    }

    #[test]
    fn bad_yaml_and_scalars_exit_two_with_the_reason() {
        let r = run("kind: [unclosed\n", &Options::default());
        assert_eq!(r.exit_code(), 2);
        assert!(
            r.errors[0].starts_with("m.yaml: document 1:"),
            "{:?}",
            r.errors
        );
        let r = run("just a string\n", &Options::default());
        assert_eq!(r.exit_code(), 2);
    }

    #[test]
    fn lists_inside_lists_are_expanded_down_to_the_depth_limit() {
        let pod = "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: 'nginx:latest'}]}}";
        let nested = |depth: usize| {
            (0..depth).fold(pod.to_owned(), |inner, _| {
                format!("{{apiVersion: v1, kind: List, items: [{inner}]}}")
            })
        };
        let r = run(&nested(2), &Options::default());
        assert_eq!(r.exit_code(), 1, "{}", r.render());
        assert_eq!(r.workloads, 1, "{}", r.render());
        let r = run(&nested(MAX_LIST_DEPTH), &Options::default());
        assert_eq!(r.exit_code(), 1, "{}", r.render());
        let r = run(&nested(MAX_LIST_DEPTH + 1), &Options::default());
        assert_eq!(r.exit_code(), 2, "{}", r.render());
        assert!(
            r.render().contains("nested more than 8 deep"),
            "{}",
            r.render()
        );
    }

    #[test]
    fn unreadable_files_are_errors() {
        let (inputs, errors) = read_inputs(&["/nonexistent/x.yaml", "-"], "kind: Pod\n".as_bytes());
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].name, "-");
        assert!(
            errors[0].starts_with("/nonexistent/x.yaml: cannot read /nonexistent/x.yaml"),
            "{errors:?}"
        );
    }
}
