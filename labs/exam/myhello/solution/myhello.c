// SPDX-License-Identifier: GPL-2.0
/*
 * myhello — the exam task, solved: /dev/myhello, whose open() vmallocs 192 KiB so that
 * `break vmalloc` / `break hello_open` in gdb lead into the kernel's page-table code.
 *
 *   insmod hellodrv.ko; cat /dev/myhello
 *
 * A misc device: devtmpfs creates /dev/myhello by itself (the seed's `mknod /dev/myhello c 239 0` is not
 * needed). read() returns the string open() wrote into the vmalloc'ed buffer; write() logs what it got.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#define HELLO_VMALLOC_SIZE (64 * 1024 * 3)
#define HELLO_TEXT "1111111111111111111122222222\n"

/* What open() found in its vmalloc'ed buffer, handed to read() (one reader at a time is enough here). */
static char hello_seen[64];

static int hello_open(struct inode *inode, struct file *file)
{
	char *psz = vmalloc(HELLO_VMALLOC_SIZE);

	if (!psz)
		return -ENOMEM;
	strcpy(psz, HELLO_TEXT);
	pr_info("myhello open, psz=%px: %s", psz, psz);
	strscpy(hello_seen, psz, sizeof(hello_seen));
	vfree(psz);
	return 0;
}

static int hello_release(struct inode *inode, struct file *file)
{
	pr_info("myhello release\n");
	return 0;
}

static ssize_t hello_read(struct file *filp, char __user *buf, size_t count, loff_t *offp)
{
	return simple_read_from_buffer(buf, count, offp, hello_seen, strlen(hello_seen));
}

static ssize_t hello_write(struct file *filp, const char __user *buf, size_t count, loff_t *offp)
{
	char text[64];
	size_t n = min(count, sizeof(text) - 1);

	if (copy_from_user(text, buf, n))
		return -EFAULT;
	text[n] = '\0';
	pr_info("myhello write %zu bytes: %s\n", count, strim(text));
	return count;
}

static const struct file_operations hello_fops = {
	.owner = THIS_MODULE,
	.open = hello_open,
	.release = hello_release,
	.read = hello_read,
	.write = hello_write,
	.llseek = default_llseek,
};

static struct miscdevice hello_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "myhello",
	.fops = &hello_fops,
	.mode = 0666,
};

static int __init hello_init(void)
{
	int ret = misc_register(&hello_dev);

	if (ret)
		return ret;
	pr_info("myhello: /dev/myhello registered (misc minor %d)\n", hello_dev.minor);
	return 0;
}

static void __exit hello_exit(void)
{
	misc_deregister(&hello_dev);
	pr_info("myhello: unregistered\n");
}

module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("seed 002's /dev/myhello: vmalloc on open, for MMU debugging");
