// train/augment.cpp — crop, photometric jitter, grayscale, vertical flip and occlusion patches (see augment.h).
#include "train/augment.h"

#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/rng.h"

namespace stereort {

float HostRng::uniform() { return philox::uniform(seed_, stream_, counter_++); }
float HostRng::uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
int64_t HostRng::randint(int64_t lo, int64_t hi) {
  if (hi <= lo + 1) return lo;
  int64_t v = lo + int64_t(uniform() * float(hi - lo));
  return std::min(v, hi - 1);
}
float HostRng::normal() {
  float v = philox::normal(seed_, stream_ ^ 0x9e3779b97f4a7c15ULL, counter_);
  counter_ += 2;
  return v;
}

static void check_item(const StereoItem& s, const char* op) {
  STEREORT_CHECK(s.left.dim() == 3 && s.left.size(0) == 3 && s.left.shape() == s.right.shape() &&
                     s.left.dtype() == DType::F32 && !s.left.is_cuda(),
                 "{}: views must be float32 CPU (3,H,W) of equal size, got {} and {}", op, s.left.desc(), s.right.desc());
  if (s.disparity.defined())
    STEREORT_CHECK(s.disparity.dim() == 2 && s.disparity.size(0) == s.left.size(1) && s.disparity.size(1) == s.left.size(2),
                   "{}: disparity {} does not match the views {}", op, s.disparity.desc(), s.left.desc());
}

StereoItem random_crop(const StereoItem& in, int64_t h, int64_t w, HostRng& rng) {
  check_item(in, "random_crop");
  int64_t H = in.left.size(1), W = in.left.size(2);
  STEREORT_CHECK(h <= H && w <= W, "random_crop: crop {}x{} (HxW) is larger than the image {}x{}; lower --crop", h, w,
                 H, W);
  int64_t y0 = rng.randint(0, H - h + 1), x0 = rng.randint(0, W - w + 1);
  auto crop2 = [&](const Tensor& t) { return t.defined() ? t.slice(-2, y0, y0 + h).slice(-1, x0, x0 + w).contiguous() : t; };
  return {crop2(in.left), crop2(in.right), crop2(in.disparity), crop2(in.valid)};
}

static inline float clamp01(float v) { return std::min(1.0f, std::max(0.0f, v)); }

void color_jitter_(Tensor& img, float b, float c, float s, float hue, float gamma) {
  int64_t n = img.size(1) * img.size(2);
  float* p = img.data<float>();
  float *r = p, *g = p + n, *bl = p + 2 * n;
  // brightness, contrast (around the grey mean), saturation (towards grey), hue (YIQ rotation), gamma
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += 0.299 * r[i] + 0.587 * g[i] + 0.114 * bl[i];
  float m = float(mean / double(std::max<int64_t>(n, 1))) * b;
  float ch = std::cos(hue * 2.0f * float(M_PI)), sh = std::sin(hue * 2.0f * float(M_PI));
  for (int64_t i = 0; i < n; ++i) {
    float R = clamp01(r[i] * b), G = clamp01(g[i] * b), B = clamp01(bl[i] * b);
    R = clamp01((R - m) * c + m);
    G = clamp01((G - m) * c + m);
    B = clamp01((B - m) * c + m);
    float y = 0.299f * R + 0.587f * G + 0.114f * B;
    R = clamp01(y + (R - y) * s);
    G = clamp01(y + (G - y) * s);
    B = clamp01(y + (B - y) * s);
    float Y = 0.299f * R + 0.587f * G + 0.114f * B;
    float I = 0.596f * R - 0.274f * G - 0.322f * B;
    float Q = 0.211f * R - 0.523f * G + 0.312f * B;
    float I2 = I * ch - Q * sh, Q2 = I * sh + Q * ch;
    R = clamp01(Y + 0.956f * I2 + 0.621f * Q2);
    G = clamp01(Y - 0.272f * I2 - 0.647f * Q2);
    B = clamp01(Y - 1.106f * I2 + 1.703f * Q2);
    r[i] = std::pow(R, gamma);
    g[i] = std::pow(G, gamma);
    bl[i] = std::pow(B, gamma);
  }
}

void grayscale_(Tensor& img) {
  int64_t n = img.size(1) * img.size(2);
  float* p = img.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    float y = 0.299f * p[i] + 0.587f * p[n + i] + 0.114f * p[2 * n + i];
    p[i] = p[n + i] = p[2 * n + i] = y;
  }
}

