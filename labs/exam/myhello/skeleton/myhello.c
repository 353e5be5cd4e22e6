// SPDX-License-Identifier: GPL-2.0
/* The exam task: /dev/myhello. See TASK.md. */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/vmalloc.h>

static int hello_open(struct inode *inode, struct file *file)
{
	/* TODO: vmalloc 192 KiB, write the string, print it, keep a copy, vfree */
	return 0;
}

static ssize_t hello_read(struct file *filp, char __user *buf, size_t count, loff_t *offp)
{
	/* TODO: return the string kept by open() */
	return 0;
}

static const struct file_operations hello_fops = {
	.owner = THIS_MODULE,
	.open = hello_open,
	.read = hello_read,
};

static struct miscdevice hello_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "myhello",
	.fops = &hello_fops,
	.mode = 0666,
};

module_misc_device(hello_dev);
MODULE_LICENSE("GPL");
