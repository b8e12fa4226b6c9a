/*
 * engine/config.h: the file store's reader (internal, prefix eng_). It loads the Flux kinds
 * berth reconciles from YAML files into typed structs:
 *
 *   OCIRepository   source.toolkit.fluxcd.io/v1 (and v1beta2)   spec/oci-artifacts.md §2.1
 *   Kustomization   kustomize.toolkit.fluxcd.io/v1              spec/engine.md §1.1
 *   Secret          v1   (data base64-decoded, stringData merged over it)
 *   ConfigMap       v1
 *   ImageRepository, ImagePolicy, ImageUpdateAutomation   image.toolkit.fluxcd.io/v1 (and
 *                   v1beta2); ImageUpdateAutomation's gitless output is berth's spec.publish
 *
 * A problem in one object never hides the others: the loader returns every valid object plus a
 * list of errors, each with the file and line (libyaml marks) and, when known, the object's
 * kind/namespace/name, so the engine can mark exactly that object Stalled. Unknown kinds,
 * unknown fields, missing required fields, bad durations, invalid base64 and duplicate
 * kind/namespace/name are all errors; nothing is silently ignored. Null values count as absent,
 * as in Kubernetes.
 *
 * Defaults follow the CRDs: metadata.namespace "default"; OCIRepository timeout 60s, provider
 * "generic", layer operation extract, verify.provider "cosign"; Kustomization retryInterval =
 * interval, timeout = spec.timeout or interval - 30s, floored at 30s (engine.md §1.1, the code's
 * behaviour), sourceRef.namespace and dependsOn[].namespace = the Kustomization's namespace.
 * Fields berth does not implement (decryption, kubeConfig.configMapRef, healthCheckExprs, ignore,
 * buildMetadata, dependsOn[].readyExpr) are errors that say so, not unknown fields.
 */
#ifndef BERTH_ENGINE_CONFIG_H
#define BERTH_ENGINE_CONFIG_H

#include <jansson.h>

#include <berth/error.h>

#define ENG_CONFIG_MAX_FILE_BYTES (1024u * 1024u) /* one YAML file (style.md 2.5) */
#define ENG_CONFIG_MAX_DEPTH 64                   /* nesting inside one document */
#define ENG_CONFIG_MAX_NODES 100000u              /* node visits per document (aliases count) */
#define ENG_DEFAULT_NAMESPACE "default"

/** Source and identity of a loaded object. */
typedef struct eng_meta {
    char *api_version;
    char *name;
    char *ns;            /* metadata.namespace, "default" when absent */
    json_t *labels;      /* object of strings, or NULL when there are none */
    json_t *annotations; /* object of strings, or NULL when there are none */
    char *file;          /* the file it came from */
    int line;            /* 1-based line of the document's top mapping */
    /* "sha256:<hex>" of the document without metadata as canonical JSON (scalars as their
     * text): changes whenever the spec (or data) does, like a generation. Never log it for a
     * Secret. */
    char content_digest[72];
    size_t seq; /* load order, for stable sorting */
} eng_meta;

/* ---- OCIRepository ---- */

typedef enum { ENG_LAYER_EXTRACT = 0, ENG_LAYER_COPY } eng_layer_op;

typedef struct eng_oidc_identity {
    char *issuer;  /* RE2 regular expression */
    char *subject; /* RE2 regular expression */
} eng_oidc_identity;

typedef struct eng_ocirepo_verify {
    char *provider;   /* "cosign" (default) or "notation" */
    char *secret_ref; /* Secret name with public keys; NULL for cosign keyless */
    eng_oidc_identity *match_oidc;
    size_t match_oidc_len;
    char *trusted_root_secret_ref;
} eng_ocirepo_verify;

