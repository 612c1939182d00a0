/* entropy.c: an LD_PRELOAD library that makes one process's randomness a fixed function of
 * the request, for reproducible builds of componentize-py's pre-initialised CPython
 * (scripts/reproducible-python/build-policy.sh; the causes are in
 * ../shared/notes/reproducible-python.md).
 *
 * getrandom(), getentropy() and syscall(SYS_getrandom, ...) fill their buffer from an
 * xorshift64* generator whose state depends only on the request's length and ENTROPY_KEY
 * (default 0): the same request always gets the same bytes, whichever thread asks and in
 * whatever order, so thread scheduling cannot change the output. Any other syscall() goes to
 * the real one.
 *
 *   cc -O2 -shared -fPIC -o entropy.so entropy.c -ldl
 *   LD_PRELOAD=./entropy.so componentize-py ...        (never for anything that needs secrets)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>

static uint64_t key(void) {
    const char *k = getenv("ENTROPY_KEY");
    return k ? strtoull(k, NULL, 0) : 0;
}

static void fixed_bytes(void *out, size_t len) {
    /* xorshift64* (Vigna); the state must not be zero. */
    uint64_t s = (key() ^ ((uint64_t)len * 0xD1B54A32D192ED03ull)) | 1;
    unsigned char *p = out;
    size_t i = 0;
    while (i < len) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        uint64_t word = s * 0x2545F4914F6CDD1Dull;
        size_t n = len - i < sizeof word ? len - i : sizeof word;
        memcpy(p + i, &word, n);
        i += n;
    }
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags) {
    (void)flags;
    fixed_bytes(buf, len);
    return (ssize_t)len;
}

int getentropy(void *buf, size_t len) {
    if (len > 256) {
        errno = EIO;
        return -1;
    }
    fixed_bytes(buf, len);
    return 0;
}

/* Rust's std and some C libraries call the getrandom syscall through syscall(2). */
long syscall(long number, ...) {
    va_list ap;
    long a[6];
    va_start(ap, number);
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_getrandom) {
        fixed_bytes((void *)a[0], (size_t)a[1]);
        return a[1];
    }
    static long (*real)(long, ...);
    if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
