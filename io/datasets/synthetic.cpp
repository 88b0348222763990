// io/datasets/synthetic.cpp — the layered synthetic stereo generator. See io/datasets/synthetic.h for the model.
//   Implementation: per layer, a texture raster over its bounding box in left coordinates (x up to W + max_disp + 2,
//   so the right view can see surface beyond the left image's right edge); per row, the layer's support as at most
//   three spans [s0, s1] (closed-form ellipse / rotated-rectangle intersections). Left view: z-buffer over the spans;
//   right view: the same spans mapped through xr = (1 - b) x - a - c y (monotone since b < 1). Calibration of the
//   synthetic camera: fx = fy = W px, principal point at the image centre, baseline 1 "synthetic unit".
#include "io/datasets/synthetic.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "core/rng.h"
#include "io/datasets/readers.h"

namespace stereort {
namespace io {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kMaxSpans = 3;

// Scene parameters: Philox at (seed, offset = scene index), one counter per draw.
struct ParamRng {
  uint64_t seed, offset, k = 0;
  double uni() { return double(philox::uniform(seed, offset, k++)); }
  double range(double lo, double hi) { return lo + (hi - lo) * uni(); }
  int irange(int lo, int hi) { return std::min(hi, lo + int(uni() * double(hi - lo + 1))); }  // inclusive
  uint64_t seed64() {
    philox::U4 r = philox::draw(seed, offset, (uint64_t(1) << 40) + k++);
    return uint64_t(r.x) | uint64_t(r.y) << 32;
  }
};

// Per-texel / per-pixel noise.
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Approximately N(0,1) from the sum of four bytes (mean 510, std 147.8): cheap and deterministic.
  static float gauss(uint32_t w) {
    int s = int(w & 0xff) + int((w >> 8) & 0xff) + int((w >> 16) & 0xff) + int(w >> 24);
    return float(s - 510) * (1.0f / 147.8f);
  }
};

struct Ellipse {
  double ex, ey, rx, ry, cs, sn;
};

struct Layer {
  SyntheticLayer info;
  std::vector<Ellipse> ellipses;           // Ellipse, Blob
  double rcx = 0, rcy = 0, hw = 0, hh = 0, rcs = 1, rsn = 0;  // Rectangle
  int x0 = 0, x1 = -1, y0 = 0, y1 = -1;    // texture raster bounds (inclusive), left coordinates
  int tw = 0, th = 0;
  std::vector<float> tex;                  // 3 planes of th x tw
};

// Closed interval of X with lo <= k X <= hi.
bool clip_linear(double k, double lo, double hi, double* a, double* b) {
  if (std::fabs(k) < 1e-12) return lo <= 0 && 0 <= hi;
  double p = lo / k, q = hi / k;
  if (p > q) std::swap(p, q);
  *a = std::max(*a, p);
  *b = std::min(*b, q);
  return *a <= *b;
}

// Support of layer L on row y as spans in left coordinates, clipped to its raster columns. Returns the count.
int layer_spans(const Layer& L, double y, double sp[kMaxSpans][2]) {
  if (y < L.y0 || y > L.y1 || L.x0 > L.x1) return 0;
  int n = 0;
  auto add = [&](double a, double b) {
    a = std::max(a, double(L.x0));
    b = std::min(b, double(L.x1));
    if (a <= b && n < kMaxSpans) {
      sp[n][0] = a;
      sp[n][1] = b;
      ++n;
    }
  };
  switch (L.info.shape) {
    case SyntheticShape::Background: add(L.x0, L.x1); break;
    case SyntheticShape::Ellipse:
    case SyntheticShape::Blob:
      for (const Ellipse& e : L.ellipses) {
        double Y = y - e.ey, irx = 1 / (e.rx * e.rx), iry = 1 / (e.ry * e.ry);
        double A = e.cs * e.cs * irx + e.sn * e.sn * iry;
        double B = 2 * Y * e.sn * e.cs * (irx - iry);
        double C = Y * Y * (e.sn * e.sn * irx + e.cs * e.cs * iry) - 1;
        double disc = B * B - 4 * A * C;
        if (disc < 0) continue;
        double r = std::sqrt(disc);
        add(e.ex + (-B - r) / (2 * A), e.ex + (-B + r) / (2 * A));
      }
      break;
    case SyntheticShape::Rectangle: {
      double Y = y - L.rcy, a = -1e300, b = 1e300;
      if (clip_linear(L.rcs, -L.hw - Y * L.rsn, L.hw - Y * L.rsn, &a, &b) &&
          clip_linear(L.rsn, Y * L.rcs - L.hh, Y * L.rcs + L.hh, &a, &b))
        add(L.rcx + a, L.rcx + b);
      break;
    }
  }
  return n;
}

// Disparity plane through (cx, cy) with value dc, gradients scaled so the plane stays in [lo, hi] over +-(hx, hy).
void make_plane(ParamRng& r, double cx, double cy, double hx, double hy, double dc, double lo, double hi,
                SyntheticLayer* L) {
  double gx = r.range(-0.15, 0.15), gy = r.range(-0.1, 0.1);
  double spread = std::fabs(gx) * hx + std::fabs(gy) * hy, slack = std::min(dc - lo, hi - dc);
  if (spread > slack) {
    double s = spread > 0 ? std::max(0.0, slack) / spread : 0;
    gx *= s;
    gy *= s;
  }
  L->b = gx;
  L->c = gy;
  L->a = dc - gx * cx - gy * cy;
}

void make_texture(Layer& L, ParamRng& r) {
  L.tw = L.x1 - L.x0 + 1;
  L.th = L.y1 - L.y0 + 1;
  if (L.tw <= 0 || L.th <= 0) return;
  SplitMix rng{r.seed64()};
  size_t plane = size_t(L.tw) * size_t(L.th);
  L.tex.resize(3 * plane);
  float base[3], other[3];
  for (int c = 0; c < 3; ++c) {
    base[c] = float(r.range(0.15, 0.85));
    other[c] = float(r.range(0.05, 0.95));
  }
  auto white = [&rng](float* w3) {
    uint64_t v = rng.next();
    for (int c = 0; c < 3; ++c) w3[c] = float((v >> (21 * c)) & 0x1fffff) * (1.0f / 2097152.0f) - 0.5f;
  };
  switch (L.info.texture) {
    case SyntheticTexture::Noise: {
      // Two octaves of bilinear value noise plus white grain.
      int cell[2] = {r.irange(6, 40), 0};
      cell[1] = std::max(2, cell[0] / 4);
      float amp[2] = {float(r.range(0.2, 0.5)), float(r.range(0.05, 0.2))}, grain = float(r.range(0.0, 0.06));
      std::vector<float> grid[2], rowv[2];
      std::vector<int> ci[2];
      std::vector<float> ct[2];
      int gw[2];
      for (int o = 0; o < 2; ++o) {
        gw[o] = L.tw / cell[o] + 2;
        int gh = L.th / cell[o] + 2;
        grid[o].resize(size_t(3 * gw[o] * gh));
        for (float& g : grid[o]) g = float(rng.next() >> 40) * (1.0f / 16777216.0f) - 0.5f;
        rowv[o].resize(size_t(3 * gw[o]));
        ci[o].resize(size_t(L.tw));
        ct[o].resize(size_t(L.tw));
        for (int x = 0; x < L.tw; ++x) {
          ci[o][size_t(x)] = x / cell[o];
          ct[o][size_t(x)] = float(x % cell[o]) / float(cell[o]);
        }
      }
      for (int y = 0; y < L.th; ++y) {
        for (int o = 0; o < 2; ++o) {  // vertical lerp of the two grid rows around y, once per row
          int j = y / cell[o], gh = L.th / cell[o] + 2;
          float t = float(y % cell[o]) / float(cell[o]);
          for (int c = 0; c < 3; ++c)
            for (int i = 0; i < gw[o]; ++i) {
              const float* g = &grid[o][size_t((c * gh + j) * gw[o] + i)];
              rowv[o][size_t(c * gw[o] + i)] = g[0] + t * (g[gw[o]] - g[0]);
            }
        }
        for (int x = 0; x < L.tw; ++x) {
          float w[3];
          white(w);
          for (int c = 0; c < 3; ++c) {
            float v = base[c] + grain * w[c];
            for (int o = 0; o < 2; ++o) {
              const float* rv = &rowv[o][size_t(c * gw[o] + ci[o][size_t(x)])];
              v += amp[o] * (rv[0] + ct[o][size_t(x)] * (rv[1] - rv[0]));
            }
            L.tex[size_t(c) * plane + size_t(y) * size_t(L.tw) + size_t(x)] = v;
          }
        }
      }
      break;
    }
    case SyntheticTexture::Stripes:
    case SyntheticTexture::Checker: {
      double period = L.info.texture == SyntheticTexture::Stripes ? r.range(3, 24) : r.range(4, 24);
      double th = r.range(0, kPi), cs = std::cos(th), sn = std::sin(th);
      for (int y = 0; y < L.th; ++y)
        for (int x = 0; x < L.tw; ++x) {
          double X = x + L.x0, Y = y + L.y0, u = (X * cs + Y * sn) / period;
          float m;
          if (L.info.texture == SyntheticTexture::Stripes) {
            double f = u - std::floor(u);
            m = float(std::fabs(2 * f - 1));  // triangle wave: smooth enough to match sub-pixel
          } else {
            double v = (-X * sn + Y * cs) / period;
            m = float((int64_t(std::floor(u)) + int64_t(std::floor(v))) & 1);
          }
          float w[3];
          white(w);
          for (int c = 0; c < 3; ++c)
            L.tex[size_t(c) * plane + size_t(y) * size_t(L.tw) + size_t(x)] =
                base[c] + (other[c] - base[c]) * m + 0.03f * w[c];
        }
      break;
    }
    case SyntheticTexture::Flat:
      for (size_t i = 0; i < plane; ++i) {
        float w[3];
        white(w);
        for (int c = 0; c < 3; ++c) L.tex[size_t(c) * plane + i] = base[c] + 0.01f * w[c];
      }
      break;
  }
}

void check_options(const SyntheticOptions& o) {
  STEREORT_CHECK(o.height >= 8 && o.width >= 16 && int64_t(o.height) * o.width <= (int64_t(1) << 26),
                 "synthetic: size {}x{} (HxW) must be at least 8x16 and at most 64 M pixels", o.height, o.width);
  STEREORT_CHECK(o.min_disp >= 0 && o.max_disp > o.min_disp + 1 && o.max_disp < float(o.width),
                 "synthetic: need 0 <= min_disp < max_disp - 1 and max_disp < width, got [{}, {}] at width {}",
                 o.min_disp, o.max_disp, o.width);
  STEREORT_CHECK(o.min_layers >= 0 && o.max_layers >= o.min_layers && o.max_layers <= 16,
                 "synthetic: foreground layers must satisfy 0 <= min <= max <= 16, got {}..{}", o.min_layers,
                 o.max_layers);
  STEREORT_CHECK(o.noise_sigma >= 0 && o.noise_sigma < 1, "synthetic: noise_sigma {} must be in [0, 1)", o.noise_sigma);
}

// The full scene: layers with geometry, planes and textures. Photometric parameters come from the same stream.
struct Scene {
  std::vector<Layer> layers;
  float gain[3] = {1, 1, 1}, bias[3] = {0, 0, 0};
  uint64_t noise_left = 0, noise_right = 0;
};

Scene build_scene(const SyntheticOptions& o, uint64_t index, bool textures) {
  check_options(o);
  ParamRng r{o.seed, index};
  const int W = o.width, H = o.height, Wt = W + int(std::ceil(o.max_disp)) + 2;
  const double lo = o.min_disp, hi = o.max_disp, R = hi - lo;
  Scene s;
  int n_fg = r.irange(o.min_layers, o.max_layers);
  // Background.
  {
    Layer L;
    L.info.shape = SyntheticShape::Background;
    double u = r.uni();
    L.info.texture = u < 0.7 ? SyntheticTexture::Noise : u < 0.85 ? SyntheticTexture::Stripes : SyntheticTexture::Flat;
    L.x0 = 0;
    L.x1 = Wt - 1;
    L.y0 = 0;
    L.y1 = H - 1;
    make_plane(r, Wt / 2.0, H / 2.0, Wt / 2.0, H / 2.0, lo + R * r.range(0.05, 0.25), lo, hi, &L.info);
    s.layers.push_back(L);
  }
  for (int k = 0; k < n_fg; ++k) {
    Layer L;
    double u = r.uni();
    L.info.shape = u < 0.4 ? SyntheticShape::Ellipse : u < 0.75 ? SyntheticShape::Rectangle : SyntheticShape::Blob;
    u = r.uni();
    L.info.texture = u < 0.5    ? SyntheticTexture::Noise
                     : u < 0.65 ? SyntheticTexture::Stripes
                     : u < 0.8  ? SyntheticTexture::Checker
                                : SyntheticTexture::Flat;
    double cx = r.range(0.05, 1.05) * W, cy = r.range(0.0, 1.0) * H, hx = 0, hy = 0;
    double th = r.range(0, kPi), cs = std::cos(th), sn = std::sin(th);
    if (L.info.shape == SyntheticShape::Rectangle) {
      L.rcx = cx;
      L.rcy = cy;
      L.hw = r.range(0.04, 0.2) * W;
      L.hh = r.range(0.06, 0.3) * H;
      L.rcs = cs;
      L.rsn = sn;
      L.info.parts.push_back({cx, cy, L.hw, L.hh, th});
      hx = L.hw * std::fabs(cs) + L.hh * std::fabs(sn);
      hy = L.hw * std::fabs(sn) + L.hh * std::fabs(cs);
    } else {
      int parts = L.info.shape == SyntheticShape::Blob ? r.irange(2, 3) : 1;
      double minx = 1e300, maxx = -1e300, miny = 1e300, maxy = -1e300;
      for (int p = 0; p < parts; ++p) {
        Ellipse e;
        e.rx = r.range(0.03, 0.18) * W;
        e.ry = r.range(0.05, 0.3) * H;
        e.ex = cx + (p ? r.range(-1, 1) * e.rx : 0);
        e.ey = cy + (p ? r.range(-1, 1) * e.ry : 0);
        double t = p ? r.range(0, kPi) : th;
        e.cs = std::cos(t);
        e.sn = std::sin(t);
        L.info.parts.push_back({e.ex, e.ey, e.rx, e.ry, t});
        double ex = std::sqrt(e.rx * e.rx * e.cs * e.cs + e.ry * e.ry * e.sn * e.sn);
        double ey = std::sqrt(e.rx * e.rx * e.sn * e.sn + e.ry * e.ry * e.cs * e.cs);
        minx = std::min(minx, e.ex - ex);
        maxx = std::max(maxx, e.ex + ex);
        miny = std::min(miny, e.ey - ey);
        maxy = std::max(maxy, e.ey + ey);
        L.ellipses.push_back(e);
      }
      cx = (minx + maxx) / 2;
      cy = (miny + maxy) / 2;
      hx = (maxx - minx) / 2;
      hy = (maxy - miny) / 2;
    }
    L.x0 = std::max(0, int(std::floor(cx - hx)));
    L.x1 = std::min(Wt - 1, int(std::ceil(cx + hx)));
    L.y0 = std::max(0, int(std::floor(cy - hy)));
    L.y1 = std::min(H - 1, int(std::ceil(cy + hy)));
    // Nearer than the background on average; later layers tend to be nearer still.
    double dc = lo + R * r.range(0.25 + 0.4 * k / std::max(1, n_fg), 0.97);
    make_plane(r, cx, cy, hx, hy, dc, lo, hi, &L.info);
    s.layers.push_back(L);
  }
  for (int c = 0; c < 3; ++c) {  // drawn either way, so textures do not depend on the photometric switch
    float g = float(r.range(0.9, 1.1)), b = float(r.range(-0.04, 0.04));
    s.gain[c] = o.photometric ? g : 1.0f;
    s.bias[c] = o.photometric ? b : 0.0f;
  }
  s.noise_left = r.seed64();
  s.noise_right = r.seed64();
  if (textures)
    for (Layer& L : s.layers) make_texture(L, r);
  return s;
}

// Three independent noise values of std sigma (two 64-bit draws: four bytes per value).
inline void noise3(SplitMix& g, float sigma, float out[3]) {
  uint64_t a = g.next(), b = g.next();
  out[0] = sigma * SplitMix::gauss(uint32_t(a));
  out[1] = sigma * SplitMix::gauss(uint32_t(a >> 32));
  out[2] = sigma * SplitMix::gauss(uint32_t(b));
}

inline float texel(const Layer& L, int c, int x, int y) {
  return L.tex[(size_t(c) * size_t(L.th) + size_t(y - L.y0)) * size_t(L.tw) + size_t(x - L.x0)];
}

}  // namespace

