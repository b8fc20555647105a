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
  const uint64_t* seeds;       // [B] Philox keys
  const int64_t* prior;        // [B, G] contiguous prior ids, or nullptr
  const float* bias;           // [B] prior biases
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
    TruncBufs tb;  // grown on the first truncated row only
    for (int64_t i = begin; i < end; ++i) {
      const StatsItem& it = items[i];
      const T* row = logits + it.b * ls0 + it.g * ls1;
      const void* urow =
          uncond != nullptr ? static_cast<const char*>(uncond) + (it.b * us0 + it.g * us1) * uncond_size : nullptr;
      const uint64_t o = static_cast<uint64_t>(it.b * G + it.g);
      const int64_t pid = prior != nullptr ? prior[o] : -1;
      const RowJob w{it.kind == kItemFull, it.x, static_cast<uint64_t>(it.g), seeds[it.b], pid,
                     pid >= 0 ? bias[it.b] : 0.0f};
      const RowResult r = cfg.truncate ? truncated_row<T, ISA>(cfg, row, urow, w, z, pick, tb)
                                       : stats_row<T, ISA>(cfg, row, urow, w, z, pick);
      if (w.full) {
        x0[o] = r.x0;
        score[o] = r.score;
      }
      p_cur[o] = r.p_cur;
    }
  }
};

}  // namespace

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
  auto list = [](const std::vector<int64_t>& v) { return IdList{v.data(), static_cast<int64_t>(v.size())}; };
  c.suppress = list(a.suppress_ids);
  c.pick = list(a.pick_suppress_ids);
  c.score_sup = list(a.score_suppress_ids);
  c.special = list(a.special_ids);
  c.step = a.step;
  c.groups = static_cast<uint64_t>((c.vocab + 3) / 4);
  c.top_k = a.top_k;
  c.top_p = a.top_p;
  c.truncate = (a.top_k > 0 && a.top_k < c.vocab) || a.top_p < 1.0;
  return c;
}

namespace {

template <class T>
void run(const StatsArgs& a, const std::vector<StatsItem>& items, int64_t* x0, float* score, float* p_cur) {
  StatsJob<T> j{};
  const at::Tensor& lg = a.logits;
  j.cfg = make_cfg(a);
  j.seeds = a.seeds.data();
  j.prior = a.prior_ids.defined() ? a.prior_ids.const_data_ptr<int64_t>() : nullptr;
  j.bias = a.prior_bias.data();
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

// The draft prior: prior_ids [B, G] int64 (contiguous copy; any value, ids outside [0, V) never hit)
// and prior_bias (fp32, B values or one), required together.
static void set_prior(StatsArgs& a, const std::optional<at::Tensor>& ids, const std::optional<at::Tensor>& bias, int64_t B,
               int64_t G) {
  if (!ids.has_value()) return;
  check_tensor(*ids, "prior_ids", 2, {at::kLong});
  check_shape(*ids, "prior_ids", {B, G});
  WK_CHECK_ARG(bias.has_value(), "prior_bias", "a float or [B] tensor with prior_ids, got None");
  const at::Tensor& t = *bias;
  WK_CHECK_ARG(t.defined() && t.device().is_cpu(), "prior_bias", "a CPU tensor");
  WK_CHECK_ARG(t.scalar_type() == at::kFloat, "prior_bias", "dtype Float (fp32), got ", t.scalar_type());
  WK_CHECK_ARG(t.dim() <= 1 && (t.numel() == B || t.numel() == 1), "prior_bias", B,
               " values (one per row) or one, got shape ", t.sizes());
  a.prior_ids = ids->contiguous();
  const at::Tensor r = t.reshape({-1}).expand({B}).contiguous();
  a.prior_bias.assign(r.const_data_ptr<float>(), r.const_data_ptr<float>() + B);
}

// Checks shared by token_stats and denoise_step (the Python layer validated values already; these
// guard the memory the kernel touches and refuse what it cannot mean).
StatsArgs make_stats_args(const StatsInput& in) {
  (void)cpu_isa();  // a bad WARMKERN_CPU_ISA fails here, before any work
  check_logits(in.logits, in.uncond);
  const int64_t B = in.logits.size(0), G = in.logits.size(1);
  const int64_t vocab = in.vocab_total > 0 ? in.vocab_total : in.logits.size(2);  // the ids' range
  WK_CHECK_ARG(in.mask_id >= 0 && in.mask_id < vocab, "mask_id", "an id in [0, ", vocab, "), got ", in.mask_id);
  WK_CHECK_ARG(in.temperature >= 0.0, "temperature", "a value >= 0, got ", in.temperature);
  WK_CHECK_ARG(in.temperature == 0.0 || std::isfinite(static_cast<float>(1.0 / in.temperature)), "temperature",
               "a value whose fp32 inverse is finite, got ", in.temperature);
  WK_CHECK_ARG(in.score_temperature == "none" || in.score_temperature == "sampling", "score_temperature",
               "'none' or 'sampling', got '", in.score_temperature, "'");
  WK_CHECK_ARG(in.top_k >= 0, "top_k", "an int >= 0, got ", in.top_k);
  WK_CHECK_ARG(in.top_p >= 0.0 && in.top_p <= 1.0, "top_p", "a value in [0, 1], got ", in.top_p);
  StatsArgs a;
  a.logits = in.logits;
  a.uncond = in.uncond;
  a.mask_id = in.mask_id;
  a.temperature = in.temperature;
  a.score_mode = score_mode_from_string(in.score);
  a.score_sampling = in.score_temperature == "sampling";
  a.suppress_ids = checked_ids(in.suppress_ids, "suppress_ids", vocab);
  a.pick_suppress_ids = checked_ids(in.pick_suppress_ids, "pick_suppress_ids", vocab);
  a.score_suppress_ids = checked_ids(in.score_suppress_ids, "score_suppress_ids", vocab);
  a.special_ids = a.suppress_ids;
  a.special_ids.insert(a.special_ids.end(), a.pick_suppress_ids.begin(), a.pick_suppress_ids.end());
  a.special_ids.insert(a.special_ids.end(), a.score_suppress_ids.begin(), a.score_suppress_ids.end());
  a.special_ids = sorted_ids(a.special_ids);
  a.cfg_scale = in.cfg_scale;
  a.seeds = row_seeds_of(in.seed, in.row_seeds, B);
  a.step = step_of(in.step, in.step_tensor);
  a.top_k = in.top_k;
  a.top_p = in.top_p;
  set_prior(a, in.prior_ids, in.prior_bias, B, G);
  return a;
}

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
                                                           const std::optional<at::Tensor>& prior_bias) {
  const StatsArgs a = make_stats_args({logits, uncond, mask_id, temperature, score, score_temperature, suppress_ids,
                                       pick_suppress_ids, score_suppress_ids, cfg_scale, seed, row_seeds, step,
                                       step_tensor, top_k, top_p, prior_ids, prior_bias});
  const int64_t B = logits.size(0), G = logits.size(1);
  check_tensor(x, "x", 2, {at::kLong});
  check_shape(x, "x", {B, G});  // any values: p_cur of an id outside [0, V) is 0, never read
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
