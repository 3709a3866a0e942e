//! `webhook audit`: the policies over the objects that already exist, writing nothing
//! anywhere: read from the API server (read-only list calls, 100 objects a page, so memory
//! stays flat however many there are) or from files such as `kubectl get -A -o yaml`. One JSON
//! line per finding, then a summary line; exit codes as `check` (1 on an enforce violation).
//!
//! What a person wrote is audited, not what controllers derived from it: Pods, ReplicaSets
//! and Jobs that a controller owns are skipped (their owner carries the same template), as
//! Kyverno's auto-generated rules do.

mod api;
mod metrics;

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::check::{Input, declared_namespaces, documents, expand, read_inputs};
use crate::config::PolicyArgs;
use crate::engine::Policies;
use crate::namespaces::{ApiAccess, ClientError};
use crate::policy::{Mode, Violation};

/// `ferrostack webhook audit` flags.
#[derive(clap::Args, Clone, Debug)]
#[command(mut_arg("namespace", |a| a.help("Namespace of file objects that name none")))]
pub struct AuditArgs {
    /// Objects to audit from files (`kubectl get -A -o yaml` output; `-` reads stdin); without
    /// any, the API server's (the pod's ServiceAccount, or --kubeconfig).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Kubeconfig of the cluster to audit when no FILE is given.
    #[arg(long, env = "FERROSTACK_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Pushgateway to push the run's gauges to (objects audited, findings by policy and
    /// severity, last success), as the CronJob's only metrics.
    #[arg(long, env = "FERROSTACK_PUSHGATEWAY_URL")]
    pub pushgateway_url: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub policy: PolicyArgs,
}

/// Why the audit could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The policy file.
    #[error(transparent)]
    Policy(#[from] crate::config::PolicyFileError),
    /// Neither files nor API access.
    #[error(
        "nothing to audit: give FILE (e.g. `kubectl get -A -o yaml | ferrostack webhook audit -`), --kubeconfig, or run in a pod"
    )]
    NoSource,
    /// The API client.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A list call failed.
    #[error("listing {what}: {source}")]
    List {
        /// What was being listed.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the output failed.
    #[error("writing the findings: {0}")]
    Output(#[from] std::io::Error),
}

/// What the audit found, for the summary line and the exit code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects the policies applied to.
    pub objects: usize,
    /// Objects skipped because a controller owns them.
    pub owned: usize,
    /// Enforce violations.
    pub errors: usize,
    /// Warn violations.
    pub warnings: usize,
    /// Inputs or documents that could not be read.
    pub unreadable: usize,
    /// Findings by (policy, severity).
    pub by_policy: std::collections::BTreeMap<(&'static str, &'static str), u64>,
}

impl Summary {
    /// 2 on an unreadable input, 1 on an enforce violation, else 0 (as `check`).
    pub fn exit_code(&self) -> i32 {
        if self.unreadable > 0 {
            2
        } else if self.errors > 0 {
            1
        } else {
            0
        }
    }
}

/// Runs the audit, writing JSON lines to `out`.
pub async fn run(
    args: &AuditArgs,
    stdin: impl std::io::Read,
    out: &mut impl Write,
) -> Result<Summary, AuditError> {
    let policies = Policies::load(args.policy.policy_file.as_deref(), None)?;
    if !args.files.is_empty() {
        let (inputs, errors) = read_inputs(&args.files, stdin);
        let mut audit = Audit::new(policies, out);
        for e in errors {
            audit.unreadable(&e)?;
        }
        audit_files(&inputs, args.policy.namespace.as_deref(), &mut audit)?;
        return audit.finish();
    }
    let access = ApiAccess::detect(args.kubeconfig.as_deref());
    let client = crate::namespaces::client(&access)
        .await?
        .ok_or(AuditError::NoSource)?;
    let mut audit = Audit::new(policies, out);
    api::audit(client, &mut audit).await?;
    let summary = audit.finish()?;
    if let Some(url) = &args.pushgateway_url {
        // A failed push is logged, not the audit's result: the findings are in the log.
        let body = metrics::body(&summary, time::OffsetDateTime::now_utc());
        if let Err(e) = runtime::metrics::push::push(url, metrics::JOB, body).await {
            tracing::error!(error = %e, "webhook audit: push failed");
        }
    }
    Ok(summary)
}

