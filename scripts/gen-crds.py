#!/usr/bin/env python3
"""gen-crds.py: write deploy/crds/*.yaml, the CustomResourceDefinitions of the Flux kinds berth
implements, from the schemas below (one place for the shared pieces: conditions, references,
durations, printer columns). Usage: scripts/gen-crds.py [OUTDIR] (default deploy/crds).
tests/integration/test_deploy.sh checks that the committed files are what this script writes.
The field lists follow engine/config.c (docs/config.md) and Flux's API; needs PyYAML.
"""
import yaml, sys, os
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "crds")
DUR = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DUR_NOH = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"
def s(desc=None, **kw):
    d = {"type": "string"}
    if desc: d["description"] = desc
    d.update(kw); return d
def b(desc, **kw):
    d = {"type": "boolean", "description": desc}; d.update(kw); return d
def i(desc, **kw):
    d = {"type": "integer", "description": desc}; d.update(kw); return d
def obj(desc, props, required=None, **kw):
    d = {"type": "object", "description": desc, "properties": props}
    if required: d["required"] = required
    d.update(kw); return d
def arr(desc, items, **kw):
    d = {"type": "array", "description": desc, "items": items}; d.update(kw); return d
def strmap(desc): return {"type": "object", "description": desc, "additionalProperties": {"type": "string"}}
def local_ref(desc): return obj(desc, {"name": s("Name of the referent.")}, ["name"])
def dur(desc): return s(desc, pattern=DUR)
conditions = arr("Conditions holds the conditions of the object (Ready, Reconciling, Stalled, ...).", {
    "type": "object",
    "properties": {
        "lastTransitionTime": s("Last time the condition changed status, reason or message.", format="date-time"),
        "message": s("Human-readable details.", maxLength=32768),
        "observedGeneration": i("The metadata.generation the condition was set for.", format="int64", minimum=0),
        "reason": s("CamelCase reason of the last transition.", maxLength=1024, minLength=1, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"),
        "status": s("True, False or Unknown.", enum=["True", "False", "Unknown"]),
        "type": s("Condition type in CamelCase.", maxLength=316, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"),
    },
    "required": ["lastTransitionTime", "message", "reason", "status", "type"],
})
common_status = {
    "observedGeneration": i("The last generation the controller acted on.", format="int64"),
    "conditions": conditions,
    "lastHandledReconcileAt": s("Value of the reconcile.fluxcd.io/requestedAt annotation last handled."),
    "suspended": b("Reconciliation is suspended (a berth extension: berth suspend, or spec.suspend)."),
}
ready = [{"jsonPath": '.status.conditions[?(@.type=="Ready")].status', "name": "Ready", "type": "string"},
         {"jsonPath": '.status.conditions[?(@.type=="Ready")].message', "name": "Status", "type": "string"}]
age = [{"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"}]
def root(kind, spec, status):
    return {"type": "object", "description": kind + " (a Flux API kind, reconciled by berth).",
            "properties": {
                "apiVersion": s("APIVersion of this representation of the object."),
                "kind": s("Kind of the object, in CamelCase."),
                "metadata": {"type": "object"},
                "spec": spec,
                "status": dict(status, default={"observedGeneration": -1}),
            }}
def version(name, schema, columns, storage=True, deprecated=None):
    v = {"name": name, "served": True, "storage": storage}
    if deprecated:
        v["deprecated"] = True; v["deprecationWarning"] = deprecated
    v["schema"] = {"openAPIV3Schema": schema}
    v["subresources"] = {"status": {}}
    v["additionalPrinterColumns"] = columns
    return v
def crd(group, kind, plural, singular, short, versions):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": plural + "." + group,
                         "labels": {"app.kubernetes.io/part-of": "berth", "app.kubernetes.io/component": "crd"}},
            "spec": {"group": group,
                     "names": {"kind": kind, "listKind": kind + "List", "plural": plural, "singular": singular, "shortNames": short},
                     "scope": "Namespaced", "versions": versions}}

