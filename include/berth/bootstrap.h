/*
 * berth/bootstrap.h: what `berth bootstrap` and `berth uninstall` write (docs/edge.md).
 *
 * The sync configuration is three Flux-kind objects in namespace "berth-system": a Secret
 * "berth-system-verify" holding cosign.pub (only when a key is given), an OCIRepository
 * "berth-system" following REG/REPO:TAG (verified with that Secret), and a Kustomization
 * "berth-system" applying the artifact's root. The same bytes go into the artifact, under
 * berth-system/ (with a kustomization.yaml), and onto a host, under ROOT/etc/berth/, beside the
 * systemd unit deploy/host/berth.service (embedded in the library at build time). For a
 * cluster (opts.kube) the artifact's berth-system/install/ also holds deploy/ (CRDs, Namespace,
 * RBAC, the Deployment; embedded too), its image set by berth-system/kustomization.yaml.
 *
 * Every file is compared with what would be written and rewritten (atomically) only when it
 * differs, so running bootstrap twice changes nothing and says so.
 */
#ifndef BERTH_BOOTSTRAP_H
#define BERTH_BOOTSTRAP_H

#include "buf.h"
#include "common.h"
#include "error.h"
#include "oci.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The namespace and name of the sync objects, and the artifact directory holding them. */
#define BERTH_BOOTSTRAP_NAME "berth-system"

typedef struct berth_bootstrap_opts {
    unsigned int version;
    const char *url;        /* the OCIRepository's spec.url: "oci://REG/REPO" (required) */
    const char *tag;        /* spec.ref.tag (required) */
    const char *pubkey_pem; /* cosign public key (PEM) for spec.verify, or NULL: no verify */
    size_t pubkey_len;
    bool insecure;         /* spec.insecure: plain HTTP to a non-loopback registry */
    const char *interval;  /* the OCIRepository's spec.interval; NULL: "1m" */
    const char *berth_bin; /* absolute path put in the unit's ExecStart; NULL: "/usr/bin/berth" */
    bool kube;         /* the artifact also installs berth in a cluster: berth-system/install/ */
    const char *image; /* with kube: berth's image; NULL: BERTH_BOOTSTRAP_IMAGE */
    /* with kube, names of Secrets in berth-system the user created (NULL: none): */
    const char *registry_secret;      /* the OCIRepository's spec.secretRef (docker config) */
    const char *registry_cert_secret; /* its spec.certSecretRef (ca.crt, tls.crt/tls.key) */
    const char *image_pull_secret;    /* imagePullSecrets of the berth Deployment */
} berth_bootstrap_opts;

/**
 * The default image of `bootstrap --kube`: the name deploy/deployment.yaml uses ("berth"),
 * pinned to this binary's version so a cluster runs the berth that bootstrapped it.
 */
#define BERTH_BOOTSTRAP_IMAGE "berth:" BERTH_VERSION
#define BERTH_BOOTSTRAP_OPTS_VERSION 1
#define BERTH_BOOTSTRAP_OPTS_INIT                                                                  \
    {                                                                                              \
        .version = BERTH_BOOTSTRAP_OPTS_VERSION                                                    \
    }

/** What happened (or would happen) to one file. */
typedef enum {
    BERTH_BOOTSTRAP_CREATED = 0,
    BERTH_BOOTSTRAP_UPDATED,
    BERTH_BOOTSTRAP_UNCHANGED,
    BERTH_BOOTSTRAP_REMOVED, /* written by an earlier bootstrap, no longer wanted; or uninstalled */
    BERTH_BOOTSTRAP_ABSENT,  /* uninstall: was not there */
} berth_bootstrap_state;

/** "created", "updated", "unchanged", "removed" or "absent". */
BERTH_EXTERN const char *berth_bootstrap_state_name(berth_bootstrap_state s);

typedef struct berth_bootstrap_file {
    char *path; /* heap: the full path (under ROOT, or under the staging directory) */
    berth_bootstrap_state state;
} berth_bootstrap_file;

/** Free files. Accepts NULL. */
BERTH_EXTERN void berth_bootstrap_files_free(berth_bootstrap_file *files, size_t n);

