// token_stats_partial: the partial state (warmkern/partial/state.py, the spec) of token_stats over one
// vocabulary shard [vocab_start, vocab_start + V) of a vocab_total vocabulary, parallel over positions.
// The row pass is token_stats' own (stats_row.h: accumulate_row, fast spans and generic chunks) with two
// changes: the global ids of the call are made local to the shard, and the Philox counters are keyed by
// the global index (StatsCfg::groups = ceil(vocab_total / 4), ctr0 = the shard's first counter, the
// position is position_offset + g); the row's accumulators are then written as the state's fields
// instead of being finalised. A row is read in place, except (materialised into per-thread fp32 scratch,
// as truncated_row does) when a truncation cutoff applies to it, or at T > 0 when vocab_start is not a
// multiple of 4: the buffer then starts with vocab_start % 4 entries of -inf so that its entries sit on
// their Philox lanes (4 entries per counter).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cstring>
#include <limits>
#include <vector>

#include "checks.h"
#include "isa_dispatch.h"
#include "kernels.h"
#include "stats_row.h"

namespace wk {

namespace {

// warmkern.partial.state.FIELDS, in order.
enum StateField : int { kBest, kBestIdx, kBestZt, kAlive, kM, kS, kEnt, kC1, kC2, kZtCur, kStateWidth };

// Id `id` of the whole vocabulary as an index of a row whose entry `shift` is the shard's first; -1 outside.
int64_t local_id(int64_t id, int64_t vocab_start, int64_t V, int64_t shift) {
  return id >= vocab_start && id < vocab_start + V ? id - vocab_start + shift : -1;
}

std::vector<int64_t> local_ids(const std::vector<int64_t>& ids, int64_t vocab_start, int64_t V, int64_t shift) {
  std::vector<int64_t> out;  // sorted as ids are
  for (const int64_t id : ids)
    if (local_id(id, vocab_start, V, shift) >= 0) out.push_back(id - vocab_start + shift);
  return out;
}

// How the rows of a call are read: the shard's rows in place (shift 0: the input's CFG, suppression and
// prior applied on the fly), or materialised fp32 rows with `shift` leading -inf entries (all applied).
// Not copyable: c's id lists point into the vectors.
struct ShardView {
  StatsCfg c;
  std::vector<int64_t> suppress, pick, score_sup, special;
  int64_t vocab_start = 0, shift = 0;

  ShardView(const StatsArgs& a, int64_t vocab_start_, int64_t vocab_total, int64_t shift_, bool materialised)
      : c(make_cfg(a)), vocab_start(vocab_start_), shift(shift_) {
    const int64_t V = a.logits.size(2);
    auto local = [&](const std::vector<int64_t>& ids) { return local_ids(ids, vocab_start, V, shift); };
    if (!materialised) suppress = local(a.suppress_ids);
    pick = local(a.pick_suppress_ids);
    score_sup = local(a.score_suppress_ids);
    special = local(a.special_ids);
    auto list = [](const std::vector<int64_t>& v) { return IdList{v.data(), static_cast<int64_t>(v.size())}; };
    c.suppress = list(suppress);
    c.pick = list(pick);
    c.score_sup = list(score_sup);
    c.special = list(special);
    c.mask_id = local_id(a.mask_id, vocab_start, V, shift);
    c.vocab = V + shift;
    c.groups = static_cast<uint64_t>((vocab_total + 3) / 4);
    c.ctr0 = static_cast<uint64_t>((vocab_start - shift) / 4);
    c.truncate = false;
    if (materialised) c.cfg = false;
  }
  ShardView(const ShardView&) = delete;
  ShardView& operator=(const ShardView&) = delete;
};

// The state fields of one row from its accumulators (state.py's token_stats_partial, field by field).
template <class T>
WK_INLINE void write_state(const ShardView& v, const Needs& need, const T* row, const void* urow, const RowJob& w,
                           const RowAcc& acc, int64_t xl, float* st) {
  const StatsCfg& c = v.c;
  auto zt = [&](int64_t i) { return c.score_sup.has(i) ? kNegInf : zt_of(c, z_at(c, row, urow, w, i)); };
  const int64_t arg = acc.arg < 0 ? v.shift : acc.arg;  // an all -inf pick: the spec's lowest index
  const int32_t idx = static_cast<int32_t>(v.vocab_start + arg - v.shift);
  st[kBest] = acc.best;
  std::memcpy(&st[kBestIdx], &idx, sizeof(idx));  // the int32 bit for bit
  st[kBestZt] = zt(arg);
  st[kAlive] = acc.A > kNegInf ? 1.0f : 0.0f;
  if (acc.nonfinite) {  // the spec's +inf softmax: s counts the +inf entries, ent sums +inf terms
    int64_t n_inf, n_inf_cand;
    count_score_inf(c, row, urow, w, n_inf, n_inf_cand);
    st[kM] = kPosInf;
    st[kS] = static_cast<float>(n_inf);
    st[kEnt] = need.entropy ? kPosInf : 0.0f;
  } else {
    st[kM] = acc.Mt;
    st[kS] = static_cast<float>(acc.S);
    st[kEnt] = need.entropy ? static_cast<float>(acc.H) : 0.0f;
  }
  float z1 = kNegInf, z2 = kNegInf;
  if (need.top2) acc.top2(z1, z2);
  st[kC1] = need.top2 ? zt_of(c, z1) : kNegInf;
  st[kC2] = need.top2 ? zt_of(c, z2) : kNegInf;
  st[kZtCur] = xl >= 0 ? zt(xl) : kNegInf;
}

template <class T>
struct PartialJob {
  const ShardView* direct;    // rows read in place
  const ShardView* padded;    // materialised rows
  Needs need;
  bool pad_sampled;           // T > 0 and vocab_start % 4 != 0: every row materialised
  const uint64_t* seeds;      // [B] Philox keys
  const int64_t* prior;       // [B, G] contiguous global prior ids, or nullptr
  const float* bias;          // [B]
  const float* cutoff;        // [B, G] contiguous, or nullptr
  const int64_t* x;           // [B, G] contiguous global current tokens
  const T* logits;
  const void* uncond;
  int64_t ls0, ls1, us0, us1, uncond_size, G, V, mask_id, position_offset;
  float* out;                 // [B * G, kStateWidth]

