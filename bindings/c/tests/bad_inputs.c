/* Calls every function of the C API with every bad input it can be given
 * (NULL and misaligned pointers, short buffers, damaged model bytes, NaN
 * and infinite features, wrong layer counts and shapes, storage never
 * opened) and checks the status each returns, and that no output was
 * written on failure. Ends with a byte-flip sweep over the model body
 * (re-signed, so the damage reaches the decoder and the validator).
 *   bad_inputs MODEL.lsgm                     (exit 0: every check held) */
#include "lsgm.h"
#include "util.h"

#include <float.h>
#include <math.h>
#include <stdalign.h>
#include <stdint.h>

static int failures, checks;

#define EXPECT(call, want)                                                                       \
  do {                                                                                           \
    LsgmStatus got_ = (call);                                                                    \
    checks++;                                                                                    \
    if (got_ != (want)) {                                                                        \
      failures++;                                                                                \
      fprintf(stderr, "%s:%d: %s\n  returned %d (%s), expected %s\n", __FILE__, __LINE__, #call, \
              (int)got_, lsgm_status_message(got_), #want);                                     \
    }                                                                                            \
  } while (0)

#define UNTOUCHED(cond, what)                                                            \
  do {                                                                                   \
    checks++;                                                                            \
    if (!(cond)) {                                                                       \
      failures++;                                                                        \
      fprintf(stderr, "%s:%d: %s was written by a failing call\n", __FILE__, __LINE__, what); \
    }                                                                                    \
  } while (0)

static LsgmModel model, closed, never_opened; /* statics start zeroed: never opened */
static LsgmModelInfo info;
static alignas(8) unsigned char big[sizeof(LsgmModel) + 8];

/* CRC-32 (ISO-HDLC, as zlib), to re-sign a damaged body. */
static uint32_t crc32(const unsigned char *p, size_t n) {
  static uint32_t table[256];
  if (!table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
      table[i] = c;
    }
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return ~c;
}

static void resign(unsigned char *m, size_t len) {
  uint32_t crc = crc32(m + 16, len - 16);
  for (int i = 0; i < 4; i++) m[12 + i] = (unsigned char)(crc >> (8 * i));
}

static int all_bytes(const void *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (((const unsigned char *)p)[i] != v) return 0;
  return 1;
}

static void status_messages(void) {
  const char *unknown = lsgm_status_message(-1);
  EXPECT(unknown && *unknown ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
  EXPECT(strcmp(lsgm_status_message(25), unknown) == 0 ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
  EXPECT(strcmp(lsgm_status_message(INT32_MIN), unknown) == 0 ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
  for (int s = 0; s <= 99; s++) {
    const char *m = lsgm_status_message(s);
    int known = s <= LSGM_NON_FINITE_ARGUMENT || s == LSGM_INTERNAL_ERROR;
    EXPECT(m && *m && (strcmp(m, unknown) != 0) == known ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
  }
  EXPECT(lsgm_model_size() == sizeof(LsgmModel) ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
  EXPECT(lsgm_model_align() == alignof(LsgmModel) ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
}

static void open_errors(const unsigned char *bytes, size_t len) {
  unsigned char *copy = malloc(len + 64);
  LsgmModel *odd = (LsgmModel *)(big + 4);
  memset(&model, 0xA5, sizeof model);
  EXPECT(lsgm_model_open(NULL, sizeof model, bytes, len), LSGM_NULL_POINTER);
  EXPECT(lsgm_model_open(odd, sizeof model, bytes, len), LSGM_MISALIGNED);
  EXPECT(lsgm_model_open(&model, sizeof model - 1, bytes, len), LSGM_STORAGE_TOO_SMALL);
  EXPECT(lsgm_model_open(&model, 0, bytes, len), LSGM_STORAGE_TOO_SMALL);
  EXPECT(lsgm_model_open(&model, sizeof model, NULL, len), LSGM_NULL_POINTER);
  EXPECT(lsgm_model_open(&model, sizeof model, bytes, 0), LSGM_MODEL_TRUNCATED);
  EXPECT(lsgm_model_open(&model, sizeof model, bytes, 15), LSGM_MODEL_TRUNCATED);
  EXPECT(lsgm_model_open(&model, sizeof model, bytes, len - 1), LSGM_MODEL_TRUNCATED);
  EXPECT(lsgm_model_open(&model, sizeof model, bytes, SIZE_MAX), LSGM_LENGTH_OVERFLOW);
  memcpy(copy, bytes, len);
  copy[0] = 'X';
  EXPECT(lsgm_model_open(&model, sizeof model, copy, len), LSGM_MODEL_BAD_MAGIC);
  memcpy(copy, bytes, len);
  copy[4] = 99; /* format version 99 */
  EXPECT(lsgm_model_open(&model, sizeof model, copy, len), LSGM_MODEL_VERSION);
  memcpy(copy, bytes, len);
  copy[len / 2] ^= 0x40;
  EXPECT(lsgm_model_open(&model, sizeof model, copy, len), LSGM_MODEL_CHECKSUM);
  memcpy(copy, bytes, len);
  memset(copy + 16, 0xFF, 64); /* the start of the body: huge varints */
  resign(copy, len);
  EXPECT(lsgm_model_open(&model, sizeof model, copy, len), LSGM_MODEL_DECODE);
  UNTOUCHED(all_bytes(&model, sizeof model, 0xA5), "the model storage");
  /* Storage inside the model bytes it would borrow. */
  unsigned char *shared = malloc(len + sizeof(LsgmModel) + 8);
  memcpy(shared, bytes, len);
  LsgmModel *inside = (LsgmModel *)(((uintptr_t)shared + 64 + 7) & ~(uintptr_t)7);
  EXPECT(lsgm_model_open(inside, sizeof(LsgmModel), shared, len), LSGM_BUFFERS_OVERLAP);
  free(shared);
  free(copy);
}

/* Flips one byte at a time of the body, re-signed (each of the first 256
 * bytes, where the counts, names and lengths are, then 100 spread over the
 * arrays): whatever
 * the decoder and validator make of it, the status is a known one and the
 * storage is written only on success. */
static void damage_sweep(const unsigned char *bytes, size_t len) {
  unsigned char *copy = malloc(len);
  int opened = 0, refused = 0;
  size_t step = (len - 16) / 100 + 1;
  for (size_t at = 16; at < len; at += at < 16 + 256 ? 1 : step) {
    memcpy(copy, bytes, len);
    copy[at] ^= 0x5A;
    resign(copy, len);
    LsgmModel *m = (LsgmModel *)big;
    memset(m, 0xA5, sizeof *m);
    LsgmStatus s = lsgm_model_open(m, sizeof *m, copy, len);
    checks++;
    if (s == LSGM_OK) {
      opened++; /* e.g. a mean's low mantissa bits: still a valid model */
    } else if (s == LSGM_MODEL_DECODE || s == LSGM_MODEL_INVALID || s == LSGM_MODEL_TOO_MANY_LAYERS) {
      refused++;
      UNTOUCHED(all_bytes(m, sizeof *m, 0xA5), "the storage of a refused model");
    } else {
      failures++;
      fprintf(stderr, "byte %zu flipped: status %d (%s)\n", at, (int)s, lsgm_status_message(s));
    }
  }
  fprintf(stderr, "bad_inputs: damage sweep: %d flips refused, %d still valid models\n", refused, opened);
  EXPECT(refused > 0 ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
  free(copy);
}

static void info_errors(void) {
  LsgmLayerInfo layer;
  alignas(8) unsigned char raw[sizeof(LsgmModelInfo) + 8];
  EXPECT(lsgm_model_info(NULL, &info), LSGM_NULL_POINTER);
  EXPECT(lsgm_model_info(&never_opened, &info), LSGM_NOT_OPEN);
  EXPECT(lsgm_model_info(&closed, &info), LSGM_NOT_OPEN);
  EXPECT(lsgm_model_info((LsgmModel *)(big + 4), &info), LSGM_MISALIGNED);
  EXPECT(lsgm_model_info(&model, NULL), LSGM_NULL_POINTER);
  EXPECT(lsgm_model_info(&model, (LsgmModelInfo *)(raw + 1)), LSGM_MISALIGNED);
  memset(&layer, 0xA5, sizeof layer);
  EXPECT(lsgm_layer_info(NULL, 0, &layer), LSGM_NULL_POINTER);
  EXPECT(lsgm_layer_info(&never_opened, 0, &layer), LSGM_NOT_OPEN);
  EXPECT(lsgm_layer_info(&model, info.layer_count, &layer), LSGM_LAYER_INDEX);
  EXPECT(lsgm_layer_info(&model, SIZE_MAX, &layer), LSGM_LAYER_INDEX);
  EXPECT(lsgm_layer_info(&model, 0, NULL), LSGM_NULL_POINTER);
  UNTOUCHED(all_bytes(&layer, sizeof layer, 0xA5), "the layer info");
  size_t grid = 7;
  EXPECT(lsgm_layer_grid(NULL, 0, &grid), LSGM_NULL_POINTER);
  EXPECT(lsgm_layer_grid(&never_opened, 0, &grid), LSGM_NOT_OPEN);
  EXPECT(lsgm_layer_grid(&model, info.layer_count, &grid), LSGM_LAYER_INDEX);
  EXPECT(lsgm_layer_grid((LsgmModel *)(big + 4), 0, &grid), LSGM_MISALIGNED);
  EXPECT(lsgm_layer_grid(&model, 0, NULL), LSGM_NULL_POINTER);
  EXPECT(lsgm_layer_grid(&model, 0, (size_t *)(raw + 1)), LSGM_MISALIGNED);
  UNTOUCHED(grid == 7, "the grid side");
  EXPECT(lsgm_layer_grid(&model, 0, &grid), LSGM_OK);
  checks++;
  if (grid != 1) {
    failures++;
    fprintf(stderr, "%s:%d: lsgm_layer_grid gave %zu for a global-mean layer, not 1\n", __FILE__, __LINE__, grid);
  }
  EXPECT(lsgm_model_close(NULL), LSGM_NULL_POINTER);
  EXPECT(lsgm_model_close(&never_opened), LSGM_NOT_OPEN);
  EXPECT(lsgm_model_close(&closed), LSGM_NOT_OPEN);
}

static void pool_errors(void) {
  LsgmLayerInfo l;
  EXPECT(lsgm_layer_info(&model, 0, &l), LSGM_OK);
  size_t c = l.dim_in, n = 4 * c;
  float *tensor = calloc(n + 1, sizeof(float)), row[16384 + 1];
  size_t shape[4] = {1, c, 2, 2}, wide[4] = {1, c + 1, 2, 2}, flat[4] = {1, c, 0, 4},
         huge[4] = {SIZE_MAX, c, 2, 2}, two[4] = {2, c, 2, 2};
  for (size_t i = 0; i <= c; i++) row[i] = 7.0f;
  EXPECT(lsgm_pool(NULL, 0, tensor, n, shape, 4, 0, row, c), LSGM_NULL_POINTER);
  EXPECT(lsgm_pool(&never_opened, 0, tensor, n, shape, 4, 0, row, c), LSGM_NOT_OPEN);
  EXPECT(lsgm_pool(&model, info.layer_count, tensor, n, shape, 4, 0, row, c), LSGM_LAYER_INDEX);
  EXPECT(lsgm_pool(&model, 0, NULL, n, shape, 4, 0, row, c), LSGM_NULL_POINTER);
  EXPECT(lsgm_pool(&model, 0, (const float *)((const char *)tensor + 2), n - 1, shape, 4, 0, row, c),
         LSGM_MISALIGNED);
  EXPECT(lsgm_pool(&model, 0, tensor, n, NULL, 4, 0, row, c), LSGM_NULL_POINTER);
  EXPECT(lsgm_pool(&model, 0, tensor, n, shape, 4, 0, NULL, c), LSGM_NULL_POINTER);
  EXPECT(lsgm_pool(&model, 0, tensor, n, shape, 4, 0, (float *)((char *)row + 1), c), LSGM_MISALIGNED);
  EXPECT(lsgm_pool(&model, 0, tensor, n, shape, 4, 0, row, c - 1), LSGM_ROW_TOO_SMALL);
  EXPECT(lsgm_pool(&model, 0, tensor, n - 1, shape, 4, 0, row, c), LSGM_SHAPE);
  EXPECT(lsgm_pool(&model, 0, tensor, n + 1, shape, 4, 0, row, c), LSGM_SHAPE);
  EXPECT(lsgm_pool(&model, 0, tensor, n, shape, 3, 0, row, c), LSGM_SHAPE);
  EXPECT(lsgm_pool(&model, 0, tensor, n, shape, 0, 0, row, c), LSGM_SHAPE);
  EXPECT(lsgm_pool(&model, 0, tensor, n, shape, 4, 1, row, c), LSGM_SHAPE);
  EXPECT(lsgm_pool(&model, 0, tensor, n, two, 4, 0, row, c), LSGM_SHAPE);
  EXPECT(lsgm_pool(&model, 0, tensor, n + 4, wide, 4, 0, row, c + 1), LSGM_SHAPE);
  EXPECT(lsgm_pool(&model, 0, tensor, 0, flat, 4, 0, row, c), LSGM_SHAPE);
  EXPECT(lsgm_pool(&model, 0, tensor, n, huge, 4, 0, row, c), LSGM_SHAPE);
  EXPECT(lsgm_pool(&model, 0, tensor, SIZE_MAX, shape, 4, 0, row, c), LSGM_LENGTH_OVERFLOW);
  /* A buffer that would run past the top of the address space (never dereferenced). */
  EXPECT(lsgm_pool(&model, 0, (const float *)(UINTPTR_MAX - 63), n, shape, 4, 0, row, c), LSGM_LENGTH_OVERFLOW);
  EXPECT(lsgm_pool(&model, 0, row, n, shape, 4, 0, row, c), LSGM_BUFFERS_OVERLAP);
  UNTOUCHED(all_bytes(row, 4, 0) == 0 && row[0] == 7.0f && row[c - 1] == 7.0f && row[c] == 7.0f, "the row");
  EXPECT(lsgm_pool(&model, 0, tensor, n, shape, 4, 0, row, c + 1), LSGM_OK);
  UNTOUCHED(row[0] == 0.0f && row[c] == 7.0f, "row[dim_in] (past the layer's width)");
  free(tensor);
}

/* One row per layer: every feature 0.5 (a valid, finite frame). */
static float feats[16][16384];
static LsgmFeatureRow rows[17];

static void frame(void) {
  for (size_t l = 0; l < info.layer_count; l++) {
    LsgmLayerInfo li;
    lsgm_layer_info(&model, l, &li);
    for (size_t i = 0; i < li.dim_in; i++) feats[l][i] = 0.5f;
    rows[l] = (LsgmFeatureRow){feats[l], li.dim_in};
  }
}

static void score_errors(void) {
  size_t m = info.layer_count, sl = info.scratch_len;
  float *scratch = malloc(sizeof(float) * (sl + 1)), c[17], score = 12345.0f;
  for (int i = 0; i < 17; i++) c[i] = 12345.0f;
  frame();
  EXPECT(lsgm_score(NULL, rows, m, scratch, sl, c, m, &score), LSGM_NULL_POINTER);
  EXPECT(lsgm_score(&never_opened, rows, m, scratch, sl, c, m, &score), LSGM_NOT_OPEN);
  EXPECT(lsgm_score(&model, NULL, m, scratch, sl, c, m, &score), LSGM_NULL_POINTER);
  EXPECT(lsgm_score(&model, rows, m, NULL, sl, c, m, &score), LSGM_NULL_POINTER);
  EXPECT(lsgm_score(&model, rows, m, (float *)((char *)scratch + 2), sl - 1, c, m, &score), LSGM_MISALIGNED);
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, c, m, NULL), LSGM_NULL_POINTER);
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, c, m, (float *)((char *)c + 1)), LSGM_MISALIGNED);
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, (float *)((char *)c + 2), m, &score), LSGM_MISALIGNED);
  EXPECT(lsgm_score(&model, rows, m - 1, scratch, sl, c, m, &score), LSGM_LAYER_COUNT);
  EXPECT(lsgm_score(&model, rows, m + 1, scratch, sl, c, m, &score), LSGM_LAYER_COUNT);
  EXPECT(lsgm_score(&model, rows, 0, scratch, sl, c, m, &score), LSGM_LAYER_COUNT);
  EXPECT(lsgm_score(&model, rows, SIZE_MAX, scratch, sl, c, m, &score), LSGM_LAYER_COUNT);
  EXPECT(lsgm_score(&model, rows, m, scratch, SIZE_MAX, c, m, &score), LSGM_LENGTH_OVERFLOW);
  EXPECT(lsgm_score(&model, rows, m, scratch, sl - 1, c, m, &score), LSGM_SCRATCH_TOO_SMALL);
  EXPECT(lsgm_score(&model, rows, m, scratch, 0, c, m, &score), LSGM_SCRATCH_TOO_SMALL);
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, c, m - 1, &score), LSGM_CONTRIBUTIONS_TOO_SMALL);
  EXPECT(lsgm_score(&model, rows, m, feats[m - 1], sl, c, m, &score), LSGM_BUFFERS_OVERLAP);
  rows[m - 1].len--;
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, c, m, &score), LSGM_FEATURE_LENGTH);
  rows[m - 1].len += 2;
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, c, m, &score), LSGM_FEATURE_LENGTH);
  rows[m - 1].len--;
  rows[1].data = NULL;
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, c, m, &score), LSGM_NULL_POINTER);
  rows[1].data = (const float *)((const char *)feats[1] + 1);
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, c, m, &score), LSGM_MISALIGNED);
  rows[1].data = feats[1];
  float bad[3] = {NAN, INFINITY, -INFINITY};
  for (int b = 0; b < 3; b++)
    for (size_t l = 0; l < m; l++) {
      feats[l][l + 1] = bad[b];
      EXPECT(lsgm_score(&model, rows, m, scratch, sl, c, m, &score), LSGM_NON_FINITE_FEATURE);
      feats[l][l + 1] = 0.5f;
    }
  UNTOUCHED(score == 12345.0f, "the score");
  for (int i = 0; i < 17; i++) UNTOUCHED(c[i] == 12345.0f, "a contribution");
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, c, m, &score), LSGM_OK);
  UNTOUCHED(c[m] == 12345.0f, "contributions[layer_count] (past the layers)");
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, NULL, 0, &score), LSGM_OK);
  free(scratch);
}