typedef struct eng_ocirepo {
    eng_meta meta;
    char *url;     /* "oci://host[:port]/path" (checked prefix only: tags are the reconciler's) */
    char *ref_tag; /* all four NULL: tag "latest" */
    char *ref_semver;        /* wins over ref_tag */
    char *ref_semver_filter; /* only with ref_semver */
    char *ref_digest;        /* wins over everything */
    char *layer_media_type;  /* NULL: the first layer */
    eng_layer_op layer_operation;
    bool has_layer_selector; /* spec.layerSelector present (for status.observedLayerSelector) */
    char *ignore;            /* gitignore lines, or NULL */
    int64_t interval_ms;     /* required, > 0 */
    int64_t timeout_ms;      /* default 60000 */
    bool suspend;
    bool insecure;
    char *provider; /* "generic" (default), "aws", "azure", "gcp" */
    char *secret_ref;
    char *cert_secret_ref;
    char *proxy_secret_ref;
    char *service_account_name;
    eng_ocirepo_verify *verify; /* NULL: no verification */
} eng_ocirepo;

/* ---- Kustomization ---- */

/** A reference to another object; namespace already defaulted where Flux defaults it. */
typedef struct eng_objref {
    char *api_version; /* may be NULL */
    char *kind;        /* may be NULL (dependsOn) */
    char *name;
    char *ns; /* may be NULL (healthChecks: cluster-scoped) */
} eng_objref;

/** A postBuild.substituteFrom entry. */
typedef struct eng_subst_ref {
    char *kind; /* "ConfigMap" or "Secret" */
    char *name;
    bool optional;
} eng_subst_ref;

typedef enum {
    ENG_DELETION_MIRROR_PRUNE = 0,
    ENG_DELETION_DELETE,
    ENG_DELETION_WAIT_FOR_TERMINATION,
    ENG_DELETION_ORPHAN
} eng_deletion_policy;

typedef struct eng_kustomization {
    eng_meta meta;
    eng_objref source_ref; /* kind OCIRepository|GitRepository|Bucket|ExternalArtifact */
    char *path;            /* NULL: artifact root */
    int64_t interval_ms;   /* required, > 0 */
    int64_t retry_interval_ms;
    int64_t timeout_ms; /* effective: spec.timeout or interval - 30s, at least 30s */
    bool prune;         /* required */
    bool wait;
    bool force;
    bool suspend;
    eng_deletion_policy deletion_policy;
    eng_objref *depends_on; /* name, ns */
    size_t depends_on_len;
    char *target_namespace;
    char *name_prefix;
    char *name_suffix;
    json_t *common_metadata; /* {labels?, annotations?} or NULL (shape of eng_build_opts) */
    json_t *patches;         /* [{patch, target?}] or NULL */
    json_t *images;          /* [{name, newName?, newTag?, digest?}] or NULL */
    json_t *components;      /* [string] or NULL */
    bool ignore_missing_components;
    bool has_post_build;
    json_t *substitute; /* object of strings, or NULL */
    eng_subst_ref *substitute_from;
    size_t substitute_from_len;
    bool substitute_always;    /* substituteStrategy: Always (default WithVariables) */
    eng_objref *health_checks; /* apiVersion, kind, name, ns as written (no defaults) */
    size_t health_checks_len;
    char *service_account_name;
    /* spec.kubeConfig.secretRef: a Secret in meta.ns holding the kubeconfig of the cluster to
     * apply to (NULL: the engine's target) and its key (NULL: "value", else "value.yaml") */
    char *kubeconfig_secret;
    char *kubeconfig_key;
} eng_kustomization;

/* ---- image reflection and automation (image.toolkit.fluxcd.io/v1), reconciled by images/ ---- */

typedef struct eng_imagerepo {
    eng_meta meta;
    char *image;           /* "host[:port]/path": no scheme, tag or digest */
    int64_t interval_ms;   /* required, > 0 */
    int64_t timeout_ms;    /* default: the interval (Flux) */
    char *secret_ref;      /* Secret with .dockerconfigjson, or NULL */
    char *cert_secret_ref; /* Secret with ca.crt / tls.crt + tls.key, or NULL */
    char *provider;        /* "generic" (default), "aws", "azure", "gcp" */
    bool insecure;
    bool suspend;
    json_t *exclusion_list; /* array of regex strings, or NULL: the defaults */
} eng_imagerepo;

