// Micro-benchmarks of every backend op (Google Benchmark): conv forward/backward, linear
// forward/backward, casts with counting, unscale + inf/NaN check, the SGD update and FP8
// quantization (delayed, current, MX; training steps, with their statistics), for each backend
// and precision, at the seed network's shapes and a larger one. Registered at run time;
// rate counters give FLOP/s and bytes/s. The one C++ corner of the project.
#include <benchmark/benchmark.h>

#include "bench_tensors.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "backend.h"
#include "registry.h"
#include "error.h"
#include "scaler.h"
#include "fp8_scaling.h"
}

namespace {

struct Shape {
    const char *name;
    uint32_t batch, channels;
};
const Shape kShapes[] = { { "seed", 32, 16 }, { "large", 256, 64 } };
constexpr uint32_t kH = 28, kW = 28, kClasses = 10;

struct Precision {
    const char *name;
    amp_dtype dtype;
    amp_math math;
};
const Precision kPrecisions[] = { { "fp32", AMP_F32, AMP_MATH_F32 },
                                  { "tf32", AMP_F32, AMP_MATH_TF32 },
                                  { "fp16", AMP_F16, AMP_MATH_F32 },
                                  { "bf16", AMP_BF16, AMP_MATH_F32 } };

void fill(backend *be, amp_tensor *t, float v)
{
    // Upload a constant pattern in the tensor's dtype (bits of v rounded on the host).
    std::vector<unsigned char> host(t->numel * dtype_size(t->dtype));
    for (size_t i = 0; i < t->numel; i++) {
        const float x = v * (float)((i % 7) + 1) / 7.0f;
        if (t->dtype == AMP_F32) {
            std::memcpy(&host[i * 4], &x, 4);
        } else {
            uint32_t u;
            std::memcpy(&u, &x, 4);
            const uint16_t h = (uint16_t)(u >> 16); // a valid bf16/fp16 bit pattern either way
            std::memcpy(&host[i * 2], &h, 2);
        }
    }
    be->ops->upload(be->ctx, t->data, host.data(), host.size());
}

using Body = void (*)(benchmark::State &, backend *, const Shape &, const Precision &);

// Times each call: with device events where the backend has them (UseManualTime: the GPU's
// asynchronous ops are measured on the device), else by the host clock around the call.
// A backend error (the CUDA backend's are sticky and surface at the timer) fails the run.
bool g_failed = false;

template <typename Call> void timed(benchmark::State &st, backend *be, Call call)
{
    for (auto _ : st) {
        if (be->ops->timer) {
            float ms = 0.0f;
            be->ops->timer(be->ctx, 1, nullptr);
            call();
            if (be->ops->timer(be->ctx, 0, &ms) != AMP_OK) {
                st.SkipWithError(amp_last_error());
                g_failed = true;
                break;
            }
            st.SetIterationTime(ms / 1e3);
        } else {
            call();
        }
    }
}

void conv_forward(benchmark::State &st, backend *be, const Shape &s, const Precision &p)
{
    Tensors t{ be, {} };
    const conv_shape cs = { s.batch, 1, kH, kW, s.channels, 3, 1, 1 }; // 3x3, stride 1, padding 1
    amp_tensor *x = t.make((size_t)s.batch * kH * kW, p.dtype, MEM_ACTIVATIONS);
    amp_tensor *w = t.make((size_t)s.channels * 9, p.dtype, MEM_WEIGHTS);
    amp_tensor *b = t.make(s.channels, p.dtype, MEM_WEIGHTS);
    amp_tensor *y = t.make((size_t)s.batch * s.channels * kH * kW, p.dtype, MEM_ACTIVATIONS);
    amp_tensor *ws = t.make(be->ops->conv2d_workspace(be->ctx, &cs, p.dtype, p.math) / 4 + 1, AMP_F32, MEM_WORKSPACE);
    fill(be, x, 0.5f);
    fill(be, w, 0.1f);
    timed(st, be, [&] { be->ops->conv2d_forward(be->ctx, y, x, w, b, ws, &cs, p.math, 0); });
    const double flops = 2.0 * s.batch * s.channels * kH * kW * 9;
    st.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["bytes/s"] = benchmark::Counter(
        (double)(x->numel + y->numel) * dtype_size(p.dtype), benchmark::Counter::kIsIterationInvariantRate);
}

void conv_backward(benchmark::State &st, backend *be, const Shape &s, const Precision &p)
{
    Tensors t{ be, {} };
    const conv_shape cs = { s.batch, 1, kH, kW, s.channels, 3, 1, 1 }; // 3x3, stride 1, padding 1
    amp_tensor *x = t.make((size_t)s.batch * kH * kW, p.dtype, MEM_ACTIVATIONS);
    amp_tensor *w = t.make((size_t)s.channels * 9, p.dtype, MEM_WEIGHTS);
    amp_tensor *dw = t.make((size_t)s.channels * 9, p.dtype, MEM_WEIGHT_GRADS);
    amp_tensor *db = t.make(s.channels, p.dtype, MEM_WEIGHT_GRADS);
    amp_tensor *dy = t.make((size_t)s.batch * s.channels * kH * kW, p.dtype, MEM_ACTIVATION_GRADS);
    amp_tensor *ws = t.make(be->ops->conv2d_workspace(be->ctx, &cs, p.dtype, p.math) / 4 + 1, AMP_F32, MEM_WORKSPACE);
    fill(be, x, 0.5f);
    fill(be, dy, 0.01f);
    timed(st, be, [&] { be->ops->conv2d_backward(be->ctx, dw, db, nullptr, dy, x, w, ws, &cs, p.math); });
    const double flops = 2.0 * s.batch * s.channels * kH * kW * 9;
    st.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["bytes/s"] = benchmark::Counter(
        (double)(x->numel + dy->numel) * dtype_size(p.dtype), benchmark::Counter::kIsIterationInvariantRate);
}

void linear_forward(benchmark::State &st, backend *be, const Shape &s, const Precision &p)
{
    Tensors t{ be, {} };
    const uint32_t k = s.channels * kH * kW;
    amp_tensor *x = t.make((size_t)s.batch * k, p.dtype, MEM_ACTIVATIONS);
    amp_tensor *w = t.make((size_t)kClasses * k, p.dtype, MEM_WEIGHTS);
    amp_tensor *b = t.make(kClasses, p.dtype, MEM_WEIGHTS);
    amp_tensor *y = t.make((size_t)s.batch * kClasses, p.dtype, MEM_ACTIVATIONS);
    fill(be, x, 0.5f);
    fill(be, w, 0.01f);
    timed(st, be, [&] { be->ops->linear_forward(be->ctx, y, x, w, b, s.batch, k, kClasses, p.math); });
    st.counters["FLOP/s"] = benchmark::Counter(2.0 * s.batch * k * kClasses,
                                               benchmark::Counter::kIsIterationInvariantRate);
    st.counters["bytes/s"] = benchmark::Counter((double)(x->numel + w->numel) * dtype_size(p.dtype),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void linear_backward(benchmark::State &st, backend *be, const Shape &s, const Precision &p)
{
    Tensors t{ be, {} };
    const uint32_t k = s.channels * kH * kW;
    amp_tensor *x = t.make((size_t)s.batch * k, p.dtype, MEM_ACTIVATIONS);
    amp_tensor *w = t.make((size_t)kClasses * k, p.dtype, MEM_WEIGHTS);
    amp_tensor *dy = t.make((size_t)s.batch * kClasses, p.dtype, MEM_ACTIVATION_GRADS);
    amp_tensor *dx = t.make((size_t)s.batch * k, p.dtype, MEM_ACTIVATION_GRADS);
    amp_tensor *dw = t.make((size_t)kClasses * k, p.dtype, MEM_WEIGHT_GRADS);
    amp_tensor *db = t.make(kClasses, p.dtype, MEM_WEIGHT_GRADS);
    fill(be, x, 0.5f);
    fill(be, w, 0.01f);
    fill(be, dy, 0.01f);
    timed(st, be, [&] { be->ops->linear_backward(be->ctx, dx, dw, db, dy, x, w, s.batch, k, kClasses, p.math, NULL); });
    st.counters["FLOP/s"] = benchmark::Counter(4.0 * s.batch * k * kClasses,
                                               benchmark::Counter::kIsIterationInvariantRate);
    st.counters["bytes/s"] = benchmark::Counter(
        (double)(2 * x->numel + 2 * w->numel) * dtype_size(p.dtype), benchmark::Counter::kIsIterationInvariantRate);
}

// Elementwise ops on the FC weights' size (the largest parameter tensor).
void cast(benchmark::State &st, backend *be, const Shape &s, const Precision &p)
{
    Tensors t{ be, {} };
    const size_t n = (size_t)s.channels * kH * kW * kClasses;
    amp_tensor *src = t.make(n, AMP_F32, MEM_WEIGHTS);
    amp_tensor *dst = t.make(n, p.dtype, MEM_WEIGHT_COPIES);
    fill(be, src, 0.01f);
    timed(st, be, [&] { be->ops->cast(be->ctx, dst, src); });
    st.counters["bytes/s"] = benchmark::Counter((double)n * (4 + dtype_size(p.dtype)),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void unscale(benchmark::State &st, backend *be, const Shape &s, const Precision &p)
{
    Tensors t{ be, {} };
    const size_t n = (size_t)s.channels * kH * kW * kClasses;
    amp_tensor *g = t.make(n, p.dtype, MEM_WEIGHT_GRADS);
    amp_tensor *sc = t.make(sizeof(loss_scaler) / 4, AMP_I32, MEM_OPTIMIZER);
    const loss_scaler one = scaler_make(1.0f, 1, 2000, 0.0f, 0.0f); // x1: values stay put
    be->ops->upload(be->ctx, sc->data, &one, sizeof one);
    fill(be, g, 0.01f);
    timed(st, be, [&] { be->ops->unscale(be->ctx, g, sc); });
    st.counters["bytes/s"] = benchmark::Counter(2.0 * n * dtype_size(p.dtype),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void sgd(benchmark::State &st, backend *be, const Shape &s, const Precision &p)
{
    Tensors t{ be, {} };
    const size_t n = (size_t)s.channels * kH * kW * kClasses;
    // Master-weight update (FP32 weights, momentum and gradients) writing the low-precision copy.
    amp_tensor *w = t.make(n, AMP_F32, MEM_WEIGHTS);
    amp_tensor *v = t.make(n, AMP_F32, MEM_OPTIMIZER);
    amp_tensor *g = t.make(n, AMP_F32, MEM_WEIGHT_GRADS);
    amp_tensor *copy = p.dtype == AMP_F32 ? nullptr : t.make(n, p.dtype, MEM_WEIGHT_COPIES);
    fill(be, g, 1e-6f);
    timed(st, be, [&] { be->ops->sgd_momentum(be->ctx, w, v, copy, g, nullptr, 0.01f, 0.9f); });
    st.counters["bytes/s"] = benchmark::Counter(
        (double)n * (4 * 5 + (copy ? dtype_size(p.dtype) : 0)), benchmark::Counter::kIsIterationInvariantRate);
}

// FP8 quantization of the conv output gradient in a training step, as the FP8 recipes quantize
// it: read in the precision's dtype, E5M2 (MX: E4M3, blocks along each sample), the statistics
// and, for delayed scaling, the amax history updated (a history of 16 steps).
void fp8_quantize(benchmark::State &st, backend *be, const Shape &s, const Precision &p,
                  fp8_scaling scaling)
{
    Tensors t{ be, {} };
    const size_t n = (size_t)s.batch * s.channels * kH * kW;
    const uint32_t history_len = 16;
    amp_tensor *src = t.make(n, p.dtype, MEM_ACTIVATION_GRADS);
    amp_tensor *dst = t.make(n, AMP_F32, MEM_ACTIVATION_GRADS);
    amp_tensor *state = t.make((sizeof(fp8_tensor_state) + 3) / 4, AMP_I32, MEM_OPTIMIZER);
    amp_tensor *history = t.make(history_len, AMP_F32, MEM_OPTIMIZER);
    const fp8_tensor_state init = fp8_state_make(scaling == FP8_SCALING_MX ? FP8_E4M3 : FP8_E5M2, history_len,
                                                 MX_SCALE_RCEIL, s.channels * kH * kW);
    be->ops->upload(be->ctx, state->data, &init, sizeof init);
    const std::vector<float> zeros(history_len, 0.0f);
    be->ops->upload(be->ctx, history->data, zeros.data(), zeros.size() * sizeof(float));
    fill(be, src, 0.01f);
    timed(st, be, [&] {
        be->ops->fp8_quantize(be->ctx, dst, src, scaling,
                              state, scaling == FP8_SCALING_DELAYED ? history : nullptr, 1);
    });
    st.counters["bytes/s"] = benchmark::Counter((double)n * (dtype_size(p.dtype) + 4),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void fp8_delayed(benchmark::State &st, backend *be, const Shape &s, const Precision &p)
{
    fp8_quantize(st, be, s, p, FP8_SCALING_DELAYED);
}

void fp8_current(benchmark::State &st, backend *be, const Shape &s, const Precision &p)
{
    fp8_quantize(st, be, s, p, FP8_SCALING_CURRENT);
}

void mxfp8(benchmark::State &st, backend *be, const Shape &s, const Precision &p)
{
    fp8_quantize(st, be, s, p, FP8_SCALING_MX);
}

struct Op {
    const char *name;
    Body body;
    bool all_precisions;  // false: FP32 math vs TF32 makes no difference (elementwise)
};
const Op kOps[] = { { "conv_forward", conv_forward, true },   { "conv_backward", conv_backward, true },
                    { "linear_forward", linear_forward, true }, { "linear_backward", linear_backward, true },
                    { "cast", cast, false },                  { "unscale", unscale, false },
                    { "sgd", sgd, false },                    { "fp8_delayed", fp8_delayed, false },
                    { "fp8_current", fp8_current, false },    { "mxfp8", mxfp8, false } };

} // namespace

int main(int argc, char **argv)
{
    benchmark::Initialize(&argc, argv);
    static std::vector<backend> backends;
    backends.reserve(2);
    for (const char *name : { "cpu", "cuda" }) {
        backend be;
        backend_options opts = {};
        if (backend_open(&be, name, &opts) == AMP_OK)
            backends.push_back(be);
    }
    for (backend &be : backends)
        for (const Op &op : kOps)
            for (const Precision &p : kPrecisions) {
                if (!op.all_precisions && p.math == AMP_MATH_TF32)
                    continue;
                if (!op.all_precisions && p.dtype == AMP_F32 && std::strcmp(op.name, "sgd") != 0)
                    continue;
                if (op.body == fp8_delayed || op.body == fp8_current || op.body == mxfp8) {
                    if (!be.ops->fp8_quantize || p.dtype == AMP_F16)
                        continue; // (the FP8 recipes' other activations are BF16)
                }
                for (const Shape &s : kShapes) {
                    const std::string name = std::string(be.ops->name) + "/" + op.name + "/" +
                                             p.name + "/" + s.name;
                    auto *b = benchmark::RegisterBenchmark(
                        name.c_str(), [&be, &op, &p, &s](benchmark::State &st) { op.body(st, &be, s, p); });
                    b->Unit(benchmark::kMicrosecond);
                    if (be.ops->timer)
                        b->UseManualTime();
                    else
                        b->UseRealTime();
                }
            }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    for (backend &be : backends)
        backend_close(&be);
    return g_failed ? 1 : 0;
}
