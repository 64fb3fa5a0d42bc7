/* NVTX ranges in the "ampbench" domain (compiled when the NVTX3 headers are found). */
#include "nvtx.h"

#ifdef AMPBENCH_HAVE_NVTX
#include <nvtx3/nvToolsExt.h>

/* The domain, created on first use (one owner: this file). */
static nvtxDomainHandle_t domain(void)
{
    static nvtxDomainHandle_t d;
    if (!d)
        d = nvtxDomainCreateA("ampbench");
    return d;
}

static nvtxEventAttributes_t attributes(const char *name)
{
    nvtxEventAttributes_t a = { 0 };
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.messageType = NVTX_MESSAGE_TYPE_ASCII;
    a.message.ascii = name;
    return a;
}

void nvtx_push(const char *name)
{
    nvtxEventAttributes_t a = attributes(name);
    nvtxDomainRangePushEx(domain(), &a);
}

void nvtx_pop(void)
{
    nvtxDomainRangePop(domain());
}

uint64_t nvtx_range_start(const char *name)
{
    nvtxEventAttributes_t a = attributes(name);
    return nvtxDomainRangeStartEx(domain(), &a);
}

void nvtx_range_end(uint64_t id)
{
    nvtxDomainRangeEnd(domain(), id);
}
#else
typedef int nvtx_disabled; /* ISO C forbids an empty translation unit */
#endif
