// token_stats: (x0, score, p_cur) per position, one streaming pass over the vocabulary each
// (see stats_row.h), parallel over positions. compute_stats is shared with denoise_step, which
// calls it on the positions of its window only.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <stdexcept>

#include "kernels.h"
#include "stats_row.h"

namespace wk {

namespace {

template <class T>
struct StatsJob {
  RowCfg cfg;
  const T* logits;
  const T* uncond;
  int64_t ls0, ls1, us0, us1;  // batch / position strides of logits and uncond
  int64_t G;
  const StatsItem* items;
  int64_t* x0;
  float* score;
  float* p_cur;
};

template <class T, int ISA>
WK_INLINE void rows_impl(const StatsJob<T>& j, int64_t begin, int64_t end) {
  alignas(64) float z[kChunk];
  alignas(64) float pick[kChunk];
  for (int64_t i = begin; i < end; ++i) {
    const StatsItem& it = j.items[i];
    const T* row = j.logits + it.b * j.ls0 + it.g * j.ls1;
    const T* urow = j.uncond != nullptr ? j.uncond + it.b * j.us0 + it.g * j.us1 : nullptr;
    const RowWork w{it.kind == kItemFull, it.x, static_cast<uint64_t>(it.b * j.G + it.g)};
    const RowResult r = stats_row<T, ISA>(j.cfg, row, urow, w, z, pick);
    const int64_t o = it.b * j.G + it.g;
    if (w.full) {
      j.x0[o] = r.x0;
      j.score[o] = r.score;
    }
    j.p_cur[o] = r.p_cur;
  }
}

template <class T>
void rows_base(const StatsJob<T>& j, int64_t b, int64_t e) {
  rows_impl<T, kIsaBase>(j, b, e);
}
#if WK_X86
template <class T>
WK_TARGET_AVX2 void rows_avx2(const StatsJob<T>& j, int64_t b, int64_t e) {
  rows_impl<T, kIsaAvx2>(j, b, e);
}
template <class T>
WK_TARGET_AVX512 void rows_avx512(const StatsJob<T>& j, int64_t b, int64_t e) {
  rows_impl<T, kIsaAvx512>(j, b, e);
}
#endif

template <class T>
void run(const StatsArgs& a, const std::vector<StatsItem>& items, int64_t* x0, float* score, float* p_cur) {
  StatsJob<T> j{};
  const at::Tensor& lg = a.logits;
  const int64_t vocab = lg.size(2);
  j.cfg.vocab = vocab;
  j.cfg.mask_id = a.mask_id;
  j.cfg.inv_t = a.temperature > 0 ? static_cast<float>(1.0 / a.temperature) : 1.0f;
  j.cfg.gumbel = a.temperature > 0;
  j.cfg.sampling = a.score_sampling;
  j.cfg.score_mode = a.score_mode;
  j.cfg.cfg = a.uncond.has_value();
  j.cfg.cfg_s1 = static_cast<float>(a.cfg_scale + 1.0);
  j.cfg.suppress = a.suppress_ids.data();
  j.cfg.n_suppress = static_cast<int64_t>(a.suppress_ids.size());
  j.cfg.demote = a.demote_ids.data();
  j.cfg.n_demote = static_cast<int64_t>(a.demote_ids.size());
  j.cfg.key0 = static_cast<uint32_t>(a.seed);
  j.cfg.key1 = static_cast<uint32_t>(a.seed >> 32);
  j.cfg.step = a.step;
  j.cfg.groups = static_cast<uint64_t>((vocab + 3) / 4);
  j.cfg.seed = a.seed;
  j.logits = reinterpret_cast<const T*>(lg.const_data_ptr());
  j.ls0 = lg.stride(0);
  j.ls1 = lg.stride(1);
  if (a.uncond.has_value()) {
    j.uncond = reinterpret_cast<const T*>(a.uncond->const_data_ptr());
    j.us0 = a.uncond->stride(0);
    j.us1 = a.uncond->stride(1);
  }
  j.G = lg.size(1);
  j.items = items.data();
  j.x0 = x0;
  j.score = score;
  j.p_cur = p_cur;

  void (*fn)(const StatsJob<T>&, int64_t, int64_t) = rows_base<T>;
#if WK_X86
  const int isa = cpu_isa();
  if (isa == kIsaAvx512) fn = rows_avx512<T>;
  else if (isa == kIsaAvx2) fn = rows_avx2<T>;
#endif
  at::parallel_for(0, static_cast<int64_t>(items.size()), 1, [&](int64_t b, int64_t e) { fn(j, b, e); });
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
      TORCH_CHECK(false, "warmkern_cpu: logits must be float32, bfloat16 or float16, got ", a.logits.scalar_type());
  }
}

int score_mode_from_string(const std::string& score) {
  if (score == "prob") return kScoreProb;
  if (score == "margin") return kScoreMargin;
  if (score == "entropy") return kScoreEntropy;
  if (score == "random") return kScoreRandom;
  TORCH_CHECK(false, "warmkern_cpu: unknown score mode '", score, "'");
}

std::vector<int64_t> sorted_ids(c10::ArrayRef<int64_t> ids) {
  std::vector<int64_t> v(ids.begin(), ids.end());
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// Checks shared by token_stats and denoise_step (the Python layer validated values already; these
// guard the memory the kernel touches).
StatsArgs make_stats_args(const at::Tensor& logits, const std::optional<at::Tensor>& uncond, int64_t mask_id,
                          double temperature, const std::string& score, const std::string& score_temperature,
                          c10::ArrayRef<int64_t> suppress_ids, c10::ArrayRef<int64_t> demote_ids, double cfg_scale,
                          int64_t seed, int64_t step) {
  TORCH_CHECK(logits.dim() == 3 && logits.device().is_cpu(), "warmkern_cpu: logits must be a [B, G, V] CPU tensor");
  TORCH_CHECK(logits.size(2) <= 1 || logits.stride(2) == 1, "warmkern_cpu: logits need a unit last stride");
  const int64_t vocab = logits.size(2);
  TORCH_CHECK(mask_id >= 0 && mask_id < vocab, "warmkern_cpu: mask_id out of range");
  if (uncond.has_value()) {
    TORCH_CHECK(uncond->sizes() == logits.sizes() && uncond->scalar_type() == logits.scalar_type(),
                "warmkern_cpu: uncond_logits must match logits in shape and dtype");
    TORCH_CHECK(vocab <= 1 || uncond->stride(2) == 1, "warmkern_cpu: uncond_logits need a unit last stride");
  }
  StatsArgs a;
  a.logits = logits;
  a.uncond = uncond;
  a.mask_id = mask_id;
  a.temperature = temperature;
  a.score_mode = score_mode_from_string(score);
  a.score_sampling = score_temperature == "sampling";
  a.suppress_ids = sorted_ids(suppress_ids);
  a.demote_ids = sorted_ids(demote_ids);
  for (const int64_t v : a.suppress_ids) TORCH_CHECK(v >= 0 && v < vocab, "warmkern_cpu: suppress id out of range");
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
  TORCH_CHECK(x.dim() == 2 && x.size(0) == B && x.size(1) == G && x.scalar_type() == at::kLong,
              "warmkern_cpu: x must be an int64 [B, G] tensor");
  at::Tensor x0 = at::empty({B, G}, logits.options().dtype(at::kLong));
  at::Tensor sc = at::empty({B, G}, logits.options().dtype(at::kFloat));
  at::Tensor pc = at::empty({B, G}, logits.options().dtype(at::kFloat));
  std::vector<StatsItem> items;
  items.reserve(static_cast<size_t>(B * G));
  const int64_t* xp = x.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t xv = xp[b * x.stride(0) + g * x.stride(1)];
      TORCH_CHECK(xv >= 0 && xv < logits.size(2), "warmkern_cpu: x holds a token id outside [0, V)");
      items.push_back({b, g, xv, kItemFull});
    }
  compute_stats(a, items, x0.data_ptr<int64_t>(), sc.data_ptr<float>(), pc.data_ptr<float>());
  return {x0, sc, pc};
}

}  // namespace wk
