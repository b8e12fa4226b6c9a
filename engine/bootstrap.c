/*
 * engine/bootstrap.c: the files `berth bootstrap` puts into the artifact and onto a host, and
 * what `berth uninstall` removes (include/berth/bootstrap.h, docs/edge.md).
 *
 * Design: everything written is derived from berth_bootstrap_opts alone, byte for byte, so a
 * second run compares and finds nothing to do. The sync objects are rendered as text (not
 * through a YAML emitter) because their shape is fixed and every user value is either checked
 * (tag, duration, PEM) or double-quoted. The host never rewrites its own config or trust root
 * from the registry: only a local `berth bootstrap --host` changes ROOT/etc/berth.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/bootstrap.h>
#include <berth/oci.h>

#include "core/core.h"
#include "engine/config.h"
#include "engine/deploy.h"
#include "engine/state.h"
#include "engine/target.h"

#define NAME BERTH_BOOTSTRAP_NAME
#define MAX_FILE_BYTES (1u << 20) /* config ceiling (style.md 2.5) */

const char *berth_bootstrap_state_name(berth_bootstrap_state s)
{
    static const char *const names[] = {"created", "updated", "unchanged", "removed", "absent"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

void berth_bootstrap_files_free(berth_bootstrap_file *files, size_t n)
{
    for (size_t i = 0; files && i < n; i++)
        core_free(files[i].path);
    core_free(files);
}

static int nomem(berth_error **err)
{
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

/* ------------------------------------------------------------------ rendering */

/* A Kubernetes object name (DNS subdomain): what a Secret may be called. */
static bool secret_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' ||
              s[i] == '.'))
            return false;
    return true;
}

static int check_opts(const berth_bootstrap_opts *o, berth_error **err)
{
    const char *const secrets[] = {o ? o->registry_secret : NULL,
                                   o ? o->registry_cert_secret : NULL,
                                   o ? o->image_pull_secret : NULL};
    int64_t ms;

    if (!o || o->version != BERTH_BOOTSTRAP_OPTS_VERSION)
        return core_error_set(err, BERTH_EINVAL, "bootstrap options: unknown version");
    if (!o->url || !core_str_has_prefix(o->url, "oci://") || strlen(o->url) <= 6 ||
        strpbrk(o->url + 6, "\"\\\n\r\t @"))
        return core_error_set(err, BERTH_EINVAL, "invalid url \"%s\": want oci://REG/REPO",
                              o->url ? o->url : "");
    if (!o->tag || !berth_oci_tag_is_valid(o->tag))
        return core_error_set(err, BERTH_EINVAL, "invalid tag \"%s\"", o->tag ? o->tag : "");
    if (o->interval && eng_duration_parse(&ms, o->interval, true, err) < 0)
        return core_error_wrap(err, "--interval");
    if (o->kube && o->image && eng_bootstrap_image_check(o->image, err) < 0)
        return BERTH_EINVAL;
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (secrets[i] && !secret_name_ok(secrets[i]))
            return core_error_set(err, BERTH_EINVAL,
                                  "invalid Secret name \"%s\": want a lowercase DNS name",
                                  secrets[i]);
    return 0;
}

