"""Kubernetes helpers for the platform tests: validate core kinds strictly against the bundled
OpenAPI schemas (kubernetes-validate), hand CRDs back to the caller for its own structural
checks (charts.py checks them against the real CRD schemas)."""
import pathlib

import kubernetes_validate
import yaml

K8S_VERSION = "1.33"


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
