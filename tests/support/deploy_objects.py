#!/usr/bin/env python3
"""deploy_objects.py: object-set helpers for tests/integration/test_deploy.sh.

  files PATH...                    the YAML files of PATH (names starting with "." skipped, as
                                   berth run --config skips them), one per line
  ids PATH...                      one "Kind namespace name" line per YAML document, sorted
  canon PATH...                    every document as one canonical JSON line, sorted by id;
                                   labels berth adds to what it applies are dropped
  subset STORED.json PATH...       every Flux object of PATH (YAML) must be stored (STORED.json:
                                   the test server's /_kubeapi/objects list) with its spec,
                                   labels and annotations kept field for field; prints one
                                   line per object checked, exits 1 on the first difference
  runtime-packages CONTAINERFILE   the packages `apt-get install`ed in the last stage, sorted
  yaml-blocks OUTDIR FILE.md...    write each ```yaml block of the Markdown files that holds a
                                   *.toolkit.fluxcd.io kind to OUTDIR/<file>-<n>.yaml

PATH is a YAML file or a directory searched recursively for *.yaml/*.yml. Needs PyYAML
(Debian python3-yaml).
"""
import json
import os
import re
import sys

import yaml

# Labels berth (like kustomize-controller) sets on every object it applies.
APPLIED_LABEL_PREFIXES = ("kustomize.toolkit.fluxcd.io/",)
FLUX_GROUP = re.compile(r"^[a-z]+\.toolkit\.fluxcd\.io/")


def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for n in sorted(names):
                    if n.endswith((".yaml", ".yml")) and not n.startswith("."):
                        yield os.path.join(root, n)
        else:
            yield p


def docs(paths):
    for f in files(paths):
        with open(f) as fh:
            for d in yaml.safe_load_all(fh):
                if isinstance(d, dict) and d.get("kind"):
                    yield f, d


def ident(d):
    md = d.get("metadata") or {}
    return "%s %s %s" % (d["kind"], md.get("namespace", "-"), md.get("name", "-"))


def canon(d):
    d = json.loads(json.dumps(d))
    labels = (d.get("metadata") or {}).get("labels")
    if labels:
        for k in list(labels):
            if k.startswith(APPLIED_LABEL_PREFIXES):
                del labels[k]
        if not labels:
            del d["metadata"]["labels"]
    return json.dumps(d, sort_keys=True)


def missing(want, got, path):
    """The first path where want is not contained in got (dicts: key subset; others: equal)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return path
        for k, v in want.items():
            if k not in got:
                return "%s.%s" % (path, k)
            m = missing(v, got[k], "%s.%s" % (path, k))
            if m:
                return m
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return path
        for i, (a, b) in enumerate(zip(want, got)):
            m = missing(a, b, "%s[%d]" % (path, i))
            if m:
                return m
        return None
    # YAML reads "2" as a string and 2 as an int; the API server keeps the JSON type.
    return None if want == got else path


def cmd_subset(stored_path, paths):
    with open(stored_path) as fh:
        stored = json.load(fh)
    items = stored.get("items", stored) if isinstance(stored, dict) else stored
    by_id = {}
    for o in items:
        md = o.get("metadata", {})
        by_id[(o.get("kind"), md.get("namespace", "default"), md.get("name"))] = o
    checked = 0
    for f, d in docs(paths):
        if not FLUX_GROUP.match(d.get("apiVersion", "")):
            continue
        md = d.get("metadata") or {}
        key = (d["kind"], md.get("namespace", "default"), md.get("name"))
        got = by_id.get(key)
        if got is None:
            print("%s: %s %s/%s is not stored" % (f, key[0], key[1], key[2]))
            return 1
        for part, want, have in (("spec", d.get("spec"), got.get("spec")),
                                 ("metadata.labels", md.get("labels"), got["metadata"].get("labels")),
                                 ("metadata.annotations", md.get("annotations"),
                                  got["metadata"].get("annotations"))):
            if want is None:
                continue
            m = missing(want, have, part)
            if m:
                print("%s: %s %s/%s: %s was not kept as written (stored: %s)"
                      % (f, key[0], key[1], key[2], m, json.dumps(have, sort_keys=True)))
                return 1
        print("kept %s %s/%s (%s)" % (key[0], key[1], key[2], os.path.basename(f)))
        checked += 1
    if checked == 0:
        print("no Flux objects in %s" % " ".join(paths))
        return 1
    return 0


def cmd_yaml_blocks(outdir, mds):
    os.makedirs(outdir, exist_ok=True)
    n = 0
    for md in mds:
        with open(md) as fh:
            text = fh.read()
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.S)):
            if not re.search(r"apiVersion:\s*[a-z]+\.toolkit\.fluxcd\.io/", block):
                continue
            name = "%s-%d.yaml" % (os.path.basename(md).rsplit(".", 1)[0], i)
            with open(os.path.join(outdir, name), "w") as fh:
                fh.write(block)
            n += 1
    print(n)
    return 0


def cmd_runtime_packages(path):
    with open(path) as fh:
        text = fh.read().replace("\\\n", " ")
    stages = re.split(r"(?m)^FROM\s", text)
    pkgs = set()
    for cmd in re.split(r"&&|;|\n", stages[-1]):
        words = cmd.split()
        if "apt-get" in words and "install" in words:
            pkgs.update(w for w in words[words.index("install") + 1:] if not w.startswith("-"))
    for p in sorted(pkgs):
        print(p)
    return 0 if pkgs else 1


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "files":
        for f in files(args):
            print(f)
        return 0
    if cmd == "ids":
        for line in sorted(ident(d) for _, d in docs(args)):
            print(line)
        return 0
    if cmd == "canon":
        for _, line in sorted((ident(d), canon(d)) for _, d in docs(args)):
            print(line)
        return 0
    if cmd == "subset" and len(args) >= 2:
        return cmd_subset(args[0], args[1:])
    if cmd == "runtime-packages" and len(args) == 1:
        return cmd_runtime_packages(args[0])
    if cmd == "yaml-blocks" and len(args) >= 1:
        return cmd_yaml_blocks(args[0], args[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
