/* libFuzzer target: a dump someone sent. The bytes are an ELF core or a kdump-compressed dump (plain or
 * flattened) as klab's dump reader checks it (klab_dump_from_buffer: headers, segments or bitmap and page
 * descriptors, the notes), then the kernel's translation registers from VMCOREINFO, then reads of the first
 * pages (decompressed through zlib, LZO or snappy). Anything is refused with a message or accepted; nothing
 * is read out of bounds. */
#include "klab.h"
#include "physmem_internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct klab_elfcore_info info;
    char err[256];
    struct klab_physmem *m = klab_dump_from_buffer(data, size, &info, err, sizeof err);
    if (!m)
        return 0;
    struct klab_mmu_regs regs;
    struct klab_error e;
    (void)klab_mmu_regs_from_vmcoreinfo(info.vmcoreinfo, info.vmcoreinfo_len, info.arch, &regs, &e);
    unsigned char buf[64];
    for (uint64_t pa = 0; pa < 16 * 4096; pa += 4096 - 32)
        (void)klab_physmem_read(m, pa, buf, sizeof buf);
    uint64_t v;
    (void)klab_elfcore_register(m, 0, "rip", &v, &e);
    klab_physmem_close(m);
    return 0;
}