typedef enum {
    ENG_DIGEST_NEVER = 0,      /* the default: latestRef.digest stays empty */
    ENG_DIGEST_IF_NOT_PRESENT, /* resolved once per chosen tag */
    ENG_DIGEST_ALWAYS,         /* resolved at every reconcile (spec.interval required) */
} eng_digest_reflection;

typedef struct eng_imagepolicy {
    eng_meta meta;
    eng_objref repo_ref; /* imageRepositoryRef: name, ns (default: the policy's) */
    char *semver_range;  /* exactly one of the three policies is set */
    char *alpha_order;   /* "asc" | "desc" | NULL (asc) when has_alpha */
    char *num_order;     /* same, when has_num */
    bool has_alpha;
    bool has_num;
    char *filter_pattern; /* spec.filterTags.pattern or NULL */
    char *filter_extract; /* spec.filterTags.extract or NULL */
    eng_digest_reflection digest_reflection;
    int64_t interval_ms; /* spec.interval; 0 when absent */
} eng_imagepolicy;

typedef struct eng_imageupdate {
    eng_meta meta;
    eng_objref source_ref; /* kind "OCIRepository" (GitRepository needs the Git adapter) */
    int64_t interval_ms;   /* required, > 0 */
    char *update_path;     /* spec.update.path, relative to the source root; default "./" */
    bool suspend;
    json_t *policy_selector;  /* spec.policySelector.matchLabels (object of strings) or NULL */
    char *publish_url;        /* berth extension spec.publish.url: "oci://host/repo:tag" */
    char *publish_key_ref;    /* spec.publish.signingKey.secretRef.name (cosign.key Secret) */
    char *publish_source;     /* spec.publish.source (org.opencontainers.image.source) or NULL */
    char *publish_secret_ref; /* spec.publish.secretRef.name (.dockerconfigjson) or NULL */
    bool publish_insecure;    /* spec.publish.insecure: plain HTTP to a non-loopback registry */
} eng_imageupdate;

/* ---- Secret and ConfigMap ---- */

/** A key and its bytes (NUL-terminated for convenience; len excludes the NUL). */
typedef struct eng_kv {
    char *key;
    char *value;
    size_t len;
} eng_kv;

typedef struct eng_secret {
    eng_meta meta;
    char *type;   /* "Opaque" when absent */
    eng_kv *data; /* decoded data with stringData merged over it, sorted by key; values are
                     sodium_memzero'd when the config is freed */
    size_t data_len;
    bool immutable;
} eng_secret;

typedef struct eng_configmap {
    eng_meta meta;
    eng_kv *data; /* sorted by key */
    size_t data_len;
    eng_kv *binary_data; /* decoded, sorted by key */
    size_t binary_data_len;
    bool immutable;
} eng_configmap;

/* ---- the loaded configuration ---- */

/** One problem in the configuration. */
typedef struct eng_config_error {
    char *kind;    /* the object's kind, or NULL when unknown */
    char *ns;      /* NULL when the object is unknown */
    char *name;    /* NULL when the object is unknown */
    char *file;    /* NULL only for errors about the path given to the loader */
    int line;      /* 1-based; 0 when not applicable (unreadable file) */
    int column;    /* 1-based; 0 when not applicable */
    int code;      /* BERTH_EINVAL, BERTH_EUNSUPPORTED, BERTH_EIO, ... */
    char *message; /* e.g. "unknown field \"spec.foo\"" */
    char *text;    /* "<file>:<line>:<column>: <Kind>/<ns>/<name>: <message>" */
} eng_config_error;

/**
 * Everything one load found. Each array is sorted by (namespace, name) and holds valid
 * objects only; an object with any error is left out and its identity is in errors[].
 */
