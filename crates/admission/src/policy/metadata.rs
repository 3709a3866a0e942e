//! `required-labels` on the pod (template) and `priority-class` in labelled namespaces.

use serde::Deserialize;

use super::registry::{Definition, Policy, SettingError, Settings, impl_policy, parse};
use super::{Mode, Report, Scope, Subject, Violation};

/// Default label that makes `priorityClassName` required in a namespace.
pub const DEFAULT_PRIORITY_LABEL: &str = "ferrostack.io/priority-required";

/// `required-labels`' registry entry.
pub const REQUIRED_LABELS: Definition = Definition {
    name: "required-labels",
    default_mode: Mode::Warn,
    build: build_required_labels,
};

/// `priority-class`' registry entry.
pub const PRIORITY_CLASS: Definition = Definition {
    name: "priority-class",
    default_mode: Mode::Enforce,
    build: build_priority_class,
};

/// `required-labels` settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelSettings {
    labels: Option<Vec<String>>,
}

fn build_required_labels(
    scope: Scope,
    settings: Settings,
) -> Result<Box<dyn Policy>, SettingError> {
    let LabelSettings { labels } = parse(settings)?;
    let labels = labels.unwrap_or_else(|| vec!["app.kubernetes.io/name".into()]);
    if labels.iter().any(|l| l.trim().is_empty()) {
        return Err(SettingError::new("labels", "label keys must not be empty"));
    }
    Ok(Box::new(RequiredLabels { scope, labels }))
}

/// `priority-class` settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrioritySettings {
    namespace_label: Option<String>,
}

fn build_priority_class(scope: Scope, settings: Settings) -> Result<Box<dyn Policy>, SettingError> {
    let PrioritySettings { namespace_label } = parse(settings)?;
    let namespace_label = namespace_label.unwrap_or_else(|| DEFAULT_PRIORITY_LABEL.into());
    if namespace_label
        .split('=')
        .next()
        .is_none_or(|k| k.trim().is_empty())
    {
        return Err(SettingError::new(
            "namespaceLabel",
            "must be key or key=value",
        ));
    }
    Ok(Box::new(PriorityClass {
        scope,
        namespace_label,
    }))
}

impl_policy!(RequiredLabels);
impl_policy!(PriorityClass);

/// `required-labels`: the pod (for controllers, the pod template) carries every listed label
/// with a non-empty value.
#[derive(Clone, Debug, PartialEq)]
pub struct RequiredLabels {
    /// Mode and exclusions.
    pub scope: Scope,
    /// Label keys (default `app.kubernetes.io/name`).
    pub labels: Vec<String>,
}

/// `priority-class`: `priorityClassName` is set in namespaces that carry the chosen label
/// (case study 4.1: the important application must win under resource pressure).
#[derive(Clone, Debug, PartialEq)]
pub struct PriorityClass {
    /// Mode and exclusions.
    pub scope: Scope,
    /// The namespace label that makes the policy apply (`key` or `key=value`); the webhook learns
    /// it from the path it is called on, `check` from the Namespace documents it reads.
    pub namespace_label: String,
}

impl RequiredLabels {
    /// Adds a violation per missing label.
    pub fn evaluate(&self, subject: &Subject<'_>, out: &mut Vec<Violation>) {
        let w = &subject.workload;
        let mut r = Report::new(REQUIRED_LABELS.name, self.scope.mode, subject, out);
        for key in &self.labels {
            if w.pod_label(key).is_none_or(str::is_empty) {
                r.object(
                    &format!("{}.labels[{key:?}]", w.shape.meta_path()),
                    format!("label {key} is not set"),
                );
            }
        }
    }
}

impl PriorityClass {
    /// Adds a violation when the namespace is labelled and no priority class is set.
    pub fn evaluate(&self, subject: &Subject<'_>, out: &mut Vec<Violation>) {
        if !subject.namespace_labelled {
            return;
        }
        let spec = subject.workload.pod_spec();
        if spec["priorityClassName"].as_str().is_none_or(str::is_empty) {
            let ns = subject.namespace.unwrap_or("this namespace");
            Report::new(PRIORITY_CLASS.name, self.scope.mode, subject, out).pod(
                "priorityClassName",
                format!(
                    "priorityClassName is required in namespace {ns} (it carries the label {})",
                    self.namespace_label
                ),
            );
        }
    }

    /// Whether a namespace with these labels carries the configured label.
    pub fn matches(&self, labels: &serde_json::Value) -> bool {
        match self.namespace_label.split_once('=') {
            Some((key, value)) => labels[key] == value,
            None => labels.get(&self.namespace_label).is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_util::{deployment, enforce, fields, subject};
    use serde_json::json;

    #[test]
    fn missing_and_empty_labels_are_reported_on_the_template() {
        let mut object = deployment(json!({"containers": []}));
        object["spec"]["template"]["metadata"]["labels"]["team"] = json!("");
        let p = RequiredLabels {
            scope: enforce(),
            labels: vec![
                "app.kubernetes.io/name".into(),
                "team".into(),
                "tier".into(),
            ],
        };
        let mut out = Vec::new();
        p.evaluate(&subject(&object), &mut out);
        assert_eq!(
            fields(&out),
            [
                r#"spec.template.metadata.labels["team"]"#,
                r#"spec.template.metadata.labels["tier"]"#
            ]
        );
    }

    #[test]
    fn priority_class_is_required_only_in_labelled_namespaces() {
        let object = deployment(json!({"containers": []}));
        let p = PriorityClass {
            scope: enforce(),
            namespace_label: "ferrostack.io/priority".into(),
        };
        let mut s = subject(&object);
        let mut out = Vec::new();
        p.evaluate(&s, &mut out);
        assert!(out.is_empty());
        s.namespace_labelled = true;
        p.evaluate(&s, &mut out);
        assert_eq!(fields(&out), ["spec.template.spec.priorityClassName"]);

        let with = deployment(json!({"containers": [], "priorityClassName": "high-priority"}));
        let s = Subject {
            namespace_labelled: true,
            namespace_labels: None,
            ..subject(&with)
        };
        let mut out = Vec::new();
        p.evaluate(&s, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn namespace_label_matches_key_or_key_value() {
        let key = PriorityClass {
            scope: enforce(),
            namespace_label: "tier".into(),
        };
        let kv = PriorityClass {
            scope: enforce(),
            namespace_label: "tier=critical".into(),
        };
        let labels = json!({"tier": "batch"});
        assert!(key.matches(&labels));
        assert!(!kv.matches(&labels));
        assert!(kv.matches(&json!({"tier": "critical"})));
        assert!(!key.matches(&json!({})));
    }
}
