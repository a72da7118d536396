// Micro-benchmarks of patchgcl's losses and their building blocks (docs/benchmarks.md).
//
//   build/benchmarks/patchgcl_benchmarks                                  # everything (a few minutes)
//   build/benchmarks/patchgcl_benchmarks --benchmark_filter='/paper'      # the paper's setting only
//   build/benchmarks/patchgcl_benchmarks --benchmark_format=json --benchmark_out=cpp.json
//   scripts/bench.sh                                                      # C++ and eager PyTorch, one table
//
// Every benchmark reports wall time per call and these counters:
//   GFLOP/s      analytic FLOPs per call (flops(), below) / wall time
//   peak_frac    GFLOP/s as a fraction of the sgemm peak measured at start-up in the same run
//   peak_MiB     peak bytes of tensors alive during one call above what was alive before it,
//                counted by a wrapper around LibTorch's CPU allocator (exact, not RSS)
// Threads: torch::get_num_threads(), or PATCHGCL_BENCH_THREADS (LibTorch and OpenBLAS); the Python side uses the same.
// Device: --device cuda (or PATCHGCL_BENCH_DEVICE=cuda) runs everything on the GPU; each timed
// call then ends with a device synchronisation, and peak_MiB (CPU allocator) is not reported.
// Without a CUDA device it exits with status 77 and says so.

#include <patchgcl/blas_kernels.hpp>
#include <patchgcl/compat.hpp>
#include <patchgcl/patchgcl.hpp>

#include <benchmark/benchmark.h>
#include <c10/core/CPUAllocator.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>  // std::istringstream: blas_info reads lines
#include <string>
#include <vector>

namespace {

using namespace patchgcl;
using Clock = std::chrono::steady_clock;

// --------------------------------------------------------------------------- memory accounting

/// Wraps LibTorch's default CPU allocator and counts the bytes of live tensors and their peak.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) {}

  c10::DataPtr allocate(size_t n) PATCHGCL_ALLOCATOR_ALLOCATE_CONST override {
    auto inner = base_->allocate(n);
    void* data = inner.get();
    auto* ctx = new Block{std::move(inner), static_cast<int64_t>(n), this};
    const int64_t now = live_.fetch_add(ctx->bytes) + ctx->bytes;
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    return {data, ctx, &release, c10::Device(c10::DeviceType::CPU)};
  }

#if PATCHGCL_ALLOCATOR_HAS_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif

  int64_t live() const { return live_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_.store(live_.load()); }

 private:
  struct Block {
    c10::DataPtr inner;
    int64_t bytes;
    const CountingAllocator* owner;
  };
  static void release(void* p) {
    auto* block = static_cast<Block*>(p);
    block->owner->live_.fetch_sub(block->bytes);
    delete block;
  }
  c10::Allocator* base_;
  mutable std::atomic<int64_t> live_{0}, peak_{0};
};

CountingAllocator& counting_allocator() {
  static CountingAllocator allocator(c10::GetDefaultCPUAllocator());
  return allocator;
}

/// A field of /proc/self/status in KiB (VmRSS, VmHWM), -1 where unavailable.
int64_t proc_status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atoll(line.c_str() + field.size() + 1);
  }
  return -1;
}

// --------------------------------------------------------------------------- device

torch::Device g_device(torch::kCPU);  // --device / PATCHGCL_BENCH_DEVICE, set in main()

torch::TensorOptions on_device() { return torch::TensorOptions().device(g_device); }

/// Waits for the queued GPU work: a CUDA call returns before its kernels ran.
void sync_device() {
  if (g_device.is_cuda()) torch::cuda::synchronize();
}

// --------------------------------------------------------------------------- workloads

/// Feature pyramids of VGG16 relu3_1, relu4_1, relu4_3 (channels 256, 512, 512) for a square
/// image of side `image`: maps of side image/4, image/8, image/16... VGG's relu4_3 is at 1/8
/// like relu4_1, so the sides are image/4, image/8, image/8.
struct Workload {
  std::string name;  ///< "paper", "N:1024", "B:4": the suffix of every benchmark name
  int64_t batch = 1;
  int64_t patches = 256;
  int64_t image = 256;
  std::vector<int64_t> channels{256, 512, 512};
  std::vector<int64_t> sides() const { return {image / 4, image / 8, image / 8}; }
};

