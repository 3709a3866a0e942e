//! The README's "A session", run for real: `up` on free ports, every `$ …` line of the README
//! with the ports mapped, each answer checked for the shape and status the README shows; then
//! every log line `up` wrote from start to shutdown is checked for Rust debug formatting.
//! So the example session cannot drift from the binary, as the flag reference cannot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// The README's session ports (`up`'s default base 8080 up to the sample API on 8086).
const README_PORTS: std::ops::RangeInclusive<u16> = 8080..=8086;

/// One `$ command` of a console block and the output lines the README shows under it.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The README's session: its console blocks' steps, and the `/api` log line it quotes.
struct Session {
    steps: Vec<Step>,
    api_log_line: Value,
}

fn readme_session() -> Session {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("\n## A session")
        .expect("README has ## A session");
    let section = &readme[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let (mut steps, mut api_log_line, mut block) = (Vec::new(), None, None::<&str>);
    for line in section.lines() {
        match (block, line.trim_start()) {
            (None, fence) if fence.starts_with("```") => block = Some(&fence[3..]),
            (Some(_), "```") => block = None,
            (Some("console"), l) if l.starts_with("$ ") => steps.push(Step {
                command: l[2..].to_string(),
                expected: Vec::new(),
            }),
            (Some("console"), l) => steps
                .last_mut()
                .expect("output follows a command")
                .expected
                .push(l.to_string()),
            (Some("json"), l) => api_log_line = Some(serde_json::from_str(l).unwrap()),
            _ => {}
        }
    }
    Session {
        steps,
        api_log_line: api_log_line.expect("README quotes the /api log line"),
    }
}

/// The README's ports moved onto `base`, and `cargo run --release --` onto the built binary.
fn mapped(text: &str, base: u16) -> String {
    let mut out = text.replace("cargo run --release --", support::BIN);
    for port in README_PORTS {
        out = out.replace(&format!(":{port}"), &format!(":{}", base + (port - 8080)));
    }
    out
}

/// Runs a README command in `dir`, returning its stdout and (for curl) the HTTP status.
fn run(command: &str, dir: &Path) -> (String, Option<u16>) {
    let head = dir.join("curl-head");
    let _ = std::fs::remove_file(&head);
    // The whole answer: a README line cut with `| head -c N` is compared by its keys, and longer
    // ports here would cut the binary's answer earlier than the README's.
    let command = command.split(" | head -c").next().unwrap_or(command);
    let command = command.replacen("curl ", &format!("curl -D {} ", head.display()), 1);
    let out = Command::new("sh")
        .args(["-c", &command])
        .current_dir(dir)
        .output()
        .expect("run sh");
    let status = std::fs::read_to_string(&head)
        .ok()
        .and_then(|h| h.split_whitespace().nth(1).and_then(|s| s.parse().ok()));
    (String::from_utf8_lossy(&out.stdout).into_owned(), status)
}

/// Same keys at every depth and the same JSON type at every leaf; an `error.code` must match.
fn same_shape(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let (ek, ak): (BTreeSet<_>, BTreeSet<_>) = (e.keys().collect(), a.keys().collect());
            if ek != ak {
                return Err(format!(
                    "{at}: keys {ek:?} in README, {ak:?} from the binary"
                ));
            }
            if at.ends_with(".error") && e.get("code") != a.get("code") {
                return Err(format!(
                    "{at}.code: {:?} in README, {:?}",
                    e["code"], a["code"]
                ));
            }
            e.iter()
                .try_for_each(|(k, v)| same_shape(v, &a[k.as_str()], &format!("{at}.{k}")))
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .try_for_each(|(i, (e, a))| same_shape(e, a, &format!("{at}[{i}]"))),
        (e, a) if std::mem::discriminant(e) == std::mem::discriminant(a) => Ok(()),
        (e, a) => Err(format!("{at}: {e} in README, {a} from the binary")),
    }
}

/// The `"key":` names of a JSON text in order (for an answer the README shows cut short).
fn keys_in_order(text: &str) -> Vec<String> {
    text.split("\":")
        .filter_map(|chunk| chunk.rsplit_once('"').map(|(_, key)| key.to_string()))
        .collect()
}

/// Checks one step's output against the README's lines for it.
fn check_answer(step: &Step, actual: &str, status: Option<u16>) -> Result<(), String> {
    let expected: Vec<Result<Value, _>> = step
        .expected
        .iter()
        .map(|l| serde_json::from_str::<Value>(l))
        .collect();
    if let [Err(_)] = expected.as_slice() {
        // Shown cut short (`| head -c N`): every key the README shows but the last, in order.
        let shown = keys_in_order(&step.expected[0]);
        let got = keys_in_order(actual);
        let whole = &shown[..shown.len().saturating_sub(1)];
        return (got.starts_with(whole))
            .then_some(())
            .ok_or(format!("keys {whole:?} in README, {got:?} from the binary"));
    }
    let lines: Vec<&str> = actual.lines().collect();
    if lines.len() != expected.len() {
        return Err(format!(
            "{} lines in README, got:\n{actual}",
            expected.len()
        ));
    }
    let mut error = false;
    for (e, a) in expected.iter().zip(lines) {
        let e = e
            .as_ref()
            .map_err(|e| format!("README line is not JSON: {e}"))?;
        let a: Value = serde_json::from_str(a).map_err(|_| format!("not JSON: {a}"))?;
        same_shape(e, &a, "$")?;
        error |= e.get("error").is_some();
    }
    match status {
        Some(s) if error == (s >= 400) => Ok(()),
        s => Err(format!(
            "status {s:?} for an answer the README shows as {}",
            if error { "an error" } else { "a success" }
        )),
    }
}

