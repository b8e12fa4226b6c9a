/*
 * engine/deploy.h: files of deploy/ embedded in the library at build time (cmake/embed.cmake),
 * so `berth bootstrap --host` and `--kube` write exactly what the repository ships.
 */
#ifndef BERTH_ENGINE_DEPLOY_H
#define BERTH_ENGINE_DEPLOY_H

#include <berth/buf.h>
#include <berth/error.h>

/** One embedded file: its path under deploy/ and its text (NUL-terminated). */
typedef struct eng_deploy_file {
    const char *path;
    const char *text;
} eng_deploy_file;

/**
 * The cluster install of deploy/ (kustomization.yaml, namespace.yaml, rbac.yaml,
 * deployment.yaml and the CRDs under crds/), ended by an entry with path NULL.
 */
extern const eng_deploy_file eng_deploy_kube_files[];

/* ---- the cluster part of `berth bootstrap` (engine/bootstrap_kube.c) ---- */

struct berth_bootstrap_opts;

/** Check an image reference for --image. Returns 0 or BERTH_EINVAL naming it. */
int eng_bootstrap_image_check(const char *image, berth_error **err);
/**
 * Append berth-system/kustomization.yaml of a cluster bootstrap: install/, sync.yaml,
 * verify-key.yaml (with a key) and the `images:` entry for opts->image (checked). Returns 0 or
 * BERTH_ENOMEM.
 */
int eng_bootstrap_kube_kfile(berth_buf *out, const struct berth_bootstrap_opts *opts);
/**
 * Write eng_deploy_kube_files under sys_dir/install/ (files of those names are replaced).
 * Returns 0, BERTH_EIO / BERTH_EDENIED naming the file, or BERTH_ENOMEM.
 */
int eng_bootstrap_kube_stage(const char *sys_dir, berth_error **err);

/** deploy/host/berth.service, NUL-terminated; "@BERTH_BIN@" stands for the binary's path. */
extern const char eng_deploy_host_unit[];

#endif
