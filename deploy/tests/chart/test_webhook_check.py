"""ferrostack's own admission policies on every rendered profile: `ferrostack webhook check`
(the offline twin of the webhook) reports zero enforce violations (exit 0), and fails a render
that breaks a policy (exit 1), so the check is live."""

import re
import subprocess

import pytest

from conftest import PROFILES, ferrostack_binary, render_text


def webhook_check(path):
    return subprocess.run([ferrostack_binary(), "webhook", "check", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_passes_the_admission_policies(profile, tmp_path):
    f = tmp_path / f"{profile}.yaml"
    f.write_text(render_text(profile))
    out = webhook_check(f)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not re.search(r"\berror\[", out.stdout), out.stdout
    summary = re.search(r"(\d+) documents, (\d+) workloads checked: 0 errors", out.stdout)
    assert summary and int(summary.group(2)) >= 4, out.stdout


def test_a_policy_violation_fails_the_check(tmp_path):
    """The kind profile with one container's image on a floating tag: an enforce violation."""
    text = render_text("kind")
    assert "image: ghcr.io/ferrostack/ferrostack:e2e\n" in text
    f = tmp_path / "bad.yaml"
    f.write_text(text.replace("image: ghcr.io/ferrostack/ferrostack:e2e\n",
                              "image: ghcr.io/ferrostack/ferrostack:latest\n", 1))
    out = webhook_check(f)
    assert out.returncode == 1 and "error[image-tag]" in out.stdout, out.stdout + out.stderr
