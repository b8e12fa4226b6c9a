/*
 * engine/kube_store.h: controller mode, the Kubernetes API as the engine's store (internal,
 * prefix eng_kstore_; engine/kube_store.c, docs/kubernetes.md "Controller mode").
 */
#ifndef BERTH_ENGINE_KUBE_STORE_H
#define BERTH_ENGINE_KUBE_STORE_H

#include <stdbool.h>

#include <berth/engine.h>
#include <berth/error.h>

/**
 * berth_engine_run with opts->kube_store: materialise the cluster's OCIRepository and
 * Kustomization objects (and the Secrets and ConfigMaps they reference) into
 * opts->state_dir/kube-store, run the engine on that directory, and keep the directory and the
 * objects' status subresources in step while it runs. Returns berth_engine_run's codes, or the
 * Kubernetes client's (no configuration, the API or the CRDs unreachable) for the first pass.
 */
int eng_kstore_run(bool *all_ready_out, const berth_engine_opts *opts, berth_error **err);

#endif
