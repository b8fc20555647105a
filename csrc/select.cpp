// select and denoise_step: per-row transfer / remask by the spec's total order, in place.
//
// Order (reference.selection_rank): NaN scores last, then score descending, then position
// ascending. Only the eligible positions of a row are ranked, with partial selection: top-k uses
// nth_element (membership is all that matters), threshold one linear scan, factor a heap popped
// until the first failing rank, so the cost is O(G + n log G) for n transferred tokens.
// denoise_step computes statistics only for the window positions the selection can look at.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "checks.h"
#include "common.h"
#include "kernels.h"

namespace wk {

namespace {

struct Key {
  float s;      // score with NaN -> -inf
  bool nan;     // NaN ranks after every number
  int64_t pos;  // ties: position ascending
};

// rng.gumbel_from_uniform with libm's log (the reference's torch.log up to an ulp).
inline float gumbel_exact(float w) {
  const float w2 = w * w;
  const float series = (w + w2 * 0.5f) + (w2 * w) * kThird;
  const float e = w < kSeriesCutoff ? series : -std::log(1.0f - w);
  return -std::log(e);
}

// Dream's alg_temp order (reference.alg_temp_keys): score * fp32(1/alg_temp) + the position's Gumbel
// draw of stream 3 (key: the row's seed, counter n = g, word 0).
inline float alg_temp_key(float s, const SelectRule& rule, int64_t b, int64_t g) {
  const Philox4 w = philox(static_cast<uint32_t>(g), static_cast<uint32_t>(static_cast<uint64_t>(g) >> 32),
                           rule.step, kStreamAlgTemp, static_cast<uint32_t>(rule.seeds[b]),
                           static_cast<uint32_t>(rule.seeds[b] >> 32));
  return s * rule.inv_alg_temp + gumbel_exact(uniform_from_word(w.v[0]));
}

// True when a ranks before b in the spec's total order.
inline bool before(const Key& a, const Key& b) {
  if (a.nan != b.nan) return b.nan;
  if (a.s != b.s) return a.s > b.s;
  return a.pos < b.pos;
}

void select_row(int64_t b, int64_t G, const float* score, const int64_t* x0, const float* p_cur, int64_t* x,
                int64_t xs1, bool* prov, int64_t ps1, const SelectRule& rule, int64_t* n_transfer,
                int64_t* n_remask, std::vector<Key>& keys, std::vector<int64_t>& transfer, std::vector<Key>& cands) {
  const int64_t lo = rule.lo[b], hi = std::min(rule.hi[b], G), mask = rule.mask_id;
  keys.clear();
  transfer.clear();
  cands.clear();
  for (int64_t g = lo; g < hi; ++g) {
    if (x[g * xs1] != mask || x0[g] == mask) continue;
    float s = score[g];
    if (rule.inv_alg_temp > 0.0f) s = alg_temp_key(s, rule, b, g);
    keys.push_back({s != s ? -INFINITY : s, s != s, g});
  }
  const int64_t n_elig = static_cast<int64_t>(keys.size());
  if (n_elig > 0) {
    if (rule.k != nullptr) {
      const int64_t kk = std::min<int64_t>(std::max<int64_t>(rule.k[b], 0), n_elig);
      if (kk < n_elig) std::nth_element(keys.begin(), keys.begin() + kk, keys.end(), before);
      for (int64_t i = 0; i < kk; ++i) transfer.push_back(keys[i].pos);
    } else if (rule.threshold.has_value()) {
      const float thr = static_cast<float>(*rule.threshold);  // the spec compares in fp32
      const Key* first = &keys[0];
      for (const Key& kv : keys) {
        if (before(kv, *first)) first = &kv;
      }
      for (const Key& kv : keys)
        if (kv.pos == first->pos || score[kv.pos] >= thr) transfer.push_back(kv.pos);
    } else {
      const float fac = static_cast<float>(*rule.factor);
      auto after = [](const Key& a, const Key& c) { return before(c, a); };  // max-heap of "first"
      std::make_heap(keys.begin(), keys.end(), after);
      for (int64_t r = 0; r < n_elig; ++r) {
        std::pop_heap(keys.begin(), keys.end() - r, after);
        const Key& kv = keys[n_elig - 1 - r];
        const float r1 = static_cast<float>(r + 1);
        const bool ok = r == 0 || (r1 + 1.0f) * (1.0f - score[kv.pos]) <= fac;
        if (!ok) break;
        transfer.push_back(kv.pos);
      }
    }
  }

  int64_t nr = 0;
  if (rule.remask_threshold.has_value()) {
    const float rth = static_cast<float>(*rule.remask_threshold);
    for (int64_t g = lo; g < hi; ++g) {
      if (!prov[g * ps1] || x[g * xs1] == mask || !(p_cur[g] < rth)) continue;
      cands.push_back({-p_cur[g], false, g});  // lowest p_cur first = -p_cur descending
    }
    const int64_t n_c = static_cast<int64_t>(cands.size());
    const int64_t limit = rule.remask_max.has_value() ? std::min<int64_t>(*rule.remask_max, n_c) : n_c;
    if (limit < n_c) std::nth_element(cands.begin(), cands.begin() + limit, cands.end(), before);
    for (int64_t i = 0; i < limit; ++i) {
      const int64_t g = cands[i].pos;
      x[g * xs1] = mask;
      prov[g * ps1] = false;
    }
    nr = limit;
  }
  // Transfers after remasks: the two sets are disjoint (x == mask vs x != mask before the step).
  for (const int64_t g : transfer) {
    x[g * xs1] = x0[g];
    prov[g * ps1] = false;
  }
  n_transfer[b] = static_cast<int64_t>(transfer.size());
  n_remask[b] = nr;
}

}  // namespace

void select_rows(int64_t B, int64_t G, const float* score, const int64_t* x0, const float* p_cur, int64_t* x,
                 int64_t xs0, int64_t xs1, bool* prov, int64_t ps0, int64_t ps1, const SelectRule& rule,
                 int64_t* n_transfer, int64_t* n_remask) {
  // Rows are independent; each is O(G log G) at worst, so only many long rows go parallel.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(G, 1));
  at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
    std::vector<Key> keys, cands;
    std::vector<int64_t> transfer;
    keys.reserve(static_cast<size_t>(G));
    for (int64_t b = begin; b < end; ++b) {
      select_row(b, G, score + b * G, x0 + b * G, p_cur + b * G, x + b * xs0, xs1, prov + b * ps0, ps1, rule,
                 n_transfer, n_remask, keys, transfer, cands);
    }
  });
}

