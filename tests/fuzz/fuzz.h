/*
 * fuzz: what every fuzz target in this folder shares. Each fuzz_<target>.c
 * defines LLVMFuzzerTestOneInput(); it is linked either with libFuzzer (a
 * COFFER_FUZZ build, which generates inputs) or with fuzz_main.c (every
 * build, which replays the seed corpus as a unit test). A target must accept
 * any input without crashing, leaking or hitting undefined behaviour; it
 * calls abort() when it finds an invariant broken.
 */
#ifndef COFFER_FUZZ_H
#define COFFER_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Runs one input. Always returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
