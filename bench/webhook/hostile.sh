#!/usr/bin/env bash
# Hostile-mix benchmark: reviews built to cost the webhook as much as possible, then the
# server's peak RSS beside the chart's memory limit for the webhook.
#   1. 20,000 hostPath volumes (0.8 MB): 20,000 violations; denial message and answer size;
#   2. 100,000 containers (3.3 MB) to /mutate and /validate: answer size, time, and the CPU the
#      server spends in the 3 s after answering (a cancelled evaluation spends none);
#   3. 60 connections each sending a 4 MiB review at once: how many are answered 200 / 503;
#   4. peak RSS (VmHWM) of the server, against deploy/helm/ferrostack values webhook.resources.
# Usage: bench/webhook/hostile.sh   (env: BIN, default the release build, else the debug one)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
bin=${BIN:-$target/release/ferrostack}
[ -x "$bin" ] || bin="$target/debug/ferrostack"
[ -x "$bin" ] || cargo build --locked -p ferrostack --manifest-path "$root/Cargo.toml"
port=${PORT:-18543}
metrics_port=$((port + 1))
limit=$(awk '/^webhook:/{w=1} w && /limits:/ {match($0, /memory: *[0-9]+[A-Za-z]+/); print substr($0, RSTART+8, RLENGTH-8); exit}' \
  "$root/deploy/helm/ferrostack/values.yaml" | tr -d ' ')

work=$(mktemp -d)
"$bin" webhook serve --self-signed --port "$port" --metrics-port "$metrics_port" \
  --ca-file "$work/ca.pem" --log-level warn --drain-delay 0s >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
def review(spec, op="CREATE"):
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}}}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "hostile", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                        "namespace": "shop", "operation": op, "userInfo": {}, "object": obj}}
vols = [{"name": f"v{i}", "hostPath": {"path": "/"}} for i in range(20000)]
json.dump(review({"containers": [{"name": "c", "image": "nginx:1"}], "volumes": vols}), open(f"{work}/volumes.json", "w"))
ctrs = [{"name": f"c{i}", "image": "nginx"} for i in range(100000)]
json.dump(review({"containers": ctrs}), open(f"{work}/containers.json", "w"))
# 4 MiB of annotation: a legitimate-size body that the in-flight budget has to account for.
big = review({"containers": [{"name": "c", "image": "nginx:1"}]})
big["request"]["object"]["metadata"]["annotations"] = {"note": "x" * (4 * 1024 * 1024 - 2048)}
json.dump(big, open(f"{work}/big.json", "w"))
PY

post() { # path file -> "status bytes seconds"
  curl -sS -o "$work/answer" -w '%{http_code} %{size_download} %{time_total}' --cacert "$work/ca.pem" \
    -H 'content-type: application/json' --data-binary @"$2" "https://localhost:$port$1"
}
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$pid/stat"; }
hwm() { echo "server peak RSS so far: $(($(awk '/VmHWM/ {print $2}' "/proc/$pid/status") / 1024)) MiB"; }

echo "## 1. 20,000 hostPath volumes ($(stat -c %s "$work/volumes.json") bytes) to /validate"
echo "status bytes seconds: $(post /validate "$work/volumes.json")"
echo "denial message: $(jq -r '.response.status.message' "$work/answer" | wc -c) bytes, last line: $(jq -r '.response.status.message' "$work/answer" | tail -1)"
hwm
for path in /mutate /validate; do
  echo "## 2. 100,000 containers ($(stat -c %s "$work/containers.json") bytes) to $path"
  echo "status bytes seconds: $(post $path "$work/containers.json")"
  before=$(cpu); sleep 3; after=$(cpu)
  echo "server CPU in the 3 s after the answer: $(echo "$after - $before" | bc) s"
  hwm
done
echo "## 3. 60 concurrent 4 MiB reviews to /validate"
clients=()
mkdir "$work/clients"
for i in $(seq 60); do
  curl -sS -o /dev/null -w '%{http_code}\n' --cacert "$work/ca.pem" -H 'content-type: application/json' \
    --data-binary @"$work/big.json" "https://localhost:$port/validate" >"$work/clients/$i" 2>&1 &
  clients+=($!)
done
wait "${clients[@]}" || true
cat "$work"/clients/* | sort | uniq -c
echo "## 4. server memory"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "peak RSS (VmHWM): $((hwm / 1024)) MiB; chart limit (webhook.resources.limits.memory): $limit"
