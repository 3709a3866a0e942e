//! Configuration errors as one line: clap's refusals and a role's own checks alike.

use clap::error::ErrorKind;

/// What clap refused, on one line without "error: " and the usage lines; `None` for
/// `--help`, `--version` and the help shown for a missing subcommand, which print as clap
/// prints them (`e.exit()`).
pub fn refusal(e: &clap::Error) -> Option<String> {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return None;
    }
    // clap's text: "error: <what>", perhaps indented detail and tips, then "Usage: …" and
    // "For more information, try '--help'."; the usage lines are dropped, the rest joined.
    let rendered = e.render().to_string();
    let what: String = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join("\n");
    Some(one_line(what.strip_prefix("error: ").unwrap_or(&what)))
}

/// `text` on one line: its non-blank lines trimmed and joined with "; " (a space after a
/// line ending in ':').
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}