/* A scratch buffer over the model's own memory (its storage, or the model
 * bytes it reads) would change the model while it scores: refused, and the
 * model stays intact (the same score afterwards). The bytes here are a copy
 * opened into its own storage, so the shared model is not touched. */
static void scratch_over_the_model(const unsigned char *bytes, size_t len) {
  static LsgmModel own;
  size_t m = info.layer_count, sl = info.scratch_len;
  unsigned char *copy = malloc(len + 4 * sl + 8);
  memcpy(copy, bytes, len);
  float *scratch = malloc(sizeof(float) * sl), c[17], before = 0.0f, after = 1.0f, score = 12345.0f;
  frame();
  EXPECT(lsgm_model_open(&own, sizeof own, copy, len), LSGM_OK);
  EXPECT(lsgm_score(&own, rows, m, scratch, sl, c, m, &before), LSGM_OK);
  EXPECT(lsgm_score(&own, rows, m, (float *)(void *)&own, sl, c, m, &score), LSGM_BUFFERS_OVERLAP);
  EXPECT(lsgm_score(&own, rows, m, (float *)(void *)(copy + 4096), sl, c, m, &score), LSGM_BUFFERS_OVERLAP);
  EXPECT(score == 12345.0f, 1);
  EXPECT(lsgm_score(&own, rows, m, scratch, sl, c, m, &after), LSGM_OK);
  EXPECT(before == after, 1);
  free(scratch);
  free(copy);
}

