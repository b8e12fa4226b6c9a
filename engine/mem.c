/*
 * engine/mem.c: give memory back when the loop goes idle (issue 4: idle RSS under 10 MB at 1,000
 * OCIRepository + Kustomization pairs).
 *
 * Design: after a burst of reconciles the heap holds free chunks that glibc keeps (at the top of
 * each arena and inside it), and the process keeps the pages of the shared libraries it touched
 * (libcrypto, libcurl and the libraries they pull in: about 13 MB at idle, bench/engine-scale.md).
 * When the loop has done work and nothing is due for a while, eng_mem_idle:
 *   1. malloc_trim(0): glibc returns the free pages of every arena to the kernel;
 *   2. with release_pages: madvise(MADV_PAGEOUT) on every clean, file-backed, private mapping of
 *      the process (the text and read-only data of berth and its libraries, never anonymous or
 *      writable memory). The kernel drops them from our resident set at once, and from the page
 *      cache when no other process maps them; the next reconcile faults back what it needs from
 *      the page cache or the disk.
 * Both are only hints: a failure changes nothing and is not reported. Called on the loop thread
 * only, between reconciles; workers, if any, are idle then.
 *
 * glibc-specific (malloc_trim, MADV_PAGEOUT), hence _DEFAULT_SOURCE for this file only; on
 * another libc or an older kernel the calls are left out or fail harmlessly (EINVAL).
 */
#define _DEFAULT_SOURCE 1

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

#include "engine/internal.h"

/* Page out the clean, file-backed, private mappings listed in /proc/self/maps. */
static void release_file_pages(void)
{
#ifdef MADV_PAGEOUT
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];

    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi, off, inode;
        char perms[8], dev[16], path[256] = "";
        /* "lo-hi perms offset dev inode path" */
        if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %255s", &lo, &hi, perms, &off, &dev[0], &inode,
                   path) < 6)
            continue;
        if (inode == 0 || path[0] != '/' || perms[1] == 'w' || perms[3] != 'p')
            continue; /* anonymous, special ([vdso]), writable or shared: keep */
        (void)madvise((void *)lo, hi - lo, MADV_PAGEOUT);
    }
    fclose(f);
#endif
}

void eng_mem_idle(bool release_pages)
{
#if defined(__GLIBC__)
    (void)malloc_trim(0);
#endif
    if (release_pages)
        release_file_pages();
}
