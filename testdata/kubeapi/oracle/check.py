#!/usr/bin/env python3
"""Compare the test API server's apply model with structured-merge-diff (the SSA engine of
kube-apiserver), case by case.

Why: apply.py re-implements the ownership rules berth relies on; this checks a set of cases
against the real library so the model does not drift from it. Both sides use the deduced schema
(maps granular, lists atomic), as for a custom resource without a schema.
Usage: ssaoracle < cases.json > oracle.json; check.py cases.json oracle.json
Exit 0 when every step agrees (object, conflicts, each manager's field set); else 1 with a diff.
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # keep testdata/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apply as A  # noqa: E402
from apierrors import StatusError  # noqa: E402


# The typed schema of ssaoracle.go, as a CRD would declare it.
TYPED = {"type": "object", "properties": {
    "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
              "items": {"type": "object", "properties": {"name": {"type": "string"}, "value": {"type": "integer"},
                                                         "extra": {"type": "string"}}}},
    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
    "note": {"type": "string"}}}


def model(case):
    ctx = A.Ctx("Oracle", (), TYPED if case.get("schema") == "typed" else None, True)
    live, entries, out = {}, [], []
    for st in case["steps"]:
        conflicts = []
        try:
            if st["op"] == "apply":
                new, ents = A.server_side_apply(live, st["object"], st["manager"], st.get("force", False), ctx,
                                                entries, "v1", False, "", "t")
            else:
                new = st["object"]
                ents = A.update_managed(live, new, st["manager"], ctx, entries, "v1", False, "", "t")
            live, entries = new, ents
        except StatusError as e:
            conflicts = [[c["message"].split('"')[1], c["field"]] for c in e.details["causes"]]
        mgrs = {}
        for e in entries:
            mgrs[e.manager] = sorted(A.path_string(p) for p in e.set)
        out.append({"conflicts": sorted(conflicts), "object": live, "managers": mgrs})
    return out


def main():
    cases = json.load(open(sys.argv[1]))
    oracle = {c["name"]: c["steps"] for c in json.load(open(sys.argv[2]))}
    bad = 0
    for c in cases:
        for i, (mine, real) in enumerate(zip(model(c), oracle[c["name"]])):
            real["conflicts"] = sorted(real["conflicts"])
            for what in ("conflicts", "object", "managers"):
                if json.loads(json.dumps(mine[what])) != real[what]:
                    bad += 1
                    print("MISMATCH %s, step %d, %s:\n  model:  %s\n  oracle: %s" % (
                        c["name"], i + 1, what, json.dumps(mine[what], sort_keys=True),
                        json.dumps(real[what], sort_keys=True)))
    print("%d cases, %d mismatches" % (len(cases), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
