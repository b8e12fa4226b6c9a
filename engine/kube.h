/*
 * engine/kube.h: the Kubernetes client (internal, prefix eng_kube_) and the Kubernetes target
 * (eng_target_kube_): client configuration from a kubeconfig or from inside a pod, requests over
 * core/http with Status errors decoded, discovery with a REST mapper, and server-side apply
 * (spec/engine.md §3, §5; docs/kubernetes.md).
 *
 * An eng_kube is used by one thread at a time (the engine's loop or one worker).
 */
#ifndef BERTH_ENGINE_KUBE_H
#define BERTH_ENGINE_KUBE_H

#include <jansson.h>
#include <stdatomic.h>

#include <berth/error.h>

#include "engine/target.h"

/* ---- configuration (engine/kube_config.c) ---- */

/** Where the API server is and how to authenticate; every string heap or NULL. */
typedef struct eng_kube_config {
    char *source;      /* "kubeconfig /path (context ctx)" or "in-cluster", for messages */
    char *server;      /* "https://host:port" (no trailing '/') */
    char *ca_file;     /* certificate-authority (absolute path) */
    char *ca_pem;      /* certificate-authority-data, decoded */
    bool insecure;     /* insecure-skip-tls-verify */
    char *token;       /* static bearer token */
    char *token_file;  /* tokenFile / the service-account token: re-read every minute */
    char *cert_file;   /* client-certificate */
    char *cert_pem;    /* client-certificate-data, decoded */
    char *key_file;    /* client-key */
    char *key_pem;     /* client-key-data, decoded */
    char *username;    /* basic auth */
    char *password;    /* basic auth */
    char *impersonate; /* user.as */
    char *ns;          /* context namespace, "default" when unset */
    /* exec credential plugin (client.authentication.k8s.io ExecCredential) */
    char *exec_command;
    char **exec_args; /* NULL-terminated */
    char **exec_env;  /* NULL-terminated "NAME=value" */
    char *exec_api_version;
} eng_kube_config;

/** Free a config. Accepts NULL. */
void eng_kube_config_free(eng_kube_config *c);

/**
 * Parse kubeconfig text (YAML). path names the file in messages and anchors relative file
 * paths (certificate-authority, client-certificate, client-key, tokenFile). context NULL: the
 * current-context. Returns 0, BERTH_EINVAL (malformed, a context/cluster/user that is not
 * there, bad base64; the message names the file and the entry) or BERTH_ENOMEM.
 */
int eng_kube_config_parse(eng_kube_config **out, const char *data, size_t len, const char *path,
                          const char *context, berth_error **err);

/**
 * Load the client configuration as kubectl and controller-runtime do: path (--kubeconfig) if
 * given; else $KUBECONFIG (a ':' list: the first file that defines an entry wins, as kubectl
 * merges); else the in-cluster configuration when KUBERNETES_SERVICE_HOST is set; else
 * ~/.kube/config. Returns 0, BERTH_ENOTFOUND (no configuration), BERTH_EINVAL, BERTH_EIO.
 */
int eng_kube_config_load(eng_kube_config **out, const char *path, const char *context,
                         berth_error **err);

/**
 * The in-cluster configuration: KUBERNETES_SERVICE_HOST/PORT (IPv6 hosts bracketed), the
 * service-account token file and CA under sa_dir (NULL: /var/run/secrets/kubernetes.io/
 * serviceaccount) and its namespace file. Returns 0, BERTH_ENOTFOUND (not in a pod), ENOMEM.
 */
int eng_kube_config_in_cluster(eng_kube_config **out, const char *sa_dir, berth_error **err);

/** What a kubeconfig from a Secret (spec.kubeConfig.secretRef) is allowed beyond the safe set. */
typedef struct eng_kube_secret_policy {
    bool allow_exec;         /* user.exec credential plugins (--insecure-kubeconfig-exec) */
    bool allow_insecure_tls; /* insecure-skip-tls-verify (--insecure-kubeconfig-tls) */
} eng_kube_secret_policy;