int berth_bootstrap_sync_yaml(berth_buf *out, const berth_bootstrap_opts *o, berth_error **err)
{
    int rc;

    BERTH_ARG_CHECK(out);
    if ((rc = check_opts(o, err)) < 0)
        return rc;
    rc = berth_buf_printf(out,
                          "# Written by berth bootstrap: the registry artifact this host follows.\n"
                          "# Change it by running berth bootstrap again (docs/edge.md).\n"
                          "apiVersion: source.toolkit.fluxcd.io/v1\n"
                          "kind: OCIRepository\n"
                          "metadata:\n  name: " NAME "\n  namespace: " NAME "\n"
                          "spec:\n  interval: %s\n  url: \"%s\"\n  ref:\n    tag: \"%s\"\n",
                          o->interval ? o->interval : "1m", o->url, o->tag);
    if (rc == 0 && o->insecure)
        rc = berth_buf_puts(out, "  insecure: true\n");
    if (rc == 0 && o->registry_secret)
        rc = berth_buf_printf(out, "  secretRef:\n    name: %s\n", o->registry_secret);
    if (rc == 0 && o->registry_cert_secret)
        rc = berth_buf_printf(out, "  certSecretRef:\n    name: %s\n", o->registry_cert_secret);
    if (rc == 0 && o->pubkey_pem)
        rc = berth_buf_puts(out, "  verify:\n    provider: cosign\n    secretRef:\n"
                                 "      name: " NAME "-verify\n");
    if (rc == 0)
        rc = berth_buf_puts(out, "---\n"
                                 "apiVersion: kustomize.toolkit.fluxcd.io/v1\n"
                                 "kind: Kustomization\n"
                                 "metadata:\n  name: " NAME "\n  namespace: " NAME "\n"
                                 "spec:\n  interval: 10m\n  retryInterval: 1m\n  path: ./\n"
                                 "  prune: true\n  sourceRef:\n    kind: OCIRepository\n"
                                 "    name: " NAME "\n");
    return rc < 0 ? nomem(err) : 0;
}

int berth_bootstrap_key_yaml(berth_buf *out, const berth_bootstrap_opts *o, berth_error **err)
{
    const char *p, *end;
    int rc;

    BERTH_ARG_CHECK(out && o);
    if (!o->pubkey_pem || o->pubkey_len == 0)
        return core_error_set(err, BERTH_EINVAL, "no public key given");
    end = o->pubkey_pem + o->pubkey_len;
    if (!core_str_has_prefix(o->pubkey_pem, "-----BEGIN "))
        return core_error_set(err, BERTH_EINVAL, "public key is not a PEM text");
    for (p = o->pubkey_pem; p < end; p++) {
        if ((*p < 0x20 || *p > 0x7e) && *p != '\n')
            return core_error_set(err, BERTH_EINVAL, "public key is not a PEM text");
    }
    rc =
        berth_buf_puts(out, "# Written by berth bootstrap: the key artifacts must be signed with.\n"
                            "apiVersion: v1\nkind: Secret\n"
                            "metadata:\n  name: " NAME "-verify\n  namespace: " NAME "\n"
                            "stringData:\n  cosign.pub: |\n");
    for (p = o->pubkey_pem; rc == 0 && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n)
            rc = berth_buf_printf(out, "    %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
    return rc < 0 ? nomem(err) : 0;
}

static int unit_render(berth_buf *out, const berth_bootstrap_opts *o, berth_error **err)
{
    const char *bin = o->berth_bin ? o->berth_bin : "/usr/bin/berth";
    const char *s = eng_deploy_host_unit, *at;
    int rc = 0;

    /* systemd splits ExecStart on spaces and expands '%' specifiers: refuse what would change */
    if (bin[0] != '/' || strpbrk(bin, " \t\n\r%\\\"'$;"))
        return core_error_set(err, BERTH_EINVAL,
                              "berth binary path \"%s\": want an absolute path without spaces, "
                              "quotes, '%%', '$' or '\\'",
                              bin);
    while (rc == 0 && (at = strstr(s, "@BERTH_BIN@")) != NULL) {
        if ((rc = berth_buf_put(out, s, (size_t)(at - s))) == 0)
            rc = berth_buf_puts(out, bin);
        s = at + strlen("@BERTH_BIN@");
    }
    if (rc == 0)
        rc = berth_buf_puts(out, s);
    return rc < 0 ? nomem(err) : 0;
}

/* ------------------------------------------------------------------ files */

/* Make path hold data with mode; report what that took. */
static int file_sync(berth_bootstrap_state *state_out, const char *path, const berth_buf *data,
                     mode_t mode, bool dry_run, berth_error **err)
{
    berth_buf cur = BERTH_BUF_INIT;
    struct stat st;
    int rc;

    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return core_error_errno(err, errno, "reading \"%s\"", path);
        *state_out = BERTH_BOOTSTRAP_CREATED;
    } else if (!S_ISREG(st.st_mode)) {
        return core_error_set(err, BERTH_EINVAL, "\"%s\" exists and is not a regular file", path);
    } else {
        if ((rc = core_fs_read_file(&cur, path, MAX_FILE_BYTES, err)) < 0)
            return rc;
        *state_out =
            cur.len == data->len && (st.st_mode & 07777) == mode &&
                    memcmp(cur.ptr ? cur.ptr : "", data->ptr ? data->ptr : "", data->len) == 0
                ? BERTH_BOOTSTRAP_UNCHANGED
                : BERTH_BOOTSTRAP_UPDATED;
        berth_buf_dispose(&cur);
    }
    if (dry_run || *state_out == BERTH_BOOTSTRAP_UNCHANGED)
        return 0;
    if ((rc = core_fs_write_atomic(path, data->ptr ? data->ptr : "", data->len, mode, err)) < 0)
        return rc;
    if (chmod(path, mode) != 0) /* the umask may have narrowed it */
        return core_error_errno(err, errno, "chmod \"%s\"", path);
    return 0;
}

