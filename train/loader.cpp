// train/loader.cpp — dataset mixtures, seeded order, worker threads and GPU prefetch (see train/loader.h).
#include "train/loader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/check.h"
#include "core/context.h"
#include "core/rng.h"

namespace stereort {

// ---- the --data syntax -----------------------------------------------------------------------------------------------

static bool starts_with_kind(const std::string& s, size_t pos) {
  // "<kind>:" with kind = [a-z0-9_]+
  size_t i = pos;
  while (i < s.size() && (std::islower(static_cast<unsigned char>(s[i])) || std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
  return i > pos && i < s.size() && s[i] == ':';
}

std::vector<MixtureEntry> parse_data_mixture(const std::string& spec) {
  STEREORT_CHECK(!spec.empty(), "--data is empty; give a dataset spec such as synthetic:count=200,size=256x512 or "
                 "kitti2015:/data/kitti (several: A@0.7+B@0.3)");
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i < spec.size(); ++i)
    if (spec[i] == '+' && starts_with_kind(spec, i + 1)) {
      parts.push_back(spec.substr(start, i - start));
      start = i + 1;
    }
  parts.push_back(spec.substr(start));
  std::vector<MixtureEntry> out;
  size_t weighted = 0;
  for (const std::string& p : parts) {
    MixtureEntry e{p, 0.0};
    size_t at = p.rfind('@');
    if (at != std::string::npos) {
      std::string w = p.substr(at + 1);
      char* end = nullptr;
      double v = std::strtod(w.c_str(), &end);
      bool numeric = !w.empty() && end && *end == '\0';
      if (numeric) {
        STEREORT_CHECK(std::isfinite(v) && v > 0, "--data '{}': weight '@{}' of '{}' must be a positive number", spec,
                       w, p.substr(0, at));
        e.spec = p.substr(0, at);
        e.weight = v;
        weighted++;
      }
    }
    STEREORT_CHECK(!e.spec.empty(), "--data '{}': empty component (check the '+' separators)", spec);
    out.push_back(e);
  }
  STEREORT_CHECK(weighted == 0 || weighted == out.size(), "--data '{}': give a weight '@W' to every component or to "
                 "none (none = plain concatenation)", spec);
  return out;
}

// ---- seeded permutations ---------------------------------------------------------------------------------------------

static uint64_t mix64(uint64_t x) {  // SplitMix64 finaliser: distinct inputs -> well spread stream ids
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
static uint64_t stream_id(uint64_t tag, uint64_t a, uint64_t b) { return mix64(mix64(tag ^ mix64(a)) ^ b); }
static uint64_t philox_u64(uint64_t seed, uint64_t stream, uint64_t i) {
  philox::U4 r = philox::draw(seed, stream, i);
  return (uint64_t(r.x) << 32) | r.y;
}
// Fisher–Yates with 64-bit draws (modulo bias < 2^-40 for n < 2^24).
template <typename T>
static void shuffle(std::vector<T>& v, uint64_t seed, uint64_t stream) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[philox_u64(seed, stream, i) % i]);
}

constexpr uint64_t kEpochTag = 0xE90C, kPassTag = 0x9A55;

DataMixture::DataMixture(const std::string& spec, uint64_t seed, int64_t epoch_size) {
  for (const MixtureEntry& e : parse_data_mixture(spec)) {
    sets_.push_back(std::shared_ptr<const StereoDataset>(open_dataset(e.spec)));
    if (e.weight > 0) weights_.push_back(e.weight);
  }
  init(seed, epoch_size);
}

DataMixture::DataMixture(std::vector<std::shared_ptr<const StereoDataset>> sets, std::vector<double> weights,
                         uint64_t seed, int64_t epoch_size)
    : sets_(std::move(sets)), weights_(std::move(weights)) {
  init(seed, epoch_size);
}

void DataMixture::init(uint64_t seed, int64_t epoch_size) {
  seed_ = seed;
  STEREORT_CHECK(!sets_.empty(), "DataMixture: no datasets");
  STEREORT_CHECK(weights_.empty() || weights_.size() == sets_.size(), "DataMixture: {} datasets but {} weights",
                 sets_.size(), weights_.size());
  int64_t total = 0;
  for (auto& s : sets_) {
    STEREORT_CHECK(s->size() > 0, "dataset {} is empty", s->describe());
    total += int64_t(s->size());
  }
  epoch_size_ = epoch_size > 0 ? epoch_size : total;
  if (weights_.empty()) {
    STEREORT_CHECK(epoch_size <= 0 || epoch_size == total, "DataMixture: an epoch size ({}) needs weights; without "
                   "them an epoch is every sample once ({})", epoch_size, total);
    for (auto& s : sets_) counts_.push_back(int64_t(s->size()));
  } else {
    // Largest remainder: floor(L w_i / W), then +1 for the largest fractional parts (ties: lower index).
    double W = std::accumulate(weights_.begin(), weights_.end(), 0.0);
    std::vector<double> frac;
    int64_t assigned = 0;
    for (double w : weights_) {
      double q = double(epoch_size_) * w / W;
      counts_.push_back(int64_t(std::floor(q)));
      frac.push_back(q - std::floor(q));
      assigned += counts_.back();
    }
    std::vector<size_t> idx(frac.size());
    std::iota(idx.begin(), idx.end(), size_t(0));
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return frac[a] > frac[b]; });
    for (size_t i = 0; assigned < epoch_size_; ++i, ++assigned) counts_[idx[i % idx.size()]]++;
  }
  STEREORT_CHECK(epoch_size_ < (int64_t(1) << 32) && sets_.size() < 256, "DataMixture: epoch of {} samples over {} "
                 "datasets is too large", epoch_size_, sets_.size());
}