/**
 * Append the OCIRepository and the Kustomization (YAML, two documents) to out. Returns 0,
 * BERTH_EINVAL (url not "oci://...", tag not a valid tag, interval not a duration) or
 * BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_bootstrap_sync_yaml(berth_buf *out, const berth_bootstrap_opts *opts,
                                           berth_error **err);
/**
 * Append the Secret holding opts->pubkey_pem as "cosign.pub" (YAML) to out. Returns 0,
 * BERTH_EINVAL (no key, or not a PEM text) or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_bootstrap_key_yaml(berth_buf *out, const berth_bootstrap_opts *opts,
                                          berth_error **err);

/**
 * Make the tree to push: a fresh directory under parent (mode 0700; *dir_out is yours: give it to
 * berth_bootstrap_unstage) holding a copy of src_dir (regular files and directories;
 * symlinks are skipped, as the artifact builder does) plus berth-system/ with
 * kustomization.yaml, sync.yaml and, with a key, verify-key.yaml (src_dir's own berth-system/
 * files of those names are replaced); with opts->kube also install/ (deploy/'s files) and an
 * `images:` entry setting the image "berth" to opts->image. Returns 0, BERTH_ENOTFOUND (src_dir
 * missing), BERTH_EINVAL (src_dir not a directory, bad opts), BERTH_EIO or BERTH_ENOMEM; on failure
 * nothing is left behind.
 */
BERTH_EXTERN int berth_bootstrap_stage(char **dir_out, const char *src_dir, const char *parent,
                                       const berth_bootstrap_opts *opts, berth_error **err);
/** Remove a directory made by berth_bootstrap_stage and free its path. Accepts NULL. */
BERTH_EXTERN void berth_bootstrap_unstage(char *dir);

/** What `bootstrap --kube` does to the cluster, and how it reports. */
typedef struct berth_bootstrap_kube_opts {
    unsigned int version;
    const char *kubeconfig; /* NULL: $KUBECONFIG, in-cluster, ~/.kube/config (as kubectl) */
    const char *context;    /* NULL: the kubeconfig's current-context */
    int64_t timeout_ms;     /* the apply and the wait for the CRDs and the berth Deployment */
    /* progress lines ("waiting for ..."), or NULL; called on the calling thread */
    void (*progress)(void *payload, const char *line);
    void *payload;
} berth_bootstrap_kube_opts;
#define BERTH_BOOTSTRAP_KUBE_OPTS_VERSION 1
#define BERTH_BOOTSTRAP_KUBE_OPTS_INIT                                                             \
    {                                                                                              \
        .version = BERTH_BOOTSTRAP_KUBE_OPTS_VERSION, .timeout_ms = 300000                         \
    }

/** One object bootstrap applied: "Kind/ns/name" (or "Kind/name") and Flux's action name. */
typedef struct berth_bootstrap_object {
    char *subject; /* heap */
    char *action;  /* heap: "created", "configured", "unchanged" or "skipped" */
} berth_bootstrap_object;

/** Free objects. Accepts NULL. */
BERTH_EXTERN void berth_bootstrap_objects_free(berth_bootstrap_object *objs, size_t n);

/**
 * Check that the cluster of kopts (kubeconfig, context) answers (GET /version with its
 * credentials), so that bootstrap fails before it pushes. Returns 0, BERTH_ENOTFOUND (no
 * kubeconfig), BERTH_EINVAL, BERTH_ENET (the message names the server and the kubeconfig),
 * BERTH_EAUTH / BERTH_EDENIED.
 */
BERTH_EXTERN int berth_bootstrap_kube_check(const berth_bootstrap_kube_opts *kopts,
                                            berth_error **err);

/**
 * Install without pushing (`berth bootstrap --kube` without --path): pull ref (by digest: the
 * one that was verified) into a new directory under parent (NULL: $TMPDIR or /tmp) and check
 * that it is a cluster bootstrap artifact that follows opts->url:opts->tag: its berth-system/
 * holds install/ and a sync.yaml naming that URL and tag, so the installed berth follows the
 * registry it was installed from (an artifact mirrored from elsewhere must be pushed again with
 * `bootstrap --kube --push-only` for its new home). *dir_out (berth_bootstrap_unstage) is the
 * tree for berth_bootstrap_kube_install. Returns 0, BERTH_EINVAL (not such an artifact, or it
 * follows another reference: the message names both), or the pull's codes.
 */
