#!/usr/bin/env python3
"""kube-schemas.py — makes the Kubernetes JSON schemas of PyPI
`kubernetes-validate` usable offline by kubeconform, and prints where.

The package's schemas carry `"$id": "https://kubernetes.io/api/..."` and
`"$ref": "/api/_definitions.json#/$defs/..."`, which a validator resolves
against the $id to https://kubernetes.io/api/_definitions.json and tries to
download. This script copies each `vX.Y.0-local-strict` directory with the
$id removed and every such $ref rewritten to the sibling file
(`_definitions.json#/$defs/...`), so references resolve to local files and
nothing is ever fetched. Any other $ref that is not local (a URL, another
path) fails the conversion rather than leaving a reference to the network.

    scripts/kube-schemas.py [--cache DIR] [VERSION...]   (default 1.30 .. 1.37)

prints DIR, which holds vX.Y.0-local-strict/<kind>-<group>-<version>.json
(kubeconform's -schema-location template:
DIR/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json).
The result is cached: a directory is converted again only when the
package's version or this script changes. Run it with the Python that has
kubernetes-validate (.venv/bin/python). Exit 77 when the package is missing.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

DEFAULT_VERSIONS = [f"1.{m}" for m in range(30, 38)]
DEFS = "_definitions.json"
REMOTE_DEFS = "/api/" + DEFS + "#"


def rewrite(node, where):
    """Rewrites $refs in place; returns the number rewritten."""
    n = 0
    if isinstance(node, dict):
        node.pop("$id", None)
        for key, val in node.items():
            if key == "$ref" and isinstance(val, str):
                if val.startswith(REMOTE_DEFS):
                    node[key] = DEFS + "#" + val[len(REMOTE_DEFS):]
                    n += 1
                elif not val.startswith("#"):
                    sys.exit(f"kube-schemas: {where}: a $ref that is not local: {val}")
            else:
                n += rewrite(val, where)
    elif isinstance(node, list):
        for val in node:
            n += rewrite(val, where)
    return n


def convert(src, dst):
    """Converts the directory src into dst (written aside, then renamed)."""
    parent = os.path.dirname(dst)
    tmp = tempfile.mkdtemp(prefix=".convert-", dir=parent)
    try:
        for name in sorted(os.listdir(src)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(src, name), encoding="utf-8") as f:
                doc = json.load(f)
            rewrite(doc, f"{src}/{name}")
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                json.dump(doc, f, separators=(",", ":"))
        if not os.path.exists(os.path.join(tmp, DEFS)):
            sys.exit(f"kube-schemas: {src} has no {DEFS}")
        shutil.rmtree(dst, ignore_errors=True)
        os.rename(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cache_default = os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
        "osprey", "kube-schemas")
    ap.add_argument("--cache", default=os.environ.get("OSPREY_KUBE_SCHEMAS", cache_default))
    ap.add_argument("versions", nargs="*", default=DEFAULT_VERSIONS)
    args = ap.parse_args()
    try:
        import kubernetes_validate
        from importlib.metadata import version as pkg_version
    except ImportError:
        print("kube-schemas: the Python package kubernetes-validate is missing "
              "(scripts/setup-venv.sh) (skip)", file=sys.stderr)
        return 77
    root = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    with open(__file__, "rb") as f:
        stamp = pkg_version("kubernetes-validate") + " " + hashlib.sha256(f.read()).hexdigest()
    os.makedirs(args.cache, exist_ok=True)
    for ver in args.versions:
        name = f"v{ver.removeprefix('v')}"
        name = (name if name.count(".") == 2 else name + ".0") + "-local-strict"
        src, dst = os.path.join(root, name), os.path.join(args.cache, name)
        if not os.path.isdir(src):
            sys.exit(f"kube-schemas: kubernetes-validate {pkg_version('kubernetes-validate')} "
                     f"has no {name}")
        stamp_file = os.path.join(dst, ".stamp")
        if os.path.exists(stamp_file) and open(stamp_file, encoding="utf-8").read() == stamp:
            continue
        convert(src, dst)
        with open(stamp_file, "w", encoding="utf-8") as f:
            f.write(stamp)
    print(args.cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
