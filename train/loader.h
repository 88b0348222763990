// train/loader.h — the training data pipeline: weighted dataset mixtures, seeded epoch shuffling, worker threads that
// decode and augment into reusable (pinned) host batches, and prefetch to the GPU on a side stream.
//
// Data spec (--data): one dataset spec (io/datasets/sample.h) or several joined by '+', each optionally weighted
// with a trailing '@W':
//     synthetic:count=2000,seed=1,size=320x640@0.7+kitti2015:/data/kitti@0.3
//   A '+' starts a new component only when the text after it looks like "<kind>:" (so "scared:/d,datasets=8+9" stays
//   one component). Either every component has a weight or none has: without weights the mixture is the plain
//   concatenation (each dataset once per epoch); with weights, an epoch of L samples (L = the sum of the dataset
//   sizes unless epoch_size is given) holds n_i = L * w_i / sum(w) samples of dataset i (largest-remainder rounding,
//   so the counts are exact), drawn without replacement from a seeded permutation of dataset i that is renewed each
//   time the dataset is exhausted (a small dataset repeats, a large one is visited in parts across epochs).
//
// Order: the sample at global position p (epoch e = p / L, slot k = p % L) is a pure function of (spec, seed, p):
//   epoch e's list of (dataset, draw) pairs is shuffled by Philox(seed, stream(e)); its augmentation draws from
//   HostRng(seed, p) (train/augment.h). Batch b holds positions b*B .. b*B+B-1 (epochs run into each other; no sample
//   is dropped), so batch b is always the same samples with the same augmentation whatever the worker count or thread
//   timing, and the loader's whole state is the next batch index (position()).
//
// Batch tensors: left, right f32 (B,3,h,w) in [0,1]; disparity f32 (B,h,w) (0 = no ground truth); valid u8 (B,h,w).
//   All four live in one buffer: on the CPU each next() returns fresh tensors (copied out of the worker buffer); on a
//   CUDA device they are views of one device allocation.
//
// Threads and streams: `workers` threads produce samples into `slots` batch buffers (slot s always holds batch
//   s, s + slots, ...); buffers are cudaHostAlloc'd (pinned) when the device is CUDA, 64-byte aligned otherwise, and
//   reused. With a CUDA device, next() hands out batch b (the main stream waits on b's copy event) and immediately
//   stages b+1: the device buffer is allocated on the main stream (so the caching allocator's stream-ordered reuse
//   stays safe), an event recorded there makes the copy stream wait, cudaMemcpyAsync copies from the pinned slot on
//   the dedicated non-blocking copy stream, and an event recorded after the copy is what the main stream waits on.
//   The pinned slot is reused only after its copy event has completed (checked on the host at the following next()).
//   workers = 0 produces in the calling thread (debugging; same batches).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "io/datasets/sample.h"
#include "train/augment.h"

namespace stereort {

struct MixtureEntry {
  std::string spec;
  double weight = 0;  // 0 = not given
};
// Split a --data string into components (see above); checks the weight syntax, not the datasets.
std::vector<MixtureEntry> parse_data_mixture(const std::string& spec);

class DataMixture {
 public:
  // Opens every component. epoch_size 0 = the sum of the dataset sizes.
  DataMixture(const std::string& spec, uint64_t seed, int64_t epoch_size = 0);
  // A mixture of already opened datasets (tests); weights empty = concatenation.
  DataMixture(std::vector<std::shared_ptr<const StereoDataset>> sets, std::vector<double> weights, uint64_t seed,
              int64_t epoch_size = 0);

  struct Ref {
    size_t source = 0;  // which dataset
    size_t index = 0;   // sample index in it
  };
  int64_t epoch_size() const { return epoch_size_; }
  size_t num_sources() const { return sets_.size(); }
  const StereoDataset& source(size_t i) const { return *sets_.at(i); }
  int64_t per_epoch(size_t i) const { return counts_.at(i); }  // samples of dataset i in every epoch
  Ref locate(int64_t position) const;                           // thread-safe
  Sample get(int64_t position) const { Ref r = locate(position); return sets_[r.source]->get(r.index); }
  std::string describe() const;