/// The paper's setting: a 256x256 image (maps 256x64x64, 512x32x32, 512x32x32), 256 patches.
Workload paper() { return {"paper"}; }
/// Patch sweep on a 512x512 image (maps 256x128x128, 512x64x64, 512x64x64: up to 4096 locations).
Workload patches_sweep(int64_t n) { return {fmt::format("N:{}", n), 1, n, 512}; }
/// Batch sweep in the paper's setting.
Workload batch_sweep(int64_t b) { return {fmt::format("B:{}", b), b, 256, 256}; }

constexpr int64_t kNc = 256;  // nc: embedding / TAGConv width, as in the paper

struct Inputs {
  std::vector<torch::Tensor> output_features, input_features, patch_ids;
};

/// Non-negative (post-ReLU) random maps, fixed seed; G(x)'s maps are leaves that take gradients.
Inputs make_inputs(const Workload& w) {
  torch::manual_seed(0);
  Inputs in;
  const auto sides = w.sides();
  for (size_t l = 0; l < w.channels.size(); ++l) {
    const auto shape = std::vector<int64_t>{w.batch, w.channels[l], sides[l], sides[l]};
    in.input_features.push_back(torch::relu(torch::randn(shape, on_device())));
    in.output_features.push_back(torch::relu(torch::randn(shape, on_device())).requires_grad_(true));
    in.patch_ids.push_back(functional::random_patch_ids(in.input_features.back(), w.patches));
  }
  return in;
}

// --------------------------------------------------------------------------- analytic FLOPs
//
// Only the GEMMs are counted, as 2 m n k each; norms, softmax, thresholds and gathers are
// O(N d) or O(N^2) and ignored. Per feature layer and image, with N patches, C input
// channels, d = nc, L hops, K pooled nodes and Lp pooled hops:
//
//   GraphNCELoss forward                          backward (the output side only: the input
//     embed h, both images   2 * 2 N C d            branch is detached)
//     A = z z^T              2 N^2 d                  embed       2 * 2 N C d  (dX, dW)
//     Abar [V|Z], L hops     L * 2 N^2 (2d)           Abar^T dV   L * 2 N^2 d
//     TAGConv linear, both   2 * 2 N (L+1) d d        linear      2 * 2 N (L+1) d d
//     similarity V Z^T       2 N^2 d                  dV = G Z    2 N^2 d
//     pooled 2-hop A_p       2 K N K  (A[idx,:] A[:,idx], the rows and columns kept)
//     pooled TAGConv + sim   as above with K, Lp      as above with K, Lp
//   PatchNCELoss / PUT: head Linear(C, d), Linear(d, d) on both images 2 * (2 N C d + 2 N d^2),
//     similarity 2 N^2 d; backward 2 * (2 N C d + 2 N d^2) + 2 N^2 d (PUT's sort is not a FLOP).
// Backward into the feature maps is a scatter of the sampled rows: no FLOPs.

struct Flops {
  double forward = 0, backward = 0;
};

Flops graph_level_flops(double n, double d, double hops) {
  Flops f;
  f.forward = hops * 2 * n * n * 2 * d + 2 * 2 * n * (hops + 1) * d * d + 2 * n * n * d;
  f.backward = hops * 2 * n * n * d + 2 * 2 * n * (hops + 1) * d * d + 2 * n * n * d;
  return f;
}