/* Remove path if it is there. */
static int file_remove(berth_bootstrap_state *state_out, const char *path, bool dry_run,
                       berth_error **err)
{
    struct stat st;

    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return core_error_errno(err, errno, "reading \"%s\"", path);
        *state_out = BERTH_BOOTSTRAP_ABSENT;
        return 0;
    }
    *state_out = BERTH_BOOTSTRAP_REMOVED;
    if (!dry_run && unlink(path) != 0)
        return core_error_errno(err, errno, "removing \"%s\"", path);
    return 0;
}

static int files_add(berth_bootstrap_file **files, size_t *n, const char *path,
                     berth_bootstrap_state state, berth_error **err)
{
    berth_bootstrap_file *grown = core_realloc(*files, (*n + 1) * sizeof(**files));
    if (!grown)
        return nomem(err);
    *files = grown;
    if (!(grown[*n].path = core_strdup(path)))
        return nomem(err);
    grown[(*n)++].state = state;
    return 0;
}

static int root_check(const char *root, berth_error **err)
{
    if (!root || !*root)
        return core_error_set(err, BERTH_EINVAL, "empty root directory");
    if (!core_fs_is_dir(root))
        return core_error_set(err, core_fs_exists(root) ? BERTH_EINVAL : BERTH_ENOTFOUND,
                              "root \"%s\" is not a directory", root);
    return 0;
}

/* "root" + "/etc/..." without doubling the slash of "/". */
static char *root_path(const char *root, const char *abs)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (n == 1 && root[0] == '/')
        n = 0;
    return core_sprintf("%.*s%s", (int)n, root, abs);
}

#define HOST_CONFIG_DIR "/etc/berth"
#define HOST_SYNC "/etc/berth/sync.yaml"
#define HOST_KEY "/etc/berth/verify-key.yaml"
#define HOST_UNIT_DIR "/etc/systemd/system"
#define HOST_UNIT "/etc/systemd/system/berth.service"

