// bptrace.so: records which functions of an executable run, in first-call order.
//
// LD_PRELOAD it with BPTRACE_FUNCS=FILE (function start addresses of the executable, one hex
// address a line, e.g. from `nm`) and BPTRACE_OUT=FILE. Before the executable's own constructors
// run, it makes the executable's text writable and puts an int3 on every listed function start;
// the SIGTRAP handler puts the original byte back, appends the address to BPTRACE_OUT (one hex
// line) and resumes the function. So every function costs one trap, the first time it runs, and
// none after: a whole start-up takes seconds even where ptrace single-stepping takes an hour.
//
// BPTRACE_DATA=LO-HI[,LO-HI...] (hex) also logs, as "d<address>", the first touch of every page
// of those read-only data ranges (page-protected until then): a page-granular view of which
// .rodata/.data.rel.ro a start-up reads. Leave out the first RELRO page (.tdata, .init_array):
// the loader reads it after this constructor. generate.py does not use it (see BENCHMARKS.md).
//
// Built and used by tools/startup-order/generate.py. Linux x86_64 only; a tracing aid, never
// linked into the server.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static uint64_t *addrs;
static uint8_t *orig;
static size_t count;
static int out_fd = -1;
static uint64_t data_lo[8], data_hi[8];
static int data_n;
static long page_size;

static void put_hex(char tag, uint64_t v) {
    char line[24], tmp[17];
    int n = 0, k = 0;
    do { tmp[n++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    if (tag) line[k++] = tag;
    while (n) line[k++] = tmp[--n];
    line[k++] = '\n';
    if (write(out_fd, line, k) < 0) {}
}

// A read-only data page touched for the first time: log the address, make the page readable.
static void on_segv(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    uint64_t a = (uint64_t)info->si_addr;
    for (int i = 0; i < data_n; i++) {
        if (a >= data_lo[i] && a < data_hi[i]) {
            put_hex('d', a);
            mprotect((void *)(a & ~(uint64_t)(page_size - 1)), page_size, PROT_READ);
            return;
        }
    }
    signal(sig, SIG_DFL);  // a real fault: crash as without us
}

static long find(uint64_t a) {
    size_t l = 0, r = count;
    while (l < r) {
        size_t m = (l + r) / 2;
        if (addrs[m] < a) l = m + 1; else r = m;
    }
    return (l < count && addrs[l] == a) ? (long)l : -1;
}

static void on_trap(int sig, siginfo_t *info, void *ctx) {
    (void)sig; (void)info;
    ucontext_t *uc = ctx;
    uint64_t ip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP] - 1;
    long i = find(ip);
    if (i < 0) {  // not ours: behave as if no handler were installed
        signal(SIGTRAP, SIG_DFL);
        return;
    }
    // Another thread may have restored it already; restoring twice is harmless, and only
    // the thread that finds the int3 still in place records the address.
    if (__atomic_exchange_n((uint8_t *)ip, orig[i], __ATOMIC_SEQ_CST) == 0xCC) put_hex(0, ip);
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)ip;
}

// Run `fn` on `sig`, with the signal's details, re-entrantly (a handler may fault again).
static void handle(int sig, void (*fn)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

__attribute__((constructor)) static void bptrace_init(void) {
    const char *funcs = getenv("BPTRACE_FUNCS"), *outp = getenv("BPTRACE_OUT");
    if (!funcs || !outp) return;
    FILE *f = fopen(funcs, "r");
    if (!f) { perror("bptrace: BPTRACE_FUNCS"); return; }
    size_t cap = 1 << 20;
    addrs = malloc(cap * sizeof *addrs);
    unsigned long a;
    while (fscanf(f, "%lx", &a) == 1) {
        if (count == cap) addrs = realloc(addrs, (cap *= 2) * sizeof *addrs);
        addrs[count++] = a;
    }
    fclose(f);
    // sort (the list is usually sorted already; insertion sort is fine then)
    for (size_t i = 1; i < count; i++) {
        uint64_t x = addrs[i];
        size_t j = i;
        while (j > 0 && addrs[j - 1] > x) { addrs[j] = addrs[j - 1]; j--; }
        addrs[j] = x;
    }
    out_fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (out_fd < 0) { perror("bptrace: BPTRACE_OUT"); return; }
    orig = malloc(count);
    handle(SIGTRAP, on_trap);
    long page = page_size = sysconf(_SC_PAGESIZE);
    uint64_t lo = addrs[0] & ~(uint64_t)(page - 1), hi = (addrs[count - 1] + page) & ~(uint64_t)(page - 1);
    if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE | PROT_EXEC)) { perror("bptrace: mprotect"); return; }
    for (size_t i = 0; i < count; i++) {
        orig[i] = *(uint8_t *)addrs[i];
        *(uint8_t *)addrs[i] = 0xCC;
    }
    // BPTRACE_DATA=LO-HI,...: read-only data ranges (hex) whose first touch per page is logged
    // as "d<address>" (a page-granular view: SIGSEGV, then the page is readable again).
    const char *data = getenv("BPTRACE_DATA");
    if (data) {
        handle(SIGSEGV, on_segv);
        unsigned long dl, dh;
        int used;
        while (data_n < 8 && sscanf(data, "%lx-%lx%n", &dl, &dh, &used) == 2) {
            data_lo[data_n] = dl & ~(uint64_t)(page - 1);
            data_hi[data_n] = (dh + page - 1) & ~(uint64_t)(page - 1);
            mprotect((void *)data_lo[data_n], data_hi[data_n] - data_lo[data_n], PROT_NONE);
            data_n++;
            data += used;
            if (*data == ',') data++;
        }
    }
}
