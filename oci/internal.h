/*
 * oci/internal.h: seams of the registry client for tests and other oci/ files (not public).
 */
#ifndef BERTH_OCI_INTERNAL_H
#define BERTH_OCI_INTERNAL_H

#include <berth/oci.h>

#include "core/core.h"
#include "core/http.h"

/**
 * Time as the client sees it. Tests swap these to record backoff delays instead of sleeping
 * and to move the wall clock (token expiry, Retry-After dates). NULL members use the real clock.
 */
typedef struct oci_hooks {
    void (*sleep_ms)(void *payload, int64_t ms); /* NULL: core_sleep_ms */
    berth_unix_ms (*wall_now)(void *payload);    /* NULL: core_wall_now */
    void *payload;
} oci_hooks;

/**
 * A client over an existing core_http (tests pass one made by core_http_new_with_transport).
 * Takes ownership of http, also on failure. opts may be NULL (defaults).
 */
int oci_client_new_with_http(berth_oci_client **out, const berth_oci_client_opts *opts,
                             core_http *http, berth_error **err);
/** Replace the time hooks (copied). */
void oci_client_set_hooks(berth_oci_client *c, const oci_hooks *hooks);

/** True for localhost, 127.0.0.0/8 and ::1, with or without a port ("[::1]:5000"). */
bool oci_host_is_loopback(const char *host);
/** A Retry-After value (delta seconds or an HTTP-date) as a delay in ms from now; -1 when it
 * cannot be parsed. Not capped. */
int64_t oci_retry_after_ms(const char *value, berth_unix_ms now);

#endif
