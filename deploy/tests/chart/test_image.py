"""The image (deploy/Dockerfile, .dockerignore) without a Docker engine (none runs here;
.github/workflows/image.yml builds and pushes it): hadolint, the stages, the base images, the
build context loading the whole workspace, the binary linking only what distroless/cc ships,
and every role of the chart running as the image and the chart run it: UID 10001, a read-only
root filesystem, only the chart's volumes writable."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, containers, ferrostack_binary, free_port, get, pod_spec, render, tool

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
# Debian release of each codename the rust images are published for.
CODENAMES = {"bookworm": 12, "trixie": 13}


def dockerfile():
    text = DOCKERFILE.read_text()
    return [l.strip() for l in text.replace("\\\n", " ").splitlines()
            if l.strip() and not l.lstrip().startswith("#")]


def runtime_stage():
    lines = dockerfile()
    return lines[max(i for i, l in enumerate(lines) if l.startswith("FROM ")):]


# --- the Dockerfile -------------------------------------------------------------------------

def test_hadolint_finds_nothing(tmp_path):
    out = subprocess.run([tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr
    # Each ignore pragma says why, on the comment lines right above it.
    text = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(text):
        if "hadolint ignore=" in line:
            assert text[i - 1].startswith("#") and len(text[i - 1]) > 40, f"line {i + 1}: no reason"
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n")
    out = subprocess.run([tool("hadolint"), "--no-color", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "DL3007" in out.stdout, "hadolint is live"


def test_dockerfile_stages():
    froms = [l for l in dockerfile() if l.startswith("FROM ")]
    assert len(froms) >= 3, "multi-stage"
    builder = next(f for f in froms if "rust:" in f)
    assert "--platform=$BUILDPLATFORM" in builder, "cross-compiles instead of emulating"
    assert "AS chef" in builder


def test_base_images_are_one_current_debian_release():
    """The builder's glibc is what the binary links against: the runtime must be the same
    Debian release. distroless stopped building Debian 12 images in September 2026."""
    froms = [l for l in dockerfile() if l.startswith("FROM ")]
    builder = re.fullmatch(r"FROM --platform=\$BUILDPLATFORM rust:\$\{RUST_VERSION\}-(\w+) AS chef",
                           next(f for f in froms if "rust:" in f))
    runtime = re.fullmatch(r"FROM gcr\.io/distroless/cc-debian(\d+):nonroot(@sha256:[0-9a-f]{64})?", froms[-1])
    assert builder and runtime, froms
    assert CODENAMES[builder.group(1)] == int(runtime.group(1))
    assert int(runtime.group(1)) >= 13
    rust = re.search(r"^ARG RUST_VERSION=(\S+)$", DOCKERFILE.read_text(), re.M).group(1)
    workspace = re.search(r'^rust-version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    assert rust == workspace, "the builder is the workspace's toolchain"


def test_dependency_layer_is_cached_apart_from_the_sources():
    lines = dockerfile()
    cook = next(i for i, l in enumerate(lines) if "cargo chef cook" in l)
    copy_all = [i for i, l in enumerate(lines) if l.startswith("COPY . .")]
    recipe = next(i for i, l in enumerate(lines) if l.startswith("COPY --from=planner"))
    build = next(i for i, l in enumerate(lines) if "cargo build --release --locked" in l)
    assert 'FERROSTACK_GIT_SHA="$REVISION"' in lines[build], "the commit reaches /version"
    assert any(i < cook for i in copy_all), "planner copies the tree"
    assert recipe < cook, "the builder sees only the recipe before cooking"
    assert not [i for i in copy_all if recipe < i < cook], "no source copy before the dependency layer"
    assert any(cook < i < build for i in copy_all), "sources copied after the dependency layer"
    assert "--locked" in lines[cook]


def test_runtime_user_entrypoint_and_labels():
    runtime = runtime_stage()
    (user,) = [l for l in runtime if l.startswith("USER ")]
    uid, gid = (int(x) for x in user.split()[1].split(":"))
    assert uid >= 10001 and gid >= 10001, "numeric non-root UID"
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "ferrostack" / "values.yaml").read_text())
    assert (uid, gid) == (values["securityContext"]["runAsUser"], values["securityContext"]["runAsGroup"])
    assert 'ENTRYPOINT ["/usr/local/bin/ferrostack"]' in runtime
    assert "WORKDIR /var/lib/ferrostack" in runtime
    assert not [l for l in runtime if l.startswith("RUN ")], "nothing runs in the runtime stage"
    labels = " ".join(l for l in runtime if l.startswith("LABEL"))
    for key in ("title", "description", "source", "licenses", "version", "revision", "created"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    # The only writable directory the image has is the image user's WORKDIR.
    assert "install -d -o 10001 -g 10001 -m 0750 /out/var/lib/ferrostack" in " ".join(dockerfile())


# --- the build context ----------------------------------------------------------------------

def glob_regex(pattern):
    """A .dockerignore pattern as a regex (Go filepath.Match plus `**`, as BuildKit reads it)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"^{out}$")


