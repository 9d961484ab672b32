// `xent bench --plot`: the results as a PNG bar chart (one panel per test, one colour per
// model, a whisker for the stddev), drawn in memory and written with stb_image_write.
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "formats/atomic-file.h"
#include "bench.h"
#include "formats/error.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

namespace xent::app {
namespace {

struct Rgb {
  unsigned char r, g, b;
};
constexpr Rgb kBlack{0, 0, 0}, kGrey{200, 200, 200};
constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                            {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(static_cast<size_t>(w) * h * 3, 255) {}
  int width() const { return w_; }
  int height() const { return h_; }

  void rect(int x0, int y0, int x1, int y1, Rgb c) {
    x0 = std::clamp(x0, 0, w_);
    x1 = std::clamp(x1, 0, w_);
    y0 = std::clamp(y0, 0, h_);
    y1 = std::clamp(y1, 0, h_);
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) {
        unsigned char* p = &px_[(static_cast<size_t>(y) * w_ + x) * 3];
        p[0] = c.r;
        p[1] = c.g;
        p[2] = c.b;
      }
  }

  // stb_easy_font builds text from axis-aligned quads; each is filled at `scale`.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 2) {
    std::vector<char> str(s.begin(), s.end());
    str.push_back('\0');
    std::vector<char> vbuf(s.size() * 1024 + 64);  // at most ~15 quads of 64 bytes per character
    const int quads = stb_easy_font_print(0, 0, str.data(), nullptr, vbuf.data(), static_cast<int>(vbuf.size()));
    for (int q = 0; q < quads; ++q) {
      float xs[4], ys[4];
      for (int v = 0; v < 4; ++v) {
        const float* f = reinterpret_cast<const float*>(vbuf.data() + (q * 4 + v) * 16);
        xs[v] = f[0];
        ys[v] = f[1];
      }
      const float x0 = *std::min_element(xs, xs + 4), x1 = *std::max_element(xs, xs + 4);
      const float y0 = *std::min_element(ys, ys + 4), y1 = *std::max_element(ys, ys + 4);
      rect(x + static_cast<int>(x0 * scale), y + static_cast<int>(y0 * scale), x + static_cast<int>(x1 * scale),
           y + static_cast<int>(y1 * scale), c);
    }
  }
  static int text_width(const std::string& s, int scale = 2) {
    std::vector<char> str(s.begin(), s.end());
    str.push_back('\0');
    return stb_easy_font_width(str.data()) * scale;
  }

  // Encoded in memory and saved through the one atomic-write routine (fsync, rename).
  void write_png(const std::string& path) const {
    std::vector<unsigned char> png;
    auto append = [](void* ctx, void* data, int n) {
      auto* out = static_cast<std::vector<unsigned char>*>(ctx);
      out->insert(out->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + n);
    };
    if (!stbi_write_png_to_func(append, &png, w_, h_, 3, px_.data(), w_ * 3))
      throw Error("cannot encode the plot '" + path + "'");
    write_file_atomic(path, [&](const std::function<void(const void*, size_t)>& write) { write(png.data(), png.size()); });
  }

 private:
  int w_, h_;
  std::vector<unsigned char> px_;
};

// A round axis maximum and tick step for values up to v.
void axis(double v, double* top, double* step) {
  if (v <= 0) v = 1;
  const double mag = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (v <= m * mag) {
      *top = m * mag;
      break;
    }
  }
  *step = *top / 5;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v);
  return buf;
}

// Tick labels share one precision, chosen by the step.
std::string tick(double v, double step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, step >= 1 ? "%.0f" : step >= 0.1 ? "%.1f" : "%.2f", v);
  return buf;
}

}  // namespace

