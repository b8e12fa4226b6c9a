/*
 * Corpus replay without libFuzzer: feeds every regular file of a corpus directory to the
 * target's LLVMFuzzerTestOneInput once. Built with gcc into each *_replay binary so every ctest
 * run re-checks the inputs the fuzzers found (SQLite's fuzzcheck, libgit2's standalone driver).
 * Files are visited in name order so a failure is reproducible.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read a whole file into a heap buffer of exactly its size (never NULL on success). */
static int read_file(const char *path, uint8_t **out, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f)
        return -1;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    /* Exact-size copy, so ASan catches a target that reads past the end. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    if (len)
        memcpy(exact, buf, len);
    free(buf);
    *out = exact;
    *len_out = len;
    return 0;
}

int main(int argc, char **argv)
{
    DIR *dir;
    struct dirent *de;
    char **names = NULL;
    size_t n_names = 0, cap = 0, replayed = 0;
    int status = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    if (!(dir = opendir(argv[1]))) {
        fprintf(stderr, "%s: cannot open corpus \"%s\": %s\n", argv[0], argv[1], strerror(errno));
        return 1;
    }
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n_names == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (!nn) {
                status = 1;
                break;
            }
            names = nn;
            cap = ncap;
        }
        size_t l = strlen(de->d_name);
        if (!(names[n_names] = malloc(l + 1))) {
            status = 1;
            break;
        }
        memcpy(names[n_names++], de->d_name, l + 1);
    }
    closedir(dir);
    if (n_names)
        qsort(names, n_names, sizeof(*names), name_cmp);

    for (size_t i = 0; i < n_names && status == 0; i++) {
        size_t plen = strlen(argv[1]) + strlen(names[i]) + 2;
        char *path = malloc(plen);
        struct stat st;
        uint8_t *data = NULL;
        size_t len = 0;
        if (!path) {
            status = 1;
            break;
        }
        snprintf(path, plen, "%s/%s", argv[1], names[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (read_file(path, &data, &len) != 0) {
            fprintf(stderr, "%s: cannot read \"%s\": %s\n", argv[0], path, strerror(errno));
            free(path);
            status = 1;
            break;
        }
        LLVMFuzzerTestOneInput(data, len);
        free(data);
        free(path);
        replayed++;
    }
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    if (status != 0)
        return status;
    printf("replayed %zu inputs from %s\n", replayed, argv[1]);
    if (replayed == 0) {
        fprintf(stderr, "%s: corpus \"%s\" has no inputs\n", argv[0], argv[1]);
        return 1;
    }
    return 0;
}