def context_files(lines):
    """The repository files a build with this .dockerignore sends: the last matching pattern
    wins, and a pattern matching a parent directory matches everything below it."""
    rules = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            neg = line.startswith("!")
            rules.append((neg, glob_regex(os.path.normpath(line.lstrip("!")).lstrip("/"))))
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    kept = []
    for f in files:
        parts = f.split("/")
        candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        excluded = False
        for neg, rx in rules:
            if any(rx.match(c) for c in candidates):
                excluded = not neg
        if not excluded and (ROOT / f).is_file():
            kept.append(f)
    return kept


def load_workspace(files, dest):
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    # Online on purpose: offline mode needs every package of Cargo.lock, for every platform, in the local cache,
    # which only a warm machine has; --locked still fails if the context would change the lock.
    return subprocess.run(["cargo", "metadata", "--locked", "--format-version", "1",
                           "--manifest-path", str(dest / "Cargo.toml")], capture_output=True, text=True)


def test_build_context_loads_the_workspace(tmp_path):
    """`cargo chef prepare` and `cargo build --locked` run on exactly the context .dockerignore
    lets through: every workspace member is in it, Cargo.lock needs no change, and nothing else
    (deploy/, .github/, target/, docs) is sent."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    files = context_files(lines)
    # .cargo/config.toml sets jemalloc's build-time configuration; cargo-chef carries it into the
    # recipe, so the dependencies the image cooks are built with it too.
    assert {"Cargo.toml", "Cargo.lock", "crates/ferrostack/Cargo.toml", ".cargo/config.toml"} <= set(files)
    assert not [f for f in files if f.split("/")[0] not in {"Cargo.toml", "Cargo.lock", "clippy.toml",
                                                            ".cargo", "crates", "bench"}], "context kept small"
    out = load_workspace(files, tmp_path / "ctx")
    assert out.returncode == 0, out.stderr
    members = {m.split("#")[-1] for m in json.loads(out.stdout)["workspace_members"]}
    assert any(m.startswith("ferrostack@") or m == "0.1.0" for m in members), members
    # Without a member (the bench crate) the workspace does not load: the check is live.
    out = load_workspace([f for f in files if not f.startswith("bench/")], tmp_path / "short")
    assert out.returncode != 0 and "bench/http/hello" in out.stderr, out.stderr


# --- the binary in the runtime image ---------------------------------------------------------

# What gcr.io/distroless/cc ships beyond static: glibc and libgcc_s (and nothing like libssl).
DISTROLESS_CC = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2",
                 "librt.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


def test_binary_links_only_what_distroless_cc_has():
    out = subprocess.run(["readelf", "-d", ferrostack_binary()], capture_output=True, text=True, check=True)
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout))
    assert needed and needed <= DISTROLESS_CC, needed - DISTROLESS_CC


# Runs inside a private mount namespace (unshare -m): builds the image's filesystem on a tmpfs
# (the binary at /usr/local/bin, glibc, CA certificates, tzdata, WORKDIR /var/lib/ferrostack
# owned by the image user, the files the kubelet mounts), mounts the pod's volumes at their
# mountPaths, makes the root read-only, then starts the role with the launcher (chroot, cwd,
# UID/GID 10001 with the fsGroup, exec).
SANDBOX = r"""
set -euo pipefail
root=$1; shift
mount --make-rprivate /
mount -t tmpfs -o mode=0755 rootfs "$root"
mkdir -p "$root"/usr/lib "$root"/usr/local/bin "$root"/usr/share/zoneinfo "$root"/etc/ssl/certs \
  "$root"/proc "$root"/dev "$root"/var/lib/ferrostack