std::vector<SyntheticLayer> synthetic_scene(const SyntheticOptions& opt, uint64_t index) {
  Scene s = build_scene(opt, index, false);
  std::vector<SyntheticLayer> out;
  for (const Layer& L : s.layers) out.push_back(L.info);
  return out;
}

Sample synthetic_sample(const SyntheticOptions& o, uint64_t index) {
  Scene s = build_scene(o, index, true);
  const int W = o.width, H = o.height, NL = int(s.layers.size());
  const int64_t HW = int64_t(H) * W;
  Sample out;
  out.left = Tensor::empty({3, H, W}, DType::F32);
  out.right = Tensor::empty({3, H, W}, DType::F32);
  out.disparity = Tensor::empty({H, W}, DType::F32);
  out.noc = Tensor::empty({H, W}, DType::Bool);
  float* pl = out.left.data<float>();
  float* pr = out.right.data<float>();
  float* pd = out.disparity.data<float>();
  bool* pn = out.noc.data<bool>();
  SplitMix nl{s.noise_left}, nr{s.noise_right};
  const float sigma = o.photometric ? o.noise_sigma : 0.0f;

  struct SpanSet {
    int n = 0;
    double s[kMaxSpans][2];
  };
  std::vector<SpanSet> sp(static_cast<size_t>(NL));
  std::vector<double> zl(static_cast<size_t>(W)), zr(static_cast<size_t>(W)), xl(static_cast<size_t>(W));
  std::vector<int> il(static_cast<size_t>(W)), ir(static_cast<size_t>(W));
  const double neg = -std::numeric_limits<double>::infinity();
  auto clamp01 = [](float v) { return v < 0.f ? 0.f : v > 1.f ? 1.f : v; };

  for (int y = 0; y < H; ++y) {
    for (int k = 0; k < NL; ++k) sp[size_t(k)].n = layer_spans(s.layers[size_t(k)], y, sp[size_t(k)].s);
    std::fill(zl.begin(), zl.end(), neg);
    std::fill(zr.begin(), zr.end(), neg);
    for (int k = 0; k < NL; ++k) {
      const SyntheticLayer& P = s.layers[size_t(k)].info;
      for (int q = 0; q < sp[size_t(k)].n; ++q) {
        double s0 = sp[size_t(k)].s[q][0], s1 = sp[size_t(k)].s[q][1];
        // Left view.
        int xa = std::max(0, int(std::ceil(s0))), xb = std::min(W - 1, int(std::floor(s1)));
        for (int x = xa; x <= xb; ++x) {
          double d = P.a + P.b * x + P.c * y;
          if (d > zl[size_t(x)]) {
            zl[size_t(x)] = d;
            il[size_t(x)] = k;
          }
        }
        // Right view: surface point x_L is seen at xr = (1 - b) x_L - a - c y.
        double ib = 1.0 / (1.0 - P.b), off = P.a + P.c * y;
        int ra = std::max(0, int(std::ceil((1 - P.b) * s0 - off)));
        int rb = std::min(W - 1, int(std::floor((1 - P.b) * s1 - off)));
        for (int xr = ra; xr <= rb; ++xr) {
          double xL = std::min(s1, std::max(s0, (xr + off) * ib));
          double d = xL - xr;
          if (d > zr[size_t(xr)]) {
            zr[size_t(xr)] = d;
            ir[size_t(xr)] = k;
            xl[size_t(xr)] = xL;
          }
        }
      }
    }
    for (int x = 0; x < W; ++x) {
      size_t p = size_t(y) * size_t(W) + size_t(x);
      // Left pixel: texture at (x, y) of its layer.
      const Layer& L = s.layers[size_t(il[size_t(x)])];
      float nz[3] = {0, 0, 0};
      if (sigma > 0) noise3(nl, sigma, nz);
      for (int c = 0; c < 3; ++c) pl[size_t(c) * size_t(HW) + p] = clamp01(texel(L, c, x, y) + nz[c]);
      pd[p] = float(zl[size_t(x)]);
      // Right pixel: texture of its layer at the fractional left coordinate.
      const Layer& Rl = s.layers[size_t(ir[size_t(x)])];
      double fx = xl[size_t(x)] - Rl.x0;
      int i0 = std::min(int(fx), Rl.tw - 1), i1 = std::min(i0 + 1, Rl.tw - 1);
      float t = float(fx - i0);
      if (sigma > 0) noise3(nr, sigma, nz);
      for (int c = 0; c < 3; ++c) {
        float a = texel(Rl, c, Rl.x0 + i0, y), b = texel(Rl, c, Rl.x0 + i1, y);
        pr[size_t(c) * size_t(HW) + p] = clamp01(s.gain[c] * (a + t * (b - a)) + s.bias[c] + nz[c]);
      }
      // Visibility of the left pixel in the right view: no other layer nearer at xr = x - d.
      double d = zl[size_t(x)], xr = x - d;
      bool vis = xr >= 0;
      int own = il[size_t(x)];
      for (int k = 0; k < NL && vis; ++k) {
        if (k == own) continue;
        const SyntheticLayer& P = s.layers[size_t(k)].info;
        double xk = (xr + P.a + P.c * y) / (1.0 - P.b);
        for (int q = 0; q < sp[size_t(k)].n; ++q) {
          double s0 = sp[size_t(k)].s[q][0], s1 = sp[size_t(k)].s[q][1];
          if (xk >= s0 && xk <= s1 && xk - xr > d + 1e-9) {
            vis = false;
            break;
          }
        }
      }
      pn[p] = vis;
    }
  }
  out.valid = o.occluded_valid ? Tensor::ones({H, W}, DType::Bool) : out.noc.clone();
  out.calib.fx = out.calib.fy = W;
  out.calib.cx = (W - 1) / 2.0;
  out.calib.cy = (H - 1) / 2.0;
  out.calib.baseline = 1;
  out.calib.units = "synthetic units";
  out.name = fmt::format("synthetic/seed{}/{:06d}", o.seed, index);
  return out;
}

