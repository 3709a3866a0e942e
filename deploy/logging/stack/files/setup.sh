#!/bin/sh
# Elasticsearch index setup, run by the Helm hook Job <release>-setup (idempotent, safe to re-run):
#   - ILM policy and index template named after the alias (case study 001 step 2.4.a)
#   - the first index <alias>-000001 behind the write alias, unless the alias exists
# Users and roles are not created here: ECK loads them from Secrets (values elasticsearch.userSecrets).
# Inputs: ES_URL, ALIAS, CA_FILE, CREDENTIALS_DIR (files username and password: a basic-auth
# Secret), CONFIG_DIR (ilm-policy.json, index-template.json).
set -eu

: "${ES_URL:=https://elasticsearch-es-http.logging.svc:9200}"
: "${ALIAS:=ferrostack-logs}"
: "${CA_FILE:=/certs/ca.crt}"
: "${CREDENTIALS_DIR:=/credentials}"
: "${CONFIG_DIR:=/config}"
# curl config syntax: backslash and double quote escaped inside the quoted value
credentials=$(printf '%s:%s' "$(cat "$CREDENTIALS_DIR/username")" "$(cat "$CREDENTIALS_DIR/password")" \
  | sed 's/[\\"]/\\&/g')

# es METHOD PATH [BODY_FILE]: prints the HTTP status; the body goes to /tmp/es-response.
# The credentials reach curl on stdin (a config line), never on its command line.
es() {
  printf 'user = "%s"\n' "$credentials" | if [ $# -ge 3 ]; then
    curl -sS -K - -o /tmp/es-response -w '%{http_code}' --cacert "$CA_FILE" \
      -X "$1" -H 'Content-Type: application/json' --data-binary "@$3" "$ES_URL$2"
  else
    curl -sS -K - -o /tmp/es-response -w '%{http_code}' --cacert "$CA_FILE" -X "$1" "$ES_URL$2"
  fi
}
expect_2xx() {
  case "$1" in
    2??) echo "ok   $2" ;;
    *) echo "FAIL $2 (HTTP $1): $(cat /tmp/es-response)" >&2; exit 1 ;;
  esac
}

echo "waiting for $ES_URL"
i=0
until [ "$(es GET '/_cluster/health?wait_for_status=yellow&timeout=10s' || true)" = 200 ]; do
  i=$((i + 1))
  [ "$i" -lt 60 ] || { echo "Elasticsearch not healthy after 60 tries" >&2; exit 1; }
  sleep 5
done

expect_2xx "$(es PUT "/_ilm/policy/$ALIAS" "$CONFIG_DIR/ilm-policy.json")" "ILM policy $ALIAS"
expect_2xx "$(es PUT "/_index_template/$ALIAS" "$CONFIG_DIR/index-template.json")" "index template $ALIAS"

if [ "$(es GET "/_alias/$ALIAS")" = 200 ]; then
  echo "ok   write alias $ALIAS exists"
else
  printf '{"aliases":{"%s":{"is_write_index":true}}}' "$ALIAS" > /tmp/body.json
  expect_2xx "$(es PUT "/$ALIAS-000001" /tmp/body.json)" "index $ALIAS-000001 + write alias"
fi
echo "setup complete"
