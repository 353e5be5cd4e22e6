// SPDX-License-Identifier: GPL-2.0
/*
 * staledrv — a use-after-free to find backwards (docs/walkthroughs/who-wrote-it.md).
 *
 * At load it allocates an object, frees it and keeps the pointer; the slab hands the same memory to a second
 * object, the victim. A work item then writes through the stale pointer into the victim, and the load finds
 * the victim corrupted and says so on the console. Under `klab replay`, watch the victim's word and
 * reverse-continue: gdb stops at the write, in staledrv_write_stale(), with the work item that made it on
 * the stack. Nothing waits in between: QEMU 7.2's reverse-continue can hang when it must replay through an
 * idle guest (icount's clock warps), so the write and the check come right after each other.
 *
 *   insmod staledrv.ko    # the console then shows "staledrv: victim ... corrupted"
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#define VICTIM_MAGIC 0x5eedf00dull

struct victim {
	u64 magic;
	u64 value;	/* the word the stale write lands on */
	u64 pad[6];
};

static struct victim *stale;	/* freed at load, still used: the bug */
static struct victim *victim;	/* the object that now owns the memory */

static noinline void staledrv_write_stale(u64 v)
{
	WRITE_ONCE(stale->value, v);
}

static void staledrv_writer(struct work_struct *w)
{
	staledrv_write_stale(0xdeadbeefull);
}

static noinline void staledrv_check(void)
{
	if (victim->magic != VICTIM_MAGIC || victim->value != 1)
		pr_info("staledrv: victim %px corrupted: value %llx, want 1\n", victim, victim->value);
	else
		pr_info("staledrv: victim %px intact\n", victim);
}

static DECLARE_WORK(writer_work, staledrv_writer);

static int __init staledrv_init(void)
{
	stale = kmalloc(sizeof(*stale), GFP_KERNEL);
	if (!stale)
		return -ENOMEM;
	kfree(stale);
	victim = kmalloc(sizeof(*victim), GFP_KERNEL);
	if (!victim)
		return -ENOMEM;
	victim->magic = VICTIM_MAGIC;
	victim->value = 1;
	pr_info("staledrv: victim %px, stale pointer %px%s\n", victim, stale,
		victim == stale ? " (the same memory)" : "");
	schedule_work(&writer_work);	/* another task writes: a kworker, as a real stale user would be */
	flush_work(&writer_work);
	staledrv_check();
	return 0;
}

static void __exit staledrv_exit(void)
{
	kfree(victim);
}

module_init(staledrv_init);
module_exit(staledrv_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klab lab: a stale pointer writes into another object");
