// SPDX-License-Identifier: GPL-2.0
/*
 * HMM mirror registration: one struct hmm per mm that has mirrors, and the
 * dispatch of every invalidation of that mm to each of its mirrors.
 *
 * struct hmm is found and refcounted through mmu_notifier_get(), so a
 * process that never registers a mirror pays nothing: no field in
 * mm_struct, no hook in fork or exit. Each registered mirror holds one
 * reference. The mmu_notifier gives us release() when the mm exits; the
 * invalidations come from an interval notifier that covers the whole
 * address space, whose sequence count is what hmm_mirror_read_begin()
 * and hmm_mirror_read_retry() expose to drivers.
 */
#include <linux/hmm_mirror.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/srcu.h>

/**
 * struct hmm - what HMM keeps for one mm with mirrors
 * @notifier: makes struct hmm unique per mm and refcounted, and brings
 *	release() at mm exit
 * @range: hears every invalidation of the mm and owns the sequence count
 * @lock: serialises registration, unregistration and release; protects
 *	@nr_mirrors, the membership of @mirrors and whether @range is inserted
 * @mirrors: the mirrors not yet released; read under hmm_mirror_srcu
 * @nr_mirrors: registered mirrors, released or not; @range is inserted
 *	while it is not zero
 */
struct hmm {
	struct mmu_notifier notifier;
	struct mmu_interval_notifier range;
	/* Sleeps: release() and synchronize_srcu() run under it. */
	struct mutex lock;
	struct list_head mirrors;
	unsigned int nr_mirrors;
};

/*
 * Invalidations walk the mirror lists without taking any lock, since they
 * may not sleep; unregistration waits for them with synchronize_srcu().
 */
DEFINE_STATIC_SRCU(hmm_mirror_srcu);

static enum hmm_update_event hmm_update_event(enum mmu_notifier_event event)
{
	switch (event) {
	case MMU_NOTIFY_UNMAP:
		return HMM_UPDATE_UNMAP;
	case MMU_NOTIFY_PROTECTION_VMA:
	case MMU_NOTIFY_PROTECTION_PAGE:
	case MMU_NOTIFY_SOFT_DIRTY:
		return HMM_UPDATE_PROTECT;
	case MMU_NOTIFY_RELEASE:
		return HMM_UPDATE_RELEASE;
	case MMU_NOTIFY_MIGRATE:
		return HMM_UPDATE_MIGRATE;
	case MMU_NOTIFY_EXCLUSIVE:
		return HMM_UPDATE_EXCLUSIVE;
	case MMU_NOTIFY_CLEAR:
	default:
		return HMM_UPDATE_CLEAR;
	}
}

static bool hmm_invalidate(struct mmu_interval_notifier *range,
			   const struct mmu_notifier_range *mnr,
			   unsigned long cur_seq)
{
	struct hmm *hmm = container_of(range, struct hmm, range);
	struct hmm_update update = {
		.start = mnr->start,
		.end = mnr->end,
		.event = hmm_update_event(mnr->event),
		.blockable = mmu_notifier_range_blockable(mnr),
		.owner = mnr->owner,
	};
	struct hmm_mirror *mirror;
	bool done = true;
	int idx;

	/*
	 * Bump the sequence before any driver sees the update: a driver that
	 * checks hmm_mirror_read_retry() under its lock either sees the new
	 * count, or took its lock before update() will, which then clears
	 * whatever it installed.
	 */
	mmu_interval_set_seq(range, cur_seq);

	idx = srcu_read_lock(&hmm_mirror_srcu);
	list_for_each_entry_srcu(mirror, &hmm->mirrors, link,
				 srcu_read_lock_held(&hmm_mirror_srcu)) {
		int ret = mirror->ops->update(mirror, &update);

		if (!ret)
			continue;
		/* Only a non-blocking update may give up; a blocking one goes on. */
		WARN_ON_ONCE(update.blockable || ret != -EAGAIN);
		if (!update.blockable) {
			done = false;
			break;
		}
	}
	srcu_read_unlock(&hmm_mirror_srcu, idx);
	return done;
}

static const struct mmu_interval_notifier_ops hmm_range_ops = {
	.invalidate = hmm_invalidate,
};

static void hmm_mirror_sync(void)
{
	synchronize_srcu(&hmm_mirror_srcu);
}

/*
 * Move every mirror to @detached, once no invalidation can still be
 * looking at them; the caller then calls their release().
 */
static void hmm_detach_mirrors(struct hmm *hmm, struct list_head *detached)
{
	struct hmm_mirror *mirror;

	lockdep_assert_held(&hmm->lock);
	list_splice_init_rcu(&hmm->mirrors, detached, hmm_mirror_sync);
	list_for_each_entry(mirror, detached, link)
		mirror->released = true;
}

/*
 * The mm is exiting. Every mirror still registered gets its release()
 * now, with hmm->lock held so that a racing hmm_mirror_unregister() only
 * returns once release() has.
 */
static void hmm_notifier_release(struct mmu_notifier *notifier, struct mm_struct *mm)
{
	struct hmm *hmm = container_of(notifier, struct hmm, notifier);
	struct hmm_mirror *mirror, *next;
	LIST_HEAD(detached);

	mutex_lock(&hmm->lock);
	hmm_detach_mirrors(hmm, &detached);
	list_for_each_entry_safe(mirror, next, &detached, link) {
		list_del_init(&mirror->link);
		mirror->ops->release(mirror);
	}
	mutex_unlock(&hmm->lock);
}

