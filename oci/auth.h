/*
 * oci/auth.h: registry authentication for the OCI client (not public).
 *
 * Parsers for untrusted bytes (WWW-Authenticate challenges, token server replies), credential
 * lookup (--creds, docker config.json, credential helpers), scope sets, and the per-client auth
 * state that caches bearer tokens per (host, scope set). Spec: oci-artifacts.md 3.10 and 3.11.
 */
#ifndef BERTH_OCI_AUTH_H
#define BERTH_OCI_AUTH_H

#include "core/core.h"
#include "core/http.h"

/* ---- WWW-Authenticate (RFC 7235) ---- */
typedef struct oci_auth_param {
    char *name; /* lowercase */
    char *value;
} oci_auth_param;

typedef struct oci_challenge {
    char *scheme;  /* lowercase: "basic", "bearer", ... */
    char *token68; /* or NULL */
    oci_auth_param *params;
    size_t params_len;
} oci_challenge;

#define OCI_WWWAUTH_MAX 8192   /* header bytes accepted */
#define OCI_CHALLENGES_MAX 16  /* challenges per header */
#define OCI_AUTH_PARAMS_MAX 32 /* params per challenge */
#define OCI_TOKEN_REPLY_MAX (64u * 1024u)

/**
 * Parse a WWW-Authenticate header value into challenges (heap array, oci_challenges_free).
 * Several challenges, quoted strings with backslash escapes, token68 and case-insensitive scheme
 * names are understood. Returns 0, BERTH_EINVAL (malformed, message quotes the header) or
 * BERTH_ENOMEM.
 */
int oci_wwwauth_parse(oci_challenge **out, size_t *n_out, const char *header, berth_error **err);
void oci_challenges_free(oci_challenge *v, size_t n);
/** A parameter of a challenge by (case-insensitive) name, borrowed, or NULL. */
const char *oci_challenge_param(const oci_challenge *c, const char *name);

/* ---- token server replies ---- */
typedef struct oci_token {
    char *token;              /* access_token, else token (secret) */
    char *refresh_token;      /* or NULL (secret) */
    int64_t expires_in_s;     /* at least 60 */
    berth_unix_ms expires_at; /* wall clock */
} oci_token;

/**
 * Parse a token reply (at most 64 KiB): access_token wins over token, expires_in defaults to 60
 * and is never below 60, issued_at (RFC 3339) is the start when it is sane, else now.
 */
int oci_token_parse(oci_token *out, const void *data, size_t len, berth_unix_ms now,
                    berth_error **err);
/** Wipe and free. Accepts NULL. */
void oci_token_dispose(oci_token *t);

/* ---- credentials ---- */
typedef struct oci_creds {
    char *username;       /* basic, or NULL */
    char *password;       /* basic, or NULL */
    char *identity_token; /* OAuth2 refresh token (docker identitytoken), or NULL */
    char *registry_token; /* bearer token sent as is (registrytoken, lone --creds), or NULL */
} oci_creds;

/** Wipe and free every secret. Accepts NULL. */
void oci_creds_dispose(oci_creds *c);
bool oci_creds_is_empty(const oci_creds *c);
/** --creds: "user:pass" (split on the first ':') or a lone registry token. */
int oci_creds_from_string(oci_creds *out, const char *s, berth_error **err);
/**
 * Credentials for host from a docker config.json. config_path NULL: $DOCKER_CONFIG/config.json,
 * else $HOME/.docker/config.json, else $REGISTRY_AUTH_FILE, else
 * $XDG_RUNTIME_DIR/containers/auth.json (the first that exists). credHelpers[host], else
 * credsStore, else auths[host]. No entry gives empty creds and 0.
 */
int oci_creds_lookup(oci_creds *out, const char *config_path, const char *host, berth_error **err);
/** The docker config key for host: "https://index.docker.io/v1/" for Docker Hub, else host. */
const char *oci_creds_server_url(const char *host);
/**
 * Run `docker-credential-<helper> get` (oci/credhelper.c) with server_url on stdin. "credentials
 * not found" gives empty creds and 0; a helper that fails otherwise gives BERTH_EAUTH.
 */
int oci_credhelper_get(oci_creds *out, const char *helper, const char *server_url,
                       berth_error **err);

/* ---- scope sets ---- */
/** A sorted set of atoms "type:name:action" (e.g. "repository:app:pull"). */
typedef struct oci_scopes {
    char **v;
    size_t n;
} oci_scopes;

/** Add "type:name:a,b" (split into one atom per action). Returns 0 or BERTH_ENOMEM. */
int oci_scopes_add(oci_scopes *s, const char *scope);
/** Add every atom of src. */
int oci_scopes_merge(oci_scopes *s, const oci_scopes *src);
/** Add repository:NAME:actions for a method (GET/HEAD pull, POST/PUT/PATCH pull,push,
 * DELETE delete). */
int oci_scopes_add_for_method(oci_scopes *s, const char *repository, const char *method);
bool oci_scopes_contains(const oci_scopes *have, const oci_scopes *want);
/** The grouped scope strings ("repository:app:pull,push"), heap array of n heap strings. */
int oci_scopes_grouped(char ***out, size_t *n_out, const oci_scopes *s);
void oci_scopes_dispose(oci_scopes *s);

/* ---- per-client auth state ---- */
typedef struct oci_auth oci_auth;

/** creds: opts.creds or NULL (then docker_config lookups per host). */
int oci_auth_new(oci_auth **out, const char *creds, const char *docker_config, berth_error **err);
void oci_auth_free(oci_auth *a);

/**
 * The Authorization header line ("Authorization: ...", heap) to send to host for scopes, or
 * *out NULL when nothing is known yet (first request is anonymous). May fetch a bearer token
 * when the host's challenge is known but no cached token covers scopes.
 */
int oci_auth_header(char **out, oci_auth *a, core_http *h, const char *host,
                    const oci_scopes *scopes, berth_unix_ms now, berth_error **err);
/**
 * Handle a 401 from host: parse www_auth, choose a scheme, obtain credentials or a token for
 * the union of scopes and the challenge's scope. Returns 0 when the request may be retried,
 * else BERTH_EAUTH naming the host (or the code of a failed token request).
 */
int oci_auth_challenge(oci_auth *a, core_http *h, const char *host, const char *www_auth,
                       const oci_scopes *scopes, berth_unix_ms now, berth_error **err);
/** True when a credential was sent to host (so a repeated 401 means "rejected"). */
bool oci_auth_has_creds(oci_auth *a, const char *host);

#endif