Flops graph_nce_flops(const Workload& w, const GraphNCELossOptions& o) {
  Flops total;
  const double n = static_cast<double>(w.patches), d = static_cast<double>(o.nc());
  for (auto c_in : w.channels) {
    const double c = static_cast<double>(c_in);
    Flops layer;
    layer.forward = 2 * 2 * n * c * d + 2 * n * n * d;
    layer.backward = 2 * 2 * n * c * d;
    auto level0 = graph_level_flops(n, d, static_cast<double>(o.hops()));
    layer.forward += level0.forward;
    layer.backward += level0.backward;
    double nodes = n;
    for (int64_t p = 1; p <= o.pooling_levels(); ++p) {
      const double k = std::max<double>(2, std::floor(n / static_cast<double>(o.down_scale() << (p - 1))));
      layer.forward += 2 * k * nodes * k;
      auto pooled = graph_level_flops(k, d, static_cast<double>(o.pooled_hops()));
      layer.forward += pooled.forward;
      layer.backward += pooled.backward;
      nodes = k;
    }
    total.forward += static_cast<double>(w.batch) * layer.forward;
    total.backward += static_cast<double>(w.batch) * layer.backward;
  }
  return total;
}

Flops patch_nce_flops(const Workload& w, int64_t nc) {
  Flops total;
  const double n = static_cast<double>(w.patches), d = static_cast<double>(nc);
  for (auto c_in : w.channels) {
    const double c = static_cast<double>(c_in);
    const double head = 2 * n * c * d + 2 * n * d * d;
    total.forward += static_cast<double>(w.batch) * (2 * head + 2 * n * n * d);
    total.backward += static_cast<double>(w.batch) * (2 * head + 2 * n * n * d);
  }
  return total;
}

// --------------------------------------------------------------------------- timing

double g_peak_gflops = 0;      // sgemm peak of this run, measured in main() before any benchmark
double g_peak_gflops_cpu = 0;  // the same per second of process CPU time (scripts/bench.sh TIME=cpu)

/// Best GFLOP/s of `reps` float32 products [n, n] x [n, n] (torch::mm_out: LibTorch's BLAS).
double measure_sgemm_gflops(int64_t n, int reps) {
  torch::manual_seed(1);
  auto a = torch::randn({n, n}, on_device()), b = torch::randn({n, n}, on_device()),
       c = torch::empty({n, n}, on_device());
  torch::mm_out(c, a, b);  // warm-up: BLAS threads, page faults
  sync_device();
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    const std::clock_t c0 = std::clock();
    torch::mm_out(c, a, b);
    sync_device();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * n / s * 1e-9);
    g_peak_gflops_cpu =
        std::max(g_peak_gflops_cpu, 2.0 * n * n * n / (double(std::clock() - c0) / CLOCKS_PER_SEC) * 1e-9);
  }
  return best;
}

/// Times `step` (one call), reporting GFLOP/s, the fraction of the sgemm peak and the peak
/// tensor memory of one call (measured on the warm-up call, outside the timed loop).
void run_timed(benchmark::State& state, const std::function<void()>& device_step, double flops) {
  auto step = [&] {
    device_step();
    sync_device();
  };
  auto& memory = counting_allocator();
  step();  // warm-up (first-touch allocations, BLAS threads)
  const int64_t before = memory.live();
  memory.reset_peak();
  step();
  const double peak_bytes = static_cast<double>(memory.peak() - before);

  const auto t0 = Clock::now();
  for (auto _ : state) step();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const double gflops = flops * static_cast<double>(state.iterations()) / seconds * 1e-9;

  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_frac"] = g_peak_gflops > 0 ? gflops / g_peak_gflops : 0.0;
  if (g_device.is_cpu()) state.counters["peak_MiB"] = peak_bytes / (1024.0 * 1024.0);
  state.counters["GFLOP"] = flops * 1e-9;
}

void clear_grads(torch::nn::Module& module, Inputs& in) {
  for (auto& p : module.parameters()) p.mutable_grad().reset();
  for (auto& x : in.output_features) x.mutable_grad().reset();
}

enum class Pass { kForward, kForwardBackward };
const char* pass_name(Pass p) { return p == Pass::kForward ? "fwd" : "fwd+bwd"; }

