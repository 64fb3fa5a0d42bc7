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

void nvtx_push(const char *name)
{
    nvtxEventAttributes_t a = { 0 };
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.messageType = NVTX_MESSAGE_TYPE_ASCII;
    a.message.ascii = name;
    nvtxDomainRangePushEx(domain(), &a);
}

void nvtx_pop(void)
{
    nvtxDomainRangePop(domain());
}
#else
typedef int nvtx_disabled; /* ISO C forbids an empty translation unit */
#endif
