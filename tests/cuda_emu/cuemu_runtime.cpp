/* cuemu: the CUDA runtime on the CPU (see cuemu.h for what the emulation is and is not).
 *
 * Device memory: each cudaMalloc is its own mapping, filled with 0xFF bytes (NaN in every float
 * format: reading memory nobody wrote shows up), ending at a guard page, and PROT_NONE except
 * while emulated device work runs. A fault says whether a kernel or the host made it.
 *
 * Streams: work (launches, async copies and memsets, event records, library calls) waits in one
 * queue, in issue order, until the host synchronizes (stream, event, device, a synchronous copy
 * or memset, cudaFree). So a result read before the synchronization is stale, and a pinned
 * buffer rewritten before the copy that reads it ran is caught, as on a GPU. Copies from
 * pageable memory take their source at the call and copies to pageable memory complete before
 * the call returns, as the CUDA runtime documents.
 *
 * Graphs: a capturing stream records its work; cudaGraphLaunch queues the recorded work again.
 * The calls that are illegal while a thread captures in global or thread-local mode (allocation,
 * synchronization, synchronous copies) fail with cudaErrorStreamCaptureUnsupported and
 * invalidate the capture, whose end then fails with cudaErrorStreamCaptureInvalidated.
 *
 * Kernels: every block of a grid in turn (forwards, then backwards at the next launch), every
 * thread of a block a fiber (a small x86-64 context switch; ucontext elsewhere). A pass runs the runnable fibers in alternating order until each
 * waits at a barrier or ends; a warp whose lanes all wait at a shuffle exchanges and resumes; a
 * block whose live threads all wait at __syncthreads resumes; anything else is a deadlock, which
 * is reported with the kernel, block and thread states. */
#include "cuemu.h"
#include "cuemu_internal.h"

#include <cuda_profiler_api.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

uint3 cuemu_thread_idx, cuemu_block_idx;
dim3 cuemu_block_dim, cuemu_grid_dim;

/* The handle types are opaque pointers in the CUDA headers; these are what they point to here. */
struct CUstream_st {
    bool capturing = false;
    bool invalidated = false;
    cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
    std::vector<std::function<void()>> captured;
};
struct CUevent_st {
    unsigned int flags = 0;
    bool recorded = false;  /* cudaEventRecord was called */
    bool done = false;      /* and the queue reached it */
    bool in_capture = false; /* recorded into a graph: no timestamp of its own */
    double ms = 0.0;
};
struct CUgraph_st {
    std::vector<std::function<void()>> nodes;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> nodes;
};

