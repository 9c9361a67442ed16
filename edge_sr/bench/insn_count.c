/*
 * A qemu TCG plugin that counts the guest instructions executed between two markers and, when the process exits,
 * writes the count to a file:  qemu-aarch64 -plugin insn_count.so,outfile=PATH ...
 *
 * The markers are close() calls on two invalid descriptors (COUNT_START, COUNT_STOP; they fail with EBADF and
 * change nothing), so a guest program counts exactly the code it brackets (edge_sr/runtime/litert_run.py: one invoke)
 * and not its start-up, which varies from run to run with address-space randomisation.
 *
 * edge_sr.bench.arm64 builds it with the host's C compiler (cc -shared -fPIC). It declares the few functions of qemu's
 * plugin API (include/qemu/qemu-plugin.h, API version 1) that it uses, and counts per executed translation block.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           void (*cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb));
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, void (*cb)(unsigned int vcpu, void *data),
                                          enum qemu_plugin_cb_flags flags, void *data);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t id, void *data), void *data);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id,
                                          void (*cb)(qemu_plugin_id_t id, unsigned int vcpu, int64_t num,
                                                     uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                                     uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8));

#define AARCH64_CLOSE 57
#define COUNT_START 0xDEED0001u /* as a C int: negative, never a descriptor */
#define COUNT_STOP 0xDEED0002u

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;
static int counting;
static char outfile[4096];

static void on_exec(unsigned int vcpu, void *data)
{
    (void)vcpu;
    if (__atomic_load_n(&counting, __ATOMIC_RELAXED)) {
        __atomic_fetch_add(&executed, (uint64_t)(uintptr_t)data, __ATOMIC_RELAXED);
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2, uint64_t a3,
                       uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id, (void)vcpu, (void)a2, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    if (num == AARCH64_CLOSE && (uint32_t)a1 == COUNT_START) {
        __atomic_store_n(&counting, 1, __ATOMIC_RELAXED);
    } else if (num == AARCH64_CLOSE && (uint32_t)a1 == COUNT_STOP) {
        __atomic_store_n(&counting, 0, __ATOMIC_RELAXED);
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(uintptr_t)qemu_plugin_tb_n_insns(tb));
}

static void write_count(qemu_plugin_id_t id, void *data)
{
    (void)id;
    (void)data;
    FILE *file = fopen(outfile, "w");
    if (file) {
        fprintf(file, "%llu\n", (unsigned long long)__atomic_load_n(&executed, __ATOMIC_RELAXED));
        fclose(file);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc,
                                                               char **argv)
{
    (void)info;
    if (argc != 1) {
        return 1;
    }
    const char *path = strncmp(argv[0], "outfile=", 8) == 0 ? argv[0] + 8 : argv[0];
    if (strlen(path) >= sizeof(outfile)) {
        return 1;
    }
    strcpy(outfile, path);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, write_count, NULL);
    return 0;
}
