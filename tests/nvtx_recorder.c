/* An NVTX injection library: what Nsight Systems sees of a run's NVTX ranges, recorded without
 * Nsight. Load it with NVTX_INJECTION64_PATH=/path/to/libnvtx_recorder.so: the NVTX3 headers
 * compiled into the program dlopen it at the first NVTX call and call InitializeInjectionNvtx2,
 * which points NVTX's push/pop, start/end and domain entries here.
 *
 *   NVTX_RECORDER_TRACE=FILE    one line per event, as it happens (tab-separated):
 *                                 push  TID DOMAIN PATH        (PATH: the thread's open ranges of
 *                                 pop   TID DOMAIN PATH         DOMAIN joined by '/', this last)
 *                                 start TID DOMAIN NAME ID     (start/end ranges: any thread)
 *                                 end   TID DOMAIN NAME ID
 *                               and the faults: pop-unmatched TID DOMAIN (a pop with no open
 *                               range), end-unknown TID ID, and at exit unclosed TID DOMAIN PATH
 *                               for every range still open
 *   NVTX_RECORDER_PROFILE=FILE  at exit, the time spent in each range ("-": stderr): one line per
 *                               path, in tree order, with calls, total and mean wall time and the
 *                               share of the time from the first NVTX call to exit
 *
 * Times are host wall clock (CLOCK_MONOTONIC) between push and pop: on the CUDA backend that is
 * launch time unless the range synchronises. Ranges nest per thread and per domain, as NVTX's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall(SYS_gettid), strdup */
#endif
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NVTX_NO_IMPL
#include <nvtx3/nvToolsExt.h> /* with NVTX_NO_IMPL: the types and the callback tables */

#define MAX_DEPTH 64
#define MAX_OPEN_SPANS 256 /* start/end ranges open at once */

/* A domain handle as the program sees it (nvtxDomainHandle_t points at one). */
struct domain {
    char name[64];
};

/* One node of the range tree: a path (parent + name within a domain), and its times. */
struct node {
    int parent; /* -1: a root */
    const struct domain *domain;
    char name[96];
    uint64_t calls, total_ns;
};

/* A thread's open ranges, per domain; threads are found by id at exit (unclosed ranges). */
struct frame {
    const struct domain *domain;
    int node;
    uint64_t t0;
};
struct thread_stack {
    long tid;
    int depth;
    struct frame frames[MAX_DEPTH];
    struct thread_stack *next;
};

/* An open start/end range. */
struct span {
    uint64_t id, t0;
    const struct domain *domain;
    int node;
};

static struct {
    pthread_mutex_t lock;
    FILE *trace;
    const char *profile_path;
    uint64_t t_init;
    struct node *nodes;
    size_t nnodes, nodes_cap;
    struct thread_stack *threads;
    struct span spans[MAX_OPEN_SPANS];
    size_t nspans;
    uint64_t next_id;
    struct domain default_domain;
    uint64_t faults;
} rec = { .lock = PTHREAD_MUTEX_INITIALIZER, .default_domain = { "(default)" } };

static __thread struct thread_stack *self;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const struct domain *domain_of(nvtxDomainHandle_t h)
{
    return h ? (const struct domain *)h : &rec.default_domain;
}

static const char *message_of(const nvtxEventAttributes_t *a)
{
    if (!a)
        return "(no attributes)";
    if (a->messageType == NVTX_MESSAGE_TYPE_ASCII && a->message.ascii)
        return a->message.ascii;
    if (a->messageType == NVTX_MESSAGE_TYPE_REGISTERED && a->message.registered)
        return (const char *)a->message.registered; /* our DomainRegisterStringA's copies */
    return "(unsupported message type)";
}

/* The node named `name` under `parent` (created on first use); lock held. -1: out of memory. */
static int node_of(int parent, const struct domain *d, const char *name)
{
    for (size_t i = 0; i < rec.nnodes; i++)
        if (rec.nodes[i].parent == parent && rec.nodes[i].domain == d &&
            strcmp(rec.nodes[i].name, name) == 0)
            return (int)i;
    if (rec.nnodes == rec.nodes_cap) {
        size_t cap = rec.nodes_cap ? 2 * rec.nodes_cap : 64;
        struct node *grown = realloc(rec.nodes, cap * sizeof *grown);
        if (!grown)
            return -1;
        rec.nodes = grown;
        rec.nodes_cap = cap;
    }
    struct node *n = &rec.nodes[rec.nnodes];
    *n = (struct node){ .parent = parent, .domain = d };
    snprintf(n->name, sizeof n->name, "%s", name);
    return (int)rec.nnodes++;
}

