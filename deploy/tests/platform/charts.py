"""Helm helpers for the platform tests: the pins of deploy/versions.yaml, `helm template` of our
own charts and of the upstream charts (pulled into .tools/charts by `scripts/tools.sh charts`),
and a structural check of custom resources against the CRD schemas those charts ship."""
from __future__ import annotations

import io
import os
import pathlib
import re
import shutil
import subprocess
import tarfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
VERSIONS_FILE = ROOT / "deploy" / "versions.yaml"
CHARTS_DIR = ROOT / ".tools" / "charts"


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads the `=` (YAML 1.1 "value") key some CRD schemas contain."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_all(text: str) -> list[dict]:
    return [d for d in yaml.load_all(text, Loader=_Loader) if d]


def versions() -> dict[str, str]:
    return yaml.safe_load(VERSIONS_FILE.read_text())


def helm() -> str:
    found = shutil.which("helm") or str(ROOT / ".tools" / "bin" / "helm")
    assert os.access(found, os.X_OK), "helm missing: run scripts/tools.sh helm"
    return found


def template(chart: str | pathlib.Path, release: str, namespace: str, values: list[pathlib.Path] = (),
             sets: dict[str, str] | None = None, api_versions: tuple[str, ...] = ("monitoring.coreos.com/v1",),
             kube_version: str = "1.33.0", include_crds: bool = False) -> list[dict]:
    argv = [helm(), "template", release, str(chart), "--namespace", namespace, "--kube-version", kube_version]
    for v in values:
        argv += ["-f", str(v)]
    for k, v in (sets or {}).items():
        argv += ["--set", f"{k}={v}"]
    for api in api_versions:
        argv += ["--api-versions", api]
    if include_crds:
        argv.append("--include-crds")
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    return load_all(res.stdout)


def upstream_chart(key: str) -> pathlib.Path:
    """The packaged upstream chart <key>_chart of deploy/versions.yaml. Missing (no network to the
    chart repositories here): skip, or fail when REQUIRE_UPSTREAM_CHARTS=1 (CI with network)."""
    pins = versions()
    name, version = key.replace("_", "-"), pins[f"{key}_chart"]
    path = CHARTS_DIR / f"{name}-{version}.tgz"
    if not path.is_file():
        msg = f"{path.relative_to(ROOT)} not here: `scripts/tools.sh charts` could not pull it from {pins[f'{key}_repo']}"
        if os.environ.get("REQUIRE_UPSTREAM_CHARTS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def crd_schemas(docs: list[dict]) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of the CRDs in docs."""
    out = {}
    for d in docs:
        if d.get("kind") != "CustomResourceDefinition":
            continue
        spec = d["spec"]
        for v in spec["versions"]:
            if v.get("served", True):
                out[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = v["schema"]["openAPIV3Schema"]
    return out


def structural_errors(obj, schema: dict, path: str = "") -> list[str]:
    """What the API server would reject or silently prune: unknown fields (where the schema does
    not preserve them), wrong types, values outside an enum, missing required fields."""
    errors: list[str] = []
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(obj, (int, str)):
            errors.append(f"{path}: not int-or-string: {obj!r}")
        return errors
    if obj is None:
        return errors if schema.get("nullable") else [f"{path}: null"]
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    if kind in types and (not isinstance(obj, types[kind]) or (kind in ("integer", "number") and isinstance(obj, bool))):
        return [f"{path}: {type(obj).__name__} where the schema wants {kind}: {obj!r}"]
    if "enum" in schema and obj not in schema["enum"]:
        errors.append(f"{path}: {obj!r} not in {schema['enum']}")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in obj:
                errors.append(f"{path}.{req}: required")
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            if key in props:
                errors += structural_errors(value, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                errors += structural_errors(value, extra, f"{path}.{key}")
            elif not (schema.get("x-kubernetes-preserve-unknown-fields") or extra is True):
                errors.append(f"{path}.{key}: unknown field")
    elif kind == "array" and "items" in schema:
        for i, item in enumerate(obj):
            errors += structural_errors(item, schema["items"], f"{path}[{i}]")
    return errors


def check_custom_resource(doc: dict, schemas: dict[tuple[str, str], dict]) -> list[str]:
    schema = schemas.get((doc["apiVersion"], doc["kind"]))
    assert schema, f"no CRD serves {doc['apiVersion']} {doc['kind']}"
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
    top = {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items()
                                    if k not in ("apiVersion", "kind", "metadata")}}
    return structural_errors(body, top, doc["kind"])


class ChartArchive:
    """A packaged chart read without helm: its default values, whether it has a values schema
    (then `helm template` itself rejects unknown keys), its template text and its subcharts."""

    def __init__(self, files: dict[str, bytes]):
        meta = yaml.safe_load(files["Chart.yaml"])
        self.name, self.app_version = meta["name"], str(meta.get("appVersion", ""))
        self.defaults = yaml.safe_load(files.get("values.yaml", b"{}")) or {}
        self.has_schema = "values.schema.json" in files
        self.templates = "\n".join(v.decode(errors="replace") for k, v in files.items()
                                   if k.startswith("templates/"))
        self.subcharts: dict[str, ChartArchive] = {}
        nested = {}
        for key, data in files.items():
            m = re.fullmatch(r"charts/([^/]+)\.tgz", key)
            if m:
                sub = ChartArchive.from_bytes(data)
                self.subcharts[sub.name] = sub
            m = re.fullmatch(r"charts/([^/]+)/(.+)", key)
            if m:
                nested.setdefault(m.group(1), {})[m.group(2)] = data
        for name, sub_files in nested.items():
            if "Chart.yaml" in sub_files:
                self.subcharts[name] = ChartArchive(sub_files)

    @classmethod
    def from_bytes(cls, data: bytes) -> "ChartArchive":
        files = {}
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    files[member.name.split("/", 1)[1]] = tar.extractfile(member).read()
        return cls(files)

    @classmethod
    def open(cls, path: pathlib.Path) -> "ChartArchive":
        return cls.from_bytes(path.read_bytes())

    def unknown_keys(self, ours: dict) -> list[str]:
        """Our values' key paths this chart (and the subchart a path addresses) neither defaults
        nor reads: a typo or a renamed key, which a chart without a values schema silently
        ignores. Below an empty map in the defaults every key is free-form; a key the templates
        read as `.Values.<path>` is known even when the defaults only document it in a comment."""
        return [".".join(map(str, p)) for p in value_paths(ours) if not self.knows(list(p))]

    def knows(self, path: list) -> bool:
        if self._in_defaults_or_templates(path):
            return True
        if path and path[0] in self.subcharts:
            return len(path) == 1 or self.subcharts[path[0]].knows(path[1:])
        return False

    def _in_defaults_or_templates(self, path: list) -> bool:
        cur = self.defaults
        for key in path:
            if isinstance(cur, dict) and key in cur:
                cur = cur[key]
            elif isinstance(cur, dict) and not cur:
                return True
            else:
                return (".Values." + ".".join(map(str, path))) in self.templates
        return True


def value_paths(values: dict, prefix: tuple = ()):
    for key, value in values.items():
        yield prefix + (key,)
        if isinstance(value, dict) and value:
            yield from value_paths(value, prefix + (key,))
