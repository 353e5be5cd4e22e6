/* libFuzzer target: a dump someone sent. The bytes are an ELF core as klab's dump reader checks it
 * (klab_elfcore_check_buffer: headers, segments, the VMCOREINFO note), then the kernel's translation
 * registers from that note. Either is refused with a message or accepted; nothing is read out of bounds. */
#include "klab.h"
#include "physmem_internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct klab_elfcore_info info;
    char err[256];
    if (klab_elfcore_check_buffer(data, size, &info, err, sizeof err) != 0)
        return 0;
    struct klab_mmu_regs regs;
    struct klab_error e;
    (void)klab_mmu_regs_from_vmcoreinfo(info.vmcoreinfo, info.vmcoreinfo_len, info.arch, &regs, &e);
    return 0;
}