/* The path of node i ("epoch/step/forward"); lock held. */
static void path_of(char *buf, size_t len, int i)
{
    int chain[MAX_DEPTH + 1], n = 0;
    for (; i >= 0 && n <= MAX_DEPTH; i = rec.nodes[i].parent)
        chain[n++] = i;
    size_t used = 0;
    buf[0] = '\0';
    while (n-- > 0 && used < len)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "/" : "",
                                 rec.nodes[chain[n]].name);
}

static struct thread_stack *my_stack(void)
{
    if (!self) {
        self = calloc(1, sizeof *self);
        if (!self)
            return NULL;
        self->tid = (long)syscall(SYS_gettid);
        self->next = rec.threads;
        rec.threads = self;
    }
    return self;
}

/* The innermost open range of domain d on this thread (-1: none). */
static int innermost(const struct thread_stack *s, const struct domain *d)
{
    for (int k = s->depth; k-- > 0;)
        if (s->frames[k].domain == d)
            return k;
    return -1;
}

static void trace_line(const char *event, long tid, const struct domain *d, const char *what,
                       uint64_t id)
{
    if (!rec.trace)
        return;
    fprintf(rec.trace, "%s\t%ld\t%s\t%s", event, tid, d ? d->name : "-", what);
    if (id)
        fprintf(rec.trace, "\t%" PRIu64, id);
    fputc('\n', rec.trace);
}

static int push(nvtxDomainHandle_t h, const char *name)
{
    const uint64_t t = now_ns();
    const struct domain *d = domain_of(h);
    pthread_mutex_lock(&rec.lock);
    struct thread_stack *s = my_stack();
    int level = -1;
    if (s && s->depth < MAX_DEPTH) {
        int outer = innermost(s, d);
        int node = node_of(outer < 0 ? -1 : s->frames[outer].node, d, name);
        if (node >= 0) {
            level = 0;
            for (int k = 0; k < s->depth; k++)
                level += s->frames[k].domain == d;
            s->frames[s->depth++] = (struct frame){ .domain = d, .node = node, .t0 = t };
            char path[1024];
            path_of(path, sizeof path, node);
            trace_line("push", s->tid, d, path, 0);
        }
    }
    if (level < 0)
        rec.faults++;
    pthread_mutex_unlock(&rec.lock);
    return level;
}

static int pop(nvtxDomainHandle_t h)
{
    const uint64_t t = now_ns();
    const struct domain *d = domain_of(h);
    pthread_mutex_lock(&rec.lock);
    struct thread_stack *s = my_stack();
    int k = s ? innermost(s, d) : -1, level = -1;
    if (k < 0) {
        rec.faults++;
        trace_line("pop-unmatched", s ? s->tid : -1, d, "-", 0);
    } else {
        struct frame f = s->frames[k];
        memmove(&s->frames[k], &s->frames[k + 1], (size_t)(s->depth - k - 1) * sizeof f);
        s->depth--;
        rec.nodes[f.node].calls++;
        rec.nodes[f.node].total_ns += t - f.t0;
        level = 0;
        for (int j = 0; j < k; j++)
            level += s->frames[j].domain == d;
        char path[1024];
        path_of(path, sizeof path, f.node);
        trace_line("pop", s->tid, d, path, 0);
    }
    pthread_mutex_unlock(&rec.lock);
    return level;
}

/* A start/end range: a root node of its own (it need not nest). */
static nvtxRangeId_t start(nvtxDomainHandle_t h, const char *name)
{
    const uint64_t t = now_ns();
    const struct domain *d = domain_of(h);
    uint64_t id = 0;
    pthread_mutex_lock(&rec.lock);
    struct thread_stack *s = my_stack();
    int node = node_of(-1, d, name);
    if (node >= 0 && rec.nspans < MAX_OPEN_SPANS) {
        id = ++rec.next_id;
        rec.spans[rec.nspans++] = (struct span){ .id = id, .t0 = t, .domain = d, .node = node };
        trace_line("start", s ? s->tid : -1, d, name, id);
    } else {
        rec.faults++;
    }
    pthread_mutex_unlock(&rec.lock);
    return id;
}

