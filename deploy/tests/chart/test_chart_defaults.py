"""Every value the chart's values.yaml hands a ferrostack flag (as a FERROSTACK_* variable; the
only command-line flag the chart passes is logship's --source, which has no default) against the
binary's own default for that flag (from `--help`, the text the README's command-line reference
is made of): equal, or a deliberate override named here with its reason. A default changed on
one side only fails here instead of drifting."""

import functools
import os
import re
import subprocess

import pytest

from conftest import containers, ferrostack_binary, pod_spec, render

# env -> why the chart's value differs from the binary's default.
OVERRIDES = {
    "FERROSTACK_SHUTDOWN_TIMEOUT": "fits terminationGracePeriodSeconds with the preStop sleep",
    "FERROSTACK_LOG_DIR": "the pod's log volume mount",
    "FERROSTACK_TO": "the pod's archive volume (file://) instead of no destination",
    "FERROSTACK_STATE_DIR": "the pod's state volume mount",
    "FERROSTACK_HISTORY": "the history PVC's mount",
    "FERROSTACK_CONFIG": "the targets ConfigMap's mount",
    "FERROSTACK_TLS_CERT": "the webhook TLS Secret's mount",
    "FERROSTACK_TLS_KEY": "the webhook TLS Secret's mount",
    "FERROSTACK_BATCH_MAX_AGE": "a pod's logs reach the archive within 30 s of being sealed",
    "FERROSTACK_MAX_PENDING_BYTES": "bounded by the pod's ephemeral-storage limit, not a laptop's disk",
    "FERROSTACK_HISTORY_MAX_AGE": "the CronJob keeps a week; the binary keeps everything unless told",
    "FERROSTACK_LEASE_NAME": "the Lease the chart creates, named after the release",
}
# Everything values.yaml has, switched on: the default profile plus the opt-in roles.
SETS = ("webhook.enabled=true",)
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@functools.lru_cache(maxsize=None)
def flag_defaults(role):
    """env name -> default text (None without one) of every flag `ferrostack ROLE --help` lists."""
    # No FERROSTACK_* from this environment: clap would print it in place of the default.
    out = subprocess.run([ferrostack_binary(), *role, "--help"], capture_output=True, text=True,
                         env={"PATH": os.environ.get("PATH", ""), "COLUMNS": "1000"})
    assert out.returncode == 0, out.stderr
    found = {}
    for block in re.split(r"\n(?=\s+(?:-\w, )?--[a-z])", out.stdout):
        block = " ".join(block.split())
        env = re.search(r"\[env: (FERROSTACK_[A-Z0-9_]+)=", block)
        if env:
            default = re.search(r"\[default: ([^\]]*)\]", block)
            found[env.group(1)] = default.group(1) if default else None
    return found


def normal(text):
    """Durations in seconds, everything else as written."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else text


def chart_settings():
    """(role, env name, value) for every literal FERROSTACK_* value the chart sets."""
    seen = set()
    for d in render("default", *SETS):
        # `helm test` pods set what their check needs (one failure fails it), not a default.
        if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test":
            continue
        spec = pod_spec(d)
        for c in containers(spec) if spec else ():
            if not c["image"].startswith("ghcr.io/ferrostack/"):
                continue
            role = tuple(a for a in c["args"] if not a.startswith("-"))
            for e in c.get("env", []):
                if e["name"].startswith("FERROSTACK_") and "value" in e:
                    seen.add((role, e["name"], e["value"]))
    return sorted(seen)


SETTINGS = chart_settings()


def test_the_chart_sets_flags_of_every_role():
    roles = {role for role, _, _ in SETTINGS}
    assert {("backend-api",), ("data-api",), ("logship",), ("webhook", "serve"),
            ("healthcheck", "serve"), ("healthcheck", "run")} <= roles, roles


@pytest.mark.parametrize("role,env,value", SETTINGS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_chart_value_is_the_binary_default_or_a_named_override(role, env, value):
    defaults = flag_defaults(role)
    assert env in defaults, f"`ferrostack {' '.join(role)}` has no flag read from {env}"
    default = defaults[env]
    if env in OVERRIDES or default is None:
        return
    assert normal(value) == normal(default), (
        f"values.yaml gives `ferrostack {' '.join(role)}` {env}={value}, the binary's default is "
        f"{default}: change one of them, or name the override in OVERRIDES with its reason")


def test_every_override_is_still_an_override():
    """An entry left here after the two sides agree again hides the next drift."""
    used = {env for role, env, value in SETTINGS
            if env in OVERRIDES and flag_defaults(role)[env] is not None
            and normal(value) != normal(flag_defaults(role)[env])}
    unused_with_default = {env for role, env, _ in SETTINGS
                           if env in OVERRIDES and flag_defaults(role)[env] is None}
    stale = set(OVERRIDES) - used - unused_with_default
    assert not stale, f"values.yaml now equals the binary's default for {sorted(stale)}: drop them from OVERRIDES"
