// The micro-benchmarks' tensors: made on one backend (at least one element each: the ops'
// pointers stay valid for empty shapes), freed with the set; an allocation failure aborts the
// benchmark with the backend's message.
#ifndef AMPBENCH_BENCH_TENSORS_H
#define AMPBENCH_BENCH_TENSORS_H

#include <cstdio>
#include <cstdlib>
#include <deque>

extern "C" {
#include "backend.h"
#include "error.h"
}

struct Tensors {
    backend *be;
    std::deque<amp_tensor> all; // (a deque: the pointers make() returns stay valid)
    amp_tensor *make(size_t n, amp_dtype dt, mem_category cat)
    {
        all.emplace_back();
        if (tensor_alloc(be, &all.back(), n ? n : 1, dt, cat) != AMP_OK) {
            std::fprintf(stderr, "%s\n", amp_last_error());
            std::abort();
        }
        return &all.back();
    }
    ~Tensors()
    {
        for (auto &t : all)
            tensor_free(be, &t);
    }
};

#endif