namespace {

[[noreturn]] __attribute__((format(printf, 1, 2))) void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cuemu: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

double now_ms()
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

thread_local cudaError_t last_error = cudaSuccess;

cudaError_t fail(cudaError_t e)
{
    last_error = e;
    return e;
}

/* ---- memory ---- */

const size_t page = (size_t)sysconf(_SC_PAGESIZE);

size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

struct allocation {
    char *map;       /* the mapping: open_len bytes, then a guard page */
    size_t open_len; /* what device work may touch */
    size_t size;     /* what was asked for */
};

std::map<uintptr_t, allocation> device;  /* by the pointer handed out */
std::map<uintptr_t, size_t> pinned;      /* cudaMallocHost: pointer -> size */
size_t device_bytes;
int open_depth; /* device memory is accessible while > 0 */
const size_t total_memory = (size_t)16 << 30;
const size_t context_bytes = (size_t)300 << 20; /* what a CUDA context takes on a real device */

void protect_all(int prot)
{
    for (auto &kv : device)
        if (mprotect(kv.second.map, kv.second.open_len, prot) != 0)
            fatal("mprotect: %s", strerror(errno));
}

/* Device memory accessible for the scope's duration. */
struct device_scope {
    device_scope()
    {
        if (open_depth++ == 0)
            protect_all(PROT_READ | PROT_WRITE);
    }
    ~device_scope()
    {
        if (--open_depth == 0)
            protect_all(PROT_NONE);
    }
};

/* The allocation in `m` containing p (nullptr if none). */
template <typename M> typename M::const_iterator containing(const M &m, const void *p)
{
    auto it = m.upper_bound((uintptr_t)p);
    if (it == m.begin())
        return m.end();
    return --it;
}

const allocation *device_allocation(const void *p)
{
    auto it = containing(device, p);
    if (it == device.end() || (uintptr_t)p >= it->first + it->second.size)
        return nullptr;
    return &it->second;
}

bool is_pinned(const void *p, size_t bytes)
{
    auto it = containing(pinned, p);
    return it != pinned.end() && (uintptr_t)p + bytes <= it->first + it->second;
}

/* ---- streams, the queue, capture ---- */

CUstream_st legacy_stream;
std::deque<std::function<void()>> queue;
thread_local CUstream_st *capture_of_thread; /* the stream this thread is capturing, if any */

CUstream_st *stream_of(cudaStream_t s)
{
    return s ? s : &legacy_stream;
}

/* Runs the queued work (the host synchronizes). */
void drain()
{
    if (queue.empty())
        return;
    device_scope open;
    while (!queue.empty()) {
        std::function<void()> work = std::move(queue.front());
        queue.pop_front();
        work();
    }
}

/* A call that a thread must not make while it captures (global or thread-local mode): it fails
 * and the capture is invalidated. */
bool forbidden_in_capture()
{
    CUstream_st *s = capture_of_thread;
    if (!s || s->mode == cudaStreamCaptureModeRelaxed)
        return false;
    s->invalidated = true;
    last_error = cudaErrorStreamCaptureUnsupported;
    return true;
}

/* ---- fibers ---- */

enum fiber_state { F_READY, F_BLOCK_BARRIER, F_WARP_BARRIER, F_DONE };

struct fiber {
    void *sp;
    uint3 tid;
    fiber_state state;
    int predicate;   /* __syncthreads_or: in, then the block's OR */
    uint64_t value;  /* a shuffle: the lane's value in, the partner's out */
    int lane_mask;
#if !defined(__x86_64__)
    ucontext_t uc;
#endif
};

const size_t stack_size = (size_t)128 << 10;

struct block_state {
    std::vector<fiber> fibers;
    std::vector<char *> stacks;
    fiber *current = nullptr;
    void *scheduler_sp = nullptr;
#if !defined(__x86_64__)
    ucontext_t scheduler_uc;
#endif
    const std::function<void()> *thread = nullptr;
    const char *kernel = nullptr; /* the kernel running (nullptr: none) */
} blk;

#if defined(__x86_64__)
/* Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores
 * the stack pointer in *save and continues on the stack `to` saved the same way. */
extern "C" void cuemu_switch(void **save, void *to);
asm(R"(
    .text
    .globl cuemu_switch
    .type cuemu_switch, @function
cuemu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cuemu_switch, .-cuemu_switch
)");
#endif

[[noreturn]] void fiber_main()
{
    (*blk.thread)();
    blk.current->state = F_DONE;
#if defined(__x86_64__)
    cuemu_switch(&blk.current->sp, blk.scheduler_sp);
#else
    swapcontext(&blk.current->uc, &blk.scheduler_uc);
#endif
    fatal("a finished thread was resumed");
}

void fiber_init(fiber &f, char *stack)
{
#if defined(__x86_64__)
    /* What cuemu_switch pops: control words, six registers, then the return address, placed so
     * that fiber_main starts with the stack alignment of a called function. */
    char *ret = stack + stack_size - 16;
    char *sp = ret - 56;
    memset(sp, 0, 56);
    unsigned int mxcsr;
    unsigned short fcw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fcw));
    memcpy(sp, &mxcsr, 4);
    memcpy(sp + 4, &fcw, 2);
    void (*entry)() = fiber_main;
    memcpy(ret, &entry, sizeof entry);
    f.sp = sp;
#else
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = stack;
    f.uc.uc_stack.ss_size = stack_size;
    f.uc.uc_link = nullptr;
    makecontext(&f.uc, (void (*)())fiber_main, 0);
#endif
}

