/*
 * oci/gzip.h: streaming gzip (RFC 1952) compression and decompression with Intel ISA-L, for the
 * artifact builder, the extractor and diff. Internal to oci/.
 *
 * Threading: each object is used by one thread at a time.
 */
#ifndef BERTH_OCI_GZIP_H
#define BERTH_OCI_GZIP_H

#include <stdint.h>

#include "core/core.h"

/** Where compressed bytes go; return 0 or a negative berth code to stop. */
typedef int (*oci_gz_out_fn)(void *payload, const void *data, size_t len);

/**
 * A gzip compressor. The output is one gzip member with a fixed 10-byte header (MTIME 0, XFL 0,
 * OS 255, no name), so equal input gives equal bytes. Output reaches out_fn in chunks of up to
 * 1 MiB.
 */
typedef struct oci_gz_writer oci_gz_writer;

/** level: ISA-L level 0..3 (anything else is BERTH_EINVAL). */
int oci_gz_writer_new(oci_gz_writer **out, int level, oci_gz_out_fn out_fn, void *payload,
                      berth_error **err);
/** Compress len bytes. A failure of out_fn is returned as is (its error is the caller's). */
int oci_gz_writer_write(oci_gz_writer *w, const void *data, size_t len, berth_error **err);
/** Write the end of the stream (last block, CRC and size trailer). */
int oci_gz_writer_finish(oci_gz_writer *w, berth_error **err);
void oci_gz_writer_free(oci_gz_writer *w);

/**
 * A gzip decompressor for a stream of one or more members. Input is given in pieces; output
 * goes into caller buffers. Header, CRC-32 and ISIZE of each member are checked by ISA-L; bytes
 * after a member must start another member.
 */
typedef struct oci_gunzip oci_gunzip;

int oci_gunzip_new(oci_gunzip **out, berth_error **err);
/**
 * Inflate from (*in, *in_len), advancing them, into out (cap bytes); *produced_out gets the
 * bytes written. Returns when the input is used up or out is full. Errors are BERTH_EINVAL
 * ("corrupt gzip stream ...").
 */
int oci_gunzip_run(oci_gunzip *z, const uint8_t **in, size_t *in_len, uint8_t *out, size_t cap,
                   size_t *produced_out, berth_error **err);
/** True when the stream so far ends exactly at the end of a member (a clean end of input). */
bool oci_gunzip_is_complete(const oci_gunzip *z);
void oci_gunzip_free(oci_gunzip *z);

/**
 * A bounded queue of byte blocks between one producer thread and one consumer thread: the
 * producer's bytes are copied into fixed-size blocks, and it blocks while every block is full
 * (back-pressure). Used to overlap reading, hashing and (de)compression on two cores.
 */
typedef struct oci_blockq oci_blockq;

int oci_blockq_new(oci_blockq **out, size_t nblocks, size_t block_size, berth_error **err);
/** Producer: copy len bytes in, waiting for room. Returns 0, or the abort code once aborted. */
int oci_blockq_put(oci_blockq *q, const void *data, size_t len);
/**
 * Producer, zero-copy: the free space of the block being filled (waiting for a block if needed).
 * Returns 0 with (*buf, *cap), cap > 0, or the abort code. Write into it, then advance.
 */
int oci_blockq_reserve(oci_blockq *q, uint8_t **buf, size_t *cap);
/** Producer: n bytes (at most the reserved cap) were written; a full block is handed over. */
void oci_blockq_advance(oci_blockq *q, size_t n);
/** Producer: hand over the partial block and signal the end of the stream. */
int oci_blockq_close(oci_blockq *q);
/**
 * Consumer: wait for the next block. Returns 1 with (*data, *len), 0 at the end of the stream,
 * or the abort code. The block stays valid until oci_blockq_release or the next get.
 */
int oci_blockq_get(oci_blockq *q, const uint8_t **data, size_t *len);
/** Consumer: give back the block from the last get. */
void oci_blockq_release(oci_blockq *q);
/** Either side: stop the queue; waiting and later calls return code (negative). */
void oci_blockq_abort(oci_blockq *q, int code);
/** The abort code, or 0. */
int oci_blockq_aborted(oci_blockq *q);
void oci_blockq_free(oci_blockq *q);

#endif
