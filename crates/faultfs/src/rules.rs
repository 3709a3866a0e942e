//! Fault rules, one a line in the control file: `OP SUBSTRING ERRNO COUNT`. OP is one of
//! `write fsync rename fsyncdir unlink create mkdir`; the rule matches an operation whose path
//! (relative to the mount, for rename the source) contains SUBSTRING (`*` matches all); ERRNO
//! is `EIO` or `ENOSPC`; COUNT is how many matching operations fail (`always` until the file
//! changes). Lines starting with `#` are ignored. The file is re-read when its mtime or size
//! changes, which also restarts the counts.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    op: String,
    pattern: String,
    errno: i32,
    /// Failures left; `None` is always.
    left: Option<u64>,
}

/// The rules of the control file.
#[derive(Debug)]
pub(crate) struct Rules {
    file: PathBuf,
    seen: Option<(SystemTime, u64)>,
    rules: Vec<Rule>,
}

impl Rules {
    pub(crate) fn new(file: PathBuf) -> Self {
        Self {
            file,
            seen: None,
            rules: Vec::new(),
        }
    }

    /// The errno to fail `op` on `path` with, if a rule says so (counting it).
    pub(crate) fn check(&mut self, op: &str, path: &Path) -> Option<i32> {
        self.reload();
        let path = path.to_string_lossy();
        let rule = self.rules.iter_mut().find(|r| {
            r.op == op
                && (r.pattern == "*" || path.contains(&r.pattern))
                && r.left.is_none_or(|n| n > 0)
        })?;
        if let Some(n) = rule.left.as_mut() {
            *n -= 1;
        }
        eprintln!("faultfs: {op} {path}: injected errno {}", rule.errno);
        Some(rule.errno)
    }

    fn reload(&mut self) {
        let stamp = std::fs::metadata(&self.file)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if stamp == self.seen {
            return;
        }
        self.seen = stamp;
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        self.rules = text.lines().filter_map(parse).collect();
        eprintln!(
            "faultfs: {} rule(s) from {}",
            self.rules.len(),
            self.file.display()
        );
    }
}

/// One line, or `None` (with a message) if it is not a rule.
fn parse(line: &str) -> Option<Rule> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    let rule = match fields.as_slice() {
        [op, pattern, errno, count] => Some(Rule {
            op: (*op).to_string(),
            pattern: (*pattern).to_string(),
            errno: match *errno {
                "EIO" => libc::EIO,
                "ENOSPC" => libc::ENOSPC,
                _ => return bad(line),
            },
            left: match *count {
                "always" => None,
                n => Some(n.parse().ok()?),
            },
        }),
        _ => None,
    };
    rule.or_else(|| bad(line))
}

fn bad(line: &str) -> Option<Rule> {
    eprintln!("faultfs: not a rule (OP SUBSTRING EIO|ENOSPC COUNT|always): {line}");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_rule_fails_that_many_matching_operations() {
        let dir = std::env::temp_dir().join(format!("faultfs-rules-{}", std::process::id()));
        std::fs::write(&dir, "# c\nfsync journal EIO 2\nwrite * ENOSPC always\n").unwrap();
        let mut rules = Rules::new(dir.clone());
        let journal = Path::new("state/journal.jsonl");
        assert_eq!(rules.check("fsync", Path::new("src/a")), None);
        assert_eq!(rules.check("fsync", journal), Some(libc::EIO));
        assert_eq!(rules.check("fsync", journal), Some(libc::EIO));
        assert_eq!(rules.check("fsync", journal), None);
        assert_eq!(rules.check("write", journal), Some(libc::ENOSPC));
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(rules.check("write", journal), None, "healed");
        assert!(parse("write x EBADF 1").is_none());
    }
}
