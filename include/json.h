/* A small streaming JSON writer: objects, arrays, strings, numbers, booleans. */
#ifndef LP_JSON_H
#define LP_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct json {
	FILE *f;
	int depth;
	bool need_comma[64];
};

void json_init(struct json *j, FILE *f);
void json_open(struct json *j, const char *key, char bracket);	/* key NULL inside arrays */
void json_close(struct json *j, char bracket);
void json_str(struct json *j, const char *key, const char *val);	/* val NULL -> null */
void json_int(struct json *j, const char *key, int64_t val);
void json_uint(struct json *j, const char *key, uint64_t val);
void json_hex(struct json *j, const char *key, uint64_t val);	/* "0x..." string */
void json_bytes(struct json *j, const char *key, const uint8_t *p, size_t n);	/* "e9 00 .." */
void json_bool(struct json *j, const char *key, bool val);
void json_raw(struct json *j, const char *key, const char *text);	/* JSON already made */
void json_double(struct json *j, const char *key, double val);

#endif