/// One step of a loss module: forward (building the autograd graph, as in training), or
/// forward + backward into the parameters and G(x)'s feature maps; gradients are dropped each
/// call (zero_grad(set_to_none)), as an optimizer step would.
template <typename Loss>
std::function<void()> loss_step(Loss& loss, Inputs& in, Pass pass) {
  return [&loss, &in, pass] {
    auto value = loss->forward(in.output_features, in.input_features, in.patch_ids);
    if (pass == Pass::kForwardBackward) {
      value.backward();
      clear_grads(*loss, in);
    }
    benchmark::DoNotOptimize(value.data_ptr());
  };
}

GraphNCELossOptions graph_options(const Workload& w) {
  return GraphNCELossOptions::reference(w.channels).num_patches(w.patches).nc(kNc);
}

void bm_graph_nce(benchmark::State& state, Workload w, Pass pass, bool scan = true) {
  auto in = make_inputs(w);
  auto options = graph_options(w);
  if (!scan) options.check_finite(FiniteCheck::kNever);
  GraphNCELoss loss(options);
  loss->to(g_device);
  const auto f = graph_nce_flops(w, options);
  run_timed(state, loss_step(loss, in, pass), f.forward + (pass == Pass::kForwardBackward ? f.backward : 0.0));
}

void bm_patch_nce(benchmark::State& state, Workload w, Pass pass, bool put, bool scan = true) {
  auto in = make_inputs(w);
  auto options = put ? PatchNCELossOptions::put(w.channels) : PatchNCELossOptions(w.channels);
  if (!scan) options.check_finite(FiniteCheck::kNever);
  PatchNCELoss loss(options.num_patches(w.patches).nc(kNc));
  loss->to(g_device);
  const auto f = patch_nce_flops(w, kNc);
  run_timed(state, loss_step(loss, in, pass), f.forward + (pass == Pass::kForwardBackward ? f.backward : 0.0));
}

/// 1,000 training steps of GraphNCELoss in the paper's setting: live tensor bytes and RSS after
/// the last call minus after the 10th (both should stay flat: no per-call growth).
void bm_graph_nce_growth(benchmark::State& state) {
  auto w = paper();
  auto in = make_inputs(w);
  GraphNCELoss loss(graph_options(w));
  loss->to(g_device);
  auto step = loss_step(loss, in, Pass::kForwardBackward);
  auto& memory = counting_allocator();
  int64_t calls = 0, live10 = 0, rss10 = 0;
  for (auto _ : state) {
    step();
    sync_device();
    if (++calls == 10) {
      live10 = memory.live();
      rss10 = proc_status_kib("VmRSS");
    }
  }
  state.counters["calls"] = static_cast<double>(calls);
  state.counters["live_growth_B"] = static_cast<double>(memory.live() - live10);
  state.counters["rss_growth_KiB"] = static_cast<double>(proc_status_kib("VmRSS") - rss10);
}

// --------------------------------------------------------------------------- building blocks

struct Graph {
  torch::Tensor output, input, adjacency, abar;
};

/// Unit node features `[1, N, d]` of two images and the paper's adjacency of the input image.
Graph make_graph(int64_t n, int64_t d) {
  torch::manual_seed(2);
  Graph g;
  g.input = functional::l2_normalize(torch::randn({1, n, d}, on_device()));
  g.output = functional::l2_normalize(g.input + 0.5 * torch::randn({1, n, d}, on_device())).requires_grad_(true);
  const auto o = GraphNCELossOptions({d});
  g.adjacency = functional::cosine_adjacency(g.input, o.adjacency());
  g.abar = functional::normalize_adjacency(g.adjacency, o.normalize());
  return g;
}

void bm_adjacency(benchmark::State& state, int64_t n) {
  auto g = make_graph(n, kNc);
  const auto o = GraphNCELossOptions({kNc});
  run_timed(
      state,
      [&] {
        auto a = functional::normalize_adjacency(functional::cosine_adjacency(g.input, o.adjacency()), o.normalize());
        benchmark::DoNotOptimize(a.data_ptr());
      },
      2.0 * n * n * kNc);
}

