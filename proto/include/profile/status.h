/* profile/status.h: the status codes of the profile service.
 *
 * Numbered as gRPC's status codes and mirrored by `profile.v1.Status` in
 * proto/profile.proto (a unit test asserts they match). Every function of the
 * service's C code returns one of these; foreign libraries' codes never leak
 * past the module that owns the library.
 */
#ifndef PROFILE_STATUS_H
#define PROFILE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef PROFILE_API
#if defined(PROFILE_CLIENT_BUILD)
#define PROFILE_API __attribute__((visibility("default")))
#else
#define PROFILE_API
#endif
#endif

typedef enum profile_status {
	PROFILE_OK = 0,
	PROFILE_CANCELLED = 1,
	PROFILE_UNKNOWN = 2,
	PROFILE_INVALID_ARGUMENT = 3,
	PROFILE_DEADLINE_EXCEEDED = 4,
	PROFILE_NOT_FOUND = 5,
	PROFILE_ALREADY_EXISTS = 6,
	PROFILE_PERMISSION_DENIED = 7,
	PROFILE_RESOURCE_EXHAUSTED = 8,
	PROFILE_FAILED_PRECONDITION = 9,
	PROFILE_ABORTED = 10,
	PROFILE_OUT_OF_RANGE = 11,
	PROFILE_UNIMPLEMENTED = 12,
	PROFILE_INTERNAL = 13,
	/* Not executed: safe to retry, on this node or another. */
	PROFILE_UNAVAILABLE = 14,
} profile_status;

/* The code's name as the protocol spells it ("NOT_FOUND"); "UNKNOWN" for a
 * value outside the enum. Never NULL; the string is static. */
PROFILE_API const char *profile_status_name(int status);

/* A sentence for a status ("no such profile"), from the same table; never
 * NULL, static. */
PROFILE_API const char *profile_strerror(int status);

#ifdef __cplusplus
}
#endif

#endif
