/* Run records: one JSON object per run, appended as one line to a JSONL file, and read back.
 *
 * Fields, in the order written: time (ISO 8601 UTC), commit, task, backbone, preset,
 * options {}, protocol, protocol_hash, off_protocol, overrides [], seed, device,
 * precision, params, flops_per_sample, metrics {}, samples_per_s, wall_s, then any
 * extra fields. A NULL string is written as null; a non-finite number (a diverged
 * loss) as null and read back as NaN; other numbers with 15 significant digits. An append is one write() of the whole line
 * (O_APPEND, then fsync), so concurrent runs appending to one history file never
 * interleave within a line. */
#ifndef IMB_RECORD_H
#define IMB_RECORD_H
#include <stddef.h>
#include <stdint.h>
#include "protocol.h"

typedef enum { IMB_KV_NUM, IMB_KV_STR, IMB_KV_JSON } imb_kv_type;
/* str holds the string value, or the JSON text of a nested value (IMB_KV_JSON). */
typedef struct imb_kv { char *key; imb_kv_type type; double num; char *str; } imb_kv;
typedef struct imb_kvlist { imb_kv *v; int n, cap; } imb_kvlist;

typedef struct imb_record {
    char *time;        /* NULL: the time of writing */
    char *commit;      /* NULL: the commit this program was built from (imb_git_commit) */
    char *task, *backbone, *preset, *protocol, *protocol_hash, *device, *precision;
    int off_protocol;
    uint64_t seed;
    int64_t params;
    double flops_per_sample, samples_per_s, wall_s;
    imb_kvlist options, metrics, extra;
    char **overrides;
    int n_overrides;
} imb_record;

/* Zeroes r. Every string is owned by the record (set through the functions below). */
void imb_record_init(imb_record *r);
void imb_record_free(imb_record *r);

/* Sets a standard string field by its JSON name ("task", "backbone", "preset",
 * "protocol", "protocol_hash", "device", "precision", "time", "commit"); value NULL
 * clears it. -1 for another name or out of memory. */
int imb_record_set(imb_record *r, const char *field, const char *value);
/* Name/value pairs; setting a name again replaces its value. */
int imb_record_option(imb_record *r, const char *key, const char *value);
int imb_record_option_num(imb_record *r, const char *key, double value);
int imb_record_metric(imb_record *r, const char *name, double value);
int imb_record_override(imb_record *r, const char *assignment);
/* Free top-level fields; a standard name is refused (-1). json: any JSON text. */
int imb_record_extra_num(imb_record *r, const char *key, double value);
int imb_record_extra_str(imb_record *r, const char *key, const char *value);
int imb_record_extra_json(imb_record *r, const char *key, const char *json);
/* Copies protocol name, hash, off_protocol, the overrides and train.seed. */
int imb_record_set_protocol(imb_record *r, const imb_protocol *p);

/* The record as one line of compact JSON, without newline (malloc'd; NULL with err). */
char *imb_record_to_json(const imb_record *r, char *err, size_t errn);
/* Appends the record and a newline to path (created 0644 when missing). */
int imb_record_append(const imb_record *r, const char *path, char *err, size_t errn);

/* Parses one JSON object into out (initialised here; free with imb_record_free).
 * Standard fields must have their types; other fields land in extra. */
int imb_record_from_json(const char *line, imb_record *out, char *err, size_t errn);
/* Reads every record of a JSONL file (blank lines skipped) into a malloc'd array.
 * strict: a broken line fails the read with "<path>:<line>: <what>". Not strict:
 * broken lines are skipped and the first one is described in err. Returns the number
 * of lines skipped, or -1 on error (then *out is NULL). */
int imb_record_read(const char *path, imb_record **out, int *n, int strict, char *err, size_t errn);
void imb_records_free(imb_record *v, int n);

/* The source commit this program was built from ("unknown" outside git; "-dirty"
 * when the tree had changes). */
const char *imb_git_commit(void);
/* Current UTC time as "2026-11-24T08:15:02Z". */
void imb_time_iso8601(char *buf, size_t n);
#endif
