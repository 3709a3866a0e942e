"""Summarises `make test`'s suites from their logs (scripts/suites.sh): one line per suite, every
skip with its reason, and a closing total. Reads cargo test's `test result:` lines, pytest's final
counts and `-rs` skip reasons, and the `SKIP:` lines our Rust tests print when a tool is absent."""
import re
import sys
from pathlib import Path

CARGO = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
PYTEST = re.compile(r"^=*\s*((?:\d+ \w+(?:, )?)+) in [\d.]+s")
SKIP = re.compile(r"^(?:SKIPPED \[\d+\] |SKIP: )(.*)$")


def counts(log):
    """passed, failed, skipped and the skip reasons in one suite's log."""
    passed = failed = skipped = 0
    reasons = []
    for line in log.splitlines():
        if m := CARGO.match(line):
            passed, failed, skipped = passed + int(m[1]), failed + int(m[2]), skipped + int(m[3])
        elif m := PYTEST.match(line.strip()):
            found = dict((w, int(n)) for n, w in re.findall(r"(\d+) (\w+)", m[1]))
            passed += found.get("passed", 0)
            failed += found.get("failed", 0) + found.get("error", 0) + found.get("errors", 0)
            skipped += found.get("skipped", 0)
        elif m := SKIP.match(line.strip()):
            reasons.append(m[1])
    return passed, failed, skipped, reasons


def main(out):
    total = [0, 0, 0]
    failed_suites = []
    print("\n== make test: one line per suite")
    for row in (out / "status").read_text().splitlines():
        suite, rc, secs = row.split()
        passed, failed, skipped, reasons = counts((out / f"{suite}.log").read_text(errors="replace"))
        if rc != "0":
            failed_suites.append(suite)
            failed = max(failed, 1)   # a suite that failed before counting still failed
        ran = passed + failed + skipped
        verdict = "ok" if rc == "0" else f"FAILED (exit {rc}; log: .tools/results/{suite}.log)"
        detail = f"{passed} passed, {failed} failed, {skipped} skipped" if ran else "no tests (a step)"
        print(f"{suite:<14} {verdict:<6} {detail:<40} {secs:>5} s")
        for reason in reasons:
            print(f"{'':<14} skipped: {reason}")
        total = [total[0] + passed, total[1] + failed, total[2] + skipped]
    print(f"total: {total[0]} passed, {total[1]} failed, {total[2]} skipped")
    return 1 if failed_suites else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
