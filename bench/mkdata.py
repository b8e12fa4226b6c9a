#!/usr/bin/env python3
"""Generate the deterministic artifact tree used by bench/pull-push.sh.

Why this exists: the pull/push benchmark needs the same ~100 MB input on every
machine and every run, shaped like a real GitOps repository: many mid-sized
Kubernetes YAML files (compressible text, lots of small tar entries) plus some
incompressible payload (what makes gzip and the network do real work).

Design: everything is derived from one seed (random.Random for the YAML, SHAKE-256
for the binary files), so the same seed gives byte-identical files (tested with
Python 3.11). File modes are 0644/0755 and mtimes are fixed, so even a tar of the
tree is reproducible. Standard library only.

Usage: mkdata.py OUTDIR [--seed N] [--files 2000] [--file-kb 30] [--bin-files 4] [--bin-mb 10]
OUTDIR must not exist or must be empty.
"""

import argparse
import hashlib
import os
import random
import sys

FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z

GROUPS = {
    "apps": ["billing", "checkout", "catalog", "search", "payments", "orders", "users", "gateway"],
    "infrastructure": ["ingress-nginx", "cert-manager", "external-dns", "sealed-secrets",
                       "metrics-server", "kyverno", "velero", "cilium"],
    "clusters": ["prod-eu-west-1", "prod-us-east-1", "staging-eu", "staging-us",
                 "dev-a", "dev-b", "edge-1", "edge-2"],
    "tenants": ["team-alpha", "team-bravo", "team-charlie", "team-delta",
                "team-echo", "team-foxtrot", "team-golf", "team-hotel"],
    "monitoring": ["prometheus", "alertmanager", "grafana", "loki",
                   "tempo", "promtail", "kube-state-metrics", "node-exporter"],
}

WORDS = ("api worker web frontend backend cache queue scheduler sync ingest export report auth "
         "session cart price stock invoice ledger notify mailer search index feed media thumb "
         "render proxy edge audit policy config store archive stream event router batch cron").split()
ENV_KEYS = ("LOG_LEVEL LOG_FORMAT HTTP_PORT GRPC_PORT METRICS_PORT DB_HOST DB_PORT DB_NAME DB_POOL_SIZE "
            "REDIS_URL KAFKA_BROKERS KAFKA_TOPIC OTEL_EXPORTER_OTLP_ENDPOINT OTEL_SERVICE_NAME "
            "FEATURE_FLAGS CACHE_TTL_SECONDS REQUEST_TIMEOUT_MS MAX_CONNECTIONS REGION TZ "
            "GOMAXPROCS JAVA_OPTS SPRING_PROFILES_ACTIVE NODE_ENV S3_BUCKET S3_REGION").split()
