// Declarations shared between the op files: the per-position statistics engine (token_stats.cpp)
// that denoise_step (select.cpp) reuses on the rows of its window only.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace wk {

enum ScoreMode : int { kScoreProb = 0, kScoreMargin = 1, kScoreEntropy = 2, kScoreRandom = 3 };

// What a position needs: everything (token_stats, masked rows of denoise_step) or only p_cur
// (provisional rows that remasking may reopen).
enum ItemKind : uint8_t { kItemFull = 0, kItemPcurOnly = 1 };

struct StatsArgs {
  at::Tensor logits;                   // [B, G, V] bf16/fp16/fp32, unit last stride
  std::optional<at::Tensor> uncond;    // same shape as logits, bf16/fp16/fp32, unit last stride (CFG)
  int64_t mask_id = 0;
  double temperature = 0.0;
  ScoreMode score_mode = kScoreProb;
  bool score_sampling = false;         // score_temperature == "sampling"
  std::vector<int64_t> suppress_ids;        // sorted, unique: -inf everywhere
  std::vector<int64_t> pick_suppress_ids;   // sorted, unique: never x0
  std::vector<int64_t> score_suppress_ids;  // sorted, unique: out of the score / p_cur softmax
  std::vector<int64_t> special_ids;         // their union: the fast spans stop before each
  double cfg_scale = 0.0;
  std::vector<uint64_t> seeds;  // [B] per-row Philox keys
  uint32_t step = 0;
  int64_t top_k = 0;            // truncation (off: 0 and 1)
  double top_p = 1.0;
  at::Tensor prior_ids;         // contiguous [B, G] int64 (undefined: no prior); ids outside [0, V) never hit
  std::vector<float> prior_bias;  // [B]
};

// The raw arguments of token_stats / denoise_step's statistics half, in schema order.
struct StatsInput {
  const at::Tensor& logits;
  const std::optional<at::Tensor>& uncond;
  int64_t mask_id;
  double temperature;
  const std::string& score;
  const std::string& score_temperature;
  c10::ArrayRef<int64_t> suppress_ids, pick_suppress_ids, score_suppress_ids;
  double cfg_scale;
  int64_t seed;
  const std::optional<at::Tensor>& row_seeds;
  int64_t step;
  const std::optional<at::Tensor>& step_tensor;
  int64_t top_k;
  double top_p;
  const std::optional<at::Tensor>& prior_ids;
  const std::optional<at::Tensor>& prior_bias;
  int64_t vocab_total = 0;  // ids are checked against this vocabulary (a shard's whole one); 0: logits' V
};

struct StatsItem {
  int64_t b;
  int64_t g;
  int64_t x;  // current token at (b, g)
  uint8_t kind;
};

// Fill x0/score/p_cur ([B*G] contiguous, index b*G+g) for the given positions, in parallel.
void compute_stats(const StatsArgs& args, const std::vector<StatsItem>& items, int64_t* x0, float* score,
                   float* p_cur);

ScoreMode score_mode_from_string(const std::string& score);
std::vector<int64_t> sorted_ids(c10::ArrayRef<int64_t> ids);

// Argument checks (every tensor read, every value indexed with) + normalisation shared by
// token_stats and denoise_step.
StatsArgs make_stats_args(const StatsInput& in);

// Selection rule of one call (exactly one of k / threshold / factor) plus optional remasking.
struct SelectRule {
  const int64_t* lo;  // [B]
  const int64_t* hi;  // [B]
  const int64_t* k;   // [B] or nullptr
  std::optional<double> threshold, factor, remask_threshold;
  std::optional<int64_t> remask_max;
  int64_t mask_id;
  float inv_alg_temp;       // fp32(1 / alg_temp); 0: off (rank by score)
  const uint64_t* seeds;    // [B] per-row Philox keys (alg_temp)
  uint32_t step;
};