// x / provisional: the [B, G] state both ops update in place (any strides, no overlap).
static void check_state(const at::Tensor& x, const at::Tensor& provisional, int64_t B, int64_t G) {
  check_tensor(x, "x", 2, {at::kLong});
  check_shape(x, "x", {B, G});
  check_tensor(provisional, "provisional", 2, {at::kBool});
  check_shape(provisional, "provisional", {B, G});
  check_writable(x, "x");
  check_writable(provisional, "provisional");
  check_disjoint(x, "x", provisional, "provisional");
}

// The selection rule with every per-row value it indexes with checked: lo/hi in [0, G] with
// lo <= hi, k >= 0, remask_max >= 0. lo_c/hi_c/k_c keep the [B] int64 copies the rule points into.
static SelectRule make_rule(int64_t B, int64_t G, int64_t mask_id, const at::Tensor& lo, const at::Tensor& hi,
                            const std::optional<at::Tensor>& k, std::optional<double> threshold,
                            std::optional<double> factor, std::optional<double> remask_threshold,
                            std::optional<int64_t> remask_max, double alg_temp, const std::vector<uint64_t>& seeds,
                            uint32_t step, at::Tensor& lo_c, at::Tensor& hi_c, at::Tensor& k_c) {
  const int n_rules = int(k.has_value()) + int(threshold.has_value()) + int(factor.has_value());
  WK_CHECK_ARG(n_rules == 1, "k/threshold/factor", "exactly one of them, got ", n_rules);
  const float inv_alg = alg_temp > 0.0 ? static_cast<float>(1.0 / alg_temp) : 0.0f;
  WK_CHECK_ARG(alg_temp >= 0.0 && std::isfinite(inv_alg), "alg_temp", "a value >= 0 whose fp32 inverse is finite, got ",
               alg_temp);
  WK_CHECK_ARG(alg_temp == 0.0 || k.has_value(), "alg_temp",
               "0 unless the top-k rule (k) is used (Dream draws k positions), got ", alg_temp);
  lo_c = per_row_int64(lo, "lo", B, 0, G);
  hi_c = per_row_int64(hi, "hi", B, 0, G);
  const int64_t* lp = lo_c.const_data_ptr<int64_t>();
  const int64_t* hp = hi_c.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    WK_CHECK_ARG(lp[b] <= hp[b], "lo", "lo <= hi in every row, got lo = ", lp[b], " > hi = ", hp[b], " at row ", b);
  if (remask_max.has_value()) WK_CHECK_ARG(*remask_max >= 0, "remask_max", "an int >= 0, got ", *remask_max);
  SelectRule rule{lp, hp, nullptr, threshold, factor, remask_threshold, remask_max, mask_id, inv_alg, seeds.data(),
                  step};
  if (k.has_value()) {
    k_c = per_row_int64(*k, "k", B, 0, std::numeric_limits<int64_t>::max());
    rule.k = k_c.const_data_ptr<int64_t>();
  }
  return rule;
}