/// `key=value` lines with the same keys in order; a count the README shows as 0 stays 0; other
/// lines (`OK`) exactly.
fn check_report(expected: &[String], actual: &str) -> Result<(), String> {
    let lines: Vec<&str> = actual.lines().collect();
    if lines.len() != expected.len() {
        return Err(format!("{expected:?} in README, got:\n{actual}"));
    }
    for (e, a) in expected.iter().zip(lines) {
        let pairs = |l: &str| -> Vec<(String, String)> {
            l.split_whitespace()
                .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
                .collect()
        };
        let (ep, ap) = (pairs(e), pairs(a));
        let same_keys = ep.iter().map(|p| &p.0).eq(ap.iter().map(|p| &p.0));
        let zeros_kept = ep.iter().zip(&ap).all(|(e, a)| e.1 != "0" || a.1 == "0");
        if (ep.is_empty() && e != a) || !same_keys || !zeros_kept {
            return Err(format!("{e:?} in README, {a:?} from the binary"));
        }
    }
    Ok(())
}

/// Every field of every log line is a plain value: no `Some(…)`, `None`, `Ok(…)`, `Err(…)` or
/// a string that is itself a quoted debug string.
fn debug_formatted_fields(stdout: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for line in stdout.lines() {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
            bad.push(format!("not a JSON object: {line}"));
            continue;
        };
        for (key, value) in &fields {
            let Some(s) = value.as_str() else { continue };
            let debug = ["Some(", "Ok(", "Err("].iter().any(|p| s.contains(p))
                || s == "None"
                || (s.len() > 1 && s.starts_with('"') && s.ends_with('"'));
            if debug {
                bad.push(format!("{key}={s:?} in {line}"));
            }
        }
    }
    bad
}

/// Starts `up` on `base` and checks its URL table has every line the README shows for it.
fn start_up_as_shown(start: &Step, base: u16) -> support::Proc {
    let args = ["up".to_string(), "--base-port".into(), base.to_string()];
    let up = support::spawn(&args, &[], base);
    for port in [base + 2, base + 4, base + 5, base + 6] {
        up.wait_ready(&format!("http://127.0.0.1:{port}/readyz"));
    }
    // The table follows readiness by a moment: it is printed once every role has said so.
    test_support::wait_until("up's table", Duration::from_secs(5), || {
        up.stderr().contains("state:")
    });
    let collapse = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let table = collapse(&up.stderr());
    for line in start.expected.iter().filter(|l| !l.trim().is_empty()) {
        let want = collapse(&mapped(line, base));
        assert!(
            table.contains(&want),
            "up's table lacks {want:?}:\n{}",
            up.stderr()
        );
    }
    up
}

/// up's log line of the README's /api call has the README's fields and parameters, and no
/// field is in Rust's debug format.
fn assert_logs_as_shown(stdout: &str, session: &Session) {
    let api_line = support::json_lines(stdout)
        .into_iter()
        .find(|l| l["message"] == session.api_log_line["message"])
        .expect("up logs the /api parameters");
    let keys = |v: &Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<BTreeSet<_>>())
    };
    assert_eq!(keys(&api_line), keys(&session.api_log_line), "{api_line}");
    assert_eq!(api_line["params"], session.api_log_line["params"]);
    let bad = debug_formatted_fields(stdout);
    assert!(
        bad.is_empty(),
        "log fields in Rust debug format:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_readme_session_runs_as_shown() {
    let session = readme_session();
    let (start, rest) = session.steps.split_first().expect("the session starts up");
    assert_eq!(start.command, "cargo run --release -- up");
    let verify = rest.iter().position(|s| !s.command.starts_with("curl"));
    let (curls, after) = rest.split_at(verify.expect("the session ends with logship verify"));
    assert!(
        curls.len() >= 6,
        "the README shows its curl lines: {curls:?}"
    );

    let base = support::free_port_range(7);
    let mut up = start_up_as_shown(start, base);
    for step in curls {
        let (out, status) = run(&mapped(&step.command, base), up.path());
        if let Err(why) = check_answer(step, &out, status) {
            panic!("`{}`: {why}\n{out}", step.command);
        }
    }
    up.signal("INT");
    assert!(
        up.wait_exit(Duration::from_secs(40)).success(),
        "Ctrl-C exits 0"
    );
    for step in after {
        let (out, _) = run(&mapped(&step.command, base), up.path());
        if let Err(why) = check_report(&step.expected, &out) {
            panic!("`{}`: {why}", step.command);
        }
    }
    assert_logs_as_shown(&up.stdout(), &session);
}

#[test]
fn the_log_field_check_catches_debug_formatting() {
    let lines = [
        r#"{"message":"listening","addr":"Some(127.0.0.1:8080)"}"#,
        r#"{"message":"ca","ca_file":"Some(\"./x.pem\")"}"#,
        r#"{"message":"x","reason":"None"}"#,
        r#"{"message":"x","name":"\"quoted\""}"#,
        r#"{"message":"listening","addr":"127.0.0.1:8080"}"#,
    ];
    assert_eq!(debug_formatted_fields(&lines.join("\n")).len(), 4);
}
