/*
 * engine/clients.c: registry clients kept alive across reconciles (engine/internal.h).
 *
 * Why: a berth_oci_client owns a curl multi handle, whose connection cache keeps connections
 * open, plus the registry's scheme and token caches. Made per reconcile, every source opened a
 * new connection (and a new TLS session); kept per worker, 1,000 sources on one registry reuse a
 * few connections. Clients whose options name files or credentials (Secrets written to a temp
 * dir for one reconcile) are not cached: the files are gone after the reconcile.
 *
 * Design: a short list of (options, client) pairs, compared field by field. A cache belongs to
 * one thread (a worker); nothing here locks.
 */
#include <string.h>

#include <berth/oci.h>

#include "core/core.h"
#include "engine/internal.h"

#define CLIENTS_MAX 8 /* distinct option sets kept; more are made per call and evicted FIFO */

typedef struct slot {
    berth_oci_client_opts opts;
    berth_oci_client *client;
} slot;

struct eng_clients {
    slot slots[CLIENTS_MAX];
    size_t len;
    size_t next_evict;
};

int eng_clients_new(eng_clients **out, berth_error **err)
{
    if (!(*out = core_calloc(1, sizeof(**out))))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    return 0;
}

void eng_clients_free(eng_clients *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->len; i++)
        berth_oci_client_free(c->slots[i].client);
    core_free(c);
}

static bool same(const berth_oci_client_opts *a, const berth_oci_client_opts *b)
{
    return a->insecure == b->insecure && a->debug == b->debug && a->max_retries == b->max_retries &&
           a->retry_base_ms == b->retry_base_ms && a->chunk_size == b->chunk_size &&
           !a->user_agent == !b->user_agent &&
           (!a->user_agent || strcmp(a->user_agent, b->user_agent) == 0);
}

int eng_clients_get(berth_oci_client **out, eng_clients *c, const berth_oci_client_opts *opts,
                    berth_error **err)
{
    berth_oci_client *client = NULL;
    slot *s;
    int rc;

    *out = NULL;
    if (opts->creds || opts->docker_config || opts->ca_file || opts->cert_file || opts->key_file ||
        opts->progress || opts->user_agent)
        return core_error_set(err, BERTH_EINVAL, "client options with files are not cached");
    for (size_t i = 0; i < c->len; i++) {
        if (same(&c->slots[i].opts, opts)) {
            /* the budget (spec.timeout) is per reconcile, not per client lifetime */
            berth_oci_client_restart_budget(c->slots[i].client, opts->timeout_ms);
            *out = c->slots[i].client;
            return 0;
        }
    }
    if ((rc = berth_oci_client_new(&client, opts, err)) < 0)
        return rc;
    if (c->len < CLIENTS_MAX) {
        s = &c->slots[c->len++];
    } else {
        s = &c->slots[c->next_evict];
        c->next_evict = (c->next_evict + 1) % CLIENTS_MAX;
        berth_oci_client_free(s->client);
    }
    s->opts = *opts;
    s->client = client;
    *out = client;
    return 0;
}