/**
 * Parse a kubeconfig that came from a Secret (its current-context), as Flux's controllers do for
 * spec.kubeConfig: what names the Secret in messages ("kubeConfig Secret \"ns/name\" key
 * \"value\""). A kubeconfig from a Secret is untrusted input: it may not name local files
 * (tokenFile, client-certificate, client-key, certificate-authority), and it may not run an exec
 * plugin or skip TLS verification unless policy allows it (policy NULL: nothing allowed).
 * Returns 0, BERTH_EINVAL (malformed), BERTH_EDENIED (refused by the policy; the message names
 * what and the field) or BERTH_ENOMEM.
 */
int eng_kube_config_from_secret(eng_kube_config **out, const char *data, size_t len,
                                const char *what, const eng_kube_secret_policy *policy,
                                berth_error **err);

/* ---- the client (engine/kube_client.c) ---- */

typedef struct eng_kube eng_kube;

/** A response: HTTP status, the decoded body, and for failures the Status fields. */
typedef struct eng_kube_resp {
    long code;     /* HTTP status */
    json_t *body;  /* parsed JSON body, or NULL */
    char *reason;  /* failures: Status reason ("NotFound"), else NULL */
    char *message; /* failures: Status message (or the HTTP reason), else NULL */
} eng_kube_resp;

void eng_kube_resp_dispose(eng_kube_resp *r);

/** One resource as discovery names it. Strings heap (eng_kube_mapping_dispose). */
typedef struct eng_kube_mapping {
    char *group;    /* "" for core */
    char *version;  /* "v1" */
    char *resource; /* plural: "deployments" */
    char *kind;
    bool namespaced;
} eng_kube_mapping;

void eng_kube_mapping_dispose(eng_kube_mapping *m);

/**
 * A client for cfg, which it takes (freed with the client, also on failure). Returns 0,
 * BERTH_EINVAL (no server), BERTH_ENOMEM.
 */
int eng_kube_new(eng_kube **out, eng_kube_config *cfg, berth_error **err);
void eng_kube_free(eng_kube *k);

/**
 * Give k a cancel flag (NULL: none): once *cancel is non-zero (set from any thread), the request
 * in flight and every later one ends within about 100 ms with BERTH_ECANCELED ("cancelled").
 * A long watch (eng_kube_watch) is stopped this way. The flag must outlive k's requests.
 */
void eng_kube_set_cancel(eng_kube *k, const atomic_int *cancel);

/** Send Impersonate-User: user on every later request (NULL: stop). Returns 0 or ENOMEM. */
int eng_kube_impersonate(eng_kube *k, const char *user);

/**
 * One request: path is "/api/..." with its query; body/ctype may be NULL. 429 and 503 are
 * retried (Retry-After honoured, three times). Returns 0 when a response arrived (any status:
 * see out->code), or BERTH_ENET / BERTH_ETIMEOUT / BERTH_EAUTH (exec plugin) / ENOMEM.
 */
int eng_kube_do(eng_kube *k, eng_kube_resp *out, const char *method, const char *path,
                const char *ctype, const char *body, size_t body_len, berth_error **err);

/**
 * Turn a failed response into an error "<what>: <server message>" with the code of its HTTP
 * status (404 BERTH_ENOTFOUND, 401 EAUTH, 403 EDENIED, 409 ECONFLICT, 400/422 EINVAL,
 * 429/5xx ENET, 504 ETIMEOUT). Returns that code.
 */
int eng_kube_resp_error(berth_error **err, const eng_kube_resp *r, const char *what);

/**
 * Map apiVersion + kind to a resource through discovery (cached per group-version; a kind that
 * is missing from the cache refreshes its group-version once, so a CRD established in the same
 * run is found). Returns 0, BERTH_ENOTFOUND ("no matches for kind \"K\" in version \"G/V\""),
 * or the request's codes.
 */
int eng_kube_map(eng_kube_mapping *out, eng_kube *k, const char *api_version, const char *kind,
                 berth_error **err);

/** Forget cached discovery (all of it). */
void eng_kube_discovery_reset(eng_kube *k);

