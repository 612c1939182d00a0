#!/usr/bin/python3
"""frozenfs: a FUSE view of a directory whose metadata does not depend on the machine or the
moment, for reproducible componentize-py builds (scripts/reproducible-python/build-policy.sh).

What the view changes, and why (../shared/notes/reproducible-python.md):
- every file and directory reports the same access, modification and change time
  (SOURCE_DATE_EPOCH, default 0): CPython's import system caches directory times;
- inode numbers are a hash of the path, so they do not depend on the order files were created
  (wasmtime-wasi passes device and inode numbers to the guest);
- directories list their entries in byte order of their names;
- creating a `__pycache__` directory fails (read-only file system), so no bytecode is written
  into the view (CPython carries on without it);
- with a block device argument (a loop device bound to any small file), the view is mounted as
  `fuseblk` on it, so its device number is that device's instead of the next free anonymous one.
Everything else passes through to the backing directory.

Usage (as root, in the foreground; `umount MOUNTPOINT` stops it):
    /usr/bin/python3 frozenfs.py BACKING MOUNTPOINT [BLOCK_DEVICE]
Needs Debian's python3-fusepy and fuse.
"""
import errno
import hashlib
import os
import sys

from fusepy import FUSE, FuseOSError, Operations

FIXED_TIME = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


def path_inode(path):
    """A stable inode number for `path`: 1 for the root, else 62 bits of its SHA-256."""
    if path == "/":
        return 1
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).digest()
    return (int.from_bytes(digest[:8], "big") >> 2) | 2


class Frozen(Operations):
    def __init__(self, backing):
        self.backing = os.path.realpath(backing)

    def real(self, path):
        return self.backing + path

    def __call__(self, op, *args):
        try:
            return super().__call__(op, *args)
        except OSError as e:
            raise FuseOSError(e.errno or errno.EIO) from None

    def getattr(self, path, fh=None):
        st = os.lstat(self.real(path))
        attrs = {name: getattr(st, name) for name in (
            "st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks")}
        attrs.update(st_atime=FIXED_TIME, st_mtime=FIXED_TIME, st_ctime=FIXED_TIME,
                     st_ino=path_inode(path))
        return attrs

    def readdir(self, path, fh):
        names = sorted(os.listdir(self.real(path)), key=lambda n: n.encode("utf-8", "surrogateescape"))
        return [".", ".."] + names

    def access(self, path, mode):
        if not os.access(self.real(path), mode):
            raise FuseOSError(errno.EACCES)

    def readlink(self, path):
        return os.readlink(self.real(path))

    def statfs(self, path):
        s = os.statvfs(self.real(path))
        return {f: getattr(s, f) for f in (
            "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree",
            "f_favail", "f_flag", "f_namemax")}

    def chmod(self, path, mode):
        os.chmod(self.real(path), mode)

    def chown(self, path, uid, gid):
        os.lchown(self.real(path), uid, gid)

    def utimens(self, path, times=None):
        return 0  # every time in the view is FIXED_TIME

    def mkdir(self, path, mode):
        if os.path.basename(path) == "__pycache__":
            raise FuseOSError(errno.EROFS)
        os.mkdir(self.real(path), mode)

    def rmdir(self, path):
        os.rmdir(self.real(path))

    def unlink(self, path):
        os.unlink(self.real(path))

    def symlink(self, target, source):
        os.symlink(source, self.real(target))

    def link(self, target, source):
        os.link(self.real(source), self.real(target))

    def rename(self, old, new):
        os.rename(self.real(old), self.real(new))

    def open(self, path, flags):
        return os.open(self.real(path), flags)

    def create(self, path, mode, fi=None):
        return os.open(self.real(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        if fh is None:
            os.truncate(self.real(path), length)
        else:
            os.ftruncate(fh, length)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        os.fsync(fh)

    def release(self, path, fh):
        os.close(fh)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    options = {"blkdev": True, "fsname": sys.argv[3]} if len(sys.argv) == 4 else {}
    FUSE(Frozen(sys.argv[1]), sys.argv[2], foreground=True, nothreads=True, use_ino=True,
         attr_timeout=3600, entry_timeout=3600, **options)


if __name__ == "__main__":
    main()
