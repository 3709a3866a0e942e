"""Kubernetes helpers for the platform tests: render a kustomization, validate core kinds
strictly against the bundled OpenAPI schemas (kubernetes-validate), hand CRDs back to the
caller for its own structural checks."""
import os
import pathlib
import shutil
import subprocess

import kubernetes_validate
import yaml

K8S_VERSION = "1.33"


def kubectl() -> str:
    root = pathlib.Path(__file__).resolve().parents[3]
    found = shutil.which("kubectl") or str(root / ".tools" / "bin" / "kubectl")
    assert os.access(found, os.X_OK), "kubectl missing: run scripts/tools.sh helm"
    return found


def kustomize(path: pathlib.Path) -> list[dict]:
    out = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def load_docs(path: pathlib.Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def validate(docs: list[dict]) -> list[dict]:
    """Strictly validate every document whose kind has a schema; return the others (CRDs)."""
    crds = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            assert "." in doc["apiVersion"].split("/")[0], f"core kind without schema: {doc['kind']}"
            crds.append(doc)
    return crds


def by_kind(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