void write_bench_plot(const std::string& path, const std::vector<BenchResult>& results) {
  if (results.empty()) throw Error("nothing to plot");
  // Panels in the order tests first appear; models keep their colour in every panel.
  std::vector<std::string> tests, models;
  for (const BenchResult& r : results) {
    if (std::find(tests.begin(), tests.end(), r.test) == tests.end()) tests.push_back(r.test);
    const std::string m = r.model_label + " (" + std::filesystem::path(r.model_path).filename().string() + ")";
    if (std::find(models.begin(), models.end(), m) == models.end()) models.push_back(m);
  }
  auto model_index = [&](const BenchResult& r) {
    const std::string m = r.model_label + " (" + std::filesystem::path(r.model_path).filename().string() + ")";
    return static_cast<size_t>(std::find(models.begin(), models.end(), m) - models.begin());
  };
  constexpr int kBar = 36, kGap = 14, kLeft = 70, kPanelH = 300, kTop = 40, kBottom = 40, kPanelGap = 30;
  std::vector<int> panel_w;
  int width = kPanelGap;
  for (const std::string& t : tests) {
    int n = 0;
    for (const BenchResult& r : results) n += r.test == t;
    panel_w.push_back(kLeft + n * (kBar + kGap) + kGap);
    width += panel_w.back() + kPanelGap;
  }
  int legend_w = 0;
  for (const std::string& m : models) legend_w = std::max(legend_w, 30 + Canvas::text_width(m));
  width = std::max(width, legend_w + 2 * kPanelGap);
  const int legend_h = 24 * static_cast<int>(models.size()) + 10;
  Canvas cv(width, kTop + kPanelH + kBottom + legend_h);

  int x_panel = kPanelGap;
  for (size_t p = 0; p < tests.size(); ++p) {
    double vmax = 0;
    for (const BenchResult& r : results)
      if (r.test == tests[p]) vmax = std::max(vmax, r.avg_ts() + r.stddev_ts());
    double top = 1, step = 0.2;
    axis(vmax, &top, &step);
    const int y_base = kTop + kPanelH, x0 = x_panel + kLeft, x1 = x_panel + panel_w[p];
    auto y_of = [&](double v) { return y_base - static_cast<int>(std::lround(v / top * kPanelH)); };
    cv.text(x0, 8, tests[p] + " (t/s)", kBlack, 3);
    for (double v = 0; v <= top * 1.0001; v += step) {
      const int y = y_of(v);
      cv.rect(x0, y, x1, y + 1, kGrey);
      const std::string label = tick(v, step);
      cv.text(x0 - 8 - Canvas::text_width(label), y - 6, label, kBlack);
    }
    cv.rect(x0 - 1, kTop, x0, y_base + 1, kBlack);
    int x = x0 + kGap;
    for (const BenchResult& r : results) {
      if (r.test != tests[p]) continue;
      const Rgb c = kPalette[model_index(r) % (sizeof kPalette / sizeof kPalette[0])];
      cv.rect(x, y_of(r.avg_ts()), x + kBar, y_base, c);
      const int whisker = x + kBar / 2;
      cv.rect(whisker, y_of(r.avg_ts() + r.stddev_ts()), whisker + 1, y_of(std::max(0.0, r.avg_ts() - r.stddev_ts())) + 1,
              kBlack);
      const std::string value = number(r.avg_ts());
      cv.text(x + (kBar - Canvas::text_width(value, 1)) / 2, y_of(r.avg_ts() + r.stddev_ts()) - 10, value, kBlack, 1);
      const std::string label = "t=" + std::to_string(r.n_threads);
      cv.text(x + (kBar - Canvas::text_width(label)) / 2, y_base + 8, label, kBlack);
      x += kBar + kGap;
    }
    x_panel += panel_w[p] + kPanelGap;
  }
  int y = kTop + kPanelH + kBottom;
  for (size_t m = 0; m < models.size(); ++m) {
    const Rgb c = kPalette[m % (sizeof kPalette / sizeof kPalette[0])];
    cv.rect(kPanelGap, y + 2, kPanelGap + 16, y + 18, c);
    cv.text(kPanelGap + 24, y + 3, models[m], kBlack);
    y += 24;
  }
  cv.write_png(path);
}

}  // namespace xent::app