ln -s usr/lib "$root/lib"
bind_ro() { mount --bind "$1" "$2"; mount -o remount,bind,ro "$2"; }
bind_ro /usr/lib "$root/usr/lib"
if [ -d /usr/lib64 ]; then mkdir -p "$root/usr/lib64"; ln -s usr/lib64 "$root/lib64"; bind_ro /usr/lib64 "$root/usr/lib64"; fi
bind_ro /etc/ssl/certs "$root/etc/ssl/certs"
bind_ro /usr/share/zoneinfo "$root/usr/share/zoneinfo"
for f in resolv.conf hosts; do touch "$root/etc/$f"; bind_ro "/etc/$f" "$root/etc/$f"; done
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
touch "$root/usr/local/bin/ferrostack"; bind_ro "$BIN" "$root/usr/local/bin/ferrostack"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
chown 10001:10001 "$root/var/lib/ferrostack"; chmod 0750 "$root/var/lib/ferrostack"
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
  src=$1 dst=$2 mode=$3; shift 3
  mkdir -p "$root$dst"; mount --bind "$src" "$root$dst"
  if [ "$mode" = ro ]; then mount -o remount,bind,ro "$root$dst"; fi
done
shift
mount -o remount,ro "$root"
exec "$PYTHON" -c '
import json, os, sys
root, env = sys.argv[1], json.loads(sys.argv[2])
os.chroot(root); os.chdir("/var/lib/ferrostack")
os.setgroups([10001]); os.setgid(10001); os.setuid(10001)
os.execve("/usr/local/bin/ferrostack", ["ferrostack", *sys.argv[3:]], env)
' "$root" "$ENVIRON" "$@"
"""


class Pod:
    """One container of a rendered pod spec run in the sandbox, its volumes on the host."""

    def __init__(self, spec, container, tmp_path):
        self.c = container
        self.dirs = {}
        self.mounts = []
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for m in container.get("volumeMounts", []):
            vol = volumes[m["name"]]
            host = tmp_path / "volumes" / m["name"]
            if not host.exists():
                host.mkdir(parents=True)
                self.fill(vol, host)
            self.dirs[m["name"]] = host
            src = host / m["subPath"] if "subPath" in m else host
            src.mkdir(exist_ok=True)
            if "emptyDir" in vol or "persistentVolumeClaim" in vol:
                os.chmod(src, 0o777)     # an emptyDir is world-writable; the PVC gets fsGroup
            self.mounts.append((str(src), m["mountPath"], "ro" if m.get("readOnly") or
                                "secret" in vol or "configMap" in vol else "rw"))
        self.env = {}
        for e in container.get("env", []):
            self.env[e["name"]] = e["value"] if "value" in e else "dev"   # fieldRef: the namespace
        self.ports = {}
        for p in container.get("ports", []):
            self.ports[p["name"]] = free_port()
        # Only the address differs from the pod: loopback, free ports instead of fixed ones.
        self.env["FERROSTACK_HOST"] = "127.0.0.1"
        if "FERROSTACK_PORT" in self.env:
            self.env["FERROSTACK_PORT"] = str(self.ports["https" if "https" in self.ports else next(iter(self.ports))])
        if "FERROSTACK_METRICS_PORT" in self.env:
            self.env["FERROSTACK_METRICS_PORT"] = str(self.ports["metrics"])

    def fill(self, vol, host):
        if "configMap" in vol:
            cm = next(d for d in render("kind") if d["kind"] == "ConfigMap"
                      and d["metadata"]["name"] == vol["configMap"]["name"])
            for k, v in cm["data"].items():
                (host / k).write_text(v)
        elif "secret" in vol and vol["secret"]["secretName"].endswith("-tls"):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-days", "1", "-subj", "/CN=fs-webhook.dev.svc",
                            "-keyout", str(host / "tls.key"), "-out", str(host / "tls.crt")],
                           check=True, capture_output=True)
        elif "secret" in vol:
            (host / "staging").write_text("an-integration-key")
        for f in host.iterdir():
            os.chmod(f, 0o444)   # defaultMode 0440 with the fsGroup: readable by the pod's user

    def start(self, tmp_path):
        root = tmp_path / "root"
        root.mkdir()
        argv = ["unshare", "--mount", "--propagation", "private", "bash", "-c", SANDBOX, "sandbox", str(root)]
        for m in self.mounts:
            argv += list(m)
        argv += ["--", *self.c["args"]]
        env = {"PATH": os.environ["PATH"], "BIN": ferrostack_binary(), "PYTHON": sys.executable,
               "ENVIRON": json.dumps(self.env)}
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def sandbox_works():
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    return out.returncode == 0


def kind_containers():
    """(workload, container) for every ferrostack container of the kind profile."""
    out = []
    for d in render("kind"):
        spec = pod_spec(d)
        if spec and d["kind"] != "Pod":
            out += [(d, c) for c in containers(spec) if c["image"].startswith("ghcr.io/ferrostack/")]
    return out


CONTAINERS = {f'{d["kind"]}/{d["metadata"]["name"]}/{c["name"]}': (d, c) for d, c in kind_containers()}


def test_every_role_is_run_on_a_read_only_root():
    assert {k.split("/")[-1] for k in CONTAINERS} == {"backend-api", "data-api", "logship", "healthcheck",
                                                      "webhook"}
    assert len(CONTAINERS) == 7   # logship twice, healthcheck as CronJob and as status page


@pytest.mark.parametrize("key", sorted(CONTAINERS))
def test_role_runs_as_the_image_user_on_a_read_only_root(key, tmp_path):
    """The pod as the kubelet runs it: read-only root, UID/GID 10001, the chart's volumes and
    environment. Long-running roles become ready, answer, and drain on SIGTERM with exit 0;
    GET / of the APIs writes its file into the logs volume; `healthcheck run` appends to the
    history volume. Anything written elsewhere fails with EROFS and shows up here."""
    if os.geteuid() != 0 or not sandbox_works():
        if os.environ.get("CI") == "true":
            pytest.fail("the read-only-root sandbox needs root and mount namespaces (unshare -m)")
        pytest.skip("needs root and mount namespaces (unshare -m)")
    workload, c = CONTAINERS[key]
    spec = pod_spec(workload)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["runAsUser"] == spec["securityContext"]["runAsUser"] == 10001
    pod = Pod(spec, c, tmp_path)
    proc = pod.start(tmp_path)
    try:
        if workload["kind"] == "CronJob":
            out, err = proc.communicate(timeout=120)
            # 0: every target passed, 1: a target failed (none resolves here); never 2 or a crash.
            assert proc.returncode in (0, 1), err.decode()
            history = pod.dirs["history"] / Path(pod.env["FERROSTACK_HISTORY"]).name
            assert history.read_text().strip(), "the run is in the history volume"
        else:
            probe = c["readinessProbe"]["httpGet"]
            base = f'http://127.0.0.1:{pod.ports[probe["port"]]}'
            deadline = time.monotonic() + 60
            while get(base + probe["path"])[0] != 200:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "never became ready"
                time.sleep(0.2)
            assert get(base + c["livenessProbe"]["httpGet"]["path"])[0] == 200
            if c["name"] in ("backend-api", "data-api"):
                status, body = get(base + "/")
                assert status == 200, body
                written = json.loads(body)["file"]
                logs = pod.dirs["logs"]
                assert [p for p in logs.rglob("*") if p.is_file() and p.name == Path(written).name], \
                    "GET / wrote its file into the logs volume"
            proc.send_signal(signal.SIGTERM)
            grace = spec["terminationGracePeriodSeconds"]
            out, err = proc.communicate(timeout=grace)
            assert proc.returncode == 0, err.decode()
        text = (out + err).decode()
        assert "Read-only file system" not in text and "os error 30" not in text, text
        assert "Permission denied" not in text, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