static void judge_errors(void) {
  size_t m = info.layer_count, sl = info.scratch_len;
  float *scratch = malloc(sizeof(float) * sl), nan = NAN, inf = INFINITY, c[16];
  alignas(4) unsigned char odd[8] = {0};
  LsgmVerdict v;
  memset(&v, 0xA5, sizeof v);
  frame();
  EXPECT(lsgm_judge(NULL, rows, m, scratch, sl, NULL, c, m, &v), LSGM_NULL_POINTER);
  EXPECT(lsgm_judge(&closed, rows, m, scratch, sl, NULL, c, m, &v), LSGM_NOT_OPEN);
  EXPECT(lsgm_judge(&model, rows, m, scratch, sl, NULL, c, m, NULL), LSGM_NULL_POINTER);
  EXPECT(lsgm_judge(&model, rows, m, scratch, sl, &nan, c, m, &v), LSGM_NON_FINITE_ARGUMENT);
  EXPECT(lsgm_judge(&model, rows, m, scratch, sl, &inf, c, m, &v), LSGM_NON_FINITE_ARGUMENT);
  EXPECT(lsgm_judge(&model, rows, m, scratch, sl, (const float *)(odd + 1), c, m, &v), LSGM_MISALIGNED);
  EXPECT(lsgm_judge(&model, rows, m + 1, scratch, sl, NULL, c, m, &v), LSGM_LAYER_COUNT);
  EXPECT(lsgm_judge(&model, rows, m, scratch, sl - 1, NULL, c, m, &v), LSGM_SCRATCH_TOO_SMALL);
  EXPECT(lsgm_judge(&model, rows, m, scratch, sl, NULL, c, 0, &v), LSGM_CONTRIBUTIONS_TOO_SMALL);
  feats[0][0] = NAN;
  EXPECT(lsgm_judge(&model, rows, m, scratch, sl, NULL, c, m, &v), LSGM_NON_FINITE_FEATURE);
  feats[0][0] = 0.5f;
  UNTOUCHED(all_bytes(&v, sizeof v, 0xA5), "the verdict");
  /* A finite frame far from everything: not an error but the most
   * out-of-distribution frame there is (the CLI scores it -FLT_MAX). */
  float huge = 1e30f, score;
  for (size_t l = 0; l < m; l++)
    for (size_t i = 0; i < rows[l].len; i++) feats[l][i] = huge;
  EXPECT(lsgm_judge(&model, rows, m, scratch, sl, NULL, c, m, &v), LSGM_OK);
  EXPECT(v.overflow && v.ood && v.score == -FLT_MAX ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
  EXPECT(lsgm_score(&model, rows, m, scratch, sl, NULL, 0, &score), LSGM_OK);
  EXPECT(score == -FLT_MAX ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
  frame();
  float low = -1e30f;
  EXPECT(lsgm_judge(&model, rows, m, scratch, sl, &low, c, m, &v), LSGM_OK);
  EXPECT(!v.ood && !v.overflow && v.threshold == low ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
  free(scratch);
}

static void threshold_errors(void) {
  float t = 12345.0f, nan = NAN;
  EXPECT(lsgm_threshold_for_fpr(NULL, 0.05f, &t), LSGM_NULL_POINTER);
  EXPECT(lsgm_threshold_for_fpr(&never_opened, 0.05f, &t), LSGM_NOT_OPEN);
  EXPECT(lsgm_threshold_for_fpr(&model, 0.05f, NULL), LSGM_NULL_POINTER);
  EXPECT(lsgm_threshold_for_fpr(&model, 0.05f, (float *)((char *)&t + 1)), LSGM_MISALIGNED);
  EXPECT(lsgm_threshold_for_fpr(&model, nan, &t), LSGM_NON_FINITE_ARGUMENT);
  EXPECT(lsgm_threshold_for_fpr(&model, INFINITY, &t), LSGM_NON_FINITE_ARGUMENT);
  EXPECT(lsgm_threshold_for_fpr(&model, -0.5f, &t), LSGM_FPR_OUT_OF_RANGE);
  EXPECT(lsgm_threshold_for_fpr(&model, 1.5f, &t), LSGM_FPR_OUT_OF_RANGE);
  UNTOUCHED(t == 12345.0f, "the threshold");
  float lo, hi;
  EXPECT(lsgm_threshold_for_fpr(&model, 0.01f, &lo), LSGM_OK);
  EXPECT(lsgm_threshold_for_fpr(&model, 0.10f, &hi), LSGM_OK);
  EXPECT(isfinite(lo) && lo < hi ? LSGM_OK : LSGM_INTERNAL_ERROR, LSGM_OK);
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: %s MODEL.lsgm\n", argv[0]); return 2; }
  size_t len;
  unsigned char *bytes = read_file(argv[1], &len);
  if (!bytes || len < 64) { fprintf(stderr, "%s: cannot read\n", argv[1]); return 1; }
  status_messages();
  open_errors(bytes, len);
  damage_sweep(bytes, len);
  EXPECT(lsgm_model_open(&closed, sizeof closed, bytes, len), LSGM_OK);
  EXPECT(lsgm_model_close(&closed), LSGM_OK);
  EXPECT(lsgm_model_open(&model, sizeof model, bytes, len), LSGM_OK);
  EXPECT(lsgm_model_info(&model, &info), LSGM_OK);
  info_errors();
  pool_errors();
  score_errors();
  scratch_over_the_model(bytes, len);
  judge_errors();
  threshold_errors();
  fprintf(stderr, "bad_inputs: %d checks, %d failed\n", checks, failures);
  free(bytes);
  return failures != 0;
}
