/* Helpers shared by the C tests: whole-file reads and .npy float32 matrices. */
#ifndef LSGM_TEST_UTIL_H
#define LSGM_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file at `path` in a malloc'd buffer (length in *len), or NULL. */
static inline unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = NULL;
  size_t cap = 0, n = 0, got;
  do {
    if (n == cap) {
      cap = cap ? 2 * cap : 1 << 16;
      unsigned char *grown = realloc(buf, cap);
      if (!grown) { free(buf); fclose(f); return NULL; }
      buf = grown;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  fclose(f);
  *len = n;
  return buf;
}

/* A 2-D little-endian float32 C-order .npy file (what `fit-and-export
 * features` writes): rows × cols values, or NULL with a message. */
static inline float *read_npy_f32(const char *path, size_t *rows, size_t *cols) {
  size_t len;
  unsigned char *raw = read_file(path, &len);
  if (!raw) { fprintf(stderr, "%s: cannot read\n", path); return NULL; }
  if (len < 10 || memcmp(raw, "\x93NUMPY", 6) != 0 || raw[6] != 1) {
    fprintf(stderr, "%s: not a version-1 .npy file\n", path);
    free(raw);
    return NULL;
  }
  size_t hlen = raw[8] | (size_t)raw[9] << 8;
  char header[1024];
  if (hlen >= sizeof header || 10 + hlen > len) { fprintf(stderr, "%s: bad header\n", path); free(raw); return NULL; }
  memcpy(header, raw + 10, hlen);
  header[hlen] = 0;
  const char *shape = strstr(header, "'shape': (");
  unsigned long r, c;
  if (!strstr(header, "'descr': '<f4'") || !strstr(header, "'fortran_order': False") || !shape ||
      sscanf(shape, "'shape': (%lu, %lu)", &r, &c) != 2 || 10 + hlen + 4 * r * c != len) {
    fprintf(stderr, "%s: not a C-order float32 matrix: %s\n", path, header);
    free(raw);
    return NULL;
  }
  float *out = malloc(4 * r * c + 1);
  if (out) memcpy(out, raw + 10 + hlen, 4 * r * c);
  free(raw);
  *rows = r;
  *cols = c;
  return out;
}

#endif