typedef struct eng_config {
    eng_ocirepo *ocirepos;
    size_t ocirepos_len;
    eng_kustomization *kustomizations;
    size_t kustomizations_len;
    eng_secret *secrets;
    size_t secrets_len;
    eng_configmap *configmaps;
    size_t configmaps_len;
    eng_imagerepo *imagerepos;
    size_t imagerepos_len;
    eng_imagepolicy *imagepolicies;
    size_t imagepolicies_len;
    eng_imageupdate *imageupdates;
    size_t imageupdates_len;
    eng_config_error *errors; /* in load order, duplicates last */
    size_t errors_len;
    /* true when some object could not even be identified (YAML syntax error, unreadable
     * file, a document without kind or metadata.name): objects may be missing, so the engine
     * must not treat an absent object as deleted (no pruning, no forgetting). */
    bool incomplete;
    size_t files; /* YAML files read */
} eng_config;

/**
 * Load path: a file (whatever its name), or a directory whose *.yaml and *.yml files are read
 * recursively, in name order at each level; names starting with '.' are skipped. Every file
 * may hold several documents.
 * On success *out is a new config (eng_config_free) that may carry per-object errors.
 * Returns 0, BERTH_ENOTFOUND / BERTH_EIO when path itself can not be read, or BERTH_ENOMEM.
 * Thread-safe (no shared state).
 */
int eng_config_load(eng_config **out, const char *path, berth_error **err);

/**
 * Parse one YAML stream of len bytes as if it were the file `name`. Same result and codes as
 * eng_config_load. Thread-safe.
 */
int eng_config_parse(eng_config **out, const char *data, size_t len, const char *name,
                     berth_error **err);

/** Free a config (secret values are wiped). Accepts NULL. */
void eng_config_free(eng_config *cfg);

/* Lookups by namespace and name; the result is borrowed from cfg, NULL when absent. */
const eng_ocirepo *eng_config_find_ocirepo(const eng_config *cfg, const char *ns, const char *name);
const eng_kustomization *eng_config_find_kustomization(const eng_config *cfg, const char *ns,
                                                       const char *name);
const eng_secret *eng_config_find_secret(const eng_config *cfg, const char *ns, const char *name);
const eng_configmap *eng_config_find_configmap(const eng_config *cfg, const char *ns,
                                               const char *name);
const eng_imagerepo *eng_config_find_imagerepo(const eng_config *cfg, const char *ns,
                                               const char *name);
const eng_imagepolicy *eng_config_find_imagepolicy(const eng_config *cfg, const char *ns,
                                                   const char *name);
const eng_imageupdate *eng_config_find_imageupdate(const eng_config *cfg, const char *ns,
                                                   const char *name);

/**
 * The first error recorded for the object kind/ns/name, or NULL: when non-NULL the engine
 * marks that object Stalled with its text. Borrowed from cfg.
 */
const eng_config_error *eng_config_find_error(const eng_config *cfg, const char *kind,
                                              const char *ns, const char *name);

/** The value of key in a Secret's or ConfigMap's list (sorted), or NULL. Borrowed. */
const eng_kv *eng_kv_find(const eng_kv *kv, size_t len, const char *key);

/**
 * A new JSON object {key: value} from a key list, for postBuild.substituteFrom. A value that is
 * not UTF-8 text fails with BERTH_EINVAL naming the key (never the value); BERTH_ENOMEM.
 */
int eng_kv_to_json(json_t **out, const eng_kv *kv, size_t len, const char *what, berth_error **err);

/**
 * Parse a Go duration restricted to the CRD grammar ^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$ ("1m30s",
 * "10m", "1.5h") into milliseconds (fractions below 1 ms are dropped). allow_hours false
 * refuses the "h" unit (OCIRepository timeout). Returns 0 or BERTH_EINVAL (message names the
 * text).
 */
int eng_duration_parse(int64_t *ms_out, const char *text, bool allow_hours, berth_error **err);

/** Go's time.Duration.String() of ms: "0s", "500ms", "1.5s", "1m30s", "1h0m0s". */
void eng_duration_format(char out[32], int64_t ms);

#endif
