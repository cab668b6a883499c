// SPDX-License-Identifier: GPL-2.0
/*
 * vub_blk - vub's virtio-blk requests: validation, the data path (RWF_NOWAIT in the
 * main thread, the rest in the worker pool).
 */
#include "vub.h"

static ssize_t vub_rw_full(int fd, struct iovec *iov, int cnt, uint64_t pos,
			   bool write)
{
	ssize_t done = 0;

	while (cnt > 0) {
		ssize_t n = write ? pwritev(fd, iov, cnt, pos) :
				    preadv(fd, iov, cnt, pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : done;
		done += n;
		pos += n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= n;
		}
	}
	return done;
}

/*
 * The main thread's attempt at a read or write: one preadv2/pwritev2 with
 * RWF_NOWAIT, which succeeds only when the page cache can take it without
 * blocking. 1: done; 0: would block (or short), leave it to a worker.
 */
static int vub_rw_nowait(struct vub *v, struct iovec *iov, int cnt,
			 uint64_t pos, uint64_t len, bool write)
{
	ssize_t n;

	n = write ? pwritev2(v->img_fd, iov, cnt, pos, RWF_NOWAIT) :
		    preadv2(v->img_fd, iov, cnt, pos, RWF_NOWAIT);
	if (n == (ssize_t)len)
		return 1;
	if (n < 0 && errno == EOPNOTSUPP)
		v->nowait[write] = false;	/* not on this file: stop trying */
	return 0;
}

/*
 * A request's data transfer: in the main thread (@nowait) only small
 * requests the page cache takes at once (-EAGAIN: leave it to a worker),
 * in a worker the whole of it. 0: done; -EIO: failed or short.
 */
static int vub_data_rw(struct vub *v, struct iovec *iov, int cnt,
		       uint64_t pos, uint64_t len, bool write, bool nowait)
{
	if (nowait)
		return v->nowait[write] && len <= VUB_INLINE_MAX &&
		       vub_rw_nowait(v, iov, cnt, pos, len, write) ? 0 : -EAGAIN;
	return vub_rw_full(v->img_fd, iov, cnt, pos, write) == (ssize_t)len ?
	       0 : -EIO;
}

int vub_blk_check(struct vub_conn *c, struct vub_job *job)
{
	struct vub_req *rq = &job->rq;

	if (rq->rd_len < sizeof(job->hdr))
		return vub_fail(c, "virtio-blk request shorter than its header");
	if (rq->wr_len < 1)
		return vub_fail(c, "virtio-blk request without a status byte");
	vub_segs_read(rq->rd, rq->nrd, 0, &job->hdr, sizeof(job->hdr));
	return 0;
}

/*
 * Execute one checked virtio-blk request. Returns the number of bytes
 * written into device-writable buffers, for the used ring. A worker calls
 * it with @nowait false. The main thread calls it with @nowait true: then
 * a read or write that would block, and a flush, return -EAGAIN before
 * the status byte, the dirty log or the used ring was written (a short
 * read may have filled part of the data buffers: the worker redoes it).
 */
int64_t vub_blk_request(struct vub *v, struct vub_conn *c,
			struct vub_job *job, bool nowait)
{
	struct virtio_blk_outhdr hdr = job->hdr;
	struct vub_req *rq = &job->rq;
	uint64_t data_len, pos, end;
	uint64_t written = 1;
	uint8_t status = VIRTIO_BLK_S_OK;
	int cnt, ret;

