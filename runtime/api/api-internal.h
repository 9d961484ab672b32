// The structs behind the C API's opaque handles, shared by the files that implement
// include/xent.h (api.cpp, api-autocomplete.cpp). Not installed; apps never see it.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/inference/context.h"
#include "runtime/inference/model.h"
#include "runtime/sampling/sampler.h"
#include "xent.h"

struct xent_model {
  std::unique_ptr<xent::Model> model;
  std::string architecture, description, chat_template;
  // The token trie grammars are matched against, built on first use (api-grammar.cpp).
  mutable std::once_flag grammar_vocab_once;
  mutable std::shared_ptr<const xent::GrammarVocab> grammar_vocab;
};

struct xent_context {
  const xent_model* model = nullptr;
  std::unique_ptr<xent::Context> ctx;
  std::vector<xent_token> tokens;  // what the KV cache holds, position by position (sequence 0)
  std::vector<std::vector<xent_token>> seq_tokens;  // the same for sequences 1 .. n_seq_max - 1
  std::string backend_names;
};

struct xent_sampler {
  std::unique_ptr<xent::Sampler> sampler;
};

// Sets the message xent_last_error() returns on this thread (api.cpp owns it).
void xent_api_set_error(const std::string& message);