# ---- OCIRepository ----
oci_spec = obj("Where to find the artifact and how to verify it.", {
    "url": s("Repository of the artifact: oci://host[:port]/repo, without tag or digest.", pattern="^oci://.*$"),
    "ref": obj("Which artifact to pull; without it the tag latest.", {
        "digest": s("Digest (sha256:<hex>) to pull; wins over semver and tag."),
        "semver": s("Semantic version constraint; the highest matching tag wins over tag."),
        "semverFilter": s("Regular expression applied to the tags before semver."),
        "tag": s("Tag to pull, default latest."),
    }),
    "layerSelector": obj("Which layer of the artifact to use (default: the first).", {
        "mediaType": s("Media type of the layer to select."),
        "operation": s("extract (default) or copy; berth supports extract.", enum=["extract", "copy"]),
    }),
    "provider": s("Registry authentication provider; berth supports generic.", default="generic", enum=["generic", "aws", "azure", "gcp"]),
    "secretRef": local_ref("Secret of type kubernetes.io/dockerconfigjson with registry credentials."),
    "verify": obj("Signature verification before the artifact is fetched.", {
        "provider": s("Signature format; berth supports cosign (with keys).", default="cosign", enum=["cosign", "notation"]),
        "secretRef": local_ref("Secret whose *.pub entries are the trusted public keys."),
        "matchOIDCIdentity": arr("Keyless identities to accept (not supported by berth).", obj("An OIDC issuer and subject, as regular expressions.", {
            "issuer": s("Regular expression for the OIDC issuer."),
            "subject": s("Regular expression for the certificate subject."),
        }, ["issuer", "subject"])),
        "trustedRootSecretRef": local_ref("Secret holding a Sigstore trusted root."),
    }, ["provider"]),
    "serviceAccountName": s("ServiceAccount whose image pull secrets authenticate (not supported by berth)."),
    "certSecretRef": local_ref("Secret with ca.crt and/or tls.crt and tls.key for TLS to the registry."),
    "proxySecretRef": local_ref("Secret with the proxy configuration (not supported by berth)."),
    "interval": dur("How often the repository is checked for a new artifact."),
    "timeout": s("Timeout of registry operations.", default="60s", pattern=DUR_NOH),
    "ignore": s("Paths to exclude, in .sourceignore format."),
    "insecure": b("Allow plain HTTP to the registry."),
    "suspend": b("Stop reconciling this object."),
}, ["interval", "url"])
artifact = obj("The last artifact stored.", {
    "digest": s("Digest of the manifest (<algorithm>:<checksum>)."),
    "lastUpdateTime": s("When the artifact was stored.", format="date-time"),
    "metadata": strmap("Annotations of the artifact."),
    "path": s("Path of the artifact in the controller's storage."),
    "revision": s("Revision: <tag>@sha256:<hex> or sha256:<hex>."),
    "size": i("Size of the layer in bytes.", format="int64"),
    "url": s("Address of the artifact as served by the controller."),
}, ["revision"])
oci_status = obj("Observed state of the OCIRepository.", dict(common_status, **{
    "url": s("Download address of the last artifact."),
    "artifact": artifact,
    "contentConfigChecksum": s("Checksum of the content configuration (Flux; unused by berth)."),
    "observedIgnore": s("The ignore patterns of the stored artifact."),
    "observedLayerSelector": obj("The layer selector of the stored artifact.", {
        "mediaType": s("Media type of the layer."), "operation": s("extract or copy.", enum=["extract", "copy"])}),
}))
oci_cols = [{"jsonPath": ".spec.url", "name": "URL", "type": "string"}] + ready + age
ocirepo = crd("source.toolkit.fluxcd.io", "OCIRepository", "ocirepositories", "ocirepository", ["ocirepo"], [
    version("v1", root("OCIRepository", oci_spec, oci_status), oci_cols),
    version("v1beta2", root("OCIRepository", oci_spec, oci_status), oci_cols, storage=False,
            deprecated="v1beta2 OCIRepository is deprecated, upgrade to v1"),
])