	switch (hdr.type & ~VIRTIO_BLK_T_BARRIER) {
	case VIRTIO_BLK_T_IN:
		data_len = rq->wr_len - 1;
		pos = hdr.sector * VUB_SECTOR;
		if (hdr.sector > v->capacity / VUB_SECTOR ||
		    data_len % VUB_SECTOR ||
		    !vu_add_ok(pos, data_len, &end) || end > v->capacity) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		cnt = vub_segs_iov(rq->wr, rq->nwr, 0, data_len, rq->iov);
		ret = vub_data_rw(v, rq->iov, cnt, pos, data_len, false, nowait);
		if (ret == -EAGAIN)
			return ret;
		if (ret) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		written += data_len;
		vub_segs_log(v, c, rq->wr, rq->nwr, 0, data_len);
		break;
	case VIRTIO_BLK_T_OUT:
		data_len = rq->rd_len - sizeof(hdr);
		pos = hdr.sector * VUB_SECTOR;
		if (v->read_only || hdr.sector > v->capacity / VUB_SECTOR ||
		    data_len % VUB_SECTOR ||
		    !vu_add_ok(pos, data_len, &end) || end > v->capacity) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		cnt = vub_segs_iov(rq->rd, rq->nrd, sizeof(hdr), data_len,
				   rq->iov);
		ret = vub_data_rw(v, rq->iov, cnt, pos, data_len, true, nowait);
		if (ret == -EAGAIN)
			return ret;
		if (ret)
			status = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (nowait && !v->read_only)
			return -EAGAIN;
		if (!v->read_only && fdatasync(v->img_fd) < 0)
			status = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		char id[VIRTIO_BLK_ID_BYTES] = "vub";
		uint64_t n = rq->wr_len - 1;

		if (n > sizeof(id))
			n = sizeof(id);
		cnt = vub_segs_iov(rq->wr, rq->nwr, 0, n, rq->iov);
		for (int i = 0, o = 0; i < cnt; o += rq->iov[i].iov_len, i++)
			memcpy(rq->iov[i].iov_base, id + o, rq->iov[i].iov_len);
		vub_segs_log(v, c, rq->wr, rq->nwr, 0, n);
		written += n;
		break;
	}
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	/* the status byte is the last writable byte */
	cnt = vub_segs_iov(rq->wr, rq->nwr, rq->wr_len - 1, 1, rq->iov);
	*(uint8_t *)rq->iov[0].iov_base = status;
	vub_segs_log(v, c, rq->wr, rq->nwr, rq->wr_len - 1, 1);
	return written;
}

struct vub_job *vub_job_get(struct vub_conn *c)
{
	struct vub_job *job = c->free_jobs;

	if (job) {
		c->free_jobs = job->next;
		return job;
	}
	if (c->njobs >= VUB_MAX_JOBS)
		return NULL;
	job = malloc(sizeof(*job));
	if (job)
		c->njobs++;
	return job;
}

void vub_job_put(struct vub_conn *c, struct vub_job *job)
{
	job->next = c->free_jobs;
	c->free_jobs = job;
}

static int64_t vub_worker_request(struct vub *v, struct vub_job *job);
static void vub_job_done(struct vub *v, struct vub_job *job);

void vub_submit(struct vub *v, struct vub_job *job)
{
	job->next = NULL;
	if (v->sync) {
		job->written = vub_worker_request(v, job);
		pthread_mutex_lock(&v->lock);
		vub_job_done(v, job);
		pthread_mutex_unlock(&v->lock);
		return;
	}
	pthread_mutex_lock(&v->lock);
	if (v->todo_tail)
		v->todo_tail->next = job;
	else
		v->todo_head = job;
	v->todo_tail = job;
	if (v->idle)
		pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

/*
 * A worker's request under its own recovery point: on a SIGBUS the job
 * carries the address back, and the main thread drops the connection.
 */
static int64_t vub_worker_request(struct vub *v, struct vub_job *job)
{
	sigjmp_buf jb;
	/* a recovery point of the caller (v->sync: the main thread's) */
	sigjmp_buf *volatile prev = vub_fault_jmp;
	int64_t ret;

	job->fault = NULL;
	if (sigsetjmp(jb, 0)) {
		vub_fault_jmp = prev;
		job->fault = vub_fault_addr ? vub_fault_addr : (void *)job;
		return 0;
	}
	vub_fault_jmp = &jb;
	ret = vub_blk_request(v, job->c, job, false);
	vub_fault_jmp = prev;
	return ret;
}

/* a finished job to the main thread; v->lock held */
static void vub_job_done(struct vub *v, struct vub_job *job)
{
	uint64_t one = 1;

	job->next = v->done_head;
	v->done_head = job;
	/*
	 * The main thread reads done_fd before it takes the whole list, so
	 * only the first job on an empty list has to wake it.
	 */
	if (!job->next && write(v->done_fd, &one, sizeof(one)) < 0)
		kml_warn("done eventfd: %s", strerror(errno));
}

void *vub_worker(void *arg)
{
	struct vub *v = arg;

	pthread_mutex_lock(&v->lock);
	for (;;) {
		struct vub_job *job;

		while (!v->todo_head && !v->pool_stop) {
			v->idle++;
			pthread_cond_wait(&v->cond, &v->lock);
			v->idle--;
		}
		if (v->pool_stop)
			break;
		job = v->todo_head;
		v->todo_head = job->next;
		if (!v->todo_head)
			v->todo_tail = NULL;
		pthread_mutex_unlock(&v->lock);

		job->written = vub_worker_request(v, job);

		pthread_mutex_lock(&v->lock);
		vub_job_done(v, job);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}