REGISTRIES = ["ghcr.io/acme", "registry.example.com/platform", "docker.io/library",
              "quay.io/acme", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"]
LEVELS = ["debug", "info", "warn", "error"]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    def name(self, n=2):
        return "-".join(self.pick(WORDS) for _ in range(n))

    def hexs(self, n):
        return "%0*x" % (n, self.r.getrandbits(4 * n))

    def version(self):
        r = self.r
        return "%d.%d.%d" % (r.randrange(0, 4), r.randrange(0, 30), r.randrange(0, 50))

    def labels(self, app, team, ind):
        return (f"{ind}app.kubernetes.io/name: {app}\n"
                f"{ind}app.kubernetes.io/instance: {app}-{self.pick(['prod', 'staging', 'dev'])}\n"
                f"{ind}app.kubernetes.io/version: \"{self.version()}\"\n"
                f"{ind}app.kubernetes.io/part-of: {team}\n"
                f"{ind}app.kubernetes.io/managed-by: berth\n")

    def env(self, ind, n):
        out = []
        for _ in range(n):
            k = self.pick(ENV_KEYS)
            v = self.r.choice([
                lambda: self.pick(LEVELS),
                lambda: str(self.r.randrange(1, 65535)),
                lambda: f"{self.name()}.{self.pick(['svc', 'internal', 'example.com'])}",
                lambda: f"\"{self.r.randrange(1, 500)}\"",
                lambda: f"\"{self.name(3).replace('-', ',')}\"",
            ])()
            out.append(f"{ind}- name: {k}\n{ind}  value: {v}\n")
            if self.r.random() < 0.2:
                out.append(f"{ind}- name: {k}_SECRET\n{ind}  valueFrom:\n{ind}    secretKeyRef:\n"
                           f"{ind}      name: {self.name()}-secrets\n{ind}      key: {k.lower()}\n")
        return "".join(out)

    def container(self, app, ind):
        r = self.r
        reg = self.pick(REGISTRIES)
        port = r.randrange(1024, 10000)
        c = (f"{ind}- name: {app}\n"
             f"{ind}  image: {reg}/{app}:{self.version()}@sha256:{self.hexs(64)}\n"
             f"{ind}  imagePullPolicy: IfNotPresent\n"
             f"{ind}  args:\n"
             f"{ind}    - --port={port}\n"
             f"{ind}    - --log-level={self.pick(LEVELS)}\n"
             f"{ind}    - --config=/etc/{app}/config.yaml\n"
             f"{ind}  ports:\n"
             f"{ind}    - name: http\n{ind}      containerPort: {port}\n{ind}      protocol: TCP\n"
             f"{ind}    - name: metrics\n{ind}      containerPort: {port + 1}\n{ind}      protocol: TCP\n"
             f"{ind}  env:\n" + self.env(ind + "    ", r.randrange(4, 14)) +
             f"{ind}  resources:\n"
             f"{ind}    requests:\n{ind}      cpu: {r.randrange(10, 1000)}m\n{ind}      memory: {r.randrange(32, 2048)}Mi\n"
             f"{ind}    limits:\n{ind}      cpu: {r.randrange(1, 4)}\n{ind}      memory: {r.randrange(64, 4096)}Mi\n"
             f"{ind}  livenessProbe:\n{ind}    httpGet:\n{ind}      path: /healthz\n{ind}      port: http\n"
             f"{ind}    initialDelaySeconds: {r.randrange(0, 30)}\n{ind}    periodSeconds: {r.randrange(5, 30)}\n"
             f"{ind}  readinessProbe:\n{ind}    httpGet:\n{ind}      path: /readyz\n{ind}      port: http\n"
             f"{ind}    failureThreshold: {r.randrange(1, 6)}\n"
             f"{ind}  securityContext:\n{ind}    runAsNonRoot: true\n{ind}    runAsUser: {r.randrange(1000, 65000)}\n"
             f"{ind}    readOnlyRootFilesystem: true\n{ind}    allowPrivilegeEscalation: false\n"
             f"{ind}    capabilities:\n{ind}      drop: [\"ALL\"]\n"
             f"{ind}  volumeMounts:\n{ind}    - name: config\n{ind}      mountPath: /etc/{app}\n"
             f"{ind}    - name: tmp\n{ind}      mountPath: /tmp\n")
        return c

    def deployment(self, app, ns, team):
        r = self.r
        kind = self.pick(["Deployment", "Deployment", "StatefulSet"])
        containers = "".join(self.container(app if i == 0 else f"{app}-{self.pick(WORDS)}", "        ")
                             for i in range(r.randrange(1, 3)))
        return (f"apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {app}\n  namespace: {ns}\n"
                f"  labels:\n" + self.labels(app, team, "    ") +
                f"  annotations:\n    configmap.reloader/checksum: sha256:{self.hexs(64)}\n"
                f"spec:\n  replicas: {r.randrange(1, 12)}\n"
                + (f"  serviceName: {app}\n" if kind == "StatefulSet" else
                   "  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 25%\n      maxUnavailable: 0\n") +
                f"  selector:\n    matchLabels:\n      app.kubernetes.io/name: {app}\n"
                f"  template:\n    metadata:\n      labels:\n" + self.labels(app, team, "        ") +
                f"    spec:\n      serviceAccountName: {app}\n      terminationGracePeriodSeconds: {r.randrange(10, 120)}\n"
                f"      topologySpreadConstraints:\n        - maxSkew: 1\n          topologyKey: topology.kubernetes.io/zone\n"
                f"          whenUnsatisfiable: ScheduleAnyway\n          labelSelector:\n            matchLabels:\n"
                f"              app.kubernetes.io/name: {app}\n"
                f"      containers:\n" + containers +
                f"      volumes:\n        - name: config\n          configMap:\n            name: {app}-config\n"
                f"        - name: tmp\n          emptyDir: {{}}\n")

    def service(self, app, ns, team):
        r = self.r
        return (f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {app}\n  namespace: {ns}\n  labels:\n"
                + self.labels(app, team, "    ") +
                f"spec:\n  type: {self.pick(['ClusterIP', 'ClusterIP', 'NodePort'])}\n"
                f"  selector:\n    app.kubernetes.io/name: {app}\n  ports:\n"
                f"    - name: http\n      port: {r.choice([80, 443, 8080])}\n      targetPort: http\n"
                f"    - name: metrics\n      port: {r.randrange(9000, 9999)}\n      targetPort: metrics\n")

    def configmap(self, app, ns, team):
        r = self.r
        lines = []
        for _ in range(r.randrange(10, 40)):
            sect = self.pick(WORDS)
            lines.append(f"    {sect}:\n      enabled: {self.pick(['true', 'false'])}\n"
                         f"      endpoint: https://{self.name()}.{self.pick(['internal', 'example.com'])}:{r.randrange(1, 65535)}/{self.pick(WORDS)}\n"
                         f"      timeout: {r.randrange(1, 120)}s\n      retries: {r.randrange(0, 10)}\n"
                         f"      token_ref: {self.hexs(32)}\n")
        return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}-config\n  namespace: {ns}\n"
                f"  labels:\n" + self.labels(app, team, "    ") +
                f"data:\n  config.yaml: |\n    # generated for {app}\n" + "".join(lines))

    def hpa(self, app, ns, team):
        r = self.r
        return (f"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {app}\n"
                f"  namespace: {ns}\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n"
                f"    name: {app}\n  minReplicas: {r.randrange(1, 4)}\n  maxReplicas: {r.randrange(4, 40)}\n"
                f"  metrics:\n    - type: Resource\n      resource:\n        name: cpu\n        target:\n"
                f"          type: Utilization\n          averageUtilization: {r.randrange(40, 90)}\n")

    def file(self, ns, team, target):
        docs = []
        size = 0
        while size < target:
            app = self.name()
            for d in (self.deployment, self.service, self.configmap, self.hpa):
                doc = d(app, ns, team)
                # keep a document if at least half of it fits: sizes centre on target
                if docs and size + len(doc) // 2 > target:
                    size = target
                    break
                docs.append(doc)
                size += len(doc) + 4
        return ("---\n".join(docs)).encode()


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    os.utime(path, (FIXED_MTIME, FIXED_MTIME))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--file-kb", type=int, default=30)
    ap.add_argument("--bin-files", type=int, default=4)
    ap.add_argument("--bin-mb", type=int, default=10)
    a = ap.parse_args()

    if os.path.exists(a.outdir) and os.listdir(a.outdir):
        sys.exit(f"mkdata: output directory '{a.outdir}' is not empty")
    os.makedirs(a.outdir, exist_ok=True)

    g = Gen(a.seed)
    dirs = [(grp, sub) for grp, subs in GROUPS.items() for sub in subs]
    yaml_bytes = 0
    for i in range(a.files):
        grp, sub = dirs[i % len(dirs)]
        d = os.path.join(a.outdir, grp, sub)
        os.makedirs(d, exist_ok=True)
        # about file-kb KiB each: +-10% so sizes are not all identical
        target = int(a.file_kb * 1024 * (0.9 + 0.2 * g.r.random()))
        data = g.file(ns=sub, team=grp, target=target)
        write(os.path.join(d, f"{g.name()}-{i:04d}.yaml"), data)
        yaml_bytes += len(data)

    bdir = os.path.join(a.outdir, "assets", "blobs")
    os.makedirs(bdir, exist_ok=True)
    for i in range(a.bin_files):
        data = hashlib.shake_256(b"berth-bench-%d-%d" % (a.seed, i)).digest(a.bin_mb * 1024 * 1024)
        write(os.path.join(bdir, f"payload-{i}.bin"), data)

    for root, subdirs, _ in os.walk(a.outdir, topdown=False):
        for s in subdirs:
            p = os.path.join(root, s)
            os.chmod(p, 0o755)
            os.utime(p, (FIXED_MTIME, FIXED_MTIME))
    os.utime(a.outdir, (FIXED_MTIME, FIXED_MTIME))

    print(f"mkdata: {a.files} yaml files ({yaml_bytes / 1e6:.1f} MB), {a.bin_files} binary files "
          f"({a.bin_files * a.bin_mb} MiB), {len(dirs) + 1} directories, seed {a.seed}")


if __name__ == "__main__":
    main()