int berth_bootstrap_host_install(berth_bootstrap_file **files_out, size_t *n_out, const char *root,
                                 const berth_bootstrap_opts *opts, bool dry_run, berth_error **err)
{
    static const char *const targets[3] = {HOST_SYNC, HOST_KEY, HOST_UNIT};
    berth_buf data[3] = {BERTH_BUF_INIT, BERTH_BUF_INIT, BERTH_BUF_INIT};
    berth_bootstrap_file *files = NULL;
    char *path = NULL, *dir = NULL;
    size_t n = 0;
    int rc;

    BERTH_ARG_CHECK(files_out && n_out && opts);
    *files_out = NULL;
    *n_out = 0;
    if ((rc = root_check(root, err)) < 0 ||
        (rc = berth_bootstrap_sync_yaml(&data[0], opts, err)) < 0 ||
        (opts->pubkey_pem && (rc = berth_bootstrap_key_yaml(&data[1], opts, err)) < 0) ||
        (rc = unit_render(&data[2], opts, err)) < 0)
        goto out;
    for (int i = 0; i < 2 && !dry_run; i++) {
        if (!(dir = root_path(root, i == 0 ? HOST_CONFIG_DIR : HOST_UNIT_DIR))) {
            rc = nomem(err);
            goto out;
        }
        if ((rc = core_fs_mkdirs(dir, 0755, err)) < 0)
            goto out;
        core_free(dir);
        dir = NULL;
    }
    for (int i = 0; i < 3; i++) {
        berth_bootstrap_state st = BERTH_BOOTSTRAP_UNCHANGED; /* set by both calls on success */
        if (!(path = root_path(root, targets[i]))) {
            rc = nomem(err);
            goto out;
        }
        if (i == 1 && !opts->pubkey_pem)
            rc = file_remove(&st, path, dry_run, err);
        else
            rc = file_sync(&st, path, &data[i], 0644, dry_run, err);
        if (rc < 0)
            goto out;
        if (!(i == 1 && st == BERTH_BOOTSTRAP_ABSENT) &&
            (rc = files_add(&files, &n, path, st, err)) < 0)
            goto out;
        core_free(path);
        path = NULL;
    }
    *files_out = files;
    *n_out = n;
    files = NULL;
out:
    berth_bootstrap_files_free(files, n);
    core_free(path);
    core_free(dir);
    for (int i = 0; i < 3; i++)
        berth_buf_dispose(&data[i]);
    return rc;
}

int berth_bootstrap_host_uninstall(berth_bootstrap_file **files_out, size_t *n_out,
                                   const char *root, berth_error **err)
{
    static const char *const targets[3] = {HOST_UNIT, HOST_SYNC, HOST_KEY};
    berth_bootstrap_file *files = NULL;
    char *path = NULL;
    size_t n = 0;
    int rc;

    BERTH_ARG_CHECK(files_out && n_out);
    *files_out = NULL;
    *n_out = 0;
    if ((rc = root_check(root, err)) < 0)
        return rc;
    for (int i = 0; i < 3; i++) {
        berth_bootstrap_state st;
        if (!(path = root_path(root, targets[i]))) {
            rc = nomem(err);
            goto out;
        }
        if ((rc = file_remove(&st, path, false, err)) < 0 ||
            (rc = files_add(&files, &n, path, st, err)) < 0)
            goto out;
        core_free(path);
        path = NULL;
    }
    if (!(path = root_path(root, HOST_CONFIG_DIR))) {
        rc = nomem(err);
        goto out;
    }
    if (rmdir(path) != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST) {
        rc = core_error_errno(err, errno, "removing \"%s\"", path);
        goto out;
    }
    *files_out = files;
    *n_out = n;
    files = NULL;
out:
    berth_bootstrap_files_free(files, n);
    core_free(path);
    return rc;
}

/* ------------------------------------------------------------------ staging */

static int copy_file(const char *from, const char *to, mode_t mode, berth_error **err)
{
    char block[65536];
    int in = open(from, O_RDONLY | O_NOFOLLOW);
    int out_fd = -1, rc = 0;
    ssize_t got;

    if (in < 0)
        return core_error_errno(err, errno, "opening \"%s\"", from);
    if ((out_fd = open(to, O_WRONLY | O_CREAT | O_EXCL, mode & 0755)) < 0) {
        rc = core_error_errno(err, errno, "creating \"%s\"", to);
        goto out;
    }
    while ((got = read(in, block, sizeof(block))) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = core_error_errno(err, errno, "reading \"%s\"", from);
            goto out;
        }
        if (core_fs_write_all(out_fd, block, (size_t)got) != 0) {
            rc = core_error_errno(err, errno, "writing \"%s\"", to);
            goto out;
        }
    }