  template <int ISA>
  WK_MEMBER_INLINE void rows(int64_t begin, int64_t end) const {
    alignas(64) float z[kChunk];
    alignas(64) float pick[kChunk];
    std::vector<float> zb, zsb;  // grown on the first materialised row only
    const int64_t vs = direct->vocab_start;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / G, g = i % G;
      const T* row = logits + b * ls0 + g * ls1;
      const void* urow =
          uncond != nullptr ? static_cast<const char*>(uncond) + (b * us0 + g * us1) * uncond_size : nullptr;
      const int64_t pid = prior != nullptr ? local_id(prior[i], vs, V, 0) : -1;
      const RowJob w{true, -1, static_cast<uint64_t>(position_offset + g), seeds[b], pid, pid >= 0 ? bias[b] : 0.0f};
      const int64_t xl = x[i] != mask_id ? local_id(x[i], vs, V, 0) : -1;
      const float cut = cutoff != nullptr ? cutoff[i] : kNegInf;
      float* st = out + i * kStateWidth;
      if (!pad_sampled && !(cut > kNegInf)) {  // nothing truncated (the spec drops zs < cut): in place
        write_state(*direct, need, row, urow, w, accumulate_row<T, ISA>(direct->c, need, row, urow, w, z, pick), xl,
                    st);
        continue;
      }
      const int64_t r = padded->shift;
      zb.resize(static_cast<size_t>(V + r));
      zsb.resize(static_cast<size_t>(V + r));
      for (int64_t k = 0; k < r; ++k) zb[k] = zsb[k] = kNegInf;
      materialise_row(direct->c, row, urow, w, zb.data() + r, zsb.data() + r);
      for (int64_t k = r; k < V + r; ++k) zb[k] = zsb[k] < cut ? kNegInf : zb[k];
      RowJob tw = w;
      tw.prior = -1;
      const RowAcc acc = accumulate_row<float, ISA>(padded->c, need, zb.data(), nullptr, tw, z, pick);
      write_state(*padded, need, zb.data(), nullptr, tw, acc, xl >= 0 ? xl + r : -1, st);
    }
  }
};

struct PartialCall {
  const StatsArgs& a;
  int64_t vocab_start, vocab_total, position_offset;
  const at::Tensor& x;       // contiguous
  const at::Tensor& cutoff;  // contiguous, or undefined
  at::Tensor& out;
};

template <class T>
void run_partial(const PartialCall& p) {
  const StatsArgs& a = p.a;
  const bool gumbel = a.temperature > 0;
  const int64_t shift = gumbel ? p.vocab_start % 4 : 0;
  const ShardView direct(a, p.vocab_start, p.vocab_total, 0, false);
  const ShardView padded(a, p.vocab_start, p.vocab_total, shift, true);
  PartialJob<T> j{};
  j.direct = &direct;
  j.padded = &padded;
  j.need = Needs{true, a.score_mode == kScoreEntropy, a.score_mode == kScoreMargin, true};
  j.pad_sampled = shift != 0;
  j.seeds = a.seeds.data();
  j.prior = a.prior_ids.defined() ? a.prior_ids.const_data_ptr<int64_t>() : nullptr;
  j.bias = a.prior_bias.data();
  j.cutoff = p.cutoff.defined() ? p.cutoff.const_data_ptr<float>() : nullptr;
  j.x = p.x.const_data_ptr<int64_t>();
  j.logits = reinterpret_cast<const T*>(a.logits.const_data_ptr());
  j.ls0 = a.logits.stride(0);
  j.ls1 = a.logits.stride(1);
  if (a.uncond.has_value()) {
    j.uncond = a.uncond->const_data_ptr();
    j.us0 = a.uncond->stride(0);
    j.us1 = a.uncond->stride(1);
    j.uncond_size = static_cast<int64_t>(a.uncond->element_size());
  }
  j.G = a.logits.size(1);
  j.V = a.logits.size(2);
  j.mask_id = a.mask_id;
  j.position_offset = p.position_offset;
  j.out = p.out.data_ptr<float>();
  run_rows(j, a.logits.size(0) * j.G, 1);
}

}  // namespace

