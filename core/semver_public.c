/*
 * The public face of core/semver.c (include/berth/semver.h): the CLI may include only public
 * headers, and `list artifacts --filter-semver` needs constraint checks and version ordering.
 * Tags are parsed in Flux's strict mode (at least two dots) everywhere here.
 */
#include <string.h>

#include <berth/semver.h>

#include "core/core.h"
#include "core/semver.h"

struct berth_semver_constraint {
    core_semver_constraint *c;
};

int berth_semver_constraint_parse(berth_semver_constraint **out, const char *text,
                                  berth_error **err)
{
    berth_semver_constraint *sc = NULL;
    int rc;

    BERTH_ARG_CHECK(out && text);
    *out = NULL;
    if (!(sc = core_calloc(1, sizeof(*sc))))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = core_semver_constraint_parse(&sc->c, text, err)) < 0) {
        core_free(sc);
        return rc;
    }
    *out = sc;
    return 0;
}

bool berth_semver_constraint_check(const berth_semver_constraint *c, const char *tag)
{
    core_semver v;
    bool ok;

    if (!c || !tag || core_semver_parse(&v, tag, true, NULL) < 0)
        return false;
    ok = core_semver_constraint_check(c->c, &v);
    core_semver_dispose(&v);
    return ok;
}

void berth_semver_constraint_free(berth_semver_constraint *c)
{
    if (!c)
        return;
    core_semver_constraint_free(c->c);
    core_free(c);
}

bool berth_semver_is_valid(const char *tag)
{
    core_semver v;

    if (!tag || core_semver_parse(&v, tag, true, NULL) < 0)
        return false;
    core_semver_dispose(&v);
    return true;
}

int berth_semver_compare(const char *a, const char *b)
{
    core_semver va, vb;
    bool oka = a && core_semver_parse(&va, a, true, NULL) == 0;
    bool okb = b && core_semver_parse(&vb, b, true, NULL) == 0;
    int r;

    if (oka && okb)
        r = core_semver_compare(&va, &vb);
    else if (oka || okb)
        r = oka ? 1 : -1;
    else
        r = strcmp(a ? a : "", b ? b : "");
    if (oka)
        core_semver_dispose(&va);
    if (okb)
        core_semver_dispose(&vb);
    return r;
}