out:
    if (out_fd >= 0 && close(out_fd) != 0 && rc == 0)
        rc = core_error_errno(err, errno, "writing \"%s\"", to);
    close(in);
    return rc;
}

/* Copy the regular files and directories under from into the existing directory to. */
static int copy_tree(const char *from, const char *to, int depth, berth_error **err)
{
    DIR *d;
    struct dirent *de;
    int rc = 0;

    if (depth > 64)
        return core_error_set(err, BERTH_EINVAL, "\"%s\": directories nested too deep", from);
    if (!(d = opendir(from)))
        return core_error_errno(err, errno, "reading directory \"%s\"", from);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char *src, *dst;
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        src = core_sprintf("%s/%s", from, de->d_name);
        dst = core_sprintf("%s/%s", to, de->d_name);
        if (!src || !dst)
            rc = nomem(err);
        else if (lstat(src, &st) != 0)
            rc = core_error_errno(err, errno, "reading \"%s\"", src);
        else if (S_ISDIR(st.st_mode) && mkdir(dst, 0755) != 0)
            rc = core_error_errno(err, errno, "creating \"%s\"", dst);
        else if (S_ISDIR(st.st_mode))
            rc = copy_tree(src, dst, depth + 1, err);
        else if (S_ISREG(st.st_mode))
            rc = copy_file(src, dst, st.st_mode, err);
        /* symlinks, devices, sockets: skipped, as the artifact builder skips them */
        core_free(src);
        core_free(dst);
    }
    closedir(d);
    return rc;
}

static int stage_write(const char *dir, const char *name, const berth_buf *b, berth_error **err)
{
    char *path = core_sprintf("%s/%s/%s", dir, NAME, name);
    int rc;
    if (!path)
        return nomem(err);
    if (unlink(path) != 0 && errno != ENOENT)
        rc = core_error_errno(err, errno, "replacing \"%s\"", path);
    else
        rc = core_fs_write_atomic(path, b->ptr ? b->ptr : "", b->len, 0644, err);
    core_free(path);
    return rc;
}

int berth_bootstrap_stage(char **dir_out, const char *src_dir, const char *parent,
                          const berth_bootstrap_opts *opts, berth_error **err)
{
    berth_buf sync = BERTH_BUF_INIT, key = BERTH_BUF_INIT, kfile = BERTH_BUF_INIT;
    char *dir = NULL, *sys = NULL;
    struct stat st;
    int rc;

    BERTH_ARG_CHECK(dir_out && src_dir && parent && opts);
    *dir_out = NULL;
    if (stat(src_dir, &st) != 0)
        return core_error_errno(err, errno, "--path \"%s\"", src_dir);
    if (!S_ISDIR(st.st_mode))
        return core_error_set(err, BERTH_EINVAL, "--path \"%s\" is not a directory", src_dir);
    if ((rc = berth_bootstrap_sync_yaml(&sync, opts, err)) < 0 ||
        (opts->pubkey_pem && (rc = berth_bootstrap_key_yaml(&key, opts, err)) < 0))
        goto out;
    if (opts->kube)
        rc = eng_bootstrap_kube_kfile(&kfile, opts);
    else
        rc = berth_buf_printf(&kfile,
                              "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                              "resources:\n  - sync.yaml\n%s",
                              opts->pubkey_pem ? "  - verify-key.yaml\n" : "");
    if (rc < 0) {
        rc = nomem(err);
        goto out;
    }
    if ((rc = core_fs_mkdtemp(&dir, parent, ".berth-bootstrap-", err)) < 0 ||
        (rc = copy_tree(src_dir, dir, 0, err)) < 0)
        goto out;
    if (!(sys = core_sprintf("%s/%s", dir, NAME))) {
        rc = nomem(err);
        goto out;
    }
    if ((mkdir(sys, 0755) != 0 && errno != EEXIST) || !core_fs_is_dir(sys)) {
        rc = core_error_set(err, BERTH_EINVAL, "\"%s/%s\" exists and is not a directory", src_dir,
                            NAME);
        goto out;
    }
    if ((rc = stage_write(dir, "kustomization.yaml", &kfile, err)) < 0 ||
        (rc = stage_write(dir, "sync.yaml", &sync, err)) < 0 ||
        (opts->pubkey_pem && (rc = stage_write(dir, "verify-key.yaml", &key, err)) < 0) ||
        (opts->kube && (rc = eng_bootstrap_kube_stage(sys, err)) < 0))
        goto out;
    *dir_out = dir;
    dir = NULL;
out:
    if (dir)
        berth_bootstrap_unstage(dir);
    core_free(sys);
    berth_buf_dispose(&sync);
    berth_buf_dispose(&key);
    berth_buf_dispose(&kfile);
    return rc;
}

