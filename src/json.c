/* The JSON writer behind --json; kept apart from what it prints (bpftool's split). */
#include <inttypes.h>
#include <math.h>
#include "json.h"

void json_init(struct json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->need_comma[0] = false;
}

static void put_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Deeper levels than the table holds share its last slot; output stays valid up to there. */
static bool *slot(struct json *j)
{
	int max = (int)(sizeof(j->need_comma) / sizeof(j->need_comma[0])) - 1;

	return &j->need_comma[j->depth < max ? j->depth : max];
}

static void key(struct json *j, const char *k)
{
	if (*slot(j))
		fputc(',', j->f);
	*slot(j) = true;
	if (k) {
		put_json_string(j->f, k);
		fputc(':', j->f);
	}
}

void json_open(struct json *j, const char *k, char bracket)
{
	if (j->depth || k)
		key(j, k);
	fputc(bracket, j->f);
	j->depth++;
	*slot(j) = false;
}

void json_close(struct json *j, char bracket)
{
	fputc(bracket, j->f);
	if (j->depth)
		j->depth--;
	if (!j->depth)
		fputc('\n', j->f);
}

void json_str(struct json *j, const char *k, const char *val)
{
	key(j, k);
	if (val)
		put_json_string(j->f, val);
	else
		fputs("null", j->f);
}

void json_int(struct json *j, const char *k, int64_t val)
{
	key(j, k);
	fprintf(j->f, "%" PRId64, val);
}

void json_uint(struct json *j, const char *k, uint64_t val)
{
	key(j, k);
	fprintf(j->f, "%" PRIu64, val);
}

void json_hex(struct json *j, const char *k, uint64_t val)
{
	key(j, k);
	fprintf(j->f, "\"0x%" PRIx64 "\"", val);
}

void json_bytes(struct json *j, const char *k, const uint8_t *p, size_t n)
{
	key(j, k);
	fputc('"', j->f);
	for (size_t i = 0; i < n; i++)
		fprintf(j->f, "%s%02x", i ? " " : "", p[i]);
	fputc('"', j->f);
}

void json_bool(struct json *j, const char *k, bool val)
{
	key(j, k);
	fputs(val ? "true" : "false", j->f);
}

void json_raw(struct json *j, const char *k, const char *text)
{
	key(j, k);
	fputs(text ? text : "null", j->f);
}

void json_double(struct json *j, const char *k, double val)
{
	key(j, k);
	if (isfinite(val))
		fprintf(j->f, "%.3f", val);
	else
		fputs("null", j->f);	/* JSON has no NaN or infinity */
}
