/* Library-wide initialisation: libcurl and libsodium need one call before threads start. */
#include <curl/curl.h>
#include <sodium.h>

#include "core/core.h"

const char *berth_version(void)
{
    return BERTH_VERSION;
}

int berth_init(void)
{
    static bool done;
    if (done)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return BERTH_ERROR;
    if (sodium_init() < 0)
        return BERTH_ERROR;
    done = true;
    return 0;
}