 private:
  void init(uint64_t seed, int64_t epoch_size);
  std::shared_ptr<const std::vector<uint32_t>> epoch_order(int64_t epoch) const;          // packed (source, draw)
  std::shared_ptr<const std::vector<int64_t>> pass_perm(size_t source, int64_t pass) const;
  std::vector<std::shared_ptr<const StereoDataset>> sets_;
  std::vector<double> weights_;
  std::vector<int64_t> counts_;
  int64_t epoch_size_ = 0;
  uint64_t seed_ = 0;
  mutable std::mutex mu_;
  mutable std::map<int64_t, std::shared_ptr<const std::vector<uint32_t>>> epoch_cache_;
  mutable std::map<std::pair<size_t, int64_t>, std::shared_ptr<const std::vector<int64_t>>> perm_cache_;
};

struct LoaderOptions {
  int64_t batch = 4;
  AugmentOptions augment = crop_only(256, 512);  // crop 0x0 = no crop (all samples must then share a size)
  uint64_t seed = 666;
  int workers = 4;
  int slots = 3;             // host batch buffers (>= 2)
  Device device = Device::cpu();
  int64_t start_batch = 0;   // resume: the first batch next() returns
  // Only the random crop (same window on both views), as the official StereoMamba training.
  static AugmentOptions crop_only(int64_t h, int64_t w);
};

struct Batch {
  int64_t index = -1;  // batch number
  int64_t epoch = 0;   // epoch of its first sample
  Tensor left, right;  // (B,3,h,w) f32 in [0,1]
  Tensor disparity;    // (B,h,w) f32
  Tensor valid;        // (B,h,w) u8
  std::vector<std::string> names;
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const DataMixture> data, const LoaderOptions& opt);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  Batch next();
  int64_t position() const { return next_; }  // the batch next() returns
  int64_t height() const { return h_; }
  int64_t width() const { return w_; }
  const LoaderOptions& options() const { return opt_; }
  const DataMixture& data() const { return *data_; }

 private:
  enum class SlotState { Filling, Ready, InFlight };
  struct Slot {
    void* host = nullptr;
    int64_t batch = -1;
    int remaining = 0;
    SlotState state = SlotState::Filling;
    std::exception_ptr error;
    std::vector<std::string> names;
    void* copy_done = nullptr;  // cudaEvent_t (CUDA devices)
  };
  struct Layout {
    size_t left = 0, right = 0, disp = 0, valid = 0, bytes = 0;  // byte offsets in a slot
  };
  void assign(size_t s, int64_t batch);  // give slot s to batch and queue its samples (mu_ held)
  void produce(size_t s, int64_t batch, int64_t j);  // decode + augment sample j of batch into slot s
  void worker_loop();
  size_t wait_ready(int64_t batch);  // slot index; rethrows a worker's error
  Batch host_batch(size_t s, int64_t batch) const;  // CPU: fresh tensors copied from the slot
  void stage(int64_t batch);                        // CUDA: start the copy of batch into device memory
  void release(size_t s);                           // back to the workers as batch + slots

  std::shared_ptr<const DataMixture> data_;
  LoaderOptions opt_;
  int64_t h_ = 0, w_ = 0, next_ = 0;
  Layout layout_;
  std::vector<Slot> slots_;
  std::deque<std::pair<size_t, int64_t>> tasks_;  // (slot, sample within batch)
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_work_, cv_ready_;
  bool stop_ = false;
  // CUDA prefetch state
  void* copy_stream_ = nullptr;
  void* alloc_event_ = nullptr;
  Batch staged_;
  size_t staged_slot_ = 0;
};

namespace cuda {
// Thin CUDA runtime wrappers for the pipeline (cuda/loader.cpp); streams and events are opaque handles.
void* host_alloc_pinned(size_t nbytes);
void host_free_pinned(void* p);
void* stream_create_nonblocking(int device);
void stream_destroy(void* stream);
void stream_synchronize(void* stream);
void* event_create(int device);  // timing disabled
void event_destroy(void* event);
void event_record(void* event, void* stream);
void event_synchronize(void* event);
void stream_wait_event(void* stream, void* event);
void memcpy_h2d_async(void* dst, const void* src, size_t nbytes, void* stream);
}  // namespace cuda

}  // namespace stereort
