#!/usr/bin/env python3
"""Run a CI example from docs/ci.md the way its CI system would, for tests/integration/test_ci_flow.sh.

Why: the GitHub Actions and GitLab CI examples in docs/ci.md are what users copy; running the
blocks themselves (not a paraphrase) keeps them from rotting.

Design: the YAML block after the marker line "<!-- ci-example: KIND -->" is parsed with PyYAML.
  github  jobs.JOB.steps run in order; `uses:` steps (checkout) are skipped (the test prepares
          the checkout in WORKDIR), and so is the "Install berth" step unless --install is
          given (the test puts the berth under test on PATH); lines a step appends to
          $GITHUB_PATH go in front of PATH for the later steps, as on GitHub. `${{ expr }}` in env values and run scripts is replaced from --set
          EXPR=VALUE; an expression that has no value is an error, so the docs can only use
          what the test provides. steps.ID.outputs.NAME come from $GITHUB_OUTPUT. Each run
          script runs as GitHub runs it: bash --noprofile --norc -eo pipefail FILE.
  gitlab  JOB.script runs as one bash script (set -eo pipefail, like GitLab's per-line checks),
          with the top-level and job `variables` (expanded against the environment) and
          --set NAME=VALUE as CI/CD variables; before_script (it installs berth) is skipped.
Prints each step as it starts; exits with the first failing step's status.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import yaml

EXPR = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


def block(doc, kind):
    text = open(doc, encoding="utf-8").read()
    m = re.search(r"<!-- ci-example: %s -->\s*```yaml\n(.*?)```" % re.escape(kind), text, re.S)
    if not m:
        sys.exit("run_ci_example: no '%s' example block in %s" % (kind, doc))
    return yaml.safe_load(m.group(1))


def run_script(script, cwd, env, what):
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        print("run_ci_example: === %s" % what, flush=True)
        return subprocess.call(["bash", "--noprofile", "--norc", "-eo", "pipefail", path],
                               cwd=cwd, env=env)
    finally:
        os.unlink(path)


def github(wf, job_name, workdir, sets, install):
    job = wf["jobs"][job_name]
    tmp = tempfile.mkdtemp(prefix="runner-temp-")
    outputs = {}

    def expr(m):
        key = m.group(1)
        sm = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", key)
        if sm:
            return outputs.get(sm.group(1), {}).get(sm.group(2), "")
        if key not in sets:
            sys.exit("run_ci_example: the example uses ${{ %s }}, which the test did not set" % key)
        return sets[key]

    def sub(v):
        return EXPR.sub(expr, str(v))

    base = dict(os.environ)
    base.update({
        "CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_TEMP": tmp,
        "GITHUB_SHA": sets.get("github.sha", ""), "GITHUB_REF_NAME": sets.get("github.ref_name", ""),
        "GITHUB_SERVER_URL": sets.get("github.server_url", ""),
        "GITHUB_REPOSITORY": sets.get("github.repository", ""),
        "GITHUB_STEP_SUMMARY": os.path.join(tmp, "summary.md"),
        "GITHUB_PATH": os.path.join(tmp, "path"),
    })
    for k, v in (wf.get("env") or {}).items():
        base[k] = sub(v)
    for k, v in (job.get("env") or {}).items():
        base[k] = sub(v)
    for i, step in enumerate(job["steps"]):
        name = step.get("name") or step.get("uses") or "step %d" % i
        if "uses" in step or (name.startswith("Install berth") and not install):
            print("run_ci_example: --- skip %s (the test provides it)" % name, flush=True)
            continue
        env = dict(base)
        for k, v in (step.get("env") or {}).items():
            env[k] = sub(v)
        out_file = os.path.join(tmp, "output-%d" % i)
        open(out_file, "w").close()
        env["GITHUB_OUTPUT"] = out_file
        rc = run_script(sub(step["run"]), workdir, env, name)
        if rc != 0:
            print("run_ci_example: step '%s' failed with exit %d" % (name, rc), flush=True)
            return rc
        if os.path.exists(base["GITHUB_PATH"]):
            for line in open(base["GITHUB_PATH"], encoding="utf-8").read().split():
                if line and line not in base["PATH"].split(":"):
                    print("run_ci_example: PATH += %s" % line, flush=True)
                    base["PATH"] = line + ":" + base["PATH"]
        if "id" in step:
            outs = {}
            for line in open(out_file, encoding="utf-8"):
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    outs[k] = v
            outputs[step["id"]] = outs
    # files the job left in RUNNER_TEMP, for the test to check (the key must be gone)
    print("run_ci_example: runner temp left: %s" % sorted(os.listdir(tmp)), flush=True)
    return 0


def gitlab(cfg, job_name, workdir, sets):
    job = cfg[job_name]
    env = dict(os.environ)
    env.update({"CI": "true", "GITLAB_CI": "true"})
    env.update(sets)
    var = re.compile(r"\$(\w+)|\$\{(\w+)\}")
    for scope in (cfg.get("variables") or {}, job.get("variables") or {}):
        for k, v in scope.items():  # GitLab expands $VAR in variables; unknown ones stay
            env[k] = var.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), str(v))
    if "before_script" in (cfg.get("default") or {}) or "before_script" in job:
        print("run_ci_example: --- skip before_script (installs berth; the test provides it)",
              flush=True)
    script = "\n".join(str(line) for line in job["script"]) + "\n"
    rc = run_script(script, workdir, env, job_name)
    if rc != 0:
        print("run_ci_example: job '%s' failed with exit %d" % (job_name, rc), flush=True)
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("doc")
    ap.add_argument("kind", choices=["github", "gitlab"])
    ap.add_argument("job")
    ap.add_argument("workdir")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--install", action="store_true", help="github: run the Install berth step")
    a = ap.parse_args()
    sets = dict(s.split("=", 1) for s in a.set)
    data = block(a.doc, a.kind)
    rc = github(data, a.job, a.workdir, sets, a.install) if a.kind == "github" else \
        gitlab(data, a.job, a.workdir, sets)
    sys.exit(rc)


if __name__ == "__main__":
    main()
