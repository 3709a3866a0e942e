#!/usr/bin/env python3
"""Replaces the README's CLI reference (between the cli-reference markers) with the output of
`ferrostack cli-reference`, run with an empty environment so no local FERROSTACK_* shows."""
import pathlib
import subprocess
import sys

binary, readme = sys.argv[1], pathlib.Path(sys.argv[2])
generated = subprocess.run([binary, "cli-reference"], env={}, check=True, capture_output=True, text=True).stdout
text = readme.read_text()
start, end = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
readme.write_text(f"{head}{start}\n{generated.strip()}\n{end}{tail}")