static struct mmu_notifier *hmm_alloc_notifier(struct mm_struct *mm)
{
	struct hmm *hmm;

	hmm = kzalloc_obj(*hmm);
	if (!hmm)
		return ERR_PTR(-ENOMEM);
	mutex_init(&hmm->lock);
	INIT_LIST_HEAD(&hmm->mirrors);
	return &hmm->notifier;
}

/* Called from an SRCU callback once the last reference is gone. */
static void hmm_free_notifier(struct mmu_notifier *notifier)
{
	kfree(container_of(notifier, struct hmm, notifier));
}

static const struct mmu_notifier_ops hmm_notifier_ops = {
	.release = hmm_notifier_release,
	.alloc_notifier = hmm_alloc_notifier,
	.free_notifier = hmm_free_notifier,
};

/**
 * hmm_mirror_register() - start mirroring an mm
 * @mirror: the mirror, with @mirror->ops set
 * @mm: the mm to mirror; the caller holds a reference on its users
 *	(current->mm, or one taken with mmget())
 *
 * From the return on, @mirror->ops->update() is called for every change
 * of @mm's page tables, until @mirror->ops->release() is.
 *
 * Context: Process context, may sleep. Takes mmap_lock: the caller must
 * not hold it.
 * Return: 0; -EINVAL when @mirror has no ops; -ESRCH when @mm has no
 * users left; -ENOMEM; -EINTR when a signal interrupted the registration.
 */
int hmm_mirror_register(struct hmm_mirror *mirror, struct mm_struct *mm)
{
	struct mmu_notifier *notifier;
	struct hmm *hmm;
	int ret = 0;

	if (!mirror->ops || !mirror->ops->release || !mirror->ops->update)
		return -EINVAL;
	if (!mmget_not_zero(mm))
		return -ESRCH;

	notifier = mmu_notifier_get(&hmm_notifier_ops, mm);
	if (IS_ERR(notifier)) {
		ret = PTR_ERR(notifier);
		goto out_mmput;
	}
	hmm = container_of(notifier, struct hmm, notifier);

	mutex_lock(&hmm->lock);
	if (!hmm->nr_mirrors) {
		ret = mmu_interval_notifier_insert(&hmm->range, mm, 0,
						   ULONG_MAX & PAGE_MASK, &hmm_range_ops);
		if (ret) {
			mutex_unlock(&hmm->lock);
			mmu_notifier_put(notifier);
			goto out_mmput;
		}
	}
	hmm->nr_mirrors++;
	mirror->hmm = hmm;
	mirror->mm = mm;
	mirror->released = false;
	list_add_rcu(&mirror->link, &hmm->mirrors);
	mutex_unlock(&hmm->lock);

out_mmput:
	mmput(mm);
	return ret;
}
EXPORT_SYMBOL_GPL(hmm_mirror_register);

/**
 * hmm_mirror_unregister() - stop mirroring
 * @mirror: a mirror registered with hmm_mirror_register()
 *
 * Calls @mirror->ops->release() unless the mm's exit already did, and
 * waits for any update() still running on @mirror. Once this returns HMM
 * never touches @mirror again and it may be freed.
 *
 * Context: Process context, may sleep. Must not be called from a mirror
 * callback, nor with a lock that the update() of any mirror, of any mm,
 * may take: it waits for all running updates.
 */
void hmm_mirror_unregister(struct hmm_mirror *mirror)
{
	struct hmm *hmm = mirror->hmm;
	bool release;

	mutex_lock(&hmm->lock);
	release = !mirror->released;
	if (release) {
		list_del_rcu(&mirror->link);
		mirror->released = true;
		hmm_mirror_sync();
		mirror->ops->release(mirror);
	}
	/* The last mirror out stops the invalidations; a new one restarts them. */
	if (!--hmm->nr_mirrors)
		mmu_interval_notifier_remove(&hmm->range);
	mutex_unlock(&hmm->lock);

	mirror->hmm = NULL;
	mirror->mm = NULL;
	mmu_notifier_put(&hmm->notifier);
}
EXPORT_SYMBOL_GPL(hmm_mirror_unregister);

/**
 * hmm_mirror_read_begin() - start filling a device page table
 * @mirror: the mirror
 *
 * Waits until no invalidation of the mirrored mm is in progress, then
 * returns a sequence count to hand to hmm_mirror_read_retry() once the
 * walk is done and the driver's page table lock is held.
 *
 * Context: Process context, may sleep. Must not be called with a lock
 * that the mirror's update() takes: lockdep checks it.
 * Return: the sequence count.
 */
unsigned long hmm_mirror_read_begin(struct hmm_mirror *mirror)
{
	might_sleep();
	return mmu_interval_read_begin(&mirror->hmm->range);
}
EXPORT_SYMBOL_GPL(hmm_mirror_read_begin);

/**
 * hmm_mirror_read_retry() - must the fill be thrown away?
 * @mirror: the mirror
 * @seq: what hmm_mirror_read_begin() returned
 *
 * Context: Any context; called with the lock the mirror's update() takes,
 * just before writing the walk's result into the device page table.
 * Return: true when an invalidation started since @seq was read: the
 * result is stale and the driver must start again.
 */
bool hmm_mirror_read_retry(struct hmm_mirror *mirror, unsigned long seq)
{
	return mmu_interval_read_retry(&mirror->hmm->range, seq);
}
EXPORT_SYMBOL_GPL(hmm_mirror_read_retry);