/**
 * The URL path of an object or a collection (name NULL): /api/v1/namespaces/ns/configmaps/x or
 * /apis/apps/v1/deployments; ns ignored for cluster-scoped resources. Heap; NULL on ENOMEM.
 */
char *eng_kube_path(const eng_kube_mapping *m, const char *ns, const char *name);

/**
 * List a collection (path as eng_kube_path with name NULL), every page (limit/continue), with an
 * optional label selector: *items_out a new array, *rv_out (heap) the list's resourceVersion to
 * watch from. Returns 0, the Status codes (eng_kube_resp_error), or the request's codes.
 */
int eng_kube_list(json_t **items_out, char **rv_out, eng_kube *k, const char *path,
                  const char *selector, berth_error **err);

/** One listed object (borrowed); return 0 to go on or a negative berth code to fail the list. */
typedef int (*eng_kube_item_fn)(void *payload, json_t *object);

/**
 * eng_kube_list, but each object goes to fn page by page (LIST pages of 500) instead of into
 * one array, so a caller that keeps few of many objects (the Secrets controller mode needs)
 * holds one page at a time. *rv_out (heap) as eng_kube_list. Returns eng_kube_list's codes or
 * fn's.
 */
int eng_kube_list_each(char **rv_out, eng_kube *k, const char *path, const char *selector,
                       eng_kube_item_fn fn, void *payload, berth_error **err);

/**
 * One watch event: type "ADDED", "MODIFIED" or "DELETED" and the object (borrowed). Return 0 to
 * go on, > 0 to end the watch (eng_kube_watch then returns 0), < 0 (a berth code) to fail it.
 */
typedef int (*eng_kube_watch_fn)(void *payload, const char *type, const json_t *object);

/**
 * Watch a collection from *rv (NULL or "": from now, the server sends the current objects as
 * ADDED first) with bookmarks, until timeout_s passes, the server ends the stream, fn ends it
 * or k's cancel flag is set (BERTH_ECANCELED, eng_kube_set_cancel). No low-speed limit applies:
 * a watch may be silent for minutes. *rv (heap) follows every event and bookmark, so the next call
 * resumes where this one stopped. A resourceVersion the server no longer has (410 Expired, as an
 * ERROR event or as the HTTP status) is BERTH_ECONFLICT: list again and watch from the list's
 * resourceVersion. Returns 0, BERTH_ECONFLICT, fn's code, the Status codes, or the request's codes.
 */
int eng_kube_watch(eng_kube *k, const char *path, const char *selector, char **rv, int timeout_s,
                   eng_kube_watch_fn fn, void *payload, berth_error **err);

/* ---- the target (engine/target_kube.c) ---- */

#define ENG_KUBE_FIELD_MANAGER "berth"

/**
 * Flux's kind rank (engine.md §3.3): -23 (CustomResourceDefinition) .. -1
 * (PodDisruptionBudget), 0 for every other kind, +1/+2 for the webhook configurations.
 */
int eng_kube_kind_rank(const char *kind);

/**
 * The apply stage (engine.md §3.4): 1 for CRDs (apiextensions.k8s.io), Namespaces (core) and
 * ClusterRoles (rbac.authorization.k8s.io), 2 for kinds ending in "Class", else 3.
 */
int eng_kube_stage(const char *group, const char *kind);

/**
 * Compare two objects in apply order: (rank, group, kind, namespace, name). Objects are
 * manifests (apiVersion "group/version").
 */
int eng_kube_compare(const json_t *a, const json_t *b);

/**
 * The Kubernetes target: server-side apply with field manager "berth" (docs/kubernetes.md).
 * kubeconfig/context as eng_kube_config_load. Returns 0 or its codes.
 */
int eng_target_kube_new(eng_target **out, const char *kubeconfig, const char *context,
                        berth_error **err);

/** The Kubernetes target for cfg, which it takes (freed with the target, also on failure). */
int eng_target_kube_from_config(eng_target **out, eng_kube_config *cfg, berth_error **err);

/** The API server URL of a Kubernetes target (borrowed), or NULL for any other target. */
const char *eng_target_kube_server(const eng_target *t);

#endif
