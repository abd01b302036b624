#ifndef COURIER_CZSTD_SHIM_H
#define COURIER_CZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>
// The trainer's tuned forms (ZDICT_optimizeTrainFromBuffer_cover) are in zdict.h's static part; libzstd.so exports
// them (Debian's 1.5.x).
#define ZDICT_STATIC_LINKING_ONLY
#include <zdict.h>
#endif
