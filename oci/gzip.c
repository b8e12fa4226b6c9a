/*
 * Streaming gzip with Intel ISA-L: the builder compresses artifact layers with it and the
 * extractor and diff inflate layers with it. ISA-L is several times faster than zlib at both,
 * which is most of the cost of pushing and pulling configuration artifacts.
 *
 * Design: the writer emits its own fixed 10-byte gzip header (MTIME 0, XFL 0, OS 255, like Go's
 * compress/gzip) and lets ISA-L write only the deflate data and the CRC/ISIZE trailer
 * (IGZIP_GZIP_NO_HDR), so the bytes depend only on the input and the level. The reader lets
 * ISA-L parse each member header and check each trailer (ISAL_GZIP); when a member ends and
 * input remains, the state is reset for the next member (RFC 1952 allows several members and
 * `cat a.gz b.gz` produces them).
 *
 * The bounded block queue at the end of this file connects the stages of those pipelines (walk
 * and hash -> compress; download -> inflate -> unpack). Its producer owns one slot at a time
 * (`filling`); a slot is handed over whole, so the consumer reads without locks and only the
 * hand-over and the release take the mutex, about twice per MiB.
 */
#include <pthread.h>
#include <string.h>

#include <isa-l/igzip_lib.h>

#include "oci/gzip.h"

#define GZ_OUT_CAP (1u << 20)    /* compressed bytes gathered before out_fn is called */
#define GZ_OUT_LOW (64u * 1024u) /* flush when less than this is free */
#define GZ_IN_STEP (1u << 30)    /* ISA-L counts input in uint32_t */

struct oci_gz_writer {
    struct isal_zstream zs;
    uint8_t *level_buf;
    uint8_t *obuf; /* GZ_OUT_CAP bytes */
    size_t olen;
    oci_gz_out_fn out_fn;
    void *payload;
    bool finished;
};

static const uint8_t gz_header[10] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff};

static uint32_t level_buf_size(int level)
{
    switch (level) {
    case 1:
        return ISAL_DEF_LVL1_DEFAULT;
    case 2:
        return ISAL_DEF_LVL2_DEFAULT;
    case 3:
        return ISAL_DEF_LVL3_DEFAULT;
    default:
        return 0;
    }
}