Sample SyntheticDataset::get(size_t i) const {
  STEREORT_CHECK(i < count_, "{}: index {} out of range", describe(), i);
  return synthetic_sample(opt_, i);
}

std::string SyntheticDataset::describe() const {
  return fmt::format("synthetic ({} pairs, {}x{} HxW, disparity {}..{}, seed {})", count_, opt_.height, opt_.width,
                     opt_.min_disp, opt_.max_disp, opt_.seed);
}

std::unique_ptr<StereoDataset> make_synthetic(const DatasetSpec& spec) {
  spec.check_keys({"count", "seed", "size", "max_disp", "min_disp", "photometric", "noise", "occluded"});
  STEREORT_CHECK(spec.path.empty(), "dataset spec '{}': synthetic takes no path, only key=value options", spec.text);
  SyntheticOptions o;
  auto num = [&](const char* key, double fallback) {
    std::string v = spec.get(key, "");
    if (v.empty()) return fallback;
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    STEREORT_CHECK(end && *end == '\0', "dataset spec '{}': {}='{}' is not a number", spec.text, key, v);
    return d;
  };
  double count = num("count", 200);
  STEREORT_CHECK(count >= 1 && count == std::floor(count), "dataset spec '{}': count must be a positive integer",
                 spec.text);
  o.seed = uint64_t(num("seed", 1));
  std::string size = spec.get("size", "256x512");
  int h = 0, w = 0;
  char tail = 0;
  STEREORT_CHECK(std::sscanf(size.c_str(), "%dx%d%c", &h, &w, &tail) == 2, "dataset spec '{}': size '{}' must be "
                 "HxW, e.g. 256x512", spec.text, size);
  o.height = h;
  o.width = w;
  o.max_disp = float(num("max_disp", 64));
  o.min_disp = float(num("min_disp", 1));
  o.photometric = num("photometric", 1) != 0;
  o.noise_sigma = float(num("noise", 0.01));
  std::string occ = spec.get("occluded", "valid");
  STEREORT_CHECK(occ == "valid" || occ == "invalid", "dataset spec '{}': occluded must be valid or invalid", spec.text);
  o.occluded_valid = occ == "valid";
  check_options(o);
  return std::make_unique<SyntheticDataset>(o, size_t(count));
}

}  // namespace io
}  // namespace stereort
