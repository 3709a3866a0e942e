//! Renders the command-line reference (every subcommand's `--help`) as Markdown, so the
//! README's flag reference is generated from clap and cannot drift.

use clap::Command;

/// Every subcommand's long help under `root`'s, each in a `text` block under a heading.
pub fn markdown(root: &Command) -> String {
    let text = render_all(root);
    // clap pads blank help lines with spaces; Markdown wants none.
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn render_all(root: &Command) -> String {
    let mut out = String::new();
    let mut root = root.clone().term_width(100);
    out.push_str(&format!(
        "```text\n{}\n```\n",
        root.render_long_help().to_string().trim_end()
    ));
    for sub in root
        .get_subcommands_mut()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        render(&mut out, "ferrostack", sub);
    }
    out
}

fn render(out: &mut String, parent: &str, cmd: &mut Command) {
    let path = format!("{parent} {}", cmd.get_name());
    let mut cmd = cmd.clone().term_width(100).bin_name(&path);
    out.push_str(&format!(
        "\n#### `{path}`\n\n```text\n{}\n```\n",
        cmd.render_long_help().to_string().trim_end()
    ));
    for sub in cmd
        .get_subcommands_mut()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        render(out, &path, sub);
    }
}