# ---- Kustomization ----
selector = obj("Selects the objects a patch applies to.", {
    "group": s("API group."), "version": s("API version."), "kind": s("Kind."),
    "name": s("Name (a regular expression)."), "namespace": s("Namespace (a regular expression)."),
    "labelSelector": s("Label selector."), "annotationSelector": s("Annotation selector."),
})
ks_spec = obj("What to build from the source and how to apply it.", {
    "sourceRef": obj("The source whose artifact is built; berth supports OCIRepository.", {
        "apiVersion": s("API version of the source."),
        "kind": s("Kind of the source.", enum=["OCIRepository", "GitRepository", "Bucket", "ExternalArtifact"]),
        "name": s("Name of the source."),
        "namespace": s("Namespace of the source, default the Kustomization's."),
    }, ["kind", "name"]),
    "path": s("Directory in the artifact holding the manifests or kustomization.yaml, default the root."),
    "interval": dur("How often the Kustomization is reconciled."),
    "retryInterval": dur("How soon a failed reconcile is retried, default interval."),
    "timeout": dur("Timeout of build, apply and health checks, default interval."),
    "prune": b("Delete the objects that left the inventory."),
    "deletionPolicy": s("What happens to applied objects when the Kustomization is deleted.", enum=["MirrorPrune", "Delete", "WaitForTermination", "Orphan"]),
    "wait": b("Wait for every applied object to become Ready."),
    "force": b("Recreate objects whose immutable fields changed.", default=False),
    "suspend": b("Stop reconciling this object."),
    "dependsOn": arr("Kustomizations that must be Ready first.", obj("A Kustomization reference.", {
        "name": s("Name of the Kustomization."), "namespace": s("Namespace, default the dependent's."),
        "readyExpr": s("CEL expression for readiness (not supported by berth)."),
    }, ["name"])),
    "targetNamespace": s("Namespace set on every namespaced object.", minLength=1, maxLength=63),
    "namePrefix": s("Prefix added to every object name.", minLength=1, maxLength=200),
    "nameSuffix": s("Suffix added to every object name.", minLength=1, maxLength=200),
    "commonMetadata": obj("Labels and annotations added to every object.", {
        "labels": strmap("Labels to add."), "annotations": strmap("Annotations to add."),
    }),
    "patches": arr("Strategic merge or JSON 6902 patches.", obj("A patch and its target.", {
        "patch": s("The patch, inline YAML or JSON."), "target": selector,
    }, ["patch"])),
    "images": arr("Image name, tag and digest overrides.", obj("An image override.", {
        "name": s("Image name to match."), "newName": s("Replacement name."),
        "newTag": s("Replacement tag."), "digest": s("Replacement digest (wins over newTag)."),
    }, ["name"])),
    "components": arr("Kustomize components to include, relative to path.", {"type": "string"}),
    "ignoreMissingComponents": b("Skip components that do not exist."),
    "postBuild": obj("Variable substitution after the build.", {
        "substitute": strmap("Variables and their values; win over substituteFrom."),
        "substituteFrom": arr("ConfigMaps and Secrets holding variables.", obj("A ConfigMap or Secret reference.", {
            "kind": s("ConfigMap or Secret.", enum=["ConfigMap", "Secret"]),
            "name": s("Name, in the Kustomization's namespace."),
            "optional": b("Skip the reference when the object does not exist."),
        }, ["kind", "name"])),
        "substituteStrategy": s("WithVariables (default) or Always.", enum=["WithVariables", "Always"]),
    }),
    "healthChecks": arr("Objects to wait for besides the applied ones.", obj("An object reference.", {
        "apiVersion": s("API version."), "kind": s("Kind."), "name": s("Name."), "namespace": s("Namespace."),
    }, ["kind", "name"])),
    "serviceAccountName": s("ServiceAccount to impersonate when applying (not supported by berth yet)."),
    "decryption": obj("SOPS decryption (not supported by berth).", {
        "provider": s("Decryption provider.", enum=["sops"]), "secretRef": local_ref("Secret with the keys."),
    }, ["provider"]),
    "kubeConfig": obj("Apply to a remote cluster (not supported by berth).", {
        "secretRef": obj("Secret holding the kubeconfig.", {"name": s("Name."), "key": s("Key.")}, ["name"]),
        "configMapRef": local_ref("ConfigMap with the cluster's address."),
    }),
    "healthCheckExprs": arr("CEL health rules per kind (not supported by berth).", obj("CEL rules.", {
        "apiVersion": s("API version."), "kind": s("Kind."),
        "current": s("CEL for Current."), "inProgress": s("CEL for InProgress."), "failed": s("CEL for Failed."),
    }, ["apiVersion", "kind", "current"])),
}, ["interval", "prune", "sourceRef"])
ks_status = obj("Observed state of the Kustomization.", dict(common_status, **{
    "lastAppliedRevision": s("Revision of the last successful apply."),
    "lastAppliedOriginRevision": s("Origin revision of the last successful apply."),
    "lastAttemptedRevision": s("Revision of the last attempt."),
    "lastDriftCorrection": obj("The last correction of objects changed out of band (a berth extension).", {
        "time": s("When the objects were restored.", format="date-time"),
        "revision": s("The applied revision the objects were restored to."),
        "count": i("Number of objects restored."),
        "objects": arr("The first 100 objects restored.", obj("A restored object.", {
            "id": s("Inventory id."), "subject": s("Kind/namespace/name."),
            "drift": s("How it had drifted.", enum=["modified", "missing"]),
        }, ["id", "drift"])),
    }),
    "inventory": obj("The objects applied, for pruning.", {
        "entries": arr("One entry per object.", obj("An applied object.", {
            "id": s("<namespace>_<name>_<group>_<kind>."), "v": s("Version of the object."),
        }, ["id", "v"])),
    }, ["entries"]),
}))
ks = crd("kustomize.toolkit.fluxcd.io", "Kustomization", "kustomizations", "kustomization", ["ks"], [
    version("v1", root("Kustomization", ks_spec, ks_status), age + ready),
])
ks["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}

# ---- ImageRepository ----
ir_spec = obj("The image repository to scan.", {
    "image": s("Image repository, e.g. ghcr.io/org/app."),
    "interval": dur("How often the tags are listed."),
    "timeout": s("Timeout of one scan, default interval.", pattern=DUR_NOH),
    "secretRef": local_ref("Secret of type kubernetes.io/dockerconfigjson with registry credentials."),
    "serviceAccountName": s("ServiceAccount whose image pull secrets authenticate.", maxLength=253),
    "certSecretRef": local_ref("Secret with ca.crt and/or tls.crt and tls.key."),
    "proxySecretRef": local_ref("Secret with the proxy configuration."),
    "accessFrom": obj("Namespaces allowed to reference this object.", {
        "namespaceSelectors": arr("Selectors, ORed.", obj("A namespace selector.", {"matchLabels": strmap("Labels to match.")})),
    }, ["namespaceSelectors"]),
    "exclusionList": arr("Regular expressions of tags to ignore.", {"type": "string"}, default=[r"^.*\.sig$"], maxItems=25),
    "provider": s("Registry authentication provider.", default="generic", enum=["generic", "aws", "azure", "gcp"]),
    "insecure": b("Allow plain HTTP to the registry."),
    "suspend": b("Stop scanning."),
}, ["image", "interval"])
ir_status = obj("Observed state of the ImageRepository.", dict(common_status, **{
    "canonicalImageName": s("Image name with the implied parts made explicit."),
    "lastScanResult": obj("The result of the last scan.", {
        "revision": s("Stable hash of the scanned tags."),
        "scanTime": s("When the scan ran.", format="date-time"),
        "tagCount": i("Number of tags found."),
        "latestTags": arr("A sample of the tags found.", {"type": "string"}),
    }, ["tagCount"]),
    "observedExclusionList": arr("The exclusion list of the last scan.", {"type": "string"}),
}))
ir_cols = [{"jsonPath": ".spec.image", "name": "Image", "type": "string"},
           {"jsonPath": ".status.lastScanResult.tagCount", "name": "Tags", "type": "string"}] + ready + [
           {"jsonPath": ".status.lastScanResult.scanTime", "name": "Last scan", "priority": 1, "type": "string"}] + age
irepo = crd("image.toolkit.fluxcd.io", "ImageRepository", "imagerepositories", "imagerepository", ["imgrepo", "imagerepo"], [
    version("v1", root("ImageRepository", ir_spec, ir_status), ir_cols)])

# ---- ImagePolicy ----
order = s("asc or desc.", default="asc", enum=["asc", "desc"])
ref3 = obj("An image reference.", {"name": s("Image name."), "tag": s("Tag."), "digest": s("Digest.")}, ["name", "tag"])
ip_spec = obj("How to select the latest image of an ImageRepository.", {
    "imageRepositoryRef": obj("The ImageRepository whose tags are ordered.", {
        "name": s("Name of the ImageRepository."), "namespace": s("Namespace, default the policy's."),
    }, ["name"]),
    "policy": obj("Ordering rule: exactly one of semver, alphabetical, numerical.", {
        "semver": obj("Highest tag within a semver range.", {"range": s("Semver range.")}, ["range"]),
        "alphabetical": obj("Alphabetical order.", {"order": order}),
        "numerical": obj("Numerical order.", {"order": order}),
    }),
    "filterTags": obj("Tags to consider before ordering.", {
        "pattern": s("Regular expression the tag must match."),
        "extract": s("Replacement ($1, $name) giving the value to order."),
    }),
    "digestReflectionPolicy": s("When status.latestRef.digest is set.", default="Never", enum=["Always", "IfNotPresent", "Never"]),
    "interval": dur("How often the digest is refreshed (with digestReflectionPolicy Always)."),
    "suspend": b("Stop evaluating the policy."),
}, ["imageRepositoryRef", "policy"])
ip_status = obj("Observed state of the ImagePolicy.", dict(common_status, **{
    "latestRef": ref3, "observedPreviousRef": ref3,
}))
ip_cols = [{"jsonPath": ".status.latestRef.name", "name": "Image", "type": "string"},
           {"jsonPath": ".status.latestRef.tag", "name": "Tag", "type": "string"}] + ready + age
ipol = crd("image.toolkit.fluxcd.io", "ImagePolicy", "imagepolicies", "imagepolicy", ["imgpol", "imagepol"], [
    version("v1", root("ImagePolicy", ip_spec, ip_status), ip_cols)])

# ---- ImageUpdateAutomation ----
iua_spec = obj("Which policies update which files in which repository.", {
    "sourceRef": obj("The source to update: a GitRepository (Flux), or an OCIRepository with spec.publish (berth).", {
        "apiVersion": s("API version of the source."),
        "kind": s("Kind of the source.", default="GitRepository", enum=["GitRepository", "OCIRepository"]),
        "name": s("Name of the source."), "namespace": s("Namespace, default the automation's."),
    }, ["kind", "name"]),
    "git": obj("Checkout, commit and push settings.", {
        "checkout": obj("What to clone.", {"ref": obj("A Git reference.", {
            "branch": s("Branch."), "tag": s("Tag."), "semver": s("Semver tag expression."),
            "name": s("Full reference name."), "commit": s("Commit SHA."),
        })}, ["ref"]),
        "commit": obj("How to commit.", {
            "author": obj("Commit author.", {"name": s("Name."), "email": s("Email.")}, ["email"]),
            "signingKey": obj("OpenPGP key to sign commits.", {"secretRef": local_ref("Secret with git.asc.")}, ["secretRef"]),
            "messageTemplate": s("Go template of the commit message."),
            "messageTemplateValues": strmap("Extra values for the template."),
        }, ["author"]),
        "push": obj("Where to push.", {
            "branch": s("Branch to push to."), "refspec": s("Refspec to push."),
            "options": strmap("Push options."),
        }),
    }, ["commit"]),
    "interval": dur("How often the automation runs."),
    "policySelector": obj("Label selector of the ImagePolicies to use (default all in the namespace).", {
        "matchLabels": strmap("Labels to match."),
        "matchExpressions": arr("Label requirements.", obj("A label requirement.", {
            "key": s("Label key."), "operator": s("In, NotIn, Exists or DoesNotExist."),
            "values": arr("Values.", {"type": "string"}),
        }, ["key", "operator"])),
    }, **{"x-kubernetes-map-type": "atomic"}),
    "update": obj("How files are updated.", {
        "path": s("Directory to update, default the repository root."),
        "strategy": s("Update strategy.", default="Setters", enum=["Setters"]),
    }, ["strategy"], default={"strategy": "Setters"}),
    "suspend": b("Stop running the automation."),
    "publish": obj("berth's gitless output: push the updated tree as a signed OCI artifact instead of a Git commit.", {
        "url": s("Where to push: oci://HOST/REPO:TAG."),
        "signingKey": obj("The cosign key to sign the artifact with.", {"secretRef": local_ref("Secret with cosign.key (and cosign.password).")}, ["secretRef"]),
        "source": s("The artifact's source annotation."),
        "secretRef": local_ref("Registry credentials (a docker config Secret)."),
        "insecure": b("Allow plain HTTP to the registry."),
    }, ["url", "signingKey"]),
}, ["interval", "sourceRef"])
iua_status = obj("Observed state of the ImageUpdateAutomation.", dict(common_status, **{
    "lastAutomationRunTime": s("When the automation last ran to completion.", format="date-time"),
    "lastPushCommit": s("SHA of the last commit pushed."),
    "lastPushTime": s("When the last commit was pushed.", format="date-time"),
    "observedPolicies": {"type": "object", "description": "The policies and images of the last run.", "additionalProperties": ref3},
    "observedSourceRevision": s("Source revision of the last run."),
    "lastPublishedRevision": s("berth's spec.publish: the tag@digest of the last artifact pushed."),
    "lastPublishedPolicies": s("berth's spec.publish: the policies (ns/name=tag) of the last artifact pushed."),
    "lastPublishedUpdateDigest": s("berth's spec.publish: digest of the updated tree last pushed."),
}))
iua_cols = ready + [{"jsonPath": ".status.lastAutomationRunTime", "name": "Last run", "priority": 1, "type": "string"}] + age
iua = crd("image.toolkit.fluxcd.io", "ImageUpdateAutomation", "imageupdateautomations", "imageupdateautomation", ["iua", "imgupd", "imgauto"], [
    version("v1", root("ImageUpdateAutomation", iua_spec, iua_status), iua_cols)])

class D(yaml.SafeDumper):
    pass
def str_rep(d, v):
    return d.represent_scalar("tag:yaml.org,2002:str", v)
D.add_representer(str, str_rep)
files = {"source.toolkit.fluxcd.io_ocirepositories.yaml": ocirepo,
         "kustomize.toolkit.fluxcd.io_kustomizations.yaml": ks,
         "image.toolkit.fluxcd.io_imagerepositories.yaml": irepo,
         "image.toolkit.fluxcd.io_imagepolicies.yaml": ipol,
         "image.toolkit.fluxcd.io_imageupdateautomations.yaml": iua}
os.makedirs(OUT, exist_ok=True)
for n, d in files.items():
    with open(os.path.join(OUT, n), "w") as f:
        f.write("# CustomResourceDefinition for berth (Flux API kind and fields; see deploy/README.md).\n---\n")
        yaml.dump(d, f, Dumper=D, sort_keys=False, default_flow_style=False, width=100)
print("ok")