BERTH_EXTERN int berth_bootstrap_kube_fetch(char **dir_out, berth_oci_client *c,
                                            const berth_oci_ref *ref,
                                            const berth_bootstrap_opts *opts, const char *parent,
                                            berth_error **err);

/**
 * Install berth into a cluster from a tree made by berth_bootstrap_stage with opts->kube: build
 * it as the Kustomization berth-system/berth-system will (path "./"), apply every object with
 * server-side apply (field manager "berth", that Kustomization's owner labels), then wait until
 * the CRDs are Established and the Deployment berth-system/berth is Ready (kstatus), all of it
 * within about kopts->timeout_ms (a CRD that is not Established stops the apply after 60 s).
 * Nothing is pruned. *objs_out (free with berth_bootstrap_objects_free) gets what happened to each
 * object, in apply order; on failure after the apply it is still set. Returns 0, BERTH_ENOTFOUND /
 * BERTH_EINVAL (no kubeconfig; a bad object, before anything is written), BERTH_ENET (the API
 * server unreachable), BERTH_ETIMEOUT (the message names what is not ready and its status), or the
 * API server's codes.
 */
BERTH_EXTERN int berth_bootstrap_kube_install(berth_bootstrap_object **objs_out, size_t *n_out,
                                              const char *stage_dir,
                                              const berth_bootstrap_kube_opts *kopts,
                                              berth_error **err);

/**
 * Remove what berth_bootstrap_kube_install installed, keeping the CRDs, the Namespace
 * berth-system and every object berth applied for DIR: suspend the Kustomization and the
 * OCIRepository berth-system/berth-system (so a berth still running prunes nothing), delete the
 * Deployment berth-system/berth in the foreground and wait until it is gone (kopts->timeout_ms),
 * then delete the sync objects, the key Secret and deploy/'s RBAC objects, each only when it
 * carries the owner labels of berth-system/berth-system. *objs_out as above, actions
 * "deleted", "absent", "skipped" (not bootstrap's) or "unknown" (its deletion failed). Returns
 * 0, BERTH_ETIMEOUT, BERTH_ENET, or the API server's codes.
 */
BERTH_EXTERN int berth_bootstrap_kube_uninstall(berth_bootstrap_object **objs_out, size_t *n_out,
                                                const berth_bootstrap_kube_opts *kopts,
                                                berth_error **err);

/**
 * Install the host files under root (an existing directory; "/" for this host):
 *   root/etc/berth/sync.yaml          the sync objects without the Secret (0644)
 *   root/etc/berth/verify-key.yaml    the Secret with cosign.pub (0644; removed without a key)
 *   root/etc/systemd/system/berth.service   the unit (0644)
 * Each is written atomically only when its bytes or mode differ; *files_out (free with
 * berth_bootstrap_files_free) says what happened to each, in that order. With dry_run nothing
 * is written. Returns 0, BERTH_ENOTFOUND (root missing), BERTH_EINVAL, BERTH_EIO / BERTH_EDENIED
 * (the message names the file) or BERTH_ENOMEM; files written before a failure stay written.
 */
BERTH_EXTERN int berth_bootstrap_host_install(berth_bootstrap_file **files_out, size_t *n_out,
                                              const char *root, const berth_bootstrap_opts *opts,
                                              bool dry_run, berth_error **err);

/**
 * Remove the files berth_bootstrap_host_install writes (and root/etc/berth when it is left
 * empty); other files in root/etc/berth are kept. *files_out as above (removed or absent).
 * Returns 0, BERTH_ENOTFOUND (root missing), BERTH_EIO / BERTH_EDENIED or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_bootstrap_host_uninstall(berth_bootstrap_file **files_out, size_t *n_out,
                                                const char *root, berth_error **err);

/**
 * Delete from the directory target target_dir every object recorded in the Kustomization
 * inventories of state_dir, then those inventories; *pruned_out counts the objects deleted.
 * Takes the state directory's lock (BERTH_ECONFLICT while `berth run` holds it). A state_dir
 * without inventories prunes nothing. Returns 0, BERTH_ECONFLICT, BERTH_EINVAL (malformed
 * inventory), BERTH_EIO or BERTH_ENOMEM.
 */
BERTH_EXTERN int berth_bootstrap_prune(size_t *pruned_out, const char *state_dir,
                                       const char *target_dir, berth_error **err);

#ifdef __cplusplus
}
#endif
#endif