void bm_tag_conv(benchmark::State& state, int64_t n, Pass pass) {
  auto g = make_graph(n, kNc);
  TAGConv conv(TAGConvOptions(kNc, kNc).hops(2));
  conv->to(g_device);
  const auto f = graph_level_flops(static_cast<double>(n), kNc, 2);
  // graph_level_flops includes the similarity; the convolution alone has no V Z^T.
  const double sim = 2.0 * n * n * kNc;
  run_timed(
      state,
      [&] {
        auto out = conv->forward_shared(g.output, g.input, g.abar);
        if (pass == Pass::kForwardBackward) {
          out.first.sum().backward();
          for (auto& p : conv->parameters()) p.mutable_grad().reset();
          g.output.mutable_grad().reset();
        }
        benchmark::DoNotOptimize(out.first.data_ptr());
      },
      f.forward - sim + (pass == Pass::kForwardBackward ? f.backward - sim : 0.0));
}

void bm_topk_pool(benchmark::State& state, int64_t n) {
  auto g = make_graph(n, kNc);
  TopKPool pool(TopKPoolOptions(kNc).ratio(0.25));
  pool->to(g_device);
  const double k = std::floor(n * 0.25);
  run_timed(
      state,
      [&] {
        auto out = pool->forward(g.output, g.input, g.adjacency);
        benchmark::DoNotOptimize(out.adjacency.data_ptr());
      },
      2.0 * k * n * k);
}

void bm_info_nce(benchmark::State& state, int64_t n, Pass pass) {
  auto g = make_graph(n, kNc);
  const auto o = InfoNCEOptions().direction(Direction::kBoth);
  run_timed(
      state,
      [&] {
        auto loss = functional::info_nce(g.output, g.input, o);
        if (pass == Pass::kForwardBackward) {
          loss.backward();
          g.output.mutable_grad().reset();
        }
        benchmark::DoNotOptimize(loss.data_ptr());
      },
      2.0 * n * n * kNc * (pass == Pass::kForwardBackward ? 2 : 1));
}

void bm_sgemm(benchmark::State& state, int64_t n) {
  torch::manual_seed(1);
  auto a = torch::randn({n, n}, on_device()), b = torch::randn({n, n}, on_device()),
       c = torch::empty({n, n}, on_device());
  run_timed(
      state, [&] { torch::mm_out(c, a, b); }, 2.0 * n * n * n);
}

// --------------------------------------------------------------------------- registration

template <typename Fn>
void add(const std::string& name, Fn&& fn) {
  benchmark::RegisterBenchmark(name.c_str(), std::forward<Fn>(fn))->UseRealTime()->Unit(benchmark::kMillisecond);
}

void register_all() {
  add("matmul_peak/sgemm:2048", [](benchmark::State& s) { bm_sgemm(s, 2048); });

  std::vector<Workload> workloads{paper()};
  for (int64_t n : {64, 256, 1024, 4096}) workloads.push_back(patches_sweep(n));
  for (int64_t b : {1, 2, 4, 8}) workloads.push_back(batch_sweep(b));
  for (const auto& w : workloads) {
    for (Pass pass : {Pass::kForward, Pass::kForwardBackward}) {
      const std::string suffix = fmt::format("/{}/{}", pass_name(pass), w.name);
      add("graph_nce" + suffix, [w, pass](benchmark::State& s) { bm_graph_nce(s, w, pass); });
      add("patch_nce" + suffix, [w, pass](benchmark::State& s) { bm_patch_nce(s, w, pass, false); });
      add("put" + suffix, [w, pass](benchmark::State& s) { bm_patch_nce(s, w, pass, true); });
    }
  }
  // The paper setting without the default CPU NaN/Inf scan of the feature maps (the eager
  // reference code has none): what the scan costs.
  for (Pass pass : {Pass::kForward, Pass::kForwardBackward}) {
    const std::string suffix = fmt::format("/{}/paper-noscan", pass_name(pass));
    add("graph_nce" + suffix, [pass](benchmark::State& s) { bm_graph_nce(s, paper(), pass, false); });
    add("patch_nce" + suffix, [pass](benchmark::State& s) { bm_patch_nce(s, paper(), pass, false, false); });
  }
  benchmark::RegisterBenchmark("graph_nce/fwd+bwd/paper/calls:1000", bm_graph_nce_growth)
      ->Iterations(1000)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);

  for (int64_t n : {256, 1024, 4096}) {
    const std::string suffix = fmt::format("/N:{}", n);
    add("block/adjacency/fwd" + suffix, [n](benchmark::State& s) { bm_adjacency(s, n); });
    add("block/topk_pool/fwd" + suffix, [n](benchmark::State& s) { bm_topk_pool(s, n); });
    for (Pass pass : {Pass::kForward, Pass::kForwardBackward}) {
      const std::string p = fmt::format("/{}", pass_name(pass));
      add("block/tag_conv" + p + suffix, [n, pass](benchmark::State& s) { bm_tag_conv(s, n, pass); });
      add("block/info_nce" + p + suffix, [n, pass](benchmark::State& s) { bm_info_nce(s, n, pass); });
    }
  }
}