/// Audits objects read from `inputs` (what `webhook audit FILE…` does after reading them).
pub fn audit_inputs(
    policies: &Policies,
    inputs: &[Input],
    out: &mut impl Write,
) -> Result<Summary, AuditError> {
    let mut audit = Audit::new(policies.clone(), out);
    audit_files(inputs, None, &mut audit)?;
    audit.finish()
}

impl<'o, W: Write> Audit<'o, W> {
    fn new(policies: Policies, out: &'o mut W) -> Self {
        Self {
            policies,
            out,
            summary: Summary::default(),
        }
    }

    /// Writes the summary line and returns the counts.
    fn finish(self) -> Result<Summary, AuditError> {
        let summary = self.summary;
        let line = json!({"summary": {
            "objects": summary.objects, "ownedSkipped": summary.owned, "errors": summary.errors,
            "warnings": summary.warnings, "unreadable": summary.unreadable,
            "exitCode": summary.exit_code(),
        }});
        writeln!(self.out, "{line}")?;
        Ok(summary)
    }
}

/// The audit in progress: the policies, where lines go, and the counts so far.
pub(crate) struct Audit<'o, W: Write> {
    policies: Policies,
    out: &'o mut W,
    summary: Summary,
}

impl<W: Write> Audit<'_, W> {
    /// Audits one object, given its namespace's labels.
    pub(crate) fn object(&mut self, object: &Value, labels: Option<&Value>) -> std::io::Result<()> {
        let Some(kind) = object["kind"].as_str() else {
            return Ok(());
        };
        if owned(object) {
            self.summary.owned += 1;
            return Ok(());
        }
        let namespace = object["metadata"]["namespace"].as_str();
        let labelled = labels.is_some_and(|l| self.policies.namespace_labelled(l));
        let evaluated = self
            .policies
            .evaluate_object(kind, object, namespace, labelled, labels);
        let Some(violations) = evaluated else {
            return Ok(());
        };
        self.summary.objects += 1;
        let name = object["metadata"]["name"].as_str().unwrap_or("(unnamed)");
        for v in violations {
            self.finding(kind, namespace, name, &v)?;
        }
        Ok(())
    }

    fn finding(
        &mut self,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        v: &Violation,
    ) -> std::io::Result<()> {
        let severity = if v.mode == Mode::Enforce {
            self.summary.errors += 1;
            "error"
        } else {
            self.summary.warnings += 1;
            "warning"
        };
        *self
            .summary
            .by_policy
            .entry((v.policy, severity))
            .or_default() += 1;
        let line = json!({
            "kind": kind, "namespace": ns, "name": name, "policy": v.policy,
            "severity": severity, "container": v.container, "field": v.field,
            "message": v.message,
        });
        writeln!(self.out, "{line}")
    }

    fn unreadable(&mut self, error: &str) -> std::io::Result<()> {
        self.summary.unreadable += 1;
        writeln!(self.out, "{}", json!({"unreadable": error}))
    }
}

/// Whether a controller owns the object (its owner is audited instead).
fn owned(object: &Value) -> bool {
    let refs = object["metadata"]["ownerReferences"].as_array();
    refs.into_iter().flatten().any(|r| r["controller"] == true)
}

/// Audits every object of the files, Namespace documents giving their labels.
fn audit_files<W: Write>(
    inputs: &[Input],
    default_namespace: Option<&str>,
    audit: &mut Audit<'_, W>,
) -> std::io::Result<()> {
    let mut docs = Vec::new();
    for input in inputs {
        let (parsed, error) = documents(&input.text);
        if let Some(e) = error {
            audit.unreadable(&format!("{}: {e}", input.name))?;
        }
        docs.extend(parsed);
    }
    let labels = declared_namespaces(docs.iter());
    for object in docs.iter().flat_map(expand).filter(|o| !o.is_null()) {
        let mut object = object.clone();
        if object["metadata"]["namespace"].is_null()
            && let Some(ns) = default_namespace
            && object["kind"] != "Namespace"
        {
            object["metadata"]["namespace"] = Value::String(ns.to_owned());
        }
        let ns = object["metadata"]["namespace"].as_str().map(str::to_owned);
        audit.object(&object, ns.and_then(|n| labels.get(&n)))?;
    }
    Ok(())
}
