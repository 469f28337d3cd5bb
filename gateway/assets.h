/* assets.h: files the gateway serves as they are, built into its binary
 * from gateway/ (CMakeLists.txt turns each into an array; NUL-terminated,
 * the length without it). */
#ifndef PROFILE_GATEWAY_ASSETS_H
#define PROFILE_GATEWAY_ASSETS_H

#include <stddef.h>

extern const char gateway_page[];    /* gateway/cluster.html: GET / */
extern const size_t gateway_page_len;
extern const char gateway_openapi[]; /* gateway/openapi.json: GET /openapi.json */
extern const size_t gateway_openapi_len;

#endif
