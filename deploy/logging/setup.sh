#!/bin/sh
# Elasticsearch setup, run by the Job elasticsearch-setup (idempotent, safe to re-run):
#   - built-in user kibana_system gets its password from the Secret elasticsearch-credentials
#   - role ferrostack-logs-writer and user fluent-bit (least privilege for the shipper)
#   - ILM policy and index template ferrostack-logs (case study 001 step 2.4.a)
#   - the first index ferrostack-logs-000001 behind the write alias ferrostack-logs
# Inputs: ES_URL, CA_FILE, CREDENTIALS_DIR (files elastic, kibana_system, fluent-bit), CONFIG_DIR.
set -eu

: "${ES_URL:=https://elasticsearch.logging.svc:9200}"
: "${CA_FILE:=/certs/ca.crt}"
: "${CREDENTIALS_DIR:=/credentials}"
: "${CONFIG_DIR:=/config}"
elastic_password=$(cat "$CREDENTIALS_DIR/elastic")
kibana_password=$(cat "$CREDENTIALS_DIR/kibana_system")
fluent_password=$(cat "$CREDENTIALS_DIR/fluent-bit")

# es METHOD PATH [BODY_FILE]: prints the HTTP status; the body goes to /tmp/es-response.
es() {
  if [ $# -ge 3 ]; then
    curl -sS -o /tmp/es-response -w '%{http_code}' --cacert "$CA_FILE" -u "elastic:$elastic_password" \
      -X "$1" -H 'Content-Type: application/json' --data-binary "@$3" "$ES_URL$2"
  else
    curl -sS -o /tmp/es-response -w '%{http_code}' --cacert "$CA_FILE" -u "elastic:$elastic_password" \
      -X "$1" "$ES_URL$2"
  fi
}
expect_2xx() {
  case "$1" in
    2??) echo "ok   $2" ;;
    *) echo "FAIL $2 (HTTP $1): $(cat /tmp/es-response)" >&2; exit 1 ;;
  esac
}
json_password() { printf '{"password":"%s"}' "$1" > /tmp/body.json; }

echo "waiting for $ES_URL"
i=0
until [ "$(es GET '/_cluster/health?wait_for_status=yellow&timeout=10s')" = 200 ]; do
  i=$((i + 1))
  [ "$i" -lt 60 ] || { echo "Elasticsearch not healthy after 60 tries" >&2; exit 1; }
  sleep 5
done

json_password "$kibana_password"
expect_2xx "$(es POST /_security/user/kibana_system/_password /tmp/body.json)" "kibana_system password"

cat > /tmp/body.json <<'JSON'
{
  "cluster": ["monitor", "manage_ilm", "manage_index_templates"],
  "indices": [
    {"names": ["ferrostack-logs", "ferrostack-logs-*"],
     "privileges": ["create_doc", "create_index", "view_index_metadata", "auto_configure"]}
  ]
}
JSON
expect_2xx "$(es PUT /_security/role/ferrostack-logs-writer /tmp/body.json)" "role ferrostack-logs-writer"

printf '{"password":"%s","roles":["ferrostack-logs-writer"],"full_name":"Fluent Bit shipper"}' \
  "$fluent_password" > /tmp/body.json
expect_2xx "$(es PUT /_security/user/fluent-bit /tmp/body.json)" "user fluent-bit"
rm -f /tmp/body.json

expect_2xx "$(es PUT /_ilm/policy/ferrostack-logs "$CONFIG_DIR/ilm-policy.json")" "ILM policy ferrostack-logs"
expect_2xx "$(es PUT /_index_template/ferrostack-logs "$CONFIG_DIR/index-template.json")" "index template ferrostack-logs"

if [ "$(es GET /_alias/ferrostack-logs)" = 200 ]; then
  echo "ok   write alias ferrostack-logs exists"
else
  printf '{"aliases":{"ferrostack-logs":{"is_write_index":true}}}' > /tmp/body.json
  expect_2xx "$(es PUT /ferrostack-logs-000001 /tmp/body.json)" "index ferrostack-logs-000001 + write alias"
fi
echo "setup complete"