at::Tensor token_stats_partial(
    const at::Tensor& logits, int64_t vocab_start, int64_t vocab_total, const at::Tensor& x,
    const std::optional<at::Tensor>& uncond, int64_t mask_id, double temperature, const std::string& score,
    const std::string& score_temperature, c10::ArrayRef<int64_t> suppress_ids, c10::ArrayRef<int64_t> pick_suppress_ids,
    c10::ArrayRef<int64_t> score_suppress_ids, double cfg_scale, int64_t seed, const std::optional<at::Tensor>& row_seeds,
    int64_t step, const std::optional<at::Tensor>& step_tensor, const std::optional<at::Tensor>& prior_ids,
    const std::optional<at::Tensor>& prior_bias, const std::optional<at::Tensor>& cutoff, int64_t position_offset) {
  check_tensor(logits, "logits", 3, {at::kFloat, at::kBFloat16, at::kHalf});
  const int64_t B = logits.size(0), G = logits.size(1), V = logits.size(2);
  WK_CHECK_ARG(vocab_start >= 0, "vocab_start", "an int >= 0, got ", vocab_start);
  WK_CHECK_ARG(vocab_total >= vocab_start + V && vocab_total <= std::numeric_limits<int32_t>::max(), "vocab_total",
               "an int in [vocab_start + V, 2**31) = [", vocab_start + V, ", 2**31), got ", vocab_total);
  WK_CHECK_ARG(position_offset >= 0, "position_offset", "an int >= 0, got ", position_offset);
  StatsInput in{logits,   uncond,    mask_id,    temperature, score,     score_temperature, suppress_ids,
                pick_suppress_ids,   score_suppress_ids,     cfg_scale, seed,              row_seeds,
                step,     step_tensor, 0,        1.0,         prior_ids, prior_bias};
  in.vocab_total = vocab_total;
  const StatsArgs a = make_stats_args(in);
  check_tensor(x, "x", 2, {at::kLong});
  check_shape(x, "x", {B, G});  // any values: ids outside the shard are not its concern
  at::Tensor cut;
  if (cutoff.has_value()) {
    check_tensor(*cutoff, "cutoff", 2, {at::kFloat});
    check_shape(*cutoff, "cutoff", {B, G});
    cut = cutoff->contiguous();
  }
  const at::Tensor xc = x.contiguous();
  at::Tensor out = at::empty({B, G, kStateWidth}, logits.options().dtype(at::kFloat));
  if (B * G == 0) return out;
  const PartialCall p{a, vocab_start, vocab_total, position_offset, xc, cut, out};
  switch (logits.scalar_type()) {
    case at::kFloat:
      run_partial<float>(p);
      break;
    case at::kBFloat16:
      run_partial<Bf16>(p);
      break;
    default:
      run_partial<F16>(p);
      break;
  }
  return out;
}

}  // namespace wk
