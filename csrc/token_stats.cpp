// token_stats: (x0, score, p_cur) per position, one streaming pass over the vocabulary each
// (see stats_row.h), parallel over positions. compute_stats is shared with denoise_step, which
// calls it on the positions of its window only.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "checks.h"
#include "isa_dispatch.h"
#include "kernels.h"
#include "stats_row.h"

namespace wk {

namespace {

template <class T>
struct StatsJob {
  StatsCfg cfg;
  uint64_t seed;
  const T* logits;
  const void* uncond;
  int64_t ls0, ls1, us0, us1;  // batch / position strides of logits and uncond (in elements)
  int64_t uncond_size;         // bytes per uncond element
  int64_t G;
  const StatsItem* items;
  int64_t* x0;
  float* score;
  float* p_cur;

  template <int ISA>
  WK_MEMBER_INLINE void rows(int64_t begin, int64_t end) const {
    alignas(64) float z[kChunk];
    alignas(64) float pick[kChunk];
    for (int64_t i = begin; i < end; ++i) {
      const StatsItem& it = items[i];
      const T* row = logits + it.b * ls0 + it.g * ls1;
      const void* urow =
          uncond != nullptr ? static_cast<const char*>(uncond) + (it.b * us0 + it.g * us1) * uncond_size : nullptr;
      const uint64_t o = static_cast<uint64_t>(it.b * G + it.g);
      const RowJob w{it.kind == kItemFull, it.x, o, seed};
      const RowResult r = stats_row<T, ISA>(cfg, row, urow, w, z, pick);
      if (w.full) {
        x0[o] = r.x0;
        score[o] = r.score;
      }
      p_cur[o] = r.p_cur;
    }
  }
};

Storage storage_of(at::ScalarType t) {
  return t == at::kFloat ? Storage::kF32 : t == at::kBFloat16 ? Storage::kBf16 : Storage::kF16;
}

StatsCfg make_cfg(const StatsArgs& a) {
  StatsCfg c{};
  c.vocab = a.logits.size(2);
  c.mask_id = a.mask_id;
  c.inv_t = a.temperature > 0 ? static_cast<float>(1.0 / a.temperature) : 1.0f;
  c.gumbel = a.temperature > 0;
  c.sampling = a.score_sampling;
  c.score = a.score_mode;
  c.cfg = a.uncond.has_value();
  c.uncond_type = c.cfg ? storage_of(a.uncond->scalar_type()) : Storage::kF32;
  c.cfg_s1 = static_cast<float>(a.cfg_scale + 1.0);
  c.suppress = a.suppress_ids.data();
  c.n_suppress = static_cast<int64_t>(a.suppress_ids.size());
  c.demote = a.demote_ids.data();
  c.n_demote = static_cast<int64_t>(a.demote_ids.size());
  c.step = a.step;
  c.groups = static_cast<uint64_t>((c.vocab + 3) / 4);
  return c;
}

template <class T>
void run(const StatsArgs& a, const std::vector<StatsItem>& items, int64_t* x0, float* score, float* p_cur) {
  StatsJob<T> j{};
  const at::Tensor& lg = a.logits;
  j.cfg = make_cfg(a);
  j.seed = a.seed;
  j.logits = reinterpret_cast<const T*>(lg.const_data_ptr());
  j.ls0 = lg.stride(0);
  j.ls1 = lg.stride(1);
  if (a.uncond.has_value()) {
    j.uncond = a.uncond->const_data_ptr();
    j.us0 = a.uncond->stride(0);
    j.us1 = a.uncond->stride(1);
    j.uncond_size = static_cast<int64_t>(a.uncond->element_size());
  }
  j.G = lg.size(1);
  j.items = items.data();
  j.x0 = x0;
  j.score = score;
  j.p_cur = p_cur;
  run_rows(j, static_cast<int64_t>(items.size()), 1);
}

}  // namespace

void compute_stats(const StatsArgs& a, const std::vector<StatsItem>& items, int64_t* x0, float* score,
                   float* p_cur) {
  if (items.empty()) return;
  switch (a.logits.scalar_type()) {
    case at::kFloat:
      run<float>(a, items, x0, score, p_cur);
      break;
    case at::kBFloat16:
      run<Bf16>(a, items, x0, score, p_cur);
      break;
    case at::kHalf:
      run<F16>(a, items, x0, score, p_cur);
      break;
    default:
      TORCH_CHECK(false, "warmkern_cpu: logits: expected dtype Float, BFloat16 or Half, got ", a.logits.scalar_type());
  }
}

ScoreMode score_mode_from_string(const std::string& score) {
  if (score == "prob") return kScoreProb;
  if (score == "margin") return kScoreMargin;
  if (score == "entropy") return kScoreEntropy;
  if (score == "random") return kScoreRandom;
  WK_CHECK_ARG(false, "score", "one of prob, margin, entropy, random, got '", score, "'");
  return kScoreProb;  // unreachable
}

std::vector<int64_t> sorted_ids(c10::ArrayRef<int64_t> ids) {
  std::vector<int64_t> v(ids.begin(), ids.end());
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

namespace {

constexpr std::initializer_list<at::ScalarType> kLogitTypes = {at::kFloat, at::kBFloat16, at::kHalf};

void check_logits(const at::Tensor& logits, const std::optional<at::Tensor>& uncond) {
  check_tensor(logits, "logits", 3, kLogitTypes);
  check_unit_last_stride(logits, "logits");
  if (uncond.has_value()) {  // any float storage: both are read as fp32, as the spec does
    check_tensor(*uncond, "uncond_logits", 3, kLogitTypes);
    check_shape(*uncond, "uncond_logits", logits.sizes());
    check_unit_last_stride(*uncond, "uncond_logits");
  }
}

std::vector<int64_t> checked_ids(c10::ArrayRef<int64_t> ids, const char* name, int64_t vocab) {
  std::vector<int64_t> v = sorted_ids(ids);
  for (const int64_t id : v) WK_CHECK_ARG(id >= 0 && id < vocab, name, "ids in [0, ", vocab, "), got ", id);
  return v;
}

}  // namespace

// Checks shared by token_stats and denoise_step (the Python layer validated values already; these
// guard the memory the kernel touches and refuse what it cannot mean).
StatsArgs make_stats_args(const at::Tensor& logits, const std::optional<at::Tensor>& uncond, int64_t mask_id,
                          double temperature, const std::string& score, const std::string& score_temperature,
                          c10::ArrayRef<int64_t> suppress_ids, c10::ArrayRef<int64_t> demote_ids, double cfg_scale,
                          int64_t seed, int64_t step) {
  check_logits(logits, uncond);
  const int64_t vocab = logits.size(2);
  WK_CHECK_ARG(mask_id >= 0 && mask_id < vocab, "mask_id", "an id in [0, ", vocab, "), got ", mask_id);
  WK_CHECK_ARG(temperature >= 0.0, "temperature", "a value >= 0, got ", temperature);
  WK_CHECK_ARG(score_temperature == "none" || score_temperature == "sampling", "score_temperature",
               "'none' or 'sampling', got '", score_temperature, "'");
  WK_CHECK_ARG(seed >= 0, "seed", "an int in [0, 2**63 - 1], got ", seed);
  WK_CHECK_ARG(step >= 0 && step <= int64_t{0xFFFFFFFF}, "step", "an int in [0, 2**32 - 1], got ", step);
  StatsArgs a;
  a.logits = logits;
  a.uncond = uncond;
  a.mask_id = mask_id;
  a.temperature = temperature;
  a.score_mode = score_mode_from_string(score);
  a.score_sampling = score_temperature == "sampling";
  a.suppress_ids = checked_ids(suppress_ids, "suppress_ids", vocab);
  a.demote_ids = checked_ids(demote_ids, "demote_ids", vocab);
  a.cfg_scale = cfg_scale;
  a.seed = static_cast<uint64_t>(seed);
  a.step = static_cast<uint32_t>(step);
  return a;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> token_stats(const at::Tensor& logits, const at::Tensor& x,
                                                           const std::optional<at::Tensor>& uncond, int64_t mask_id,
                                                           double temperature, const std::string& score,
                                                           const std::string& score_temperature,
                                                           c10::ArrayRef<int64_t> suppress_ids,
                                                           c10::ArrayRef<int64_t> demote_ids, double cfg_scale,
                                                           int64_t seed, int64_t step) {
  const StatsArgs a = make_stats_args(logits, uncond, mask_id, temperature, score, score_temperature, suppress_ids,
                                      demote_ids, cfg_scale, seed, step);
  const int64_t B = logits.size(0), G = logits.size(1);
  check_tensor(x, "x", 2, {at::kLong});
  check_shape(x, "x", {B, G});
  check_values_in(x, "x", 0, logits.size(2));  // p_cur reads the logit of every x
  at::Tensor x0 = at::empty({B, G}, logits.options().dtype(at::kLong));
  at::Tensor sc = at::empty({B, G}, logits.options().dtype(at::kFloat));
  at::Tensor pc = at::empty({B, G}, logits.options().dtype(at::kFloat));
  std::vector<StatsItem> items;
  items.reserve(static_cast<size_t>(B * G));
  const int64_t* xp = x.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g) items.push_back({b, g, xp[b * x.stride(0) + g * x.stride(1)], kItemFull});
  compute_stats(a, items, x0.data_ptr<int64_t>(), sc.data_ptr<float>(), pc.data_ptr<float>());
  return {x0, sc, pc};
}

}  // namespace wk