// Per-row transfer/remask on contiguous [B*G] score/x0/p_cur; x and provisional are [B, G] views
// (any strides) updated in place; n_transfer/n_remask are [B].
void select_rows(int64_t B, int64_t G, const float* score, const int64_t* x0, const float* p_cur, int64_t* x,
                 int64_t xs0, int64_t xs1, bool* prov, int64_t ps0, int64_t ps1, const SelectRule& rule,
                 int64_t* n_transfer, int64_t* n_remask);

// ---- the ops (registration.cpp binds them)
at::Tensor token_stats_partial(
    const at::Tensor& logits, int64_t vocab_start, int64_t vocab_total, const at::Tensor& x,
    const std::optional<at::Tensor>& uncond, int64_t mask_id, double temperature, const std::string& score,
    const std::string& score_temperature, c10::ArrayRef<int64_t> suppress_ids, c10::ArrayRef<int64_t> pick_suppress_ids,
    c10::ArrayRef<int64_t> score_suppress_ids, double cfg_scale, int64_t seed, const std::optional<at::Tensor>& row_seeds,
    int64_t step, const std::optional<at::Tensor>& step_tensor, const std::optional<at::Tensor>& prior_ids,
    const std::optional<at::Tensor>& prior_bias, const std::optional<at::Tensor>& cutoff, int64_t position_offset);
void warm_embed(const at::Tensor& weight, const at::Tensor& x, const at::Tensor& draft, const at::Tensor& keep,
                const at::Tensor& out, int64_t mask_id, const at::Tensor& alpha, double scale,
                const std::optional<at::Tensor>& status);
std::tuple<at::Tensor, at::Tensor, at::Tensor> token_stats(const at::Tensor& logits, const at::Tensor& x,
                                                           const std::optional<at::Tensor>& uncond, int64_t mask_id,
                                                           double temperature, const std::string& score,
                                                           const std::string& score_temperature,
                                                           c10::ArrayRef<int64_t> suppress_ids,
                                                           c10::ArrayRef<int64_t> pick_suppress_ids,
                                                           c10::ArrayRef<int64_t> score_suppress_ids, double cfg_scale,
                                                           int64_t seed, const std::optional<at::Tensor>& row_seeds,
                                                           int64_t step, const std::optional<at::Tensor>& step_tensor,
                                                           int64_t top_k, double top_p,
                                                           const std::optional<at::Tensor>& prior_ids,
                                                           const std::optional<at::Tensor>& prior_bias);
std::tuple<at::Tensor, at::Tensor> select(const at::Tensor& score, const at::Tensor& x0, const at::Tensor& p_cur,
                                          const at::Tensor& x, const at::Tensor& provisional, int64_t mask_id,
                                          const at::Tensor& lo, const at::Tensor& hi, const std::optional<at::Tensor>& k,
                                          std::optional<double> threshold, std::optional<double> factor,
                                          std::optional<double> remask_threshold, std::optional<int64_t> remask_max,
                                          double alg_temp, int64_t seed, const std::optional<at::Tensor>& row_seeds,
                                          int64_t step, const std::optional<at::Tensor>& step_tensor);
std::tuple<at::Tensor, at::Tensor> denoise_step(
    const at::Tensor& logits, const at::Tensor& x, const at::Tensor& provisional,
    const std::optional<at::Tensor>& uncond, int64_t mask_id, const at::Tensor& lo, const at::Tensor& hi,
    const std::optional<at::Tensor>& k, std::optional<double> threshold, std::optional<double> factor,
    std::optional<double> remask_threshold, std::optional<int64_t> remask_max, double alg_temp, double temperature,
    const std::string& score, const std::string& score_temperature, c10::ArrayRef<int64_t> suppress_ids,
    c10::ArrayRef<int64_t> pick_suppress_ids, c10::ArrayRef<int64_t> score_suppress_ids, double cfg_scale,
    int64_t seed, const std::optional<at::Tensor>& row_seeds, int64_t step, const std::optional<at::Tensor>& step_tensor,
    int64_t top_k, double top_p, const std::optional<at::Tensor>& prior_ids, const std::optional<at::Tensor>& prior_bias);

}  // namespace wk
