// SPDX-License-Identifier: GPL-2.0-only
/*
 * hmm_dummy: a pretend device for testing heterogeneous memory management.
 *
 * The module creates nr_devices character devices, /dev/hmm_dummy0 and up,
 * each with chunks of device-private memory of its own. User space drives
 * them with the ioctls of hmm_dummy_uapi.h.
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "hmm_dummy.h"

#define HMM_DUMMY_MAX_DEVICES	8

static unsigned int nr_devices = 2;
module_param(nr_devices, uint, 0444);
MODULE_PARM_DESC(nr_devices, "number of /dev/hmm_dummyN devices (1 to 8, default 2)");

static unsigned int chunk_mb = 128;
module_param(chunk_mb, uint, 0444);
MODULE_PARM_DESC(chunk_mb, "MiB per chunk of device memory, rounded up to memory sections (default 128)");

unsigned long hmm_dummy_chunk_bytes;

static dev_t hmm_dummy_first_devt;
static struct hmm_dummy_device *hmm_dummy_devices[HMM_DUMMY_MAX_DEVICES];

static const struct class hmm_dummy_class = {
	.name = "hmm_dummy",
};

static int hmm_dummy_open(struct inode *inode, struct file *file)
{
	struct hmm_dummy_device *hdev;
	struct hmm_dummy_file *hfile;

	hdev = container_of(inode->i_cdev, struct hmm_dummy_device, cdev);
	hfile = hmm_dummy_file_open(hdev);
	if (IS_ERR(hfile))
		return PTR_ERR(hfile);
	file->private_data = hfile;
	return 0;
}

static int hmm_dummy_release(struct inode *inode, struct file *file)
{
	hmm_dummy_file_close(file->private_data);
	return 0;
}

/*
 * Mapping the device file gives zeroed kernel pages in a mixed map, as
 * lib/test_hmm does, so that mirroring such a mapping can be tested.
 */
static int hmm_dummy_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long addr;
	struct page *page;
	int ret;

	for (addr = vma->vm_start; addr < vma->vm_end; addr += PAGE_SIZE) {
		page = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!page)
			return -ENOMEM;
		ret = vm_insert_page(vma, addr, page);
		/* The mapping holds its own reference, or failed. */
		put_page(page);
		if (ret)
			return ret;
	}
	return 0;
}

static long hmm_dummy_info(struct hmm_dummy_device *hdev, void __user *uarg)
{
	struct hmm_dummy_info info = {
		.device = hdev->index,
	};

	mutex_lock(&hdev->chunks_lock);
	info.nr_chunks = hdev->nr_chunks;
	info.pages_total = READ_ONCE(hdev->pages_total);
	mutex_unlock(&hdev->chunks_lock);
	if (info.nr_chunks)
		info.chunk_bytes = (info.pages_total / info.nr_chunks) << PAGE_SHIFT;
	info.pages_free = hmm_dummy_pages_free(hdev);
	info.pages_used = hmm_dummy_pages_used(hdev);
	info.mirrors = atomic_long_read(&hdev->mirrors);
	info.releases = atomic_long_read(&hdev->releases);
	info.huge_no_block = atomic_long_read(&hdev->huge_no_block);
	info.huge_no_backing = atomic_long_read(&hdev->huge_no_backing);

	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long hmm_dummy_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct hmm_dummy_file *hfile = file->private_data;
	void __user *uarg = (void __user *)arg;

	long ret;

	if (cmd == HMM_DUMMY_INFO)
		return hmm_dummy_info(hfile->hdev, uarg);
	ret = hmm_dummy_migrate_ioctl(hfile, cmd, uarg);
	if (ret == -ENOTTY)
		ret = hmm_dummy_mirror_ioctl(hfile, cmd, uarg);
	if (ret == -ENOTTY)
		ret = hmm_dummy_exclusive_ioctl(hfile, cmd, uarg);
	return ret;
}

static const struct file_operations hmm_dummy_fops = {
	.owner = THIS_MODULE,
	.open = hmm_dummy_open,
	.release = hmm_dummy_release,
	.mmap = hmm_dummy_mmap,
	.unlocked_ioctl = hmm_dummy_ioctl,
	.llseek = noop_llseek,
};

static void hmm_dummy_dev_release(struct device *dev)
{
	kfree(container_of(dev, struct hmm_dummy_device, dev));
}

