/*
 * Library-wide initialisation. libsodium needs one call before threads start; libcurl's global
 * init is reference counted and thread-safe since 7.84, so core/http_curl.c does it per handle.
 */
#include <sodium.h>

#include "core/core.h"

const char *berth_version(void)
{
    return BERTH_VERSION;
}

int berth_init(void)
{
    return sodium_init() < 0 ? BERTH_ERROR : 0;
}