std::shared_ptr<const std::vector<uint32_t>> DataMixture::epoch_order(int64_t epoch) const {
  // Entry k of epoch e = the flat index f = prefix(source) + j into the unshuffled list [source 0 x n_0, source 1 x
  // n_1, ...]: the j-th draw of `source` in this epoch. locate() decodes it.
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = epoch_cache_.find(epoch);
    if (it != epoch_cache_.end()) return it->second;
  }
  auto v = std::make_shared<std::vector<uint32_t>>(size_t(epoch_size_));
  std::iota(v->begin(), v->end(), 0u);
  shuffle(*v, seed_, stream_id(kEpochTag, uint64_t(epoch), 0));
  std::lock_guard<std::mutex> lk(mu_);
  if (epoch_cache_.size() >= 3) epoch_cache_.erase(epoch_cache_.begin());  // consumers move forward
  epoch_cache_[epoch] = v;
  return v;
}

std::shared_ptr<const std::vector<int64_t>> DataMixture::pass_perm(size_t source, int64_t pass) const {
  auto key = std::make_pair(source, pass);
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = perm_cache_.find(key);
    if (it != perm_cache_.end()) return it->second;
  }
  auto v = std::make_shared<std::vector<int64_t>>(sets_[source]->size());
  std::iota(v->begin(), v->end(), int64_t(0));
  shuffle(*v, seed_, stream_id(kPassTag, uint64_t(source), uint64_t(pass)));
  std::lock_guard<std::mutex> lk(mu_);
  if (perm_cache_.size() >= 4 * sets_.size() + 4) perm_cache_.erase(perm_cache_.begin());
  perm_cache_[key] = v;
  return v;
}

DataMixture::Ref DataMixture::locate(int64_t position) const {
  STEREORT_CHECK(position >= 0, "DataMixture::locate: negative position {}", position);
  int64_t epoch = position / epoch_size_, k = position % epoch_size_;
  int64_t f = int64_t((*epoch_order(epoch))[size_t(k)]);
  size_t src = 0;
  while (f >= counts_[src]) f -= counts_[src++];
  // Draw number d of this source over the whole run; pass = which permutation of the dataset it comes from.
  int64_t n = int64_t(sets_[src]->size()), d = epoch * counts_[src] + f;
  Ref r;
  r.source = src;
  r.index = size_t((*pass_perm(src, d / n))[size_t(d % n)]);
  return r;
}

std::string DataMixture::describe() const {
  std::string s;
  for (size_t i = 0; i < sets_.size(); ++i)
    s += fmt::format("{}{} ({} per epoch{})", i ? " + " : "", sets_[i]->describe(), counts_[i],
                     weights_.empty() ? "" : fmt::format(", weight {}", weights_[i]));
  return s + fmt::format("; epoch = {} samples", epoch_size_);
}

