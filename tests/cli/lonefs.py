"""A FUSE passthrough of SOURCE at MOUNTPOINT whose flock grants every open its lock, as
VirtioFS does: two opens of one file never exclude each other. Run by the system's python3
with python3-fusepy (Debian); used by test_doctor_where.py.

    python3 lonefs.py SOURCE MOUNTPOINT     (foreground; unmount to stop)
"""
import ctypes
import errno
import os
import sys

import fusepy
from fusepy import FUSE, FuseOSError, Operations


# fusepy's operations table stops at ioctl; libfuse 2.9 goes on with poll, write_buf,
# read_buf, flock. A non-null flock makes the kernel send flock() to us (FUSE_FLOCK_LOCKS).
class ops(ctypes.Structure):
    _fields_ = fusepy.fuse_operations._fields_ + [
        ("poll", ctypes.c_void_p), ("write_buf", ctypes.c_void_p), ("read_buf", ctypes.c_void_p),
        ("flock", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(fusepy.fuse_file_info), ctypes.c_int)),
    ]
fusepy.fuse_operations = ops

class LoneFUSE(FUSE):
    def flock(self, path, fip, op):
        return self.operations("flock", path.decode(self.encoding), fip.contents.fh, op)


class Lone(Operations):
    def __init__(self, root): self.root = root
    def _p(self, path): return self.root + path
    def getattr(self, path, fh=None):
        st = os.lstat(self._p(path))
        return {k: getattr(st, k) for k in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")}
    def readdir(self, path, fh): return [".", ".."] + os.listdir(self._p(path))
    def access(self, path, mode):
        if not os.access(self._p(path), mode):
            raise FuseOSError(errno.EACCES)
    def chmod(self, path, mode): os.chmod(self._p(path), mode)
    def chown(self, path, uid, gid): os.chown(self._p(path), uid, gid)
    def mkdir(self, path, mode): os.mkdir(self._p(path), mode)
    def rmdir(self, path): os.rmdir(self._p(path))
    def unlink(self, path): os.unlink(self._p(path))
    def rename(self, old, new): os.rename(self._p(old), self._p(new))
    def link(self, target, source): os.link(self._p(source), self._p(target))
    def utimens(self, path, times=None): os.utime(self._p(path), times)
    def open(self, path, flags): return os.open(self._p(path), flags)
    def create(self, path, mode, fi=None): return os.open(self._p(path), os.O_WRONLY | os.O_CREAT, mode)
    def read(self, path, size, offset, fh): return os.pread(fh, size, offset)
    def write(self, path, data, offset, fh): return os.pwrite(fh, data, offset)
    def truncate(self, path, length, fh=None): os.truncate(self._p(path), length)
    def flush(self, path, fh): return 0
    def release(self, path, fh): os.close(fh)
    def fsync(self, path, datasync, fh): os.fsync(fh)
    def statfs(self, path):
        st = os.statvfs(self._p(path))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}
    def flock(self, path, fh, op): return 0  # every open gets the lock

if __name__ == "__main__":
    LoneFUSE(Lone(sys.argv[1]), sys.argv[2], foreground=True, nothreads=True)