std::string blas_info() {
  std::istringstream config(at::show_config());
  std::string line;
  while (std::getline(config, line)) {
    const auto at = line.find("BLAS_INFO=");
    if (at != std::string::npos) return line.substr(at + 10, line.find(',', at) - at - 10);
  }
  return "unknown";
}

/// The device from `--device NAME` / `--device=NAME` (removed from argv) or PATCHGCL_BENCH_DEVICE.
std::string device_argument(int& argc, char** argv) {
  std::string name;
  if (const char* env = std::getenv("PATCHGCL_BENCH_DEVICE")) name = env;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--device" && i + 1 < argc) {
      name = argv[++i];
    } else if (arg.rfind("--device=", 0) == 0) {
      name = arg.substr(9);
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return name.empty() ? "cpu" : name;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string device = device_argument(argc, argv);
  try {
    g_device = torch::Device(device);
  } catch (const std::exception& e) {
    fmt::print(stderr, "patchgcl_benchmarks: bad --device '{}': {}\n", device, e.what());
    return 2;
  }
  if (g_device.is_cuda() && !torch::cuda::is_available()) {
    fmt::print(stderr,
               "patchgcl_benchmarks: SKIPPED, --device {} but no CUDA device is available "
               "(torch::cuda::device_count() = 0, or LibTorch without CUDA)\n",
               device);
    return 77;
  }
  if (!g_device.is_cpu() && !g_device.is_cuda()) {
    fmt::print(stderr, "patchgcl_benchmarks: --device must be cpu or cuda[:N], got '{}'\n", device);
    return 2;
  }
  c10::SetCPUAllocator(&counting_allocator(), /*priority=*/100);
  // patchgcl::set_num_threads: also OpenBLAS's pool, which Debian's LibTorch does not size.
  if (const char* threads = std::getenv("PATCHGCL_BENCH_THREADS")) patchgcl::set_num_threads(std::atoi(threads));
  torch::set_num_interop_threads(1);

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  g_peak_gflops = measure_sgemm_gflops(2048, 5);
  benchmark::AddCustomContext("torch_version", TORCH_VERSION);
  benchmark::AddCustomContext("device", g_device.str());
  benchmark::AddCustomContext("torch_threads", fmt::format("{}", torch::get_num_threads()));
  benchmark::AddCustomContext("torch_blas", blas_info());
  benchmark::AddCustomContext("openblas_threads", fmt::format("{}", patchgcl::blas_num_threads()));
  benchmark::AddCustomContext("openblas_core", patchgcl::blas_core_name());
  if (const auto advice = patchgcl::blas_kernel_advice(); !advice.empty()) fmt::print(stderr, "warning: {}\n", advice);
  benchmark::AddCustomContext("sgemm_peak_gflops", fmt::format("{:f}", g_peak_gflops));
  benchmark::AddCustomContext("sgemm_peak_gflops_cpu", fmt::format("{:f}", g_peak_gflops_cpu));
  benchmark::AddCustomContext("patchgcl_version", PATCHGCL_VERSION_STRING);
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
