/* Embedding libxent from C99: load a model, complete a prompt token by token, print it.
 * Usage: complete MODEL.gguf PROMPT [N_TOKENS=32] [SEED]   (no seed: greedy) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xent.h>

static int fail(const char* what) {
  fprintf(stderr, "complete: %s: %s\n", what, xent_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.gguf PROMPT [N_TOKENS=32] [SEED]\n", argv[0]);
    return 2;
  }
  const int n_predict = argc > 3 ? atoi(argv[3]) : 32;
  int rc = 1;
  xent_context* ctx = NULL;
  xent_sampler* smpl = NULL;
  xent_token* prompt = NULL;

  xent_model* model = xent_model_load(argv[1], NULL);
  if (!model) return fail("loading the model");
  ctx = xent_context_create(model, NULL); /* defaults: CPU, the model's own context size */
  if (!ctx) { fail("creating a context"); goto done; }

  xent_sampler_params sp = xent_sampler_default_params();
  if (argc > 4) sp.seed = strtoull(argv[4], NULL, 10);
  else sp.temperature = 0.0f; /* greedy */
  smpl = xent_sampler_create(&sp);
  if (!smpl) { fail("creating a sampler"); goto done; }

  /* With no room (n_max 0) xent_tokenize returns minus the number of tokens needed. */
  const int32_t text_len = (int32_t)strlen(argv[2]);
  const int32_t need = xent_tokenize(model, argv[2], text_len, NULL, 0, true, true);
  if (need == INT32_MIN || need >= 0) { fail("tokenizing the prompt"); goto done; }
  prompt = malloc(sizeof(xent_token) * (size_t)-need);
  if (!prompt) { fprintf(stderr, "complete: out of memory\n"); goto done; }
  const int32_t n_prompt = xent_tokenize(model, argv[2], text_len, prompt, -need, true, true);
  if (n_prompt != -need) { fail("tokenizing the prompt"); goto done; }
  if (xent_decode(ctx, prompt, n_prompt, false) != XENT_OK) { fail("evaluating the prompt"); goto done; }

  for (int i = 0; i < n_predict; ++i) {
    xent_token tok = xent_sampler_sample(smpl, ctx); /* also records tok in its history */
    if (tok < 0) { fail("sampling"); goto done; }
    if (xent_token_is_eog(model, tok)) break;
    char piece[256]; /* longer pieces are reported as an error here */
    const int32_t n = xent_token_to_piece(model, tok, piece, (int32_t)sizeof piece, false);
    if (n < 0) { fail("rendering a token"); goto done; }
    fwrite(piece, 1, (size_t)n, stdout);
    fflush(stdout);
    if (xent_context_n_past(ctx) >= xent_context_n_ctx(ctx)) break; /* the context is full */
    if (xent_decode(ctx, &tok, 1, false) != XENT_OK) { fail("evaluating a token"); goto done; }
  }
  printf("\n");
  rc = 0;
done:
  free(prompt);
  xent_sampler_free(smpl);
  xent_context_free(ctx);
  xent_model_free(model);
  return rc;
}
