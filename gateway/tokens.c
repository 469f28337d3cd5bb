/* tokens.c: the token file and constant-time lookups (tokens.h). */
#include "tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wire.h"

typedef struct token {
	unsigned char text[TOKEN_MAX]; /* zero-padded */
	size_t len;
	int scope;
} token;

struct token_table {
	token *items;
	size_t n;
};

static int
visible(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* One line: 1 with *tk set, 0 when it holds nothing, -1 when malformed. */
static int
parse_line(char *line, token *tk, const char **why)
{
	char *save = NULL, *text, *scope;

	line[strcspn(line, "\r\n")] = '\0';
	text = strtok_r(line, " \t", &save);
	if (text == NULL || text[0] == '#')
		return 0;
	scope = strtok_r(NULL, " \t", &save);
	if (strlen(text) < TOKEN_MIN || strlen(text) > TOKEN_MAX || !visible(text, strlen(text))) {
		*why = "a token must be 16 to 256 visible ASCII characters";
		return -1;
	}
	if (scope == NULL || (strcmp(scope, "read") != 0 && strcmp(scope, "write") != 0)) {
		*why = "a token's scope must be read or write";
		return -1;
	}
	memset(tk, 0, sizeof *tk);
	tk->len = strlen(text);
	memcpy(tk->text, text, tk->len);
	tk->scope = strcmp(scope, "write") == 0 ? SCOPE_WRITE : SCOPE_READ;
	return 1;
}

int
tokens_load(token_table **out, const char *path, char *why, size_t why_len)
{
	FILE *f = fopen(path, "r");
	token_table *t = calloc(1, sizeof *t);
	char line[1024];
	int lineno = 0, rc = PROFILE_OK;

	if (f == NULL || t == NULL) {
		snprintf(why, why_len, "cannot read %s", path);
		rc = t == NULL ? PROFILE_RESOURCE_EXHAUSTED : PROFILE_INVALID_ARGUMENT;
		goto out;
	}
	while (rc == PROFILE_OK && fgets(line, sizeof line, f) != NULL) {
		const char *bad = NULL;
		token tk, *grown;
		int r;

		lineno++;
		if ((r = parse_line(line, &tk, &bad)) == 0)
			continue;
		if (r < 0) {
			snprintf(why, why_len, "%s line %d: %s", path, lineno, bad);
			rc = PROFILE_INVALID_ARGUMENT;
		} else if ((grown = realloc(t->items, (t->n + 1) * sizeof *grown)) == NULL) {
			rc = PROFILE_RESOURCE_EXHAUSTED;
		} else {
			t->items = grown;
			t->items[t->n++] = tk;
		}
		memset(&tk, 0, sizeof tk);
	}
	memset(line, 0, sizeof line);
	if (rc == PROFILE_OK && t->n == 0) {
		snprintf(why, why_len, "%s holds no token", path);
		rc = PROFILE_INVALID_ARGUMENT;
	}
out:
	if (f)
		fclose(f);
	if (rc != PROFILE_OK) {
		tokens_free(t);
		return rc;
	}
	*out = t;
	return PROFILE_OK;
}

int
tokens_scope(const token_table *t, const char *authorization)
{
	unsigned char given[TOKEN_MAX];
	size_t len;
	int scope = SCOPE_NONE;

	if (t == NULL || authorization == NULL)
		return SCOPE_NONE;
	while (*authorization == ' ')
		authorization++;
	if (strncasecmp(authorization, "Bearer ", 7) != 0)
		return SCOPE_NONE;
	authorization += 7;
	while (*authorization == ' ')
		authorization++;
	len = strcspn(authorization, " \t");
	if (len == 0 || len > TOKEN_MAX)
		return SCOPE_NONE;
	memset(given, 0, sizeof given);
	memcpy(given, authorization, len);
	/* Every token, every byte: no early exit that timing could show. */
	for (size_t i = 0; i < t->n; i++) {
		unsigned diff = (unsigned)(t->items[i].len ^ len);
		for (size_t k = 0; k < TOKEN_MAX; k++)
			diff |= (unsigned)(t->items[i].text[k] ^ given[k]);
		scope |= (diff == 0) * t->items[i].scope;
	}
	memset(given, 0, sizeof given);
	return scope & SCOPE_WRITE ? SCOPE_WRITE : scope;
}

size_t
tokens_count(const token_table *t)
{
	return t ? t->n : 0;
}

void
tokens_free(token_table *t)
{
	if (t == NULL)
		return;
	if (t->items)
		memset(t->items, 0, t->n * sizeof *t->items);
	free(t->items);
	free(t);
}
