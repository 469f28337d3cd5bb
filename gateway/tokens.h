/* tokens.h: bearer tokens for REST callers (docs/security.md).
 *
 * A token file has one token per line: `TOKEN SCOPE [NAME]`, SCOPE `read`
 * (gets, searches) or `write` (everything a read token may, and creates,
 * updates, deletes); blank lines and lines starting with # are skipped.
 * A token is 16 to 256 visible ASCII characters; NAME is a note for
 * people. Tokens are compared in constant time and never logged; errors
 * about the file name its line, never its tokens.
 */
#ifndef PROFILE_GATEWAY_TOKENS_H
#define PROFILE_GATEWAY_TOKENS_H

#include <stddef.h>

#define TOKEN_MIN 16
#define TOKEN_MAX 256

enum { SCOPE_NONE = 0, SCOPE_READ = 1, SCOPE_WRITE = 2 };

typedef struct token_table token_table;

/* Reads path. PROFILE_OK and *out, or PROFILE_INVALID_ARGUMENT with why
 * (which never quotes a token), PROFILE_RESOURCE_EXHAUSTED. */
int tokens_load(token_table **out, const char *path, char *why, size_t why_len);

/* The scope of the token an Authorization header carries ("Bearer
 * TOKEN"): SCOPE_NONE when header is NULL, not a bearer token, or unknown.
 * Takes the same time whichever token matches, or none. */
int tokens_scope(const token_table *t, const char *authorization);

size_t tokens_count(const token_table *t);

void tokens_free(token_table *t);

#endif
