// SPDX-License-Identifier: GPL-2.0
/*
 * softlockup — seed 001's soft lockup, made on purpose: a kernel thread locks a page-cache page
 * (lock_page) and then spins with preemption off, so the watchdog reports
 * "watchdog: BUG: soft lockup - CPU#N stuck for Ns!"; a second thread then blocks on the same page lock
 * in D state (folio_wait_bit_common). Triage it with klab dmesg, ps, bt, page and whatis.
 *
 *   insmod softlockup.ko [spin_seconds=60]      (boot with watchdog_thresh=1 for a report within seconds)
 *
 * The page is page 0 of a shmem file (shmem_file_setup), so it has a mapping, as seed 001's ext4 page had.
 * After spin_seconds the spinner unlocks the page, and the waiter gets it and ends.
 */
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>

static unsigned int spin_seconds = 60;
module_param(spin_seconds, uint, 0444);
MODULE_PARM_DESC(spin_seconds, "how long the spinner holds the page lock with preemption off");

static struct file *lab_file;
static struct page *lab_page;
static DECLARE_COMPLETION(page_locked);

static int spinner(void *unused)
{
	unsigned int ms;

	lock_page(lab_page);
	pr_info("softlockup: spinner pid %d locked page %px (pfn %#lx, mapping %px)\n", current->pid, lab_page,
		page_to_pfn(lab_page), lab_page->mapping);
	complete(&page_locked);
	preempt_disable();
	for (ms = 0; ms < spin_seconds * 1000; ms++)
		mdelay(1);   /* busy: no schedule(), so the watchdog thread of this CPU never runs */
	preempt_enable();
	unlock_page(lab_page);
	pr_info("softlockup: spinner unlocked the page\n");
	return 0;
}

static int waiter(void *unused)
{
	wait_for_completion(&page_locked);
	pr_info("softlockup: waiter pid %d waits for the page lock\n", current->pid);
	lock_page(lab_page);   /* D state until the spinner unlocks */
	unlock_page(lab_page);
	pr_info("softlockup: waiter got the page lock\n");
	return 0;
}

static int __init softlockup_init(void)
{
	struct task_struct *t;

	lab_file = shmem_file_setup("klab-softlockup", PAGE_SIZE, 0);
	if (IS_ERR(lab_file))
		return PTR_ERR(lab_file);
	lab_page = shmem_read_mapping_page(lab_file->f_mapping, 0);
	if (IS_ERR(lab_page)) {
		fput(lab_file);
		return PTR_ERR(lab_page);
	}
	t = kthread_run(spinner, NULL, "lab_spinner");
	if (IS_ERR(t))
		return PTR_ERR(t);
	t = kthread_run(waiter, NULL, "lab_waiter");
	return PTR_ERR_OR_ZERO(t);
}

/* No exit function: the module stays loaded (the threads and the page outlive insmod on purpose). */
module_init(softlockup_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klab lab: a soft lockup holding a page lock, and a task blocked on it");