int oci_gz_writer_new(oci_gz_writer **out, int level, oci_gz_out_fn out_fn, void *payload,
                      berth_error **err)
{
    BERTH_ARG_CHECK(out && out_fn);
    *out = NULL;
    if (level < 0 || level > 3)
        return core_error_set(err, BERTH_EINVAL, "compression level %d is not in 0..3", level);
    oci_gz_writer *w = core_calloc(1, sizeof(*w));
    uint32_t lb = level_buf_size(level);
    if (!w)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    w->obuf = core_malloc(GZ_OUT_CAP);
    w->level_buf = lb ? core_calloc(1, lb) : NULL; /* zeroed: ISA-L may read it before writing */
    if (!w->obuf || (lb && !w->level_buf)) {
        oci_gz_writer_free(w);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    isal_deflate_init(&w->zs);
    w->zs.level = (uint32_t)level;
    w->zs.level_buf = w->level_buf;
    w->zs.level_buf_size = lb;
    w->zs.gzip_flag = IGZIP_GZIP_NO_HDR;
    w->zs.flush = NO_FLUSH;
    memcpy(w->obuf, gz_header, sizeof(gz_header));
    w->olen = sizeof(gz_header);
    w->out_fn = out_fn;
    w->payload = payload;
    *out = w;
    return 0;
}

static int flush_out(oci_gz_writer *w)
{
    int rc = 0;
    if (w->olen > 0)
        rc = w->out_fn(w->payload, w->obuf, w->olen);
    w->olen = 0;
    return rc;
}

/* One isal_deflate call over the current input, flushing the output buffer when low. */
static int deflate_step(oci_gz_writer *w, berth_error **err)
{
    if (GZ_OUT_CAP - w->olen < GZ_OUT_LOW) {
        int rc = flush_out(w);
        if (rc < 0)
            return rc;
    }
    w->zs.next_out = w->obuf + w->olen;
    w->zs.avail_out = (uint32_t)(GZ_OUT_CAP - w->olen);
    int r = isal_deflate(&w->zs);
    w->olen = GZ_OUT_CAP - w->zs.avail_out;
    if (r != COMP_OK)
        return core_error_set(err, BERTH_ERROR, "gzip compression failed (isa-l error %d)", r);
    return 0;
}

int oci_gz_writer_write(oci_gz_writer *w, const void *data, size_t len, berth_error **err)
{
    BERTH_ARG_CHECK(w && !w->finished && (data || len == 0));
    const uint8_t *p = data;
    while (len > 0) {
        uint32_t step = len > GZ_IN_STEP ? GZ_IN_STEP : (uint32_t)len;
        /* isal_deflate takes a non-const pointer but only reads the input. */
        w->zs.next_in = (uint8_t *)(uintptr_t)p;
        w->zs.avail_in = step;
        while (w->zs.avail_in > 0) {
            int rc = deflate_step(w, err);
            if (rc < 0)
                return rc;
        }
        p += step;
        len -= step;
    }
    return 0;
}

int oci_gz_writer_finish(oci_gz_writer *w, berth_error **err)
{
    BERTH_ARG_CHECK(w && !w->finished);
    w->zs.end_of_stream = 1;
    w->zs.next_in = NULL;
    w->zs.avail_in = 0;
    while (w->zs.internal_state.state != ZSTATE_END) {
        int rc = deflate_step(w, err);
        if (rc < 0)
            return rc;
    }
    w->finished = true;
    return flush_out(w);
}

void oci_gz_writer_free(oci_gz_writer *w)
{
    if (!w)
        return;
    core_free(w->level_buf);
    core_free(w->obuf);
    core_free(w);
}

/* ---------------------------------------------------------------- inflate */
struct oci_gunzip {
    struct inflate_state st;
    bool member_done; /* the last member ended with a valid trailer */
    bool started;     /* some input has been seen */
};

int oci_gunzip_new(oci_gunzip **out, berth_error **err)
{
    BERTH_ARG_CHECK(out);
    oci_gunzip *z = core_calloc(1, sizeof(*z));
    if (!z) {
        *out = NULL;
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    isal_inflate_init(&z->st);
    z->st.crc_flag = ISAL_GZIP;
    *out = z;
    return 0;
}

static const char *inflate_reason(int r)
{
    switch (r) {
    case ISAL_INVALID_BLOCK:
        return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
        return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
        return "invalid back-reference distance";
    case ISAL_INVALID_WRAPPER:
        return "bad gzip header";
    case ISAL_UNSUPPORTED_METHOD:
        return "unsupported compression method";
    case ISAL_INCORRECT_CHECKSUM:
        return "crc or length mismatch";
    case ISAL_NEED_DICT:
        return "preset dictionary required";
    default:
        return "unknown error";
    }
}

int oci_gunzip_run(oci_gunzip *z, const uint8_t **in, size_t *in_len, uint8_t *out, size_t cap,
                   size_t *produced_out, berth_error **err)
{
    BERTH_ARG_CHECK(z && in && in_len && out && produced_out);
    size_t produced = 0;
    if (cap > GZ_IN_STEP)
        cap = GZ_IN_STEP;
    while (*in_len > 0 && produced < cap) {
        if (z->member_done) {
            /* More input after a complete member: it must be another member. */
            isal_inflate_reset(&z->st);
            z->st.crc_flag = ISAL_GZIP;
            z->member_done = false;
        }
        z->started = true;
        uint32_t given = *in_len > GZ_IN_STEP ? GZ_IN_STEP : (uint32_t)*in_len;
        z->st.next_in = (uint8_t *)(uintptr_t)*in;
        z->st.avail_in = given;
        z->st.next_out = out + produced;
        z->st.avail_out = (uint32_t)(cap - produced);
        int r = isal_inflate(&z->st);
        size_t used = given - z->st.avail_in;
        size_t made = (cap - produced) - z->st.avail_out;
        *in += used;
        *in_len -= used;
        produced += made;
        if (r < 0) {
            *produced_out = produced;
            return core_error_set(err, BERTH_EINVAL, "corrupt gzip stream: %s", inflate_reason(r));
        }
        if (z->st.block_state == ISAL_BLOCK_FINISH)
            z->member_done = true;
        else if (used == 0 && made == 0)
            break; /* ISA-L wants more input than this piece holds */
    }
    *produced_out = produced;
    return 0;
}

bool oci_gunzip_is_complete(const oci_gunzip *z)
{
    return z && z->started && z->member_done;
}

void oci_gunzip_free(oci_gunzip *z)
{
    core_free(z);
}

/* ---------------------------------------------------------------- block queue */
typedef struct qslot {
    uint8_t *buf;
    size_t len;
} qslot;

struct oci_blockq {
    pthread_mutex_t mu;
    pthread_cond_t not_full;  /* producer waits: ready + held == n */
    pthread_cond_t not_empty; /* consumer waits: ready == 0 */
    qslot *slots;
    size_t n, bs;
    size_t wpos;  /* slot the producer fills (its own while `filling`) */
    bool filling; /* the producer owns slots[wpos]; touched by the producer only */
    size_t rpos;  /* oldest slot handed over */
    size_t ready; /* handed over, not yet taken by the consumer */
    bool held;    /* the consumer holds slot rpos */
    bool eof;
    int abort_code;
};

int oci_blockq_new(oci_blockq **out, size_t nblocks, size_t block_size, berth_error **err)
{
    BERTH_ARG_CHECK(out && nblocks > 0 && block_size > 0);
    *out = NULL;
    oci_blockq *q = core_calloc(1, sizeof(*q));
    if (!q || !(q->slots = core_calloc(nblocks, sizeof(qslot)))) {
        core_free(q);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    q->n = nblocks;
    q->bs = block_size;
    for (size_t i = 0; i < nblocks; i++) {
        if (!(q->slots[i].buf = core_malloc(block_size))) {
            for (size_t j = 0; j < i; j++)
                core_free(q->slots[j].buf);
            core_free(q->slots);
            core_free(q);
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        }
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    *out = q;
    return 0;
}

/* Hand the producer's slot to the consumer. Called with the lock held. */
static void commit_locked(oci_blockq *q)
{
    q->ready++;
    q->wpos = (q->wpos + 1) % q->n;
    q->filling = false;
    pthread_cond_signal(&q->not_empty);
}

int oci_blockq_reserve(oci_blockq *q, uint8_t **buf, size_t *cap)
{
    if (!q->filling) {
        /* Starting a slot: wait until one is neither queued nor held by the consumer. */
        pthread_mutex_lock(&q->mu);
        while (q->ready + (q->held ? 1 : 0) == q->n && !q->abort_code)
            pthread_cond_wait(&q->not_full, &q->mu);
        int code = q->abort_code;
        q->filling = code == 0;
        pthread_mutex_unlock(&q->mu);
        if (code)
            return code;
        q->slots[q->wpos].len = 0;
    }
    qslot *s = &q->slots[q->wpos];
    *buf = s->buf + s->len;
    *cap = q->bs - s->len;
    return 0;
}

void oci_blockq_advance(oci_blockq *q, size_t n)
{
    qslot *s = &q->slots[q->wpos];
    if (BERTH_NEVER(!q->filling || n > q->bs - s->len))
        return;
    s->len += n;
    if (s->len == q->bs) {
        pthread_mutex_lock(&q->mu);
        commit_locked(q);
        pthread_mutex_unlock(&q->mu);
    }
}

int oci_blockq_put(oci_blockq *q, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        uint8_t *buf = NULL;
        size_t cap = 0;
        int rc = oci_blockq_reserve(q, &buf, &cap);
        if (rc < 0)
            return rc;
        size_t take = cap < len ? cap : len;
        memcpy(buf, p, take);
        oci_blockq_advance(q, take);
        p += take;
        len -= take;
    }
    return 0;
}

int oci_blockq_close(oci_blockq *q)
{
    pthread_mutex_lock(&q->mu);
    if (q->filling && q->slots[q->wpos].len > 0 && !q->eof)
        commit_locked(q);
    q->eof = true;
    pthread_cond_broadcast(&q->not_empty);
    int code = q->abort_code;
    pthread_mutex_unlock(&q->mu);
    return code;
}

static void release_locked(oci_blockq *q)
{
    if (!q->held)
        return;
    q->slots[q->rpos].len = 0;
    q->rpos = (q->rpos + 1) % q->n;
    q->held = false;
    pthread_cond_signal(&q->not_full);
}

int oci_blockq_get(oci_blockq *q, const uint8_t **data, size_t *len)
{
    pthread_mutex_lock(&q->mu);
    release_locked(q);
    while (q->ready == 0 && !q->eof && !q->abort_code)
        pthread_cond_wait(&q->not_empty, &q->mu);
    int rc;
    if (q->abort_code) {
        rc = q->abort_code;
    } else if (q->ready == 0) {
        rc = 0; /* eof and drained */
    } else {
        q->ready--;
        q->held = true;
        *data = q->slots[q->rpos].buf;
        *len = q->slots[q->rpos].len;
        rc = 1;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void oci_blockq_release(oci_blockq *q)
{
    pthread_mutex_lock(&q->mu);
    release_locked(q);
    pthread_mutex_unlock(&q->mu);
}

void oci_blockq_abort(oci_blockq *q, int code)
{
    pthread_mutex_lock(&q->mu);
    if (!q->abort_code)
        q->abort_code = code < 0 ? code : BERTH_ERROR;
    pthread_cond_broadcast(&q->not_full);
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

int oci_blockq_aborted(oci_blockq *q)
{
    pthread_mutex_lock(&q->mu);
    int code = q->abort_code;
    pthread_mutex_unlock(&q->mu);
    return code;
}

void oci_blockq_free(oci_blockq *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++)
        core_free(q->slots[i].buf);
    core_free(q->slots);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->mu);
    core_free(q);
}