static struct hmm_dummy_device *hmm_dummy_create(unsigned int index)
{
	struct hmm_dummy_device *hdev;
	int ret;

	hdev = kzalloc_obj(*hdev);
	if (!hdev)
		return ERR_PTR(-ENOMEM);

	hdev->index = index;
	mutex_init(&hdev->chunks_lock);
	INIT_LIST_HEAD(&hdev->chunks);
	spin_lock_init(&hdev->free_lock);
	spin_lock_init(&hdev->inject_lock);

	/* From here on, put_device() frees hdev. */
	device_initialize(&hdev->dev);
	hdev->dev.class = &hmm_dummy_class;
	hdev->dev.devt = MKDEV(MAJOR(hmm_dummy_first_devt), index);
	hdev->dev.release = hmm_dummy_dev_release;
	ret = dev_set_name(&hdev->dev, "hmm_dummy%u", index);
	if (ret)
		goto err_put_device;

	/* The chunk's iomem name is the device name, so name it first. */
	ret = hmm_dummy_add_chunk(hdev);
	if (ret)
		goto err_put_device;

	cdev_init(&hdev->cdev, &hmm_dummy_fops);
	hdev->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&hdev->cdev, &hdev->dev);
	if (ret)
		goto err_remove_chunks;
	return hdev;

err_remove_chunks:
	hmm_dummy_remove_chunks(hdev);
err_put_device:
	put_device(&hdev->dev);
	return ERR_PTR(ret);
}

static void hmm_dummy_destroy(struct hmm_dummy_device *hdev)
{
	cdev_device_del(&hdev->cdev, &hdev->dev);
	hmm_dummy_remove_chunks(hdev);
	put_device(&hdev->dev);
}

static void hmm_dummy_destroy_all(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(hmm_dummy_devices); i++) {
		if (hmm_dummy_devices[i])
			hmm_dummy_destroy(hmm_dummy_devices[i]);
		hmm_dummy_devices[i] = NULL;
	}
}

static int __init hmm_dummy_check_params(void)
{
	if (nr_devices < 1 || nr_devices > HMM_DUMMY_MAX_DEVICES) {
		pr_err("hmm_dummy: nr_devices=%u is not within 1..%u\n",
		       nr_devices, HMM_DUMMY_MAX_DEVICES);
		return -EINVAL;
	}
	/* Memory hotplug works in subsections of 2 MiB. */
	if (chunk_mb < 2 || chunk_mb > 1024 || chunk_mb % 2) {
		pr_err("hmm_dummy: chunk_mb=%u is not an even number within 2..1024\n",
		       chunk_mb);
		return -EINVAL;
	}
	hmm_dummy_chunk_bytes = (unsigned long)chunk_mb << 20;
	return 0;
}

static int __init hmm_dummy_init(void)
{
	struct hmm_dummy_device *hdev;
	unsigned int i;
	int ret;

	ret = hmm_dummy_check_params();
	if (ret)
		return ret;

	ret = alloc_chrdev_region(&hmm_dummy_first_devt, 0, nr_devices, "hmm_dummy");
	if (ret)
		return ret;

	ret = class_register(&hmm_dummy_class);
	if (ret)
		goto err_unregister_region;

	for (i = 0; i < nr_devices; i++) {
		hdev = hmm_dummy_create(i);
		if (IS_ERR(hdev)) {
			ret = PTR_ERR(hdev);
			goto err_destroy_devices;
		}
		hmm_dummy_devices[i] = hdev;
	}
	pr_info("hmm_dummy: %u devices, chunks of %u MiB asked for\n",
		nr_devices, chunk_mb);
	return 0;

err_destroy_devices:
	hmm_dummy_destroy_all();
	class_unregister(&hmm_dummy_class);
err_unregister_region:
	unregister_chrdev_region(hmm_dummy_first_devt, nr_devices);
	return ret;
}

static void __exit hmm_dummy_exit(void)
{
	hmm_dummy_destroy_all();
	class_unregister(&hmm_dummy_class);
	unregister_chrdev_region(hmm_dummy_first_devt, nr_devices);
}

module_init(hmm_dummy_init);
module_exit(hmm_dummy_exit);
MODULE_DESCRIPTION("Dummy device with device-private memory, for testing HMM");
MODULE_LICENSE("GPL");
