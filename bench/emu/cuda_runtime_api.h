// Stand-in for <cuda_runtime_api.h> (what C programs such as bench/scan_bench.c include): the emulator's runtime.
#include "cuda_runtime.h"