static void end(nvtxDomainHandle_t h, nvtxRangeId_t id)
{
    const uint64_t t = now_ns();
    (void)h;
    pthread_mutex_lock(&rec.lock);
    struct thread_stack *s = my_stack();
    size_t i = 0;
    while (i < rec.nspans && rec.spans[i].id != id)
        i++;
    if (i == rec.nspans) {
        rec.faults++;
        trace_line("end-unknown", s ? s->tid : -1, NULL, "-", id);
    } else {
        struct span sp = rec.spans[i];
        rec.spans[i] = rec.spans[--rec.nspans];
        rec.nodes[sp.node].calls++;
        rec.nodes[sp.node].total_ns += t - sp.t0;
        trace_line("end", s ? s->tid : -1, sp.domain, rec.nodes[sp.node].name, id);
    }
    pthread_mutex_unlock(&rec.lock);
}

/* ---- the NVTX entry points ---- */

static int NVTX_API range_push_ex(const nvtxEventAttributes_t *a)
{
    return push(NULL, message_of(a));
}
static int NVTX_API range_push_a(const char *message)
{
    return push(NULL, message ? message : "(null)");
}
static int NVTX_API range_pop(void)
{
    return pop(NULL);
}
static nvtxRangeId_t NVTX_API range_start_ex(const nvtxEventAttributes_t *a)
{
    return start(NULL, message_of(a));
}
static nvtxRangeId_t NVTX_API range_start_a(const char *message)
{
    return start(NULL, message ? message : "(null)");
}
static void NVTX_API range_end(nvtxRangeId_t id)
{
    end(NULL, id);
}
static int NVTX_API domain_range_push_ex(nvtxDomainHandle_t h, const nvtxEventAttributes_t *a)
{
    return push(h, message_of(a));
}
static int NVTX_API domain_range_pop(nvtxDomainHandle_t h)
{
    return pop(h);
}
static nvtxRangeId_t NVTX_API domain_range_start_ex(nvtxDomainHandle_t h,
                                                    const nvtxEventAttributes_t *a)
{
    return start(h, message_of(a));
}
static void NVTX_API domain_range_end(nvtxDomainHandle_t h, nvtxRangeId_t id)
{
    end(h, id);
}
static nvtxDomainHandle_t NVTX_API domain_create_a(const char *name)
{
    struct domain *d = calloc(1, sizeof *d);
    if (d)
        snprintf(d->name, sizeof d->name, "%s", name ? name : "(null)");
    return (nvtxDomainHandle_t)d;
}
/* Domains stay allocated: nodes keep pointing at them until the profile is written. */
static void NVTX_API domain_destroy(nvtxDomainHandle_t h)
{
    (void)h;
}
static nvtxStringHandle_t NVTX_API domain_register_string_a(nvtxDomainHandle_t h, const char *s)
{
    (void)h;
    return (nvtxStringHandle_t)strdup(s ? s : "(null)");
}

/* ---- at exit: unclosed ranges, the profile ---- */

/* Node i and its subtree (children were created after their parents, in first-seen order). */
static void write_node(FILE *f, size_t i, int depth, double life_ms)
{
    const struct node *n = &rec.nodes[i];
    const int named_domain = depth == 0 && n->domain != &rec.default_domain;
    char label[160];
    if (snprintf(label, sizeof label, "%*s%s%s%s", 2 * depth, "",
                 named_domain ? n->domain->name : "", named_domain ? "@" : "", n->name) < 0)
        return;
    const double total = (double)n->total_ns / 1e6;
    fprintf(f, "%-44s %8" PRIu64 " %12.3f %12.1f %7.1f\n", label, n->calls, total,
            n->calls ? 1e3 * total / (double)n->calls : 0.0,
            life_ms > 0 ? 100.0 * total / life_ms : 0.0);
    for (size_t c = i + 1; c < rec.nnodes; c++)
        if (rec.nodes[c].parent == (int)i)
            write_node(f, c, depth + 1, life_ms);
}

static void write_profile(FILE *f)
{
    const double life_ms = (double)(now_ns() - rec.t_init) / 1e6;
    fprintf(f, "NVTX profile (tests/nvtx_recorder.c): host wall time per range over %.1f ms\n",
            life_ms);
    fprintf(f, "%-44s %8s %12s %12s %7s\n", "range (domain@root, then nested)", "calls",
            "total ms", "mean us", "% wall");
    for (size_t r = 0; r < rec.nnodes; r++)
        if (rec.nodes[r].parent == -1)
            write_node(f, r, 0, life_ms);
    if (rec.faults)
        fprintf(f, "warning: %" PRIu64 " unmatched or unrecorded NVTX events (see the trace)\n",
                rec.faults);
}