// ---- the loader ------------------------------------------------------------------------------------------------------

AugmentOptions LoaderOptions::crop_only(int64_t h, int64_t w) {
  AugmentOptions a;
  a.crop_h = h;
  a.crop_w = w;
  a.jitter_prob = 0;
  a.grayscale_prob = 0;
  a.vflip_prob = 0;
  a.eraser_prob = 0;
  return a;
}

static size_t align256(size_t n) { return (n + 255) / 256 * 256; }

DataLoader::DataLoader(std::shared_ptr<const DataMixture> data, const LoaderOptions& opt)
    : data_(std::move(data)), opt_(opt), next_(opt.start_batch) {
  STEREORT_CHECK(data_, "DataLoader: no data");
  STEREORT_CHECK(opt_.batch >= 1, "DataLoader: batch must be >= 1, got {}", opt_.batch);
  STEREORT_CHECK(opt_.workers >= 0, "DataLoader: workers must be >= 0, got {}", opt_.workers);
  STEREORT_CHECK(opt_.slots >= 2, "DataLoader: slots must be >= 2, got {}", opt_.slots);
  STEREORT_CHECK(opt_.start_batch >= 0, "DataLoader: start batch {} is negative", opt_.start_batch);
  h_ = opt_.augment.crop_h;
  w_ = opt_.augment.crop_w;
  if (h_ <= 0 || w_ <= 0) {  // no crop: the batch size is the first sample's (every sample must match)
    Sample s = data_->get(opt_.start_batch * opt_.batch);
    h_ = s.left.size(1);
    w_ = s.left.size(2);
  }
  size_t B = size_t(opt_.batch), hw = size_t(h_ * w_);
  layout_.left = 0;
  layout_.right = align256(B * 3 * hw * 4);
  layout_.disp = layout_.right + align256(B * 3 * hw * 4);
  layout_.valid = layout_.disp + align256(B * hw * 4);
  layout_.bytes = layout_.valid + align256(B * hw);
  bool gpu = opt_.device.is_cuda();
  if (gpu) {
    Context::get(opt_.device);  // validates the device
    STEREORT_CUDA_PATH(copy_stream_ = cuda::stream_create_nonblocking(opt_.device.index));
    STEREORT_CUDA_PATH(alloc_event_ = cuda::event_create(opt_.device.index));
  }
  slots_.resize(size_t(opt_.slots));
  for (Slot& s : slots_) {
    if (gpu) {
      STEREORT_CUDA_PATH(s.host = cuda::host_alloc_pinned(layout_.bytes));
      STEREORT_CUDA_PATH(s.copy_done = cuda::event_create(opt_.device.index));
    } else {
      s.host = cpu_aligned_alloc(layout_.bytes);
    }
  }
  std::lock_guard<std::mutex> lk(mu_);
  // Slot b % slots always holds batch b (wait_ready relies on it), also when starting mid-run.
  for (int64_t b = next_; b < next_ + int64_t(slots_.size()); ++b) assign(size_t(b % int64_t(slots_.size())), b);
  for (int i = 0; i < opt_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : threads_) t.join();
  // Destructors must not throw: the CUDA calls below only report. A staged copy may still be writing its device
  // buffer, which returns to the main stream's free list when staged_ goes: finish the copies first.
  try {
    if (copy_stream_) STEREORT_CUDA_PATH(cuda::stream_synchronize(copy_stream_));
  } catch (const std::exception&) {
  }
  staged_ = Batch();
  for (Slot& s : slots_) {
    try {
      if (opt_.device.is_cuda()) {
        STEREORT_CUDA_PATH(cuda::host_free_pinned(s.host));
        STEREORT_CUDA_PATH(cuda::event_destroy(s.copy_done));
      } else {
        cpu_aligned_free(s.host);
      }
    } catch (const std::exception&) {
    }
  }
  try {
    if (copy_stream_) {
      STEREORT_CUDA_PATH(cuda::event_destroy(alloc_event_));
      STEREORT_CUDA_PATH(cuda::stream_destroy(copy_stream_));
    }
  } catch (const std::exception&) {
  }
}

