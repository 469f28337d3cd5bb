/* headers.c: the request headers of the REST API whose rules are more than
 * a lookup (api.h): If-Match, Cache-Control's max-stale, Idempotency-Key
 * and If-None-Match. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"

int
api_parse_if_match(const char *v, Profile__V1__Precondition *pre, const char **why)
{
	const char *p = v, *end;
	unsigned long long n = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end - p == 1 && *p == '*') {
		pre->check_case = PROFILE__V1__PRECONDITION__CHECK_EXISTS;
		pre->exists = 1;
		return PROFILE_OK;
	}
	if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
		p += 2;
	if (p < end && *p == '"') {
		if (end - p < 2 || end[-1] != '"')
			goto bad;
		p++, end--;
	}
	if (p == end || end - p > 19)
		goto bad;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		n = n * 10 + (unsigned)(*p - '0');
	}
	pre->check_case = PROFILE__V1__PRECONDITION__CHECK_VERSION;
	pre->version = n;
	return PROFILE_OK;
bad:
	*why = "If-Match must be one version: \"<n>\", <n>, W/\"<n>\" or *";
	return PROFILE_INVALID_ARGUMENT;
}

int
api_parse_max_stale(const char *v, uint32_t *seconds)
{
	for (const char *p = v; *p;) {
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		n = strcspn(p, ",");
		if (n >= 9 && strncasecmp(p, "max-stale", 9) == 0 && (n == 9 || p[9] == '=' || p[9] == ' ')) {
			const char *q = p + 9;
			unsigned long long s = 0;
			int digits = 0;

			while (*q == ' ')
				q++;
			if (*q != '=') {
				*seconds = UINT32_MAX;
				return 1;
			}
			for (q++; *q == ' '; q++)
				;
			if (*q == '"')
				q++;
			for (; *q >= '0' && *q <= '9' && digits < 10; q++, digits++)
				s = s * 10 + (unsigned)(*q - '0');
			if (*q == '"')
				q++;
			while (*q == ' ' || *q == '\t')
				q++;
			if (digits == 0 || (*q != ',' && *q != '\0'))
				return -1;
			*seconds = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
			return 1;
		}
		p += n;
	}
	return 0;
}

int
api_parse_idem_key(const char *header, char *out, const char **why)
{
	size_t n = 0;

	if (header[0] != '"') {
		if (strlen(header) > WIRE_IDEM_KEY_MAX)
			return wire_check_idem_key(header, why);
		snprintf(out, WIRE_IDEM_KEY_MAX + 1, "%s", header);
		return wire_check_idem_key(out, why);
	}
	for (const char *p = header + 1;; p++) {
		if (*p == '\0') {
			*why = "Idempotency-Key: unterminated string";
			return PROFILE_INVALID_ARGUMENT;
		}
		if (*p == '"') {
			if (p[1] != '\0') {
				*why = "Idempotency-Key: text after the string";
				return PROFILE_INVALID_ARGUMENT;
			}
			break;
		}
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		else if (*p == '\\') {
			*why = "Idempotency-Key: a backslash escapes only a quote or a backslash";
			return PROFILE_INVALID_ARGUMENT;
		}
		if (n == WIRE_IDEM_KEY_MAX)
			return wire_check_idem_key(header, why); /* too long */
		out[n++] = *p;
	}
	out[n] = '\0';
	return wire_check_idem_key(out, why);
}

/* 1 when an If-None-Match list names etag (or is "*"); weak tags compare
 * as strong ones (RFC 9110's weak comparison, as GET uses). */
int
api_etag_matches(const char *list, const char *etag)
{
	size_t elen = strlen(etag);

	for (const char *p = list; *p;) {
		size_t n;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		n = strcspn(p, ", \t");
		if ((n == 1 && *p == '*') || (n == elen && n > 0 && strncmp(p, etag, n) == 0))
			return 1;
		p += n;
	}
	return 0;
}
