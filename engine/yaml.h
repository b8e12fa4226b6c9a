/*
 * engine/yaml.h: YAML documents <-> jansson trees for the build stage (internal, prefix eng_).
 *
 * Reading follows what kustomize (kyaml on go-yaml v3) makes of a manifest: the YAML 1.2 core
 * schema for plain scalars (null, true/false, Go-style integers, floats), quoted and block
 * scalars are strings, aliases are expanded, `<<` merge keys are applied, duplicate keys are an
 * error. Keys keep their order. Empty documents are dropped.
 *
 * Timestamps and .inf/.nan stay strings with their source text (jansson has no such values);
 * a NUL character in a scalar is refused.
 *
 * Quoting marks: Flux runs post-build substitution on the YAML text of each object, so whether a
 * "${var}" was quoted in the source decides whether "8080" comes back as a string or a number.
 * With ENG_YAML_MARK_QUOTED, a quoted or block string holding "${" carries its source style in
 * a hidden tail after a NUL byte (C string functions and strcmp never see it); the emitter writes
 * it back in that style. eng_yaml_unmark removes the tails; eng_build does so before it returns.
 */
#ifndef BERTH_ENGINE_YAML_H
#define BERTH_ENGINE_YAML_H

#include <jansson.h>

#include <berth/buf.h>
#include <berth/error.h>

/* eng_yaml_parse flags */
#define ENG_YAML_TEXT_SCALARS 0x1u /* plain non-null scalars stay strings (their source text) */
#define ENG_YAML_MARK_QUOTED 0x2u  /* mark quoted/block strings holding "${" with their style */
#define ENG_YAML_YAML11_BOOLS 0x4u /* plain y/yes/on/n/no/off (any case form) are booleans */

#define ENG_YAML_MAX_DEPTH 200      /* nesting of collections */
#define ENG_YAML_MAX_NODES 2000000u /* nodes per stream, aliases expanded (billion laughs) */

/**
 * Parse a YAML stream into *docs_out, a new JSON array holding one value per non-empty
 * document. name is used in messages ("parsing \"<name>\": line 3 column 7: ..."). Returns 0,
 * BERTH_ENOMEM, or BERTH_EINVAL for malformed YAML, duplicate keys, unsupported keys
 * (collections as keys), unknown aliases, too deep nesting or too many nodes. Thread-safe.
 */
int eng_yaml_parse(json_t **docs_out, const char *data, size_t len, unsigned flags,
                   const char *name, berth_error **err);

/**
 * Append the documents of the JSON array docs to out as block YAML, separated by "---" lines,
 * keys in stored order, two-space indent, no line wrapping. Strings that would read back as
 * another type (under YAML 1.2 or 1.1) are quoted. An empty array appends nothing.
 * Returns 0, BERTH_ENOMEM or BERTH_EINVAL (a value YAML can not hold).
 */
int eng_yaml_emit(berth_buf *out, const json_t *docs, berth_error **err);

/** Append one document (no separator). Same rules and codes as eng_yaml_emit. */
int eng_yaml_emit_doc(berth_buf *out, const json_t *doc, berth_error **err);

/** The source style of a marked string ('d' double, 's' single, 'l' literal, 'f' folded) or 0. */
char eng_yaml_mark(const json_t *s);

/** Length of the visible part of a string value (before a mark); 0 for non-strings. */
size_t eng_yaml_strlen(const json_t *s);

/** Remove every mark in the tree (in place). Returns 0 or BERTH_ENOMEM. */
int eng_yaml_unmark(json_t *v);

/**
 * True when a plain scalar with this text would not read back as the same string under
 * YAML 1.2 core or YAML 1.1 (numbers, booleans, null, timestamps, ...): it must be quoted.
 */
bool eng_yaml_plain_is_ambiguous(const char *s, size_t len);

#endif