void DataLoader::assign(size_t s, int64_t batch) {
  Slot& sl = slots_[s];
  sl.batch = batch;
  sl.remaining = int(opt_.batch);
  sl.state = SlotState::Filling;
  sl.error = nullptr;
  sl.names.assign(size_t(opt_.batch), std::string());
  if (opt_.workers == 0) return;  // produced on demand in wait_ready
  for (int64_t j = 0; j < opt_.batch; ++j) tasks_.emplace_back(s, j);
  cv_work_.notify_all();
}

void DataLoader::produce(size_t s, int64_t batch, int64_t j) {
  int64_t pos = batch * opt_.batch + j;
  Sample smp = data_->get(pos);
  STEREORT_CHECK(smp.disparity.defined(), "loader: sample '{}' (position {}) has no ground-truth disparity; training "
                 "needs a split with ground truth", smp.name, pos);
  Tensor valid = smp.valid;
  if (!valid.defined()) {  // ground truth present where > 0
    valid = Tensor::empty(smp.disparity.shape(), DType::Bool);
    const float* d = smp.disparity.contiguous().data<float>();
    for (int64_t i = 0; i < valid.numel(); ++i) valid.data<bool>()[i] = d[i] > 0;
  }
  HostRng rng(opt_.seed, uint64_t(pos));
  StereoItem it = augment({smp.left, smp.right, smp.disparity, valid}, opt_.augment, rng);
  STEREORT_CHECK(it.left.size(1) == h_ && it.left.size(2) == w_, "loader: sample '{}' is {}x{} (HxW) after "
                 "augmentation but the batch is {}x{}; give a crop (--crop HxW) no larger than the smallest image",
                 smp.name, it.left.size(1), it.left.size(2), h_, w_);
  size_t hw = size_t(h_ * w_);
  char* base = static_cast<char*>(slots_[s].host);
  Tensor l = it.left.contiguous(), r = it.right.contiguous(), d = it.disparity.to(DType::F32).contiguous();
  Tensor v = it.valid.to(DType::U8).contiguous();
  std::memcpy(base + layout_.left + size_t(j) * 3 * hw * 4, l.data_ptr(), 3 * hw * 4);
  std::memcpy(base + layout_.right + size_t(j) * 3 * hw * 4, r.data_ptr(), 3 * hw * 4);
  std::memcpy(base + layout_.disp + size_t(j) * hw * 4, d.data_ptr(), hw * 4);
  uint8_t* vd = reinterpret_cast<uint8_t*>(base + layout_.valid + size_t(j) * hw);
  const uint8_t* vs = v.data<uint8_t>();
  for (size_t i = 0; i < hw; ++i) vd[i] = vs[i] != 0;
  slots_[s].names[size_t(j)] = smp.name;  // distinct j per task: no two threads write the same entry
}

void DataLoader::worker_loop() {
  for (;;) {
    std::pair<size_t, int64_t> task;
    int64_t batch;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return stop_ || !tasks_.empty(); });
      if (stop_) return;
      task = tasks_.front();
      tasks_.pop_front();
      batch = slots_[task.first].batch;
    }
    std::exception_ptr err;
    try {
      produce(task.first, batch, task.second);
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> lk(mu_);
    Slot& sl = slots_[task.first];
    if (err && !sl.error) sl.error = err;
    if (--sl.remaining == 0) {
      sl.state = SlotState::Ready;
      cv_ready_.notify_all();
    }
  }
}

size_t DataLoader::wait_ready(int64_t batch) {
  size_t s = size_t(batch % int64_t(slots_.size()));
  Slot& sl = slots_[s];
  if (opt_.workers == 0) {
    STEREORT_CHECK(sl.batch == batch && sl.state == SlotState::Filling, "DataLoader: slot {} holds batch {}, not {}",
                   s, sl.batch, batch);
    for (int64_t j = 0; j < opt_.batch; ++j) produce(s, batch, j);
    sl.remaining = 0;
    sl.state = SlotState::Ready;
    return s;
  }
  std::unique_lock<std::mutex> lk(mu_);
  cv_ready_.wait(lk, [&] { return sl.batch == batch && sl.state == SlotState::Ready; });
  if (sl.error) {
    std::exception_ptr e = sl.error;
    sl.error = nullptr;
    sl.remaining = 0;
    std::rethrow_exception(e);
  }
  return s;
}

