/*
 * Fuzz target for the archive path of pulls: arbitrary bytes go through berth_extractor (gzip
 * sniffing, ISA-L inflate, libarchive's tar reader, name checks, file creation) into a fresh
 * temporary directory, which is removed afterwards. A crash, sanitizer report or leak is a bug;
 * a returned error is the expected outcome for most inputs. Anything written must stay inside
 * the directory: the target checks that nothing appears beside it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <berth/artifact.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char parent[] = "/tmp/berth-fuzz-tar-XXXXXX";
    berth_extractor *x = NULL;
    berth_error *err = NULL;
    berth_extract_opts opts = BERTH_EXTRACT_OPTS_INIT;
    char *dir = NULL, *beside = NULL;

    if (!mkdtemp(parent))
        abort();
    dir = core_sprintf("%s/out", parent);
    beside = core_sprintf("%s/x", parent);
    if (!dir || !beside || core_fs_mkdirs(dir, 0700, NULL) < 0)
        abort();
    opts.max_bytes = 16 << 20; /* keep bombs cheap */
    opts.max_entries = 2000;
    if (berth_extractor_new(&x, dir, &opts, &err) == 0) {
        /* Feed in uneven pieces so block boundaries fall inside headers. */
        size_t off = 0, step = 1;
        while (off < size) {
            size_t n = size - off < step ? size - off : step;
            if (berth_extractor_write(x, data + off, n) < 0)
                break;
            off += n;
            step = step * 7 + 3;
        }
        (void)berth_extractor_finish(x, NULL, &err);
    }
    /* Errors are expected; only their handling is under test. */
    berth_error_free(err);
    berth_extractor_free(x);
    if (core_fs_exists(beside))
        abort(); /* something escaped the extraction directory */
    if (core_fs_remove_all(parent, NULL) < 0)
        abort();
    core_free(dir);
    core_free(beside);
    return 0;
}