std::tuple<at::Tensor, at::Tensor> select(const at::Tensor& score, const at::Tensor& x0, const at::Tensor& p_cur,
                                          const at::Tensor& x, const at::Tensor& provisional, int64_t mask_id,
                                          const at::Tensor& lo, const at::Tensor& hi, const std::optional<at::Tensor>& k,
                                          std::optional<double> threshold, std::optional<double> factor,
                                          std::optional<double> remask_threshold, std::optional<int64_t> remask_max,
                                          double alg_temp, int64_t seed, const std::optional<at::Tensor>& row_seeds,
                                          int64_t step, const std::optional<at::Tensor>& step_tensor) {
  (void)cpu_isa();  // the same error on every op for a bad WARMKERN_CPU_ISA
  check_tensor(x, "x", 2, {at::kLong});
  const int64_t B = x.size(0), G = x.size(1);
  check_state(x, provisional, B, G);
  check_tensor(score, "score", 2, {at::kFloat});
  check_shape(score, "score", {B, G});
  check_tensor(x0, "x0", 2, {at::kLong});
  check_shape(x0, "x0", {B, G});
  check_tensor(p_cur, "p_cur", 2, {at::kFloat});
  check_shape(p_cur, "p_cur", {B, G});
  const std::vector<uint64_t> seeds = row_seeds_of(seed, row_seeds, B);
  at::Tensor lo_c, hi_c, k_c;
  const SelectRule rule = make_rule(B, G, mask_id, lo, hi, k, threshold, factor, remask_threshold, remask_max, alg_temp,
                                    seeds, step_of(step, step_tensor), lo_c, hi_c, k_c);
  const at::Tensor sc = score.contiguous();
  const at::Tensor x0c = x0.contiguous();
  const at::Tensor pc = p_cur.contiguous();
  at::Tensor nt = at::empty({B}, x.options());
  at::Tensor nr = at::empty({B}, x.options());
  select_rows(B, G, sc.const_data_ptr<float>(), x0c.const_data_ptr<int64_t>(), pc.const_data_ptr<float>(),
              x.data_ptr<int64_t>(), x.stride(0), x.stride(1), provisional.data_ptr<bool>(), provisional.stride(0),
              provisional.stride(1), rule, nt.data_ptr<int64_t>(), nr.data_ptr<int64_t>());
  return {nt, nr};
}

std::tuple<at::Tensor, at::Tensor> denoise_step(
    const at::Tensor& logits, const at::Tensor& x, const at::Tensor& provisional,
    const std::optional<at::Tensor>& uncond, int64_t mask_id, const at::Tensor& lo, const at::Tensor& hi,
    const std::optional<at::Tensor>& k, std::optional<double> threshold, std::optional<double> factor,
    std::optional<double> remask_threshold, std::optional<int64_t> remask_max, double alg_temp, double temperature,
    const std::string& score, const std::string& score_temperature, c10::ArrayRef<int64_t> suppress_ids,
    c10::ArrayRef<int64_t> pick_suppress_ids, c10::ArrayRef<int64_t> score_suppress_ids, double cfg_scale,
    int64_t seed, const std::optional<at::Tensor>& row_seeds, int64_t step, const std::optional<at::Tensor>& step_tensor,
    int64_t top_k, double top_p, const std::optional<at::Tensor>& prior_ids, const std::optional<at::Tensor>& prior_bias) {
  const StatsArgs a = make_stats_args({logits, uncond, mask_id, temperature, score, score_temperature, suppress_ids,
                                       pick_suppress_ids, score_suppress_ids, cfg_scale, seed, row_seeds, step,
                                       step_tensor, top_k, top_p, prior_ids, prior_bias});
  const int64_t B = logits.size(0), G = logits.size(1);
  check_state(x, provisional, B, G);  // x: any values (p_cur of an id outside [0, V) is 0, never read)
  at::Tensor lo_c, hi_c, k_c;
  const SelectRule rule = make_rule(B, G, mask_id, lo, hi, k, threshold, factor, remask_threshold, remask_max, alg_temp,
                                    a.seeds, a.step, lo_c, hi_c, k_c);

  // Statistics only where select can look: masked window positions (x0, score) and, when
  // remasking, provisional window positions (p_cur). O(B*G) temporaries.
  std::vector<StatsItem> items;
  const int64_t* xp = x.const_data_ptr<int64_t>();
  const bool* pp = provisional.const_data_ptr<bool>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t g = rule.lo[b]; g < rule.hi[b]; ++g) {
      const int64_t xv = xp[b * x.stride(0) + g * x.stride(1)];
      if (xv == mask_id) {
        items.push_back({b, g, xv, kItemFull});
      } else if (remask_threshold.has_value() && pp[b * provisional.stride(0) + g * provisional.stride(1)]) {
        items.push_back({b, g, xv, kItemPcurOnly});
      }
    }
  }
  std::vector<int64_t> x0(static_cast<size_t>(B * G), mask_id);
  std::vector<float> sc(static_cast<size_t>(B * G), -INFINITY), pc(static_cast<size_t>(B * G), 0.0f);
  compute_stats(a, items, x0.data(), sc.data(), pc.data());

  at::Tensor nt = at::empty({B}, x.options());
  at::Tensor nr = at::empty({B}, x.options());
  select_rows(B, G, sc.data(), x0.data(), pc.data(), x.data_ptr<int64_t>(), x.stride(0), x.stride(1),
              provisional.data_ptr<bool>(), provisional.stride(0), provisional.stride(1), rule,
              nt.data_ptr<int64_t>(), nr.data_ptr<int64_t>());
  return {nt, nr};
}

}  // namespace wk
