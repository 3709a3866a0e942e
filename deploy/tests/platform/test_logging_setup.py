"""deploy/logging/stack/files/setup.sh (the chart's index setup hook Job) run for real with curl
against a loopback HTTPS stand-in for the Elasticsearch REST API: ILM policy, index template and
write alias, authenticated as the user of a basic-auth Secret, idempotent on a second run,
failing loudly on an error, never showing the password."""
import base64
import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import ROOT

FILES = ROOT / "deploy" / "logging" / "stack" / "files"
USER, PASSWORD = "elastic", 'el-pw-1"with\\quote'   # curl config quoting must survive " and \


def self_signed(tmp):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (tmp / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return tmp / "tls.crt", tmp / "tls.key"


class FakeElasticsearch:
    def __init__(self, cert, key, fail_path=None):
        self.requests, self.aliases = [], set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                auth = self.headers.get("Authorization", "")
                outer.requests.append((self.command, self.path, auth, body))
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if auth != expected:
                    return self.reply(401)
                if self.path == fail_path:
                    return self.reply(500, {"error": "boom"})
                if self.command == "GET" and self.path.startswith("/_alias/"):
                    return self.reply(200 if self.path[8:] in outer.aliases else 404)
                if self.command == "PUT" and self.path == "/ferrostack-logs-000001":
                    outer.aliases.update(json.loads(body)["aliases"])
                return self.reply(200, {"acknowledged": True})

            do_GET = do_PUT = do_POST = handle_one  # noqa: N815 - http.server API

            def reply(self, code, doc=None):
                data = json.dumps(doc or {}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, method, path):
        return [json.loads(b) for m, p, _, b in self.requests if m == method and p == path]


@pytest.fixture()
def env(tmp_path):
    assert shutil.which("curl"), "curl missing: make test-platform installs it"
    creds = tmp_path / "credentials"
    creds.mkdir()
    # a mounted basic-auth Secret: one file per key
    (creds / "username").write_text(USER)
    (creds / "password").write_text(PASSWORD)
    cert, key = self_signed(tmp_path)
    return tmp_path, cert, key, {"PATH": os.environ["PATH"], "CA_FILE": str(cert), "CREDENTIALS_DIR": str(creds),
                                 "CONFIG_DIR": str(FILES), "ALIAS": "ferrostack-logs"}


def run_setup(es, environ, tmp):
    return subprocess.run(["sh", str(FILES / "setup.sh")], env={**environ, "ES_URL": es.url}, cwd=tmp,
                          capture_output=True, text=True, timeout=60, check=False)


def test_setup_configures_elasticsearch_and_is_idempotent(env):
    tmp, cert, key, environ = env
    es = FakeElasticsearch(cert, key)
    try:
        first = run_setup(es, environ, tmp)
        assert first.returncode == 0, first.stdout + first.stderr
        # users and roles are ECK's (file realm from Secrets): the script creates none
        assert not [p for m, p, _, _ in es.requests if p.startswith("/_security/")]
        assert es.bodies("PUT", "/_ilm/policy/ferrostack-logs") == [json.loads((FILES / "ilm-policy.json").read_text())]
        assert es.bodies("PUT", "/_index_template/ferrostack-logs") == [
            json.loads((FILES / "index-template.json").read_text())]
        assert es.bodies("PUT", "/ferrostack-logs-000001") == [{"aliases": {"ferrostack-logs": {"is_write_index": True}}}]
        assert PASSWORD not in first.stdout + first.stderr, "the password was printed"

        second = run_setup(es, environ, tmp)
        assert second.returncode == 0, second.stdout + second.stderr
        assert len(es.bodies("PUT", "/ferrostack-logs-000001")) == 1, "the write index is created once"
        assert "write alias ferrostack-logs exists" in second.stdout
    finally:
        es.close()


def test_setup_fails_loudly(env):
    tmp, cert, key, environ = env
    es = FakeElasticsearch(cert, key, fail_path="/_index_template/ferrostack-logs")
    try:
        res = run_setup(es, environ, tmp)
        assert res.returncode != 0 and "FAIL index template ferrostack-logs (HTTP 500)" in res.stderr
        assert not es.bodies("PUT", "/ferrostack-logs-000001"), "stops at the first failure"
    finally:
        es.close()