Batch DataLoader::host_batch(size_t s, int64_t batch) const {
  const Slot& sl = slots_[s];
  const char* base = static_cast<const char*>(sl.host);
  int64_t B = opt_.batch;
  Batch b;
  b.index = batch;
  b.epoch = batch * B / data_->epoch_size();
  b.names = sl.names;
  b.left = Tensor::from_blob(base + layout_.left, {B, 3, h_, w_}, DType::F32);
  b.right = Tensor::from_blob(base + layout_.right, {B, 3, h_, w_}, DType::F32);
  b.disparity = Tensor::from_blob(base + layout_.disp, {B, h_, w_}, DType::F32);
  b.valid = Tensor::from_blob(base + layout_.valid, {B, h_, w_}, DType::U8);
  return b;
}

void DataLoader::release(size_t s) {
  std::lock_guard<std::mutex> lk(mu_);
  assign(s, slots_[s].batch + int64_t(slots_.size()));
}

void DataLoader::stage(int64_t batch) {
  size_t s = wait_ready(batch);
  Slot& sl = slots_[s];
  Device dev = opt_.device;
  [[maybe_unused]] void* main_stream = Context::get(dev).stream;
  int64_t B = opt_.batch;
  // Device memory from the caching allocator on the MAIN stream; the copy stream starts only once the main stream
  // has reached this point, so a block the main stream freed earlier is no longer read by queued kernels.
  Storage st = allocate_storage(layout_.bytes, dev);
  STEREORT_CUDA_PATH(cuda::event_record(alloc_event_, main_stream));
  STEREORT_CUDA_PATH(cuda::stream_wait_event(copy_stream_, alloc_event_));
  STEREORT_CUDA_PATH(cuda::memcpy_h2d_async(st->data, sl.host, layout_.bytes, copy_stream_));
  STEREORT_CUDA_PATH(cuda::event_record(sl.copy_done, copy_stream_));
  sl.state = SlotState::InFlight;
  Batch b;
  b.index = batch;
  b.epoch = batch * B / data_->epoch_size();
  b.names = sl.names;
  b.left = Tensor::from_storage(st, DType::F32, {B, 3, h_, w_}, {3 * h_ * w_, h_ * w_, w_, 1}, int64_t(layout_.left / 4));
  b.right = Tensor::from_storage(st, DType::F32, {B, 3, h_, w_}, {3 * h_ * w_, h_ * w_, w_, 1}, int64_t(layout_.right / 4));
  b.disparity = Tensor::from_storage(st, DType::F32, {B, h_, w_}, {h_ * w_, w_, 1}, int64_t(layout_.disp / 4));
  b.valid = Tensor::from_storage(st, DType::U8, {B, h_, w_}, {h_ * w_, w_, 1}, int64_t(layout_.valid));
  staged_ = b;
  staged_slot_ = s;
}

Batch DataLoader::next() {
  int64_t k = next_;
  if (!opt_.device.is_cuda()) {
    size_t s = wait_ready(k);
    Batch b = host_batch(s, k);
    release(s);
    next_++;
    return b;
  }
  if (staged_.index != k) stage(k);  // first call (or after an error)
  Batch b = staged_;
  size_t s = staged_slot_;
  staged_ = Batch();
  // The consumer's (main) stream waits for the copy before any kernel touches the batch.
  STEREORT_CUDA_PATH(cuda::stream_wait_event(Context::get(opt_.device).stream, slots_[s].copy_done));
  // The pinned slot is refilled by the workers only after its copy has finished (usually long done by now).
  STEREORT_CUDA_PATH(cuda::event_synchronize(slots_[s].copy_done));
  release(s);
  next_++;
  // Start the next copy now when its samples are ready, so it overlaps with the step the caller is about to queue;
  // otherwise the next call stages it (never block here on the workers).
  bool ready;
  {
    std::lock_guard<std::mutex> lk(mu_);
    const Slot& n = slots_[size_t(next_ % int64_t(slots_.size()))];
    ready = n.batch == next_ && n.state == SlotState::Ready && !n.error;
  }
  if (ready) stage(next_);
  return b;
}

}  // namespace stereort