static void at_exit(void)
{
    pthread_mutex_lock(&rec.lock);
    for (const struct thread_stack *s = rec.threads; s; s = s->next)
        for (int k = 0; k < s->depth; k++) {
            char path[1024];
            path_of(path, sizeof path, s->frames[k].node);
            trace_line("unclosed", s->tid, s->frames[k].domain, path, 0);
            rec.faults++;
        }
    for (size_t i = 0; i < rec.nspans; i++) {
        trace_line("unclosed", -1, rec.spans[i].domain, rec.nodes[rec.spans[i].node].name,
                   rec.spans[i].id);
        rec.faults++;
    }
    if (rec.trace)
        fclose(rec.trace);
    rec.trace = NULL;
    if (rec.profile_path) {
        FILE *f = strcmp(rec.profile_path, "-") == 0 ? stderr : fopen(rec.profile_path, "w");
        if (!f) {
            fprintf(stderr, "nvtx_recorder: NVTX_RECORDER_PROFILE: cannot write %s\n",
                    rec.profile_path);
        } else {
            write_profile(f);
            if (f != stderr)
                fclose(f);
        }
    }
    pthread_mutex_unlock(&rec.lock);
}

/* Points entry `id` of a module's table at fn (when the table has it: ids run from 1 to the
 * size GetModuleFunctionTable reports). */
static void set_entry(NvtxFunctionTable table, unsigned int size, unsigned int id,
                      NvtxFunctionPointer fn)
{
    if (table && id <= size && table[id])
        *table[id] = fn;
}

#define FN(f) ((NvtxFunctionPointer)(f))

/* NVTX's entry point: returns 1 when the recorder is attached, 0 to leave NVTX a no-op. */
__attribute__((visibility("default"))) int InitializeInjectionNvtx2(NvtxGetExportTableFunc_t get)
{
    const NvtxExportTableCallbacks *etbl =
        get ? (const NvtxExportTableCallbacks *)get(NVTX_ETID_CALLBACKS) : NULL;
    if (!etbl || etbl->struct_size < sizeof *etbl || !etbl->GetModuleFunctionTable)
        return 0;
    NvtxFunctionTable core = NULL, core2 = NULL;
    unsigned int ncore = 0, ncore2 = 0;
    if (!etbl->GetModuleFunctionTable(NVTX_CB_MODULE_CORE, &core, &ncore) ||
        !etbl->GetModuleFunctionTable(NVTX_CB_MODULE_CORE2, &core2, &ncore2))
        return 0;
    const char *trace = getenv("NVTX_RECORDER_TRACE");
    if (trace && *trace && !(rec.trace = fopen(trace, "w"))) {
        fprintf(stderr, "nvtx_recorder: NVTX_RECORDER_TRACE: cannot write %s\n", trace);
        return 0;
    }
    const char *profile = getenv("NVTX_RECORDER_PROFILE");
    rec.profile_path = profile && *profile ? profile : NULL;
    rec.t_init = now_ns();
    const struct {
        int core2; /* 0: NVTX_CB_MODULE_CORE, 1: NVTX_CB_MODULE_CORE2 */
        unsigned int id;
        NvtxFunctionPointer fn;
    } entries[] = {
        { 0, NVTX_CBID_CORE_RangePushEx, FN(range_push_ex) },
        { 0, NVTX_CBID_CORE_RangePushA, FN(range_push_a) },
        { 0, NVTX_CBID_CORE_RangePop, FN(range_pop) },
        { 0, NVTX_CBID_CORE_RangeStartEx, FN(range_start_ex) },
        { 0, NVTX_CBID_CORE_RangeStartA, FN(range_start_a) },
        { 0, NVTX_CBID_CORE_RangeEnd, FN(range_end) },
        { 1, NVTX_CBID_CORE2_DomainRangePushEx, FN(domain_range_push_ex) },
        { 1, NVTX_CBID_CORE2_DomainRangePop, FN(domain_range_pop) },
        { 1, NVTX_CBID_CORE2_DomainRangeStartEx, FN(domain_range_start_ex) },
        { 1, NVTX_CBID_CORE2_DomainRangeEnd, FN(domain_range_end) },
        { 1, NVTX_CBID_CORE2_DomainCreateA, FN(domain_create_a) },
        { 1, NVTX_CBID_CORE2_DomainDestroy, FN(domain_destroy) },
        { 1, NVTX_CBID_CORE2_DomainRegisterStringA, FN(domain_register_string_a) },
    };
    for (size_t i = 0; i < sizeof entries / sizeof *entries; i++)
        set_entry(entries[i].core2 ? core2 : core, entries[i].core2 ? ncore2 : ncore, entries[i].id,
                  entries[i].fn);
    atexit(at_exit);
    return 1;
}
