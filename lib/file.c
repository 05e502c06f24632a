/* file: whole small files (see file.h). */
#include "file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "buf.h"

char *file_read_small(const char *path, size_t max, size_t *len)
{
	struct buf b = BUF_INIT(max);
	char tmp[4096];
	ssize_t n;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	while ((n = read(fd, tmp, sizeof(tmp))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto out_fail;
		}
		if (buf_add(&b, tmp, (size_t)n) < 0)
			goto out_fail;
	}
	close(fd);
	while (b.len && isspace((unsigned char)b.data[b.len - 1]))
		b.data[--b.len] = '\0';
	return buf_detach(&b, len);
out_fail:
	saved = errno;
	close(fd);
	buf_release(&b);
	errno = saved;
	return NULL;
}