void erase_patches_(Tensor& img, const AugmentOptions& o, HostRng& rng) {
  int64_t H = img.size(1), W = img.size(2), n = H * W;
  float* p = img.data<float>();
  float mean[3];
  for (int c = 0; c < 3; ++c) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += p[c * n + i];
    mean[c] = float(s / double(std::max<int64_t>(n, 1)));
  }
  int64_t k = rng.randint(1, o.eraser_max_patches + 1);
  for (int64_t e = 0; e < k; ++e) {
    int64_t x0 = rng.randint(0, W), y0 = rng.randint(0, H);
    int64_t dx = rng.randint(o.eraser_min, o.eraser_max + 1), dy = rng.randint(o.eraser_min, o.eraser_max + 1);
    for (int64_t y = y0; y < std::min(H, y0 + dy); ++y)
      for (int64_t x = x0; x < std::min(W, x0 + dx); ++x)
        for (int c = 0; c < 3; ++c) p[c * n + y * W + x] = mean[c];
  }
}

static Tensor vflip(const Tensor& t) {
  if (!t.defined()) return t;
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  int64_t H = t.size(-2), row = t.size(-1) * int64_t(dtype_size(t.dtype()));
  int64_t planes = t.numel() / (H * t.size(-1));
  const char* s = static_cast<const char*>(t.contiguous().data_ptr());
  char* d = static_cast<char*>(out.data_ptr());
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < H; ++y) std::memcpy(d + (p * H + y) * row, s + (p * H + H - 1 - y) * row, size_t(row));
  return out;
}

StereoItem augment(const StereoItem& in, const AugmentOptions& o, HostRng& rng) {
  check_item(in, "augment");
  StereoItem s = o.crop_h > 0 && o.crop_w > 0 ? random_crop(in, o.crop_h, o.crop_w, rng)
                                              : StereoItem{in.left.clone(), in.right.clone(), in.disparity, in.valid};
  if (s.left.same(in.left)) s.left = s.left.clone();
  if (s.right.same(in.right)) s.right = s.right.clone();
  if (rng.bernoulli(o.jitter_prob)) {
    auto draw = [&](float* v) {
      v[0] = rng.uniform(std::max(0.0f, 1 - o.brightness), 1 + o.brightness);
      v[1] = rng.uniform(std::max(0.0f, 1 - o.contrast), 1 + o.contrast);
      v[2] = rng.uniform(std::max(0.0f, 1 - o.saturation), 1 + o.saturation);
      v[3] = rng.uniform(-o.hue, o.hue);
      v[4] = rng.uniform(o.gamma_lo, o.gamma_hi);
    };
    float a[5], b[5];
    draw(a);
    bool asym = rng.bernoulli(o.asymmetric_prob);
    if (asym) draw(b);
    else std::copy(a, a + 5, b);
    color_jitter_(s.left, a[0], a[1], a[2], a[3], a[4]);
    color_jitter_(s.right, b[0], b[1], b[2], b[3], b[4]);
  }
  if (rng.bernoulli(o.grayscale_prob)) {
    grayscale_(s.left);
    grayscale_(s.right);
  }
  if (rng.bernoulli(o.vflip_prob)) {
    s.left = vflip(s.left);
    s.right = vflip(s.right);
    s.disparity = vflip(s.disparity);
    s.valid = vflip(s.valid);
  }
  if (rng.bernoulli(o.eraser_prob)) erase_patches_(s.right, o, rng);
  return s;
}

}  // namespace stereort
