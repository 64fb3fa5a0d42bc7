// Micro-benchmarks of the CPU reference's ops at the shapes of the network presets (seed,
// lenet5, resnet8): every conv geometry forward and backward, linear layers, batch norm, max
// pooling, at batch 32, 64 and 128, in FP32 and FP16 (the amp recipes' conv dtype). Rate
// counters give FLOP/s (conv, linear) and bytes/s (the rest). MICRO_THREADS sets the CPU
// backend's threads (default: all cores). The one C++ corner of the project.
#include <benchmark/benchmark.h>

#include "bench_tensors.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "backend.h"
#include "error.h"
#include "registry.h"
}

namespace {

// A deterministic pattern in the tensor's dtype, values in [-v, v].
void fill(backend *be, amp_tensor *t, float v)
{
    std::vector<unsigned char> host(t->numel * dtype_size(t->dtype));
    for (size_t i = 0; i < t->numel; i++) {
        const float x = v * (float)((int)(i * 2654435761u % 17) - 8) / 8.0f;
        uint32_t u;
        std::memcpy(&u, &x, 4);
        if (t->dtype == AMP_F32) {
            std::memcpy(&host[i * 4], &x, 4);
        } else if (t->dtype == AMP_BF16) {
            const uint16_t h = (uint16_t)(u >> 16);
            std::memcpy(&host[i * 2], &h, 2);
        } else { // FP16 of a value in [-1, 1]: sign, exponent 14 - (small), mantissa bits
            const uint16_t h = (uint16_t)(((u >> 16) & 0x8000u) | (0x3800u + ((u >> 13) & 0x3FFu)));
            std::memcpy(&host[i * 2], &h, 2);
        }
    }
    be->ops->upload(be->ctx, t->data, host.data(), host.size());
}

struct Conv {
    const char *name;
    uint32_t c_in, h, w, c_out, k, stride, pad;
    bool bias, dinp;
};
const Conv kConvs[] = {
    { "seed.conv", 1, 28, 28, 16, 3, 1, 1, true, false },
    { "lenet5.conv1", 1, 28, 28, 6, 5, 1, 2, true, false },
    { "lenet5.conv2", 6, 14, 14, 16, 5, 1, 0, true, true },
    { "resnet8.conv1", 1, 28, 28, 16, 3, 1, 1, false, false },
    { "resnet8.b1.conv", 16, 28, 28, 16, 3, 1, 1, false, true },
    { "resnet8.b2.conv1", 16, 28, 28, 32, 3, 2, 1, false, true },
    { "resnet8.b2.conv2", 32, 14, 14, 32, 3, 1, 1, false, true },
    { "resnet8.b2.proj", 16, 28, 28, 32, 1, 2, 0, false, true },
    { "resnet8.b3.conv1", 32, 14, 14, 64, 3, 2, 1, false, true },
    { "resnet8.b3.conv2", 64, 7, 7, 64, 3, 1, 1, false, true },
    { "resnet8.b3.proj", 32, 14, 14, 64, 1, 2, 0, false, true },
};

struct Linear {
    const char *name;
    uint32_t k, m;
};
const Linear kLinears[] = {
    { "seed.fc", 16 * 28 * 28, 10 }, { "lenet5.fc1", 400, 120 }, { "lenet5.fc2", 120, 84 },
    { "lenet5.fc3", 84, 10 },        { "resnet8.fc", 64, 10 },
};

struct Plane {
    const char *name;
    uint32_t c, h, w;
};
const Plane kNorms[] = { { "resnet8.16x28x28", 16, 28, 28 }, { "resnet8.32x14x14", 32, 14, 14 },
                         { "resnet8.64x7x7", 64, 7, 7 } };
const Plane kPools[] = { { "lenet5.pool1", 6, 28, 28 }, { "lenet5.pool2", 16, 10, 10 } };

const uint32_t kBatches[] = { 32, 64, 128 };
struct Dtype {
    const char *name;
    amp_dtype dt;
};
const Dtype kDtypes[] = { { "fp32", AMP_F32 }, { "fp16", AMP_F16 } };

void conv_fwd(benchmark::State &st, backend *be, const Conv &c, uint32_t n, amp_dtype dt)
{
    Tensors t{ be, {} };
    const conv_shape cs = { n, c.c_in, c.h, c.w, c.c_out, c.k, c.stride, c.pad };
    const size_t oh = conv_out_h(&cs), ow = conv_out_w(&cs);
    amp_tensor *x = t.make((size_t)n * c.c_in * c.h * c.w, dt, MEM_ACTIVATIONS);
    amp_tensor *w = t.make((size_t)c.c_out * c.c_in * c.k * c.k, dt, MEM_WEIGHTS);
    amp_tensor *b = c.bias ? t.make(c.c_out, dt, MEM_WEIGHTS) : nullptr;
    amp_tensor *y = t.make((size_t)n * c.c_out * oh * ow, dt, MEM_ACTIVATIONS);
    amp_tensor *ws = t.make(be->ops->conv2d_workspace(be->ctx, &cs, dt, AMP_MATH_F32) / 4 + 1, AMP_F32, MEM_WORKSPACE);
    fill(be, x, 1.0f);
    fill(be, w, 0.1f);
    if (b)
        fill(be, b, 0.1f);
    for (auto _ : st)
        be->ops->conv2d_forward(be->ctx, y, x, w, b, ws, &cs, AMP_MATH_F32, 0);
    const double flops = 2.0 * n * c.c_out * oh * ow * c.c_in * c.k * c.k;
    st.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

void conv_bwd(benchmark::State &st, backend *be, const Conv &c, uint32_t n, amp_dtype dt)
{
    Tensors t{ be, {} };
    const conv_shape cs = { n, c.c_in, c.h, c.w, c.c_out, c.k, c.stride, c.pad };
    const size_t oh = conv_out_h(&cs), ow = conv_out_w(&cs);
    amp_tensor *x = t.make((size_t)n * c.c_in * c.h * c.w, dt, MEM_ACTIVATIONS);
    amp_tensor *w = t.make((size_t)c.c_out * c.c_in * c.k * c.k, dt, MEM_WEIGHTS);
    amp_tensor *dw = t.make(w->numel, dt, MEM_WEIGHT_GRADS);
    amp_tensor *db = c.bias ? t.make(c.c_out, dt, MEM_WEIGHT_GRADS) : nullptr;
    amp_tensor *dy = t.make((size_t)n * c.c_out * oh * ow, dt, MEM_ACTIVATION_GRADS);
    amp_tensor *dx = c.dinp ? t.make(x->numel, dt, MEM_ACTIVATION_GRADS) : nullptr;
    amp_tensor *ws = t.make(be->ops->conv2d_workspace(be->ctx, &cs, dt, AMP_MATH_F32) / 4 + 1, AMP_F32, MEM_WORKSPACE);
    fill(be, x, 1.0f);
    fill(be, w, 0.1f);
    fill(be, dy, 0.01f);
    for (auto _ : st)
        be->ops->conv2d_backward(be->ctx, dw, db, dx, dy, x, w, ws, &cs, AMP_MATH_F32);
    const double flops = 2.0 * n * c.c_out * oh * ow * c.c_in * c.k * c.k * (c.dinp ? 2 : 1);
    st.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

void linear_fwd(benchmark::State &st, backend *be, const Linear &l, uint32_t n, amp_dtype dt)
{
    Tensors t{ be, {} };
    amp_tensor *x = t.make((size_t)n * l.k, dt, MEM_ACTIVATIONS);
    amp_tensor *w = t.make((size_t)l.m * l.k, dt, MEM_WEIGHTS);
    amp_tensor *b = t.make(l.m, dt, MEM_WEIGHTS);
    amp_tensor *y = t.make((size_t)n * l.m, dt, MEM_ACTIVATIONS);
    fill(be, x, 1.0f);
    fill(be, w, 0.01f);
    for (auto _ : st)
        be->ops->linear_forward(be->ctx, y, x, w, b, n, l.k, l.m, AMP_MATH_F32);
    st.counters["FLOP/s"] = benchmark::Counter(2.0 * n * l.k * l.m,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void linear_bwd(benchmark::State &st, backend *be, const Linear &l, uint32_t n, amp_dtype dt)
{
    Tensors t{ be, {} };
    amp_tensor *x = t.make((size_t)n * l.k, dt, MEM_ACTIVATIONS);
    amp_tensor *w = t.make((size_t)l.m * l.k, dt, MEM_WEIGHTS);
    amp_tensor *dy = t.make((size_t)n * l.m, dt, MEM_ACTIVATION_GRADS);
    amp_tensor *dx = t.make(x->numel, dt, MEM_ACTIVATION_GRADS);
    amp_tensor *dw = t.make(w->numel, dt, MEM_WEIGHT_GRADS);
    amp_tensor *db = t.make(l.m, dt, MEM_WEIGHT_GRADS);
    fill(be, x, 1.0f);
    fill(be, w, 0.01f);
    fill(be, dy, 0.01f);
    for (auto _ : st)
        be->ops->linear_backward(be->ctx, dx, dw, db, dy, x, w, n, l.k, l.m, AMP_MATH_F32, NULL);
    st.counters["FLOP/s"] = benchmark::Counter(4.0 * n * l.k * l.m,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

// Batch norm forward (training) and backward: bytes/s of the activations read and written.
void bn(benchmark::State &st, backend *be, const Plane &p, uint32_t n, amp_dtype dt, bool back)
{
    Tensors t{ be, {} };
    const size_t numel = (size_t)n * p.c * p.h * p.w;
    amp_tensor *x = t.make(numel, dt, MEM_ACTIVATIONS);
    amp_tensor *y = t.make(numel, dt, MEM_ACTIVATIONS);
    amp_tensor *g = t.make(p.c, AMP_F32, MEM_WEIGHTS), *b = t.make(p.c, AMP_F32, MEM_WEIGHTS);
    amp_tensor *rm = t.make(p.c, AMP_F32, MEM_WEIGHTS), *rv = t.make(p.c, AMP_F32, MEM_WEIGHTS);
    amp_tensor *sm = t.make(p.c, AMP_F32, MEM_ACTIVATIONS), *si = t.make(p.c, AMP_F32, MEM_ACTIVATIONS);
    amp_tensor *dg = t.make(p.c, AMP_F32, MEM_WEIGHT_GRADS), *dbt = t.make(p.c, AMP_F32, MEM_WEIGHT_GRADS);
    amp_tensor *dy = t.make(numel, dt, MEM_ACTIVATION_GRADS), *dx = t.make(numel, dt, MEM_ACTIVATION_GRADS);
    fill(be, x, 1.0f);
    fill(be, g, 1.0f);
    fill(be, dy, 0.01f);
    bn_state s = { g, b, rm, rv, sm, si, 0.1f, 1e-5f };
    be->ops->batchnorm_forward(be->ctx, y, x, &s, n, p.c, p.h * p.w, 1);
    for (auto _ : st) {
        if (back)
            be->ops->batchnorm_backward(be->ctx, dx, dg, dbt, dy, x, &s, n, p.c, p.h * p.w);
        else
            be->ops->batchnorm_forward(be->ctx, y, x, &s, n, p.c, p.h * p.w, 1);
    }
    st.counters["bytes/s"] = benchmark::Counter((double)numel * dtype_size(dt) * (back ? 3 : 2),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void pool(benchmark::State &st, backend *be, const Plane &p, uint32_t n, amp_dtype dt, bool back)
{
    Tensors t{ be, {} };
    const size_t numel = (size_t)n * p.c * p.h * p.w, onumel = (size_t)n * p.c * (p.h / 2) * (p.w / 2);
    amp_tensor *x = t.make(numel, dt, MEM_ACTIVATIONS), *y = t.make(onumel, dt, MEM_ACTIVATIONS);
    amp_tensor *dy = t.make(onumel, dt, MEM_ACTIVATION_GRADS), *dx = t.make(numel, dt, MEM_ACTIVATION_GRADS);
    fill(be, x, 1.0f);
    fill(be, dy, 0.01f);
    for (auto _ : st) {
        if (back)
            be->ops->maxpool_backward(be->ctx, dx, dy, x, n, p.c, p.h, p.w);
        else
            be->ops->maxpool_forward(be->ctx, y, x, n, p.c, p.h, p.w);
    }
    st.counters["bytes/s"] = benchmark::Counter((double)(numel * (back ? 2 : 1) + onumel) * dtype_size(dt),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

backend g_be;

template <typename F> void reg(const std::string &name, F f)
{
    benchmark::RegisterBenchmark(name.c_str(), f)->Unit(benchmark::kMicrosecond)->UseRealTime();
}

} // namespace

int main(int argc, char **argv)
{
    benchmark::Initialize(&argc, argv);
    backend_options opts = {};
    if (const char *th = std::getenv("MICRO_THREADS"))
        opts.threads = std::atoi(th);
    if (backend_open(&g_be, "cpu", &opts) != AMP_OK) {
        std::fprintf(stderr, "%s\n", amp_last_error());
        return 1;
    }
    backend *be = &g_be;
    for (const Dtype &d : kDtypes)
        for (uint32_t n : kBatches) {
            const std::string tail = "/" + std::string(d.name) + "/b" + std::to_string(n);
            for (const Conv &c : kConvs) {
                reg(std::string("conv_fwd/") + c.name + tail,
                    [be, &c, n, &d](benchmark::State &st) { conv_fwd(st, be, c, n, d.dt); });
                reg(std::string("conv_bwd/") + c.name + tail,
                    [be, &c, n, &d](benchmark::State &st) { conv_bwd(st, be, c, n, d.dt); });
            }
            for (const Linear &l : kLinears) {
                reg(std::string("linear_fwd/") + l.name + tail,
                    [be, &l, n, &d](benchmark::State &st) { linear_fwd(st, be, l, n, d.dt); });
                reg(std::string("linear_bwd/") + l.name + tail,
                    [be, &l, n, &d](benchmark::State &st) { linear_bwd(st, be, l, n, d.dt); });
            }
            for (const Plane &p : kNorms) {
                reg(std::string("bn_fwd/") + p.name + tail,
                    [be, &p, n, &d](benchmark::State &st) { bn(st, be, p, n, d.dt, false); });
                reg(std::string("bn_bwd/") + p.name + tail,
                    [be, &p, n, &d](benchmark::State &st) { bn(st, be, p, n, d.dt, true); });
            }
            for (const Plane &p : kPools) {
                reg(std::string("maxpool_fwd/") + p.name + tail,
                    [be, &p, n, &d](benchmark::State &st) { pool(st, be, p, n, d.dt, false); });
                reg(std::string("maxpool_bwd/") + p.name + tail,
                    [be, &p, n, &d](benchmark::State &st) { pool(st, be, p, n, d.dt, true); });
            }
        }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    backend_close(&g_be);
    return 0;
}
