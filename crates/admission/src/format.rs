//! `webhook check`'s outputs for machines: JSON, SARIF 2.1.0 (what GitHub code scanning
//! uploads) and JUnit XML (what Jenkins' `junit` step and GitLab read). The text form is
//! [`Report::render`].

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::check::{Checked, Finding, Report};
use crate::exceptions;
use crate::policy::Mode;
use crate::policy::registry::names;

/// An output format of `webhook check`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per finding, then a summary (a linter's output).
    #[default]
    Text,
    /// One JSON document: findings, errors and the summary.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.
    Sarif,
    /// JUnit XML: one test case per object checked, failed by its enforced violations.
    Junit,
}

/// The report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => report.render(),
        Format::Json => format!("{:#}\n", json(report)),
        Format::Sarif => format!("{:#}\n", sarif(report)),
        Format::Junit => junit(report),
    }
}

fn severity(f: &Finding) -> &'static str {
    if f.violation.mode == Mode::Enforce {
        "error"
    } else {
        "warning"
    }
}

fn summary(report: &Report) -> Value {
    let errors = report
        .findings
        .iter()
        .filter(|f| severity(f) == "error")
        .count();
    json!({
        "documents": report.documents,
        "workloads": report.workloads,
        "errors": errors,
        "warnings": report.findings.len() - errors,
        "ignored": report.ignored,
        "unreadable": report.errors.len(),
        "exitCode": report.exit_code(),
    })
}

fn json(report: &Report) -> Value {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let v = &f.violation;
            json!({
                "file": f.file, "document": f.document, "line": f.line,
                "kind": f.kind, "name": f.name, "policy": v.policy, "severity": severity(f),
                "container": v.container, "field": v.field, "message": v.message,
            })
        })
        .collect();
    json!({"findings": findings, "errors": report.errors, "summary": summary(report)})
}

/// Every rule a result can name: the policies, and malformed exceptions.
fn rules() -> Vec<Value> {
    names()
        .chain([exceptions::POLICY])
        .map(|name| {
            json!({
                "id": name,
                "name": name,
                "shortDescription": {"text": format!("ferrostack admission policy {name}")},
                "helpUri": "https://github.com/ferrostack/ferrostack#webhook",
            })
        })
        .collect()
}

fn sarif(report: &Report) -> Value {
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let v = &f.violation;
            let container = v.container.as_ref().map(|c| format!("container {c:?}: ")).unwrap_or_default();
            json!({
                "ruleId": v.policy,
                "level": severity(f),
                "message": {"text": format!("{}/{}: {}: {container}{}", f.kind, f.name, v.field, v.message)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.file},
                        "region": {"startLine": f.line},
                    },
                    "logicalLocations": [{"fullyQualifiedName": format!("{}/{}/{}", f.kind, f.name, v.field)}],
                }],
            })
        })
        .collect();
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| json!({"level": "error", "message": {"text": e}}))
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "ferrostack webhook check",
                "informationUri": "https://github.com/ferrostack/ferrostack",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules(),
            }},
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

/// XML text with the five special characters escaped, and characters XML 1.0 forbids dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' => {}
            c => out.push(c),
        }
    }
    out
}

/// The findings of one checked object.
fn findings_of<'r>(report: &'r Report, c: &Checked) -> Vec<&'r Finding> {
    let same = |f: &&Finding| {
        f.file == c.file && f.document == c.document && f.kind == c.kind && f.name == c.name
    };
    report.findings.iter().filter(same).collect()
}

fn junit(report: &Report) -> String {
    let failed = report
        .checked
        .iter()
        .filter(|c| {
            findings_of(report, c)
                .iter()
                .any(|f| severity(f) == "error")
        })
        .count();
    let tests = report.checked.len() + report.errors.len();
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failed}\" errors=\"{}\"",
        report.errors.len()
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"ferrostack webhook check\" {counts}>"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"ferrostack webhook check\" {counts}>"
    );
    for c in &report.checked {
        testcase(&mut out, c, &findings_of(report, c));
    }
    for (i, e) in report.errors.iter().enumerate() {
        let _ = writeln!(
            out,
            "    <testcase classname=\"inputs\" name=\"unreadable input {}\">\n      <error message=\"unreadable input\">{}</error>\n    </testcase>",
            i + 1,
            xml(e)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// One object as a test case: failed by its enforced violations, its warnings as output.
fn testcase(out: &mut String, c: &Checked, findings: &[&Finding]) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}/{} (document {})\"",
        xml(&c.file),
        xml(&c.kind),
        xml(&c.name),
        c.document
    );
    if findings.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    let lines = |level: &str| -> Vec<String> {
        let of_level = findings.iter().filter(|f| severity(f) == level);
        of_level
            .map(|f| {
                let v = &f.violation;
                format!("{}: {level}[{}]: {}", v.field, v.policy, v.message)
            })
            .collect()
    };
    let errors = lines("error");
    if !errors.is_empty() {
        let _ = writeln!(
            out,
            "      <failure message=\"{} enforced violation(s)\" type=\"policy\">{}</failure>",
            errors.len(),
            xml(&errors.join("\n"))
        );
    }
    let warnings = lines("warning");
    if !warnings.is_empty() {
        let _ = writeln!(
            out,
            "      <system-out>{}</system-out>",
            xml(&warnings.join("\n"))
        );
    }
    out.push_str("    </testcase>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped_and_forbidden_characters_dropped() {
        assert_eq!(xml(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(xml("tab\there\u{1}\nnext"), "tab\there\nnext");
    }

    #[test]
    fn an_empty_report_is_a_valid_empty_run_in_every_format() {
        let report = Report::default();
        let sarif: Value = serde_json::from_str(&render(&report, Format::Sarif)).unwrap();
        assert_eq!(sarif["runs"][0]["results"], json!([]));
        let data: Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
        assert_eq!(data["summary"]["exitCode"], 0);
        assert!(render(&report, Format::Junit).contains("tests=\"0\" failures=\"0\""));
    }
}
