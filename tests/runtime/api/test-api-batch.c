/* The batch API from C (compiled as C11 against include/xent.h only): three prompts
 * decoded in one xent_batch, then two steps of one token each, give per sequence the
 * logits that sequence gives alone in its own context; a forked prefix continues like
 * its source; a bad position is refused without touching the cache.
 * Usage: test-api-batch-c MODEL.gguf   (exit 0: pass) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "xent.h"

#define N_SEQ 3
#define TOL 2e-3f

static int failures = 0;
#define EXPECT(cond, ...)                      \
  do {                                         \
    if (!(cond)) {                             \
      fprintf(stderr, "FAILED: " __VA_ARGS__); \
      fprintf(stderr, "\n");                   \
      ++failures;                              \
    }                                          \
  } while (0)

static float max_diff(const float* a, const float* b, int32_t n) {
  float d = 0;
  for (int32_t i = 0; i < n; ++i) d = fmaxf(d, fabsf(a[i] - b[i]));
  return d;
}

static int32_t argmax(const float* l, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (l[i] > l[best]) best = i;
  return best;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
    return 2;
  }
  xent_model_params mp = xent_model_default_params();
  xent_model* model = xent_model_load(argv[1], &mp);
  if (!model) {
    fprintf(stderr, "load failed: %s\n", xent_last_error());
    return 1;
  }
  const int32_t n_vocab = xent_model_n_vocab(model);
  const char* texts[N_SEQ] = {"The patient reports chest pain since", "Blood pressure", "Plan: continue metformin and"};
  xent_token prompts[N_SEQ][64];
  int32_t lens[N_SEQ];
  static float alone[N_SEQ][3][65536]; /* logits after the prompt and after two steps */
  xent_token steps[N_SEQ][2];
  if (n_vocab > 65536) return 2;

  xent_context_params cp = xent_context_default_params();
  cp.n_threads = 2;
  cp.n_ctx = 128;
  for (int s = 0; s < N_SEQ; ++s) {
    lens[s] = xent_tokenize(model, texts[s], (int32_t)strlen(texts[s]), prompts[s], 64, false, false);
    EXPECT(lens[s] > 0, "tokenize %d", s);
    xent_context* ctx = xent_context_create(model, &cp);
    EXPECT(ctx != NULL, "context");
    EXPECT(xent_decode(ctx, prompts[s], lens[s], false) == XENT_OK, "decode alone");
    memcpy(alone[s][0], xent_get_logits(ctx), sizeof(float) * (size_t)n_vocab);
    for (int k = 0; k < 2; ++k) {
      steps[s][k] = argmax(xent_get_logits(ctx), n_vocab);
      EXPECT(xent_decode(ctx, &steps[s][k], 1, false) == XENT_OK, "step alone");
      memcpy(alone[s][k + 1], xent_get_logits(ctx), sizeof(float) * (size_t)n_vocab);
    }
    xent_context_free(ctx);
  }

  cp.n_seq_max = N_SEQ + 1;
  cp.n_ctx = 128 * (N_SEQ + 1);
  xent_context* ctx = xent_context_create(model, &cp);
  EXPECT(ctx != NULL, "batch context: %s", xent_last_error());
  xent_batch b = xent_batch_init(256);
  EXPECT(b.token != NULL, "batch init");
  int32_t last[N_SEQ];
  for (int s = 0; s < N_SEQ; ++s)
    for (int32_t i = 0; i < lens[s]; ++i) {
      b.token[b.n_tokens] = prompts[s][i];
      b.pos[b.n_tokens] = i;
      b.seq_id[b.n_tokens] = s;
      b.logits[b.n_tokens] = i + 1 == lens[s];
      if (i + 1 == lens[s]) last[s] = b.n_tokens;
      ++b.n_tokens;
    }
  EXPECT(xent_decode_batch(ctx, &b) == XENT_OK, "decode_batch prompts: %s", xent_last_error());
  for (int s = 0; s < N_SEQ; ++s) {
    const float d = max_diff(xent_get_logits_ith(ctx, last[s]), alone[s][0], n_vocab);
    EXPECT(d < TOL, "prompt %d: max |diff| %g", s, d);
    EXPECT(xent_seq_n_past(ctx, s) == lens[s], "seq %d length", s);
  }
  /* Sequence 0 forked into the spare sequence; it decodes sequence 0's tokens too. */
  EXPECT(xent_seq_copy(ctx, 0, N_SEQ) == XENT_OK, "seq_copy");
  for (int k = 0; k < 2; ++k) {
    b.n_tokens = 0;
    for (int s = 0; s <= N_SEQ; ++s) {
      const int src = s == N_SEQ ? 0 : s;
      b.token[b.n_tokens] = steps[src][k];
      b.pos[b.n_tokens] = xent_seq_n_past(ctx, s);
      b.seq_id[b.n_tokens] = s;
      b.logits[b.n_tokens] = 1;
      ++b.n_tokens;
    }
    EXPECT(xent_decode_batch(ctx, &b) == XENT_OK, "decode_batch step: %s", xent_last_error());
    for (int s = 0; s <= N_SEQ; ++s) {
      const int src = s == N_SEQ ? 0 : s;
      const float d = max_diff(xent_get_logits_ith(ctx, s), alone[src][k + 1], n_vocab);
      EXPECT(d < TOL, "step %d, sequence %d: max |diff| %g", k, s, d);
    }
  }
  /* A position that does not continue its sequence: refused, nothing changes. */
  b.n_tokens = 1;
  b.token[0] = steps[1][0];
  b.pos[0] = 0;
  b.seq_id[0] = 1;
  const int32_t before = xent_seq_n_past(ctx, 1);
  EXPECT(xent_decode_batch(ctx, &b) != XENT_OK, "a wrong position must be refused");
  EXPECT(strstr(xent_last_error(), "continues at") != NULL, "error names the position: %s", xent_last_error());
  EXPECT(xent_seq_n_past(ctx, 1) == before, "cache unchanged");
  EXPECT(xent_seq_truncate(ctx, 1, 0) == XENT_OK && xent_seq_n_past(ctx, 1) == 0, "seq_truncate");
  EXPECT(xent_seq_n_past(ctx, N_SEQ + 1) == -1, "sequence out of range");

  xent_batch_free(b);
  xent_context_free(ctx);
  xent_model_free(model);
  if (failures == 0) printf("test-api-batch-c: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