void resume(fiber &f)
{
    blk.current = &f;
    cuemu_thread_idx = f.tid;
#if defined(__x86_64__)
    cuemu_switch(&blk.scheduler_sp, f.sp);
#else
    swapcontext(&blk.scheduler_uc, &f.uc);
#endif
    blk.current = nullptr;
}

/* The fiber making a barrier or shuffle call. */
fiber *calling_fiber(const char *what)
{
    if (!blk.current)
        fatal("%s outside a kernel", what);
    return blk.current;
}

/* From fiber f: wait in state st until the scheduler resumes it. */
void wait_as(fiber *f, fiber_state st)
{
    f->state = st;
#if defined(__x86_64__)
    cuemu_switch(&f->sp, blk.scheduler_sp);
#else
    swapcontext(&f->uc, &blk.scheduler_uc);
#endif
    cuemu_thread_idx = f->tid;
}

void ensure_stacks(size_t n)
{
    while (blk.stacks.size() < n) {
        /* A guard page below each stack catches an overflow. */
        void *m = mmap(nullptr, stack_size + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            fatal("out of memory for thread stacks");
        mprotect(m, page, PROT_NONE);
        blk.stacks.push_back((char *)m + page);
    }
}

[[noreturn]] void deadlock(unsigned n)
{
    unsigned barrier = 0, warp = 0, done = 0;
    for (unsigned i = 0; i < n; i++) {
        const fiber_state st = blk.fibers[i].state;
        barrier += st == F_BLOCK_BARRIER;
        warp += st == F_WARP_BARRIER;
        done += st == F_DONE;
    }
    fatal("kernel %s, block (%u, %u, %u): deadlock: of %u threads, %u wait at __syncthreads, "
          "%u at a warp shuffle, %u have exited (a barrier in divergent code)",
          blk.kernel, cuemu_block_idx.x, cuemu_block_idx.y, cuemu_block_idx.z, n, barrier, warp,
          done);
}

/* Releases every warp whose lanes all wait at a shuffle; returns whether any was. */
bool release_warps(unsigned n)
{
    bool released = false;
    for (unsigned w = 0; w * 32 < n; w++) {
        fiber *lane = &blk.fibers[w * 32];
        const unsigned lanes = n - w * 32 < 32 ? n - w * 32 : 32;
        unsigned waiting = 0, exited = 0;
        for (unsigned l = 0; l < lanes; l++) {
            waiting += lane[l].state == F_WARP_BARRIER;
            exited += lane[l].state == F_DONE;
        }
        if (waiting == 0 || waiting + exited < lanes)
            continue;
        if (lanes < 32 || exited)
            fatal("kernel %s, block (%u, %u, %u), warp %u: a full-mask shuffle with %u of its 32 "
                  "lanes %s",
                  blk.kernel, cuemu_block_idx.x, cuemu_block_idx.y, cuemu_block_idx.z, w,
                  lanes < 32 ? 32 - lanes : exited,
                  lanes < 32 ? "missing (a partial warp)" : "exited");
        uint64_t v[32];
        for (unsigned l = 0; l < 32; l++)
            v[l] = lane[l].value;
        for (unsigned l = 0; l < 32; l++) {
            lane[l].value = v[(l ^ (unsigned)lane[l].lane_mask) & 31u];
            lane[l].state = F_READY;
        }
        released = true;
    }
    return released;
}

void run_block(unsigned n)
{
    ensure_stacks(n);
    blk.fibers.resize(n);
    const dim3 b = cuemu_block_dim;
    for (unsigned i = 0; i < n; i++) {
        fiber &f = blk.fibers[i];
        f.tid = uint3{ i % b.x, i / b.x % b.y, i / (b.x * b.y) };
        f.state = F_READY;
        fiber_init(f, blk.stacks[i]);
    }
    for (unsigned pass = 0;; pass++) {
        for (unsigned k = 0; k < n; k++) {
            fiber &f = blk.fibers[pass & 1 ? n - 1 - k : k];
            if (f.state == F_READY)
                resume(f);
        }
        unsigned done = 0, at_barrier = 0;
        int any = 0;
        for (unsigned i = 0; i < n; i++) {
            done += blk.fibers[i].state == F_DONE;
            if (blk.fibers[i].state == F_BLOCK_BARRIER) {
                at_barrier++;
                any |= blk.fibers[i].predicate;
            }
        }
        if (done == n)
            return;
        if (release_warps(n))
            continue;
        if (at_barrier != n - done)
            deadlock(n);
        if (done)
            fatal("kernel %s, block (%u, %u, %u): __syncthreads reached by %u threads while %u "
                  "have exited",
                  blk.kernel, cuemu_block_idx.x, cuemu_block_idx.y, cuemu_block_idx.z,
                  at_barrier, done);
        for (unsigned i = 0; i < n; i++) {
            blk.fibers[i].predicate = any;
            blk.fibers[i].state = F_READY;
        }
    }
}

void run_grid(dim3 grid, dim3 block, const char *name, const std::function<void()> &thread)
{
    blk.thread = &thread;
    blk.kernel = name;
    cuemu_grid_dim = grid;
    cuemu_block_dim = block;
    const unsigned n = block.x * block.y * block.z;
    /* Blocks run concurrently on a GPU, in no set order: every other launch runs them backwards,
     * so a result that depends on the order of blocks changes from launch to launch. */
    static unsigned long long launches;
    const bool backwards = launches++ & 1;
    const unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
    for (unsigned long long k = 0; k < blocks; k++) {
        const unsigned long long i = backwards ? blocks - 1 - k : k;
        cuemu_block_idx = uint3{ (unsigned)(i % grid.x), (unsigned)(i / grid.x % grid.y),
                                 (unsigned)(i / ((unsigned long long)grid.x * grid.y)) };
        run_block(n);
    }
    blk.kernel = nullptr;
    blk.thread = nullptr;
}

/* ---- faults ---- */

void on_segv(int sig, siginfo_t *si, void *)
{
    const void *addr = si->si_addr;
    const allocation *a = nullptr;
    for (auto &kv : device)
        if ((const char *)addr >= kv.second.map &&
            (const char *)addr < kv.second.map + kv.second.open_len + page)
            a = &kv.second;
    if (blk.kernel)
        fprintf(stderr,
                "cuemu: kernel %s, block (%u, %u, %u), thread (%u, %u, %u): invalid access at %p%s\n",
                blk.kernel, cuemu_block_idx.x, cuemu_block_idx.y, cuemu_block_idx.z,
                cuemu_thread_idx.x, cuemu_thread_idx.y, cuemu_thread_idx.z, addr,
                a ? " (past the end of a device allocation)" : "");
    else if (a && open_depth == 0)
        fprintf(stderr, "cuemu: the host touched device memory at %p (an allocation of %zu bytes)\n",
                addr, a->size);
    else if (open_depth)
        fprintf(stderr, "cuemu: invalid access at %p by device work (a copy or a library call)\n",
                addr);
    signal(sig, SIG_DFL); /* the faulting instruction runs again and ends the process */
}

void install_fault_handler()
{
    static bool done;
    if (done)
        return;
    done = true;
    static char alt[1 << 16];
    stack_t ss = {};
    ss.ss_sp = alt;
    ss.ss_size = sizeof alt;
    sigaltstack(&ss, nullptr);
    struct sigaction sa = {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
}

/* What a pointer is for the copy checks. */
enum where { HOST, DEVICE, BAD };

where classify(const void *p, size_t bytes)
{
    if (const allocation *a = device_allocation(p)) {
        auto it = containing(device, p);
        return (uintptr_t)p + bytes <= it->first + a->size ? DEVICE : BAD;
    }
    return HOST;
}

bool copy_ok(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{
    const where d = classify(dst, bytes), s = classify(src, bytes);
    if (d == BAD || s == BAD || (bytes && (!dst || !src)))
        return false;
    switch (kind) {
    case cudaMemcpyHostToDevice: return s == HOST && d == DEVICE;
    case cudaMemcpyDeviceToHost: return s == DEVICE && d == HOST;
    case cudaMemcpyDeviceToDevice: return s == DEVICE && d == DEVICE;
    case cudaMemcpyHostToHost: return s == HOST && d == HOST;
    case cudaMemcpyDefault: return true;
    }
    return false;
}

} // namespace

/* ---- the interface of cuemu_internal.h and cuemu.h ---- */

cudaError_t cuemu_enqueue(cudaStream_t s, std::function<void()> work)
{
    CUstream_st *st = stream_of(s);
    if (st->capturing) {
        if (st->invalidated)
            return cudaErrorStreamCaptureInvalidated;
        st->captured.push_back(std::move(work));
        return cudaSuccess;
    }
    if (st == &legacy_stream && capture_of_thread &&
        capture_of_thread->mode != cudaStreamCaptureModeRelaxed) {
        capture_of_thread->invalidated = true; /* the legacy stream syncs with the capture */
        return cudaErrorStreamCaptureImplicit;
    }
    queue.push_back(std::move(work));
    return cudaSuccess;
}

bool cuemu_is_device(const void *p, size_t bytes)
{
    return p && classify(p, bytes) == DEVICE;
}

bool cuemu_capturing(void)
{
    return capture_of_thread != nullptr;
}

void cuemu_invalidate_capture(void)
{
    if (capture_of_thread)
        capture_of_thread->invalidated = true;
}

void cuemu_syncthreads(void)
{
    fiber *f = calling_fiber("__syncthreads");
    f->predicate = 0;
    wait_as(f, F_BLOCK_BARRIER);
}

int cuemu_syncthreads_or(int predicate)
{
    fiber *f = calling_fiber("__syncthreads_or");
    f->predicate = predicate != 0;
    wait_as(f, F_BLOCK_BARRIER);
    return f->predicate;
}

uint64_t cuemu_shfl_xor(unsigned int mask, uint64_t bits, int lane_mask, int width)
{
    if (mask != 0xFFFFFFFFu || width != 32)
        fatal("kernel %s: only full-warp shuffles are emulated (mask %#x, width %d)",
              blk.kernel ? blk.kernel : "?", mask, width);
    fiber *f = calling_fiber("a warp shuffle");
    f->value = bits;
    f->lane_mask = lane_mask;
    wait_as(f, F_WARP_BARRIER);
    return f->value;
}

void cuemu_launch_grid(cudaStream_t s, dim3 grid, dim3 block, const char *name,
                       std::function<void()> thread)
{
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 ||
        grid.z == 0 || grid.x > 0x7FFFFFFFu || grid.y > 65535 || grid.z > 65535) {
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    install_fault_handler();
    const cudaError_t e =
        cuemu_enqueue(s, [grid, block, name, thread]() { run_grid(grid, block, name, thread); });
    if (e != cudaSuccess)
        fail(e);
}

/* ---- the CUDA runtime API ---- */

extern "C" {

cudaError_t cudaGetLastError(void)
{
    const cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void)
{
    return last_error;
}

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    default: return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInsufficientDriver:
        return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorStreamCaptureUnsupported:
        return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
        return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    default: return "unknown error";
    }
}

/* CUEMU_DRIVER_VERSION / CUEMU_RUNTIME_VERSION (e.g. 12080, 13000): the versions a driver and
 * a runtime report (the headers' CUDART_VERSION by default), so that a machine whose driver is
 * older than the runtime carried in the binary can be played. */
static int version_knob(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : CUDART_VERSION;
}

cudaError_t cudaGetDeviceCount(int *count)
{
    const char *n = getenv("CUEMU_DEVICES");
    if (n && strcmp(n, "0") == 0) {
        *count = 0;
        return fail(cudaErrorNoDevice);
    }
    if (version_knob("CUEMU_DRIVER_VERSION") < version_knob("CUEMU_RUNTIME_VERSION")) {
        *count = 0; /* as a CUDA runtime newer than the driver answers */
        return fail(cudaErrorInsufficientDriver);
    }
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int dev)
{
    return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDevice(int *dev)
{
    *dev = 0;
    return cudaSuccess;
}

/* The emulated device's SM count: 4 by default (small grids keep the emulation fast), 132 with
 * CUEMU_PROFILE=h200 (an H200 SXM: grid sizes and split-K factors that depend on the SM count
 * take the real device's values). */
static bool h200_profile()
{
    const char *p = getenv("CUEMU_PROFILE");
    return p && strcmp(p, "h200") == 0;
}

static int sm_count()
{
    return h200_profile() ? 132 : 4;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int dev)
{
    if (dev != 0)
        return fail(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "%s",
             h200_profile() ? "cuemu (CPU emulation of an sm_90 device, H200 profile)"
                            : "cuemu (CPU emulation of an sm_90 device)");
    prop->totalGlobalMem = total_memory;
    prop->sharedMemPerBlock = 48 << 10;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 0x7FFFFFFF;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = sm_count();
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int dev)
{
    if (dev != 0)
        return fail(cudaErrorInvalidDevice);
    switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = sm_count(); return cudaSuccess;
    case cudaDevAttrClockRate: *value = 1000000; return cudaSuccess; /* kHz */
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    default: return fail(cudaErrorInvalidValue);
    }
}

cudaError_t cudaDriverGetVersion(int *v)
{
    *v = version_knob("CUEMU_DRIVER_VERSION");
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
    *v = version_knob("CUEMU_RUNTIME_VERSION");
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    *total_bytes = total_memory;
    *free_bytes = total_memory - context_bytes - device_bytes;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **ptr, size_t size)
{
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    install_fault_handler();
    *ptr = nullptr;
    if (size == 0)
        return cudaSuccess;
    if (size > total_memory - context_bytes - device_bytes)
        return fail(cudaErrorMemoryAllocation);
    allocation a;
    a.size = size;
    a.open_len = round_up(size, page);
    void *m = mmap(nullptr, a.open_len + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return fail(cudaErrorMemoryAllocation);
    a.map = (char *)m;
    memset(a.map, 0xFF, a.open_len);
    mprotect(a.map, a.open_len, open_depth ? PROT_READ | PROT_WRITE : PROT_NONE);
    mprotect(a.map + a.open_len, page, PROT_NONE);
    /* 256-byte aligned, as cudaMalloc guarantees, and as close to the guard page as that allows. */
    char *p = a.map + a.open_len - round_up(size, 256);
    device[(uintptr_t)p] = a;
    device_bytes += a.open_len;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr)
{
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    if (!ptr)
        return cudaSuccess;
    auto it = device.find((uintptr_t)ptr);
    if (it == device.end())
        return fail(cudaErrorInvalidValue);
    drain(); /* cudaFree waits for the device */
    device_bytes -= it->second.open_len;
    munmap(it->second.map, it->second.open_len + page);
    device.erase(it);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **ptr, size_t size)
{
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    *ptr = aligned_alloc(4096, round_up(size ? size : 1, 4096));
    if (!*ptr)
        return fail(cudaErrorMemoryAllocation);
    pinned[(uintptr_t)*ptr] = size;
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **ptr, size_t size, unsigned int)
{
    return cudaMallocHost(ptr, size);
}

cudaError_t cudaFreeHost(void *ptr)
{
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    if (!ptr)
        return cudaSuccess;
    if (!pinned.erase((uintptr_t)ptr))
        return fail(cudaErrorInvalidValue);
    drain();
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind)
{
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    if (!copy_ok(dst, src, bytes, kind))
        return fail(cudaErrorInvalidValue);
    drain();
    device_scope open;
    memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                            cudaStream_t s)
{
    if (!copy_ok(dst, src, bytes, kind))
        return fail(cudaErrorInvalidValue);
    if (bytes == 0)
        return cudaSuccess;
    const where d = classify(dst, bytes), from = classify(src, bytes);
    if (!stream_of(s)->capturing) {
        if (from == HOST && !is_pinned(src, bytes)) { /* pageable source: taken now */
            std::vector<char> copy((const char *)src, (const char *)src + bytes);
            const cudaError_t e =
                cuemu_enqueue(s, [dst, copy]() { memcpy(dst, copy.data(), copy.size()); });
            return e == cudaSuccess ? e : fail(e);
        }
        if (d == HOST && !is_pinned(dst, bytes)) { /* pageable destination: done on return */
            drain();
            device_scope open;
            memcpy(dst, src, bytes);
            return cudaSuccess;
        }
    }
    const cudaError_t e = cuemu_enqueue(s, [dst, src, bytes]() { memmove(dst, src, bytes); });
    return e == cudaSuccess ? e : fail(e);
}

cudaError_t cudaMemset(void *ptr, int value, size_t bytes)
{
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    if (bytes && !cuemu_is_device(ptr, bytes))
        return fail(cudaErrorInvalidValue);
    drain();
    device_scope open;
    memset(ptr, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t s)
{
    if (bytes && !cuemu_is_device(ptr, bytes))
        return fail(cudaErrorInvalidValue);
    const cudaError_t e =
        cuemu_enqueue(s, [ptr, value, bytes]() { memset(ptr, value, bytes); });
    return e == cudaSuccess ? e : fail(e);
}

cudaError_t cudaStreamCreate(cudaStream_t *s)
{
    *s = new CUstream_st;
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int)
{
    return cudaStreamCreate(s);
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    if (!s)
        return fail(cudaErrorInvalidResourceHandle);
    drain();
    if (capture_of_thread == s)
        capture_of_thread = nullptr;
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t)
{
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    drain();
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    drain();
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode)
{
    if (!s)
        return fail(cudaErrorStreamCaptureUnsupported); /* the legacy stream cannot capture */
    if (s->capturing || capture_of_thread)
        return fail(cudaErrorIllegalState);
    s->capturing = true;
    s->invalidated = false;
    s->mode = mode;
    s->captured.clear();
    capture_of_thread = s;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph)
{
    *graph = nullptr;
    if (!s || !s->capturing)
        return fail(cudaErrorIllegalState);
    s->capturing = false;
    if (capture_of_thread == s)
        capture_of_thread = nullptr;
    if (s->invalidated) {
        s->captured.clear();
        return fail(cudaErrorStreamCaptureInvalidated);
    }
    *graph = new CUgraph_st{ std::move(s->captured) };
    s->captured.clear();
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long)
{
    if (!graph)
        return fail(cudaErrorInvalidValue);
    *exec = new CUgraphExec_st{ graph->nodes };
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s)
{
    if (!exec)
        return fail(cudaErrorInvalidValue);
    for (const auto &node : exec->nodes) {
        const cudaError_t e = cuemu_enqueue(s, node);
        if (e != cudaSuccess)
            return fail(e);
    }
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    delete exec;
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags)
{
    *e = new CUevent_st;
    (*e)->flags = flags;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    return cudaEventCreateWithFlags(e, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    if (!e)
        return fail(cudaErrorInvalidResourceHandle);
    if (e->recorded && !e->done && !capture_of_thread)
        drain(); /* a queued record still refers to it */
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    if (!e)
        return fail(cudaErrorInvalidResourceHandle);
    e->recorded = true;
    e->done = false;
    e->in_capture = stream_of(s)->capturing;
    if (e->in_capture) /* a capture event orders work inside the graph; it keeps no time */
        return cudaSuccess;
    const cudaError_t r = cuemu_enqueue(s, [e]() {
        e->ms = now_ms();
        e->done = true;
    });
    return r == cudaSuccess ? r : fail(r);
}

cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    if (!e)
        return fail(cudaErrorInvalidResourceHandle);
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    if (e->in_capture)
        return fail(cudaErrorStreamCaptureUnsupported);
    drain();
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e)
{
    if (!e)
        return fail(cudaErrorInvalidResourceHandle);
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    drain(); /* the emulated device finishes when asked */
    return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    if (!start || !end || (start->flags & cudaEventDisableTiming) ||
        (end->flags & cudaEventDisableTiming) || !start->recorded || !end->recorded ||
        start->in_capture || end->in_capture)
        return fail(cudaErrorInvalidResourceHandle);
    if (!start->done || !end->done)
        return fail(cudaErrorNotReady);
    *ms = (float)(end->ms - start->ms);
    return cudaSuccess;
}

cudaError_t cudaProfilerStart(void)
{
    return cudaSuccess;
}

cudaError_t cudaProfilerStop(void)
{
    return cudaSuccess;
}

} // extern "C"
