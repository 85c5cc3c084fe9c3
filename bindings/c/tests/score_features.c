/* Scores the rows of a `fit-and-export features` folder with the C API and
 * prints one score per row, as `fit-and-export score` does (run.sh compares
 * the two to 1e-6 relative). Every row is scored four ways that must agree
 * exactly: lsgm_score, lsgm_judge, lsgm_judge on rows rebuilt from
 * synthetic N×C×2×2 maps through lsgm_pool (mean = the row), and four
 * threads scoring all rows at once with their own scratch.
 *   score_features MODEL.lsgm FEATURE_DIR            */
#include "lsgm.h"
#include "util.h"

#include <math.h>
#include <pthread.h>

#define MAX_ROWS 4096

static LsgmModel model; /* static: 8 KiB, no stack needed */
static LsgmModelInfo info;
static LsgmLayerInfo layers[16];
static float *features[16];
static size_t rows;
static float scores[MAX_ROWS];

#define CHECK(call)                                                                    \
  do {                                                                                 \
    LsgmStatus s_ = (call);                                                            \
    if (s_ != LSGM_OK) {                                                               \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, lsgm_status_message(s_)); \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

static void row_views(size_t r, LsgmFeatureRow *out) {
  for (size_t l = 0; l < info.layer_count; l++)
    out[l] = (LsgmFeatureRow){features[l] + r * layers[l].dim_in, layers[l].dim_in};
}

/* Row r rebuilt through lsgm_pool from a 1×C×2×2 map whose four values per
 * channel are 2v, 0, 0, 2v (mean v, exactly in float: every partial sum is
 * 0, 2v or 4v), so a swapped layout or a wrong divisor changes the score.
 * Vector layers are pooled from a 1×C tensor. */
static void pooled_rows(size_t r, float *storage, LsgmFeatureRow *out) {
  for (size_t l = 0; l < info.layer_count; l++) {
    size_t c = layers[l].dim_in;
    const float *v = features[l] + r * c;
    static float map[4 * 16384];
    size_t shape4[4] = {1, c, 2, 2}, shape2[2] = {1, c};
    for (size_t ch = 0; ch < c; ch++) {
      for (int p = 0; p < 4; p++) map[4 * ch + p] = (p == 0 || p == 3) ? 2 * v[ch] : 0.0f;
    }
    if (layers[l].pooling == LSGM_POOLING_MEAN_NCHW)
      CHECK(lsgm_pool(&model, l, map, 4 * c, shape4, 4, 0, storage, c));
    else if (layers[l].pooling == LSGM_POOLING_VECTOR)
      CHECK(lsgm_pool(&model, l, v, c, shape2, 2, 0, storage, c));
    else
      memcpy(storage, v, 4 * c); /* NHWC and precomputed layers: the row as given */
    out[l] = (LsgmFeatureRow){storage, c};
    storage += c;
  }
}

static void *score_all(void *arg) {
  float *scratch = malloc(4 * info.scratch_len);
  float *mine = arg;
  LsgmFeatureRow v[16];
  for (size_t r = 0; r < rows; r++) {
    row_views(r, v);
    CHECK(lsgm_score(&model, v, info.layer_count, scratch, info.scratch_len, NULL, 0, &mine[r]));
  }
  free(scratch);
  return NULL;
}

static int same(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s MODEL.lsgm FEATURE_DIR\n", argv[0]); return 2; }
  size_t len;
  unsigned char *bytes = read_file(argv[1], &len);
  if (!bytes) { fprintf(stderr, "%s: cannot read\n", argv[1]); return 1; }
  CHECK(lsgm_model_open(&model, sizeof model, bytes, len));
  CHECK(lsgm_model_info(&model, &info));
  for (size_t l = 0; l < info.layer_count; l++) {
    char path[4096];
    size_t n, d;
    CHECK(lsgm_layer_info(&model, l, &layers[l]));
    snprintf(path, sizeof path, "%s/%zu.npy", argv[2], l);
    if (!(features[l] = read_npy_f32(path, &n, &d))) return 1;
    if (d != layers[l].dim_in || (l > 0 && n != rows) || n > MAX_ROWS) {
      fprintf(stderr, "%s: %zu×%zu, layer %.*s takes %zu\n", path, n, d, (int)layers[l].name_len,
              layers[l].name, layers[l].dim_in);
      return 1;
    }
    rows = n;
  }
  float *scratch = malloc(4 * info.scratch_len), pooled[16 * 16384];
  float contributions[16], threaded[4][MAX_ROWS];
  for (size_t r = 0; r < rows; r++) {
    LsgmFeatureRow v[16], p[16];
    LsgmVerdict verdict, from_pool;
    row_views(r, v);
    CHECK(lsgm_score(&model, v, info.layer_count, scratch, info.scratch_len, contributions, 16, &scores[r]));
    CHECK(lsgm_judge(&model, v, info.layer_count, scratch, info.scratch_len, NULL, NULL, 0, &verdict));
    pooled_rows(r, pooled, p);
    CHECK(lsgm_judge(&model, p, info.layer_count, scratch, info.scratch_len, NULL, NULL, 0, &from_pool));
    float sum = 0;
    for (size_t l = 0; l < info.layer_count; l++) sum += contributions[l];
    if (!same(verdict.score, scores[r]) || !same(from_pool.score, scores[r]) ||
        verdict.threshold != info.threshold || verdict.ood != (scores[r] < info.threshold) ||
        fabsf(sum - scores[r]) > 1e-4f * (1 + fabsf(scores[r]))) {
      fprintf(stderr, "row %zu: score %.9g, judge %.9g, pooled %.9g, contributions sum %.9g\n", r,
              scores[r], verdict.score, from_pool.score, sum);
      return 1;
    }
    printf("%.9g\n", scores[r]);
  }
  pthread_t threads[4];
  for (int t = 0; t < 4; t++) pthread_create(&threads[t], NULL, score_all, threaded[t]);
  for (int t = 0; t < 4; t++) pthread_join(threads[t], NULL);
  for (int t = 0; t < 4; t++)
    for (size_t r = 0; r < rows; r++)
      if (!same(threaded[t][r], scores[r])) {
        fprintf(stderr, "thread %d row %zu: %.9g, alone %.9g\n", t, r, threaded[t][r], scores[r]);
        return 1;
      }
  fprintf(stderr, "score_features: %zu rows × %zu layers, lsgm_score = lsgm_judge = pooled = 4 threads\n",
          rows, info.layer_count);
  return 0;
}
