/*
 * images/setters.h: the Setters update strategy of ImageUpdateAutomation
 * (image.toolkit.fluxcd.io/v1), internal to libberth.
 *
 * A YAML scalar followed on its line by a comment `# {"$imagepolicy": "NAMESPACE:POLICY"}` is
 * set to the policy's latest image reference; with ":tag", ":name" or ":digest" after the
 * policy name, to that part only. Unlike Flux, which re-serialises every file it touches,
 * only the bytes of the changed scalars are replaced: comments, blank lines, indentation,
 * quoting and line endings of everything else stay byte-for-byte. Thread-safe: no shared state.
 */
#ifndef BERTH_IMAGES_SETTERS_H
#define BERTH_IMAGES_SETTERS_H

#include <stdbool.h>
#include <stddef.h>

#include <berth/buf.h>
#include <berth/error.h>

/** The latest reference of one ImagePolicy (its status.latestRef). Strings are borrowed. */
typedef struct img_policy_result {
    const char *ns;     /* metadata.namespace of the ImagePolicy */
    const char *name;   /* metadata.name */
    const char *image;  /* latestRef.name, "registry.example.com/team/app" */
    const char *tag;    /* latestRef.tag, "1.4.2" */
    const char *digest; /* latestRef.digest "sha256:...", or NULL/"" when not reflected */
} img_policy_result;

/** What a marker asks for. */
typedef enum {
    IMG_SETTER_IMAGE = 0, /* "ns:policy": name:tag, plus @digest when the digest is known */
    IMG_SETTER_TAG,       /* "ns:policy:tag": tag, plus @digest when the digest is known */
    IMG_SETTER_NAME,      /* "ns:policy:name": the image name */
    IMG_SETTER_DIGEST,    /* "ns:policy:digest": the digest (only when it is known) */
} img_setter_field;

/** One scalar that was rewritten. Strings are owned by the report. */
typedef struct img_setter_change {
    size_t line;   /* 1-based line of the scalar's first byte in the input */
    size_t column; /* 1-based column (in characters) */
    size_t offset; /* byte offset of the scalar in the input */
    size_t doc;    /* 0-based index of the YAML document in the stream */
    size_t policy; /* index into the policies array */
    img_setter_field field;
    char *marker;    /* the marker's value, "flux-system:app:tag" */
    char *old_value; /* the scalar's value before, "1.0.0" */
    char *new_value; /* and after, "1.0.1" */
} img_setter_change;

typedef enum {
    IMG_NOTE_UNKNOWN_POLICY = 1, /* no policy of that namespace and name: left untouched */
    IMG_NOTE_UNKNOWN_FIELD,      /* "ns:p:other", or ":digest" without a digest: untouched */
    IMG_NOTE_MALFORMED,          /* a comment naming $imagepolicy that is not a JSON marker */
    IMG_NOTE_NOT_A_SCALAR,       /* a marker after a key with no scalar value on its line */
    IMG_NOTE_ALIAS,              /* a marker after an alias: the anchor is what to mark */
    IMG_NOTE_BLOCK_SCALAR,       /* a marker on a literal or folded block scalar */
} img_setter_note_kind;

/** A marker that was not applied, with the reason. Strings are owned by the report. */
typedef struct img_setter_note {
    img_setter_note_kind kind;
    size_t line;   /* 1-based line of the marker comment */
    char *marker;  /* the marker's value, or the comment text for IMG_NOTE_MALFORMED */
    char *message; /* one lowercase line: "unknown image policy \"ns:p\"" */
} img_setter_note;

/** The outcome of one img_setters_apply call. Caller-owned; img_setter_report_dispose. */
typedef struct img_setter_report {
    img_setter_change *changes; /* in input order */
    size_t n_changes;
    img_setter_note *notes; /* warnings, in input order */
    size_t n_notes;
    size_t *used; /* indices of the policies that some marker names, ascending, distinct */
    size_t n_used;
} img_setter_report;

void img_setter_report_init(img_setter_report *r);
/** Free everything the report holds and empty it. Accepts NULL. */
void img_setter_report_dispose(img_setter_report *r);

/**
 * Rewrite the marked scalars of the YAML stream yaml[0..len) (any number of documents) with
 * the values from policies[0..n), appending the result to out (the input itself when nothing
 * changed). report (may be NULL) must be initialised; the changes, notes and used policies
 * are appended to it. A value already current is left alone and is not a change. Quoting is
 * kept: plain stays plain unless the new value would read back as something other than a
 * string (then it is double-quoted, as Flux does), single and double quotes stay. Aliases,
 * block scalars, keys and unknown policies are never rewritten; they are reported as notes.
 * Returns 0; BERTH_EINVAL when the text is not YAML (message with line and column);
 * BERTH_ENOMEM, or BERTH_EINVAL when out's ceiling is reached.
 */
int img_setters_apply(berth_buf *out, const char *yaml, size_t len,
                      const img_policy_result *policies, size_t n, img_setter_report *report,
                      berth_error **err);

/** One file that img_setters_apply_dir rewrote or has notes about. */
typedef struct img_setter_file {
    char *path;               /* relative to the directory walked, '/'-separated */
    bool changed;             /* the file was rewritten */
    img_setter_report report; /* its changes and notes */
} img_setter_file;

typedef struct img_setter_files {
    img_setter_file *files; /* in path order */
    size_t n;
} img_setter_files;

void img_setter_files_dispose(img_setter_files *f);

/** Largest file img_setters_apply_dir reads. */
#define IMG_SETTERS_MAX_FILE (16u * 1024 * 1024)

/**
 * Apply the setters to every *.yaml and *.yml regular file under dir, recursively, in name
 * order. Hidden entries (".git", ".cache.yaml") are skipped and symbolic links are not
 * followed. A file that does not contain "$imagepolicy" is not parsed, so templates that are
 * not YAML may live next to manifests. Changed files are replaced atomically with their mode
 * kept. out (initialise with {0}) receives the files changed or with notes. Returns 0, or an
 * error naming the file (not YAML, too large, unreadable, not writable); files written before
 * the error stay written and are listed in out.
 */
int img_setters_apply_dir(img_setter_files *out, const char *dir, const img_policy_result *policies,
                          size_t n, berth_error **err);

#endif
