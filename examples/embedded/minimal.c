/* The smallest embedding of libxent.a (docs/mobile.md): load a GGUF, greedy-complete a
 * prompt on the CPU with a small context. Usage: minimal MODEL.gguf "prompt" [n_tokens] */
#include <stdio.h>
#include <stdlib.h>
#include <xent.h>

static bool print_piece(xent_token token, const char* piece, int32_t len, void* user) {
  (void)token, (void)user;
  fwrite(piece, 1, (size_t)len, stdout);
  return true;
}

int main(int argc, char** argv) {
  if (argc < 3) return fprintf(stderr, "usage: %s MODEL.gguf PROMPT [N]\n", argv[0]), 2;
  xent_model* model = xent_model_load(argv[1], NULL);
  if (!model) return fprintf(stderr, "load: %s\n", xent_last_error()), 1;
  xent_context_params cp = xent_context_default_params();
  cp.n_ctx = 256; /* bounds the KV cache: what a small device can afford */
  cp.n_threads = 2;
  xent_context* ctx = xent_context_create(model, &cp);
  xent_sampler_params sp = xent_sampler_default_params();
  sp.temperature = 0; /* greedy: the same text on every machine */
  xent_sampler* sampler = ctx ? xent_sampler_create(&sp) : NULL;
  xent_status st = sampler ? xent_generate(ctx, sampler, argv[2], argc > 3 ? atoi(argv[3]) : 16,
                                           print_piece, NULL, NULL)
                           : XENT_ERROR_INVALID_ARGUMENT;
  if (st != XENT_OK) fprintf(stderr, "\nerror: %s\n", xent_last_error());
  printf("\n");
  xent_sampler_free(sampler), xent_context_free(ctx), xent_model_free(model);
  return st == XENT_OK ? 0 : 1;
}