void berth_bootstrap_unstage(char *dir)
{
    berth_error *ignored = NULL;
    if (!dir)
        return;
    /* best effort: a leftover temp directory is harmless and named .berth-bootstrap-* */
    core_fs_remove_all(dir, &ignored);
    berth_error_free(ignored);
    core_free(dir);
}

/* ------------------------------------------------------------------ prune */

static int prune_one(size_t *pruned, eng_state *st, eng_target *t, const char *ns, const char *name,
                     berth_error **err)
{
    eng_inventory inv = ENG_INVENTORY_INIT;
    eng_plan plan;
    int rc;

    eng_plan_init(&plan);
    if ((rc = eng_state_inventory_read(&inv, st, ns, name, err)) < 0)
        goto out;
    if ((rc = eng_target_prune(t, &plan, &inv, err)) < 0) {
        rc = core_error_wrap(err, "pruning Kustomization %s/%s", ns, name);
        goto out;
    }
    for (size_t i = 0; i < plan.len; i++)
        *pruned += plan.changes[i].action == ENG_CHANGE_DELETE;
    rc = eng_state_inventory_remove(st, ns, name, err);
out:
    eng_plan_dispose(&plan);
    eng_inventory_dispose(&inv);
    return rc;
}

int berth_bootstrap_prune(size_t *pruned_out, const char *state_dir, const char *target_dir,
                          berth_error **err)
{
    eng_state *st = NULL;
    eng_target *t = NULL;
    char *inv_dir = NULL, *ns_dir = NULL;
    DIR *d = NULL, *nd = NULL;
    struct dirent *de, *ne;
    int rc;

    BERTH_ARG_CHECK(pruned_out && state_dir && target_dir);
    *pruned_out = 0;
    if (!core_fs_is_dir(state_dir))
        return 0;
    if ((rc = eng_state_open(&st, state_dir, NULL, err)) < 0 ||
        (rc = eng_target_dir_new(&t, target_dir, err)) < 0)
        goto out;
    if (!(inv_dir = core_sprintf("%s/inventory", state_dir))) {
        rc = nomem(err);
        goto out;
    }
    if (!(d = opendir(inv_dir))) {
        rc = errno == ENOENT ? 0 : core_error_errno(err, errno, "reading \"%s\"", inv_dir);
        goto out;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        core_free(ns_dir);
        if (!(ns_dir = core_sprintf("%s/%s", inv_dir, de->d_name))) {
            rc = nomem(err);
            break;
        }
        if (!core_fs_is_dir(ns_dir) || !(nd = opendir(ns_dir)))
            continue;
        while (rc == 0 && (ne = readdir(nd)) != NULL) {
            size_t len = strlen(ne->d_name);
            char *name;
            if (ne->d_name[0] == '.' || !core_str_has_suffix(ne->d_name, ".json"))
                continue;
            if (!(name = core_strndup(ne->d_name, len - 5))) {
                rc = nomem(err);
                break;
            }
            rc = prune_one(pruned_out, st, t, de->d_name, name, err);
            core_free(name);
        }
        closedir(nd);
        nd = NULL;
    }
out:
    if (d)
        closedir(d);
    core_free(ns_dir);
    core_free(inv_dir);
    eng_target_free(t);
    eng_state_free(st);
    return rc;
}
