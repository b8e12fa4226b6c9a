/*
 * Fuzz target for engine/config.c: the bytes are written as one YAML file in a temporary
 * directory and the directory is loaded. Whatever the input, the load succeeds (only running
 * out of memory may fail it), every error carries the file and a text, an error without an
 * object identity marks the config incomplete, every kept object is complete, findable and
 * free of errors, and parsing the same bytes from memory gives the same result.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dir, *file;

static void cleanup(void)
{
    core_fs_remove_all(dir, NULL);
    core_free(file);
    core_free(dir);
}

static void setup_once(void)
{
    const char *tmp = getenv("TMPDIR");
    if (dir)
        return;
    if (core_fs_mkdtemp(&dir, tmp ? tmp : "/tmp", "berth-fuzz-config-", NULL) < 0 ||
        !(file = core_sprintf("%s/input.yaml", dir)))
        abort();
    atexit(cleanup);
}

/* A plain write: an atomic write's fsync per input would slow fuzzing to a crawl. */
static void write_input(const uint8_t *data, size_t size)
{
    FILE *f = fopen(file, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
}

static void check_meta(const eng_config *cfg, const char *kind, const eng_meta *m,
                       const void *found)
{
    if (!m->name || !m->ns || !m->api_version || !m->file)
        abort();
    /* labels and annotations: NULL when absent, else an object */
    if ((m->labels && !json_is_object(m->labels)) ||
        (m->annotations && !json_is_object(m->annotations)))
        abort();
    if (m->line < 1 || found != (const void *)m)
        abort();
    if (eng_config_find_error(cfg, kind, m->ns, m->name))
        abort();
}

static void check(const eng_config *cfg)
{
    for (size_t i = 0; i < cfg->errors_len; i++) {
        const eng_config_error *e = &cfg->errors[i];
        if (!e->file || !e->text || !e->text[0] || !e->message || e->code >= 0 || e->line < 0)
            abort();
        if ((!e->kind || !e->name) && !cfg->incomplete)
            abort();
    }
    for (size_t i = 0; i < cfg->ocirepos_len; i++) {
        const eng_meta *m = &cfg->ocirepos[i].meta;
        check_meta(cfg, "OCIRepository", m, eng_config_find_ocirepo(cfg, m->ns, m->name));
        if (!cfg->ocirepos[i].url || cfg->ocirepos[i].interval_ms <= 0)
            abort();
    }
    for (size_t i = 0; i < cfg->kustomizations_len; i++) {
        const eng_meta *m = &cfg->kustomizations[i].meta;
        check_meta(cfg, "Kustomization", m, eng_config_find_kustomization(cfg, m->ns, m->name));
        if (!cfg->kustomizations[i].source_ref.ns || cfg->kustomizations[i].timeout_ms < 30000)
            abort();
    }
    for (size_t i = 0; i < cfg->secrets_len; i++) {
        const eng_meta *m = &cfg->secrets[i].meta;
        check_meta(cfg, "Secret", m, eng_config_find_secret(cfg, m->ns, m->name));
    }
    for (size_t i = 0; i < cfg->configmaps_len; i++) {
        const eng_meta *m = &cfg->configmaps[i].meta;
        check_meta(cfg, "ConfigMap", m, eng_config_find_configmap(cfg, m->ns, m->name));
    }
}

static bool same_shape(const eng_config *a, const eng_config *b)
{
    return a->ocirepos_len == b->ocirepos_len && a->kustomizations_len == b->kustomizations_len &&
           a->secrets_len == b->secrets_len && a->configmaps_len == b->configmaps_len &&
           a->errors_len == b->errors_len && a->incomplete == b->incomplete;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eng_config *cfg = NULL, *mem = NULL;
    berth_error *err = NULL;
    int rc;
    setup_once();
    write_input(data, size);
    rc = eng_config_load(&cfg, dir, &err);
    if (rc < 0) {
        if (rc != BERTH_ENOMEM || cfg)
            abort();
        berth_error_free(err);
        return 0;
    }
    check(cfg);
    if (size <= ENG_CONFIG_MAX_FILE_BYTES) {
        if (eng_config_parse(&mem, (const char *)data, size, file, NULL) < 0)
            abort();
        if (!same_shape(cfg, mem))
            abort();
    }
    eng_config_free(mem);
    eng_config_free(cfg);
    return 0;
}
