#!/usr/bin/env python3
"""gentree.py SEED DIR [--size small|large] [--no-huge] [--avoid WHAT,...] [--beyond-path-max]

Makes a random directory tree under DIR for round-trip tests of the files
source (tests/integration/test_tree_random.sh). The same SEED, size and
options make the same tree (names, contents, sparse layouts, links, modes,
owners, xattrs, times): random.Random(SEED) drives every choice, so a failing
seed can be replayed. Python 3 standard library only.

The tree holds:
  - every sparse layout: files with no data extent at all (truncate -s:
    4 KiB, 1 MiB, 100 MiB, odd sizes; preallocated, unwritten extents:
    4 KiB, 1 MiB, 100 MiB; blocks preallocated past the end), data only at
    the start, only at the end, only the first or the last byte, many
    extents, holes and data exactly at 512-byte and 64 KiB boundaries and off
    by one, punched holes, explicitly written zeros; files past 8 GiB
    (8 GiB + 1 and 9 GiB apparent size, a few bytes of data, one region
    across the 8 GiB mark) unless --no-huge or the filesystem has no sparse
    files;
  - empty files and directories, dense files of awkward sizes;
  - hard links across directories (to sparse, empty, long-named files, a
    fifo, a symlink);
  - names of 100, 101 and 255 bytes (ASCII, multi-byte UTF-8, invalid
    UTF-8), paths whose stored name (the absolute path without its leading
    '/', as a backup stores it) is 99..101, 155..157, 255..257 bytes and past
    4,000 bytes, through nested directories (the absolute path stays under
    PATH_MAX);
  - names with newlines, tabs, carriage returns, backslashes, quotes, leading
    dashes, tar's own magic names, NFC and NFD twins, invalid UTF-8 bytes;
  - symlinks to nowhere, to directories, with targets past 100 and 1,000
    bytes (up to 4,095), with odd bytes in the target;
  - fifos, and character/block devices when run as root;
  - user.* xattrs (binary, empty and larger values, names with spaces, '=',
    '%', control and non-ASCII characters; on files and directories) where
    the filesystem supports them;
  - various modes (setuid/setgid/sticky as root), owners (as root, also uids
    and gids past the ustar limit), and mtimes with nanoseconds (also before
    1970 and past 2^33 seconds) where the filesystem keeps them.

Not as root, the tree has no owners, devices or special modes, and every
file is readable and writable by its owner. --avoid leaves out what is known
to fail (to look for other bugs behind it); --beyond-path-max adds a file
whose absolute path is longer than PATH_MAX (a limit of coffer's walk).

Prints the seed and a summary.
"""

import argparse
import ctypes
import ctypes.util
import errno
import os
import random
import stat
import sys
import unicodedata

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02

PATH_MAX = 4096  # including the terminating NUL


class Gen:
    def __init__(self, seed, root, size, huge, avoid=(), beyond_path_max=False):
        self.seed = seed
        self.avoid = set(avoid)
        self.beyond_path_max = beyond_path_max
        self.rng = random.Random(seed)
        self.root = os.fsencode(os.path.abspath(root))
        self.large = size == "large"
        self.huge = huge
        self.is_root = os.geteuid() == 0
        self.dirs = []       # relative bytes paths of directories (not the root)
        self.roomy_dirs = []  # those with an absolute path under 3,000 bytes
        self.files = []      # relative paths of regular files (first names)
        self.nodes = []      # every relative path made, in creation order
        self.symlinks = []
        self.inodes = {}     # relative path -> key of its inode (for hard links)
        self.count = {}
        self.apparent = 0
        self.data = 0
        self.notes = []
        self.extra_entries = 0
        self.xattrs_ok = None
        self.fallocate = None
        self.base_len = len(self.root) - 1  # stored name of the root: no '/'
        libc_name = ctypes.util.find_library("c")
        if libc_name:
            try:
                libc = ctypes.CDLL(libc_name, use_errno=True)
                f = libc.fallocate
                f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
                f.restype = ctypes.c_int
                self.fallocate = f
            except (OSError, AttributeError):
                self.fallocate = None

    # --- helpers -------------------------------------------------------------

    def p(self, rel):
        return self.root + b"/" + self.fix(rel) if rel else self.root

    def fix(self, name):
        """name, with each byte that is not valid UTF-8 made '_' under --avoid
        badutf8 (one byte for one: lengths stay)."""
        if "badutf8" not in self.avoid:
            return name
        return "".join("_" if "\udc80" <= c <= "\udcff" else c
                       for c in name.decode("utf-8", "surrogateescape")).encode()

    def bump(self, kind, n=1):
        self.count[kind] = self.count.get(kind, 0) + n

    def note(self, msg):
        if msg not in self.notes:
            self.notes.append(msg)

    def word(self, lo=1, hi=12):
        n = self.rng.randint(lo, hi)
        return "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_")
                       for _ in range(n)).encode()

    def unique(self, parent, name):
        """name, or name with a suffix, not yet used in parent."""
        cand = name
        i = 1
        while os.path.lexists(self.p(self.join(parent, cand))):
            suffix = b"~%d" % i
            cand = name[:255 - len(suffix)] + suffix
            i += 1
        return cand

    @staticmethod
    def join(parent, name):
        return parent + b"/" + name if parent else name

    def payload(self, n):
        """n bytes: random, text-like or repetitive (compressible)."""
        kind = self.rng.randrange(3)
        out = bytearray()
        while len(out) < n:
            chunk = min(n - len(out), MiB)
            if kind == 0:
                out += self.rng.randbytes(chunk)
            elif kind == 1:
                words = [self.word(1, 9) for _ in range(64)]
                line = bytearray()
                while len(line) < chunk:
                    line += self.rng.choice(words) + self.rng.choice([b" ", b" ", b"\n", b"\t"])
                out += line[:chunk]
            else:
                pat = self.rng.randbytes(self.rng.randint(1, 300))
                out += (pat * (chunk // len(pat) + 1))[:chunk]
        return bytes(out)

    def nonzero(self, n):
        """n bytes that are never all zero (a region that must stay data)."""
        b = bytearray(self.payload(n))
        if n:
            b[0] = b[0] or 0x5a
            b[-1] = b[-1] or 0xa5
        return bytes(b)

    def mkdir(self, rel):
        os.mkdir(self.p(rel), 0o755)
        self.dirs.append(rel)
        if len(self.p(rel)) < 3000:
            self.roomy_dirs.append(rel)
        self.nodes.append(rel)
        self.bump("directories")
        return rel

    def mkdirs(self, rel):
        """Makes rel and any missing parents."""
        parts = rel.split(b"/")
        cur = b""
        for part in parts:
            cur = self.join(cur, part)
            if not os.path.lexists(self.p(cur)):
                self.mkdir(cur)
        return rel

    def write_file(self, rel, size=0, regions=(), kind="dense files"):
        """A file of apparent size `size` with data at `regions` [(off, bytes)]
        and holes elsewhere (ftruncate first, so the rest is never written)."""
        fd = os.open(self.p(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.ftruncate(fd, size)
            for off, data in regions:
                os.pwrite(fd, data, off)
                self.data += len(data)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        self.apparent += st.st_size
        self.files.append(rel)
        self.nodes.append(rel)
        self.inodes[rel] = rel
        self.bump(kind)
        return rel

    def dense(self, rel, n):
        return self.write_file(rel, n, [(0, self.payload(n))] if n else [], "dense files")

    def falloc(self, fd, mode, off, length):
        if not self.fallocate:
            return errno.ENOSYS
        if self.fallocate(fd, mode, off, length) != 0:
            return ctypes.get_errno()
        return 0

    def random_dir(self):
        """A directory with room below it for a long name (not one deep in a
        long path)."""
        return self.rng.choice(self.roomy_dirs)

    # --- the parts of the tree -----------------------------------------------

    def make_dirs(self):
        """A random hierarchy to scatter entries in."""
        n = self.rng.randint(8, 14) if not self.large else self.rng.randint(40, 80)
        self.mkdir(b"d")
        for _ in range(n):
            parent = self.random_dir()
            if parent.count(b"/") > 6:
                parent = b"d"
            name = self.unique(parent, self.pick_name())
            self.mkdir(self.join(parent, name))
        self.mkdir(b"empty-dir")
        self.mkdir(b"d/empty-inside")

    def pick_name(self):
        """A mostly plain name, sometimes an awkward one."""
        r = self.rng.random()
        if r < 0.65:
            return self.word()
        if r < 0.9:
            return self.rng.choice(ODD_NAMES)
        return self.rng.choice([b"with space ", b"-", b"--", b"-x", b"\xff\xfe", b"x\ny"]) + self.word(1, 5)

    def make_sparse(self):
        d = self.mkdir(b"sparse")
        other = self.mkdir(b"sparse-links")
        made = []

        def sp(name, size, regions):
            made.append(self.write_file(self.join(d, name), size, regions, "sparse files"))
            return made[-1]

        # No data extent at all, as from truncate -s.
        for size in (4096, MiB, 100 * MiB):
            sp(b"hole-%d" % size, size, [])
        sp(b"hole-odd", self.rng.choice([1, 511, 513, 4097, 65537, 123457]), [])
        # Preallocated (unwritten extents): also no data.
        for size in (4096, MiB, 100 * MiB):
            rel = self.join(d, b"prealloc-%d" % size)
            fd = os.open(self.p(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                try:
                    os.posix_fallocate(fd, 0, size)
                except OSError as e:
                    self.note("posix_fallocate: %s; truncated instead" % e.strerror)
                    os.ftruncate(fd, size)
            finally:
                os.close(fd)
            self.apparent += size
            self.files.append(rel)
            self.nodes.append(rel)
            self.inodes[rel] = rel
            self.bump("preallocated files")
        # Preallocated, then data written at the start: the rest stays unwritten.
        rel = self.join(d, b"prealloc-then-data")
        fd = os.open(self.p(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                os.posix_fallocate(fd, 0, MiB)
            except OSError:
                os.ftruncate(fd, MiB)
            data = self.nonzero(self.rng.randint(1, 9000))
            os.pwrite(fd, data, 0)
            self.data += len(data)
        finally:
            os.close(fd)
        self.apparent += MiB
        self.files.append(rel)
        self.nodes.append(rel)
        self.inodes[rel] = rel
        self.bump("preallocated files")
        # Blocks preallocated past the end of the file (fallocate -n): one
        # empty, one with a little data.
        for name, n in ((b"keep-size-empty", 0), (b"keep-size-data", self.rng.randint(1, 5000))):
            rel = self.join(d, name)
            fd = os.open(self.p(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                if n:
                    os.pwrite(fd, self.nonzero(n), 0)
                    self.data += n
                e = self.falloc(fd, FALLOC_FL_KEEP_SIZE, 0, MiB)
                if e:
                    self.note("fallocate KEEP_SIZE: %s" % os.strerror(e))
            finally:
                os.close(fd)
            self.apparent += n
            self.files.append(rel)
            self.nodes.append(rel)
            self.inodes[rel] = rel
            self.bump("preallocated files")

        size = self.rng.choice([MiB, 3 * MiB + 17, 64 * KiB * 7])
        sp(b"data-at-start", size, [(0, self.nonzero(self.rng.randint(1, 70000)))])
        n = self.rng.randint(1, 70000)
        sp(b"data-at-end", size, [(size - n, self.nonzero(n))])
        sp(b"first-byte-only", size, [(0, b"\x01")])
        sp(b"last-byte-only", size, [(size - 1, b"\x01")])
        sp(b"middle-only", 2 * MiB, [(MiB - 100, self.nonzero(200))])

        # Many extents: data and holes of random lengths.
        for i in range(2 if not self.large else 5):
            off, regions = 0, []
            count = self.rng.randint(20, 120) if not self.large else self.rng.randint(500, 3000)
            for _ in range(count):
                off += self.rng.choice([1, 511, 512, 4096, 8192, 65536, self.rng.randint(1, 300000)])
                n = self.rng.choice([1, 512, 4096, 65536, self.rng.randint(1, 20000)])
                regions.append((off, self.nonzero(n)))
                off += n
            end = off + self.rng.choice([0, 0, 1, 4096, 65536, self.rng.randint(1, 10**6)])
            sp(b"many-extents-%d" % i, end, regions)

        # Holes and data exactly at 512-byte and 64 KiB boundaries, and off by one.
        for unit in (512, 64 * KiB):
            for delta in (-1, 0, 1):
                a = unit + delta
                name = b"b%d%+d" % (unit, delta)
                # data, hole, data, hole: each piece a (unit +- 1) long
                sp(name + b"-dhdh", 4 * a, [(0, self.nonzero(a)), (2 * a, self.nonzero(a))])
                # hole, data, hole, data
                sp(name + b"-hdhd", 4 * a, [(a, self.nonzero(a)), (3 * a, self.nonzero(a))])
                # data at every other unit, from an offset just off the boundary
                regs = [(k * unit + delta + unit, self.nonzero(unit)) for k in range(0, 8, 2)]
                sp(name + b"-strided", 10 * unit, regs)

        # Punched holes in a dense file (FALLOC_FL_PUNCH_HOLE), at and off the
        # block and 64 KiB boundaries.
        rel = self.join(d, b"punched")
        size = 1 * MiB + self.rng.randint(0, 4096)
        self.write_file(rel, size, [(0, self.nonzero(size))], "sparse files")
        fd = os.open(self.p(rel), os.O_WRONLY)
        try:
            for off, n in ((4096, 4096), (64 * KiB, 64 * KiB), (192 * KiB - 1, 64 * KiB + 2),
                           (512 * KiB + 512, 3 * 512), (size - 8192, 8192)):
                e = self.falloc(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n)
                if e:
                    self.note("fallocate PUNCH_HOLE: %s" % os.strerror(e))
                    break
        finally:
            os.close(fd)
        # Zeros written explicitly: allocated data that reads as zeros.
        sp(b"written-zeros", 256 * KiB, [(0, bytes(256 * KiB))])
        sp(b"zeros-then-hole", 512 * KiB, [(0, bytes(64 * KiB)), (128 * KiB, b"\0")])

        if self.huge:
            if self.sparse_supported():
                big = 8 * GiB + 1
                sp(b"huge-8g-plus-1", big, [(0, self.nonzero(self.rng.randint(1, 5000)))])
                big = 9 * GiB
                sp(b"huge-9g", big, [(8 * GiB - 3, self.nonzero(7)),
                                     (big - 4096, self.nonzero(4096))])
                sp(b"huge-9g-empty", big, [])
            else:
                self.note("no sparse files on this filesystem: no files past 8 GiB")

        # Hard links to sparse files, across directories.
        for name in (b"hole-%d" % (100 * MiB), b"many-extents-0", b"data-at-end"):
            self.hardlink(self.join(d, name), self.join(other, b"link-to-" + name))
        self.hardlink(self.join(d, b"hole-4096"), self.join(self.random_dir(), b"hole-link"))
        if self.huge and os.path.exists(self.p(self.join(d, b"huge-9g"))):
            self.hardlink(self.join(d, b"huge-9g"), self.join(other, b"huge-link"))

    def sparse_supported(self):
        probe = self.p(b".sparse-probe")
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, GiB)
            os.pwrite(fd, b"x", GiB // 2)
            os.fsync(fd)
            blocks = os.fstat(fd).st_blocks
        finally:
            os.close(fd)
            os.unlink(probe)
        return blocks * 512 < 16 * MiB

    def hardlink(self, src, dst, follow=True):
        parent = os.path.dirname(dst)
        name = self.unique(parent, os.path.basename(dst))
        dst = self.join(parent, name)
        os.link(self.p(src), self.p(dst), follow_symlinks=follow)
        self.nodes.append(dst)
        self.inodes[dst] = self.inodes.get(src, src)
        self.bump("hard links")
        return dst

    def make_plain(self):
        """Dense and empty files of awkward sizes, scattered."""
        sizes = [0, 0, 1, 511, 512, 513, 1023, 1024, 4095, 4096, 4097, 10239, 10240, 10241,
                 65535, 65536, 65537]
        n = self.rng.randint(25, 40) if not self.large else self.rng.randint(300, 500)
        for i in range(n):
            if self.rng.random() < 0.5:
                size = self.rng.choice(sizes)
            else:
                size = self.rng.randint(0, 200000 if not self.large else 3 * MiB)
            parent = self.random_dir()
            name = self.unique(parent, self.pick_name())
            if size == 0:
                self.write_file(self.join(parent, name), 0, [], "empty files")
            else:
                self.dense(self.join(parent, name), size)
        if self.large:
            for i in range(self.rng.randint(2, 4)):
                self.dense(self.join(self.random_dir(), b"big-%d" % i),
                           self.rng.randint(5 * MiB, 40 * MiB))
            # A directory with many entries.
            d = self.mkdir(b"many")
            for i in range(self.rng.randint(1500, 3000)):
                self.write_file(self.join(d, b"f%05d" % i), 0, [], "empty files")
        self.write_file(b"empty", 0, [], "empty files")

    def make_names(self):
        """Odd and long names, long paths."""
        d = self.mkdir(b"names")
        for name in ODD_NAMES:
            if os.path.lexists(self.p(self.join(d, name))):
                continue
            kind = self.rng.random()
            if kind < 0.7:
                self.dense(self.join(d, name), self.rng.randint(0, 3000))
            elif kind < 0.85:
                self.mkdir(self.join(d, name))
            else:
                self.symlink(self.rng.choice([b"nowhere", name, b"../names"]), self.join(d, name))
        # NFC and NFD spellings of one name: two entries, with different contents.
        twins = self.mkdir(self.join(d, b"nfc-nfd"))
        for word in [] if "nfd" in self.avoid else ("caf\u00e9", "\u00c5ngstr\u00f6m", "\u00e9"):
            for form in ("NFC", "NFD"):
                self.dense(self.join(twins, unicodedata.normalize(form, word).encode()),
                           self.rng.randint(1, 100))
        # Long names: 100, 101, 254, 255 bytes; multi-byte and invalid UTF-8.
        ln = self.mkdir(b"long-names")
        for n in (99, 100, 101, 254, 255):
            self.dense(self.join(ln, self.word(n, n)), self.rng.randint(0, 600))
        self.dense(self.join(ln, "\u00e9".encode() * 127 + b"x"), 5)            # 255 bytes
        self.dense(self.join(ln, "\u65e5".encode() * 85), 5)                   # 255 bytes
        self.dense(self.join(ln, b"\xff" * 100), 5)
        self.dense(self.join(ln, (b"\xc3\x28" * 127) + b"z"), 5)               # 255 bytes
        self.mkdir(self.join(ln, b"D" * 255))
        self.dense(self.join(self.join(ln, b"D" * 255), b"E" * 255), 7)
        self.symlink(b"x" * 200, self.join(ln, b"L" * 255))
        self.fifo(self.join(ln, b"F" * 101))
        # Paths whose stored name (the absolute path without its leading '/')
        # is just under, at and just over tar's limits.
        lp = self.mkdir(b"long-paths")
        for target in (99, 100, 101, 155, 156, 157, 255, 256, 257, 512, 1024):
            for kind in ("file", "dir", "symlink"):
                self.path_of_length(lp, target, kind)
        # A name of 100 or 101 bytes under a long prefix (the ustar split).
        for n in (100, 101):
            base = self.mkdirs(self.join(lp, self.word(40, 60) + b"/" + self.word(60, 90)))
            self.dense(self.join(base, self.word(n, n)), 3)
        # Past 4,000 bytes (and more of them when large).
        for i in range(1 if not self.large else 4):
            target = 4000 + self.rng.randint(1, 80)
            self.path_of_length(lp, target, self.rng.choice(["file", "dir", "file"]), deep=True)

    def path_of_length(self, base, target, kind, deep=False):
        """An entry whose stored name is `target` bytes long (capped so that the
        absolute path stays under PATH_MAX)."""
        cap = PATH_MAX - 1 - len(self.root) - 1 - 16
        rel_len = target - self.base_len - 1
        if rel_len > cap:
            self.note("root path too long for a stored name of %d bytes: made %d"
                      % (target, cap + self.base_len + 1))
            rel_len = cap
        sub = self.word(2, 4)
        prefix = self.join(base, sub)
        while os.path.lexists(self.p(prefix)):
            sub = self.word(2, 4)
            prefix = self.join(base, sub)
        need = rel_len - len(prefix) - 1  # bytes left for the components after prefix/
        if need < 1:
            self.note("root path too long for a stored name of %d bytes" % target)
            return None
        comps = []
        while need > 255:
            n = self.rng.randint(1, 255) if deep else self.rng.randint(20, 120)
            if need - n - 1 < 1:
                n = need - 2
            if deep and self.rng.random() < 0.3:
                comp = self.rng.choice([b"\xe9\xff", "\u00e9\u65e5".encode(), b"a\nb", b"-"]) * n
                comp = comp[:n]
                if len(comp) < 1:
                    comp = b"x"
            else:
                comp = self.word(n, n)
            comps.append(comp)
            need -= len(comp) + 1
        if len(comps) == 0 and need > 60 and not deep:
            n = self.rng.randint(1, need - 30)
            comps.append(self.word(n, n))
            need -= n + 1
        comps.append(self.word(need, need))
        rel = self.mkdirs(self.join(prefix, b"/".join(comps[:-1])) if len(comps) > 1 else prefix)
        rel = self.join(rel, comps[-1])
        if kind == "file":
            self.dense(rel, self.rng.randint(0, 2000))
            if deep:
                self.hardlink(rel, self.join(self.random_dir(), b"link-to-deep"))
                parent = os.path.dirname(rel)
                self.fifo(self.join(parent, b"fifo"))
                self.symlink(b"../" * 3 + b"up", self.join(parent, b"sym"))
        elif kind == "dir":
            self.mkdir(rel)
            self.dense(self.join(rel, b"f"), 1)
        else:
            self.symlink(self.word(1, 40), rel)
        self.bump("long paths")
        return rel

    def make_beyond_path_max(self):
        """A file whose absolute path is longer than PATH_MAX, made through
        directory descriptors (only openat() and the like reach it)."""
        fd = os.open(self.p(b"long-paths"), os.O_RDONLY | os.O_DIRECTORY)
        chain = []  # (parent fd, name, fd)
        total = len(self.p(b"long-paths"))
        while total < PATH_MAX + 100:
            n = self.rng.randint(100, 255)
            name = self.word(n, n)
            os.mkdir(name, 0o755, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            chain.append((fd, name, nfd))
            fd = nfd
            total += n + 1
        data = self.payload(self.rng.randint(1, 3000))
        ffd = os.open(b"beyond-path-max", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
        os.write(ffd, data)
        os.close(ffd)
        self.data += len(data)
        self.apparent += len(data)
        when = self.rng.randint(946684800, 1893456000) * 10**9 + self.rng.randrange(10**9)
        os.utime(b"beyond-path-max", ns=(when, when), dir_fd=fd, follow_symlinks=False)
        for parent, name, dfd in reversed(chain):
            when = self.rng.randint(946684800, 1893456000) * 10**9 + self.rng.randrange(10**9)
            os.utime(name, ns=(when, when), dir_fd=parent, follow_symlinks=False)
            os.close(dfd)
        os.close(chain[0][0])
        self.extra_entries += len(chain) + 1
        self.bump("directories", len(chain))
        self.bump("dense files")
        self.bump("paths beyond PATH_MAX")

    def symlink(self, target, rel):
        os.symlink(self.fix(target), self.p(rel))
        self.symlinks.append(rel)
        self.nodes.append(rel)
        self.inodes[rel] = rel
        self.bump("symlinks")
        return rel

    def fifo(self, rel):
        os.mkfifo(self.p(rel), 0o644)
        self.nodes.append(rel)
        self.inodes[rel] = rel
        self.bump("fifos")
        return rel

    def make_links(self):
        d = self.mkdir(b"links")
        self.symlink(b"does/not/exist", self.join(d, b"to-nowhere"))
        self.symlink(b"/nonexistent/" + self.word(5, 20), self.join(d, b"abs-nowhere"))
        self.symlink(b"..", self.join(d, b"to-parent"))
        self.symlink(b"../d", self.join(d, b"to-dir"))
        self.symlink(b"../empty", self.join(d, b"to-empty"))
        self.symlink(self.join(b"..", self.rng.choice(self.files)), self.join(d, b"to-file"))
        for n in (99, 100, 101, 1000, 1001, self.rng.randint(1002, 4094), 4095):
            t = b"/".join(self.word(1, 30) for _ in range(n // 8))
            t = (t + b"/" + self.word(n, n))[:n]
            self.symlink(t, self.join(d, b"target-%d" % n))
        self.symlink(b"new\nline\ttab\\back \xff\xfe \xc3\xa9", self.join(d, b"odd-target"))
        self.symlink(b"-rf", self.join(d, b"dash-target"))
        # Fifos.
        for i in range(self.rng.randint(1, 3)):
            parent = self.random_dir()
            self.fifo(self.join(parent, self.unique(parent, b"fifo-%d" % i)))
        # Devices (root only; CAP_MKNOD may be missing in a container).
        if self.is_root:
            for name, kind, dev in ((b"char-null", stat.S_IFCHR, os.makedev(1, 3)),
                                    (b"block-dev", stat.S_IFBLK, os.makedev(7, 250)),
                                    (b"char-big", stat.S_IFCHR, os.makedev(4095, 1048575))):
                try:
                    os.mknod(self.p(self.join(d, name)), kind | 0o600, dev)
                    self.nodes.append(self.join(d, name))
                    self.inodes[self.join(d, name)] = self.join(d, name)
                    self.bump("devices")
                except OSError as e:
                    self.note("mknod: %s; no devices" % e.strerror)
                    break
        # Hard links across directories: plain, empty, long-named, odd-named
        # files, a fifo, a symlink; groups of 2 to 4 names.
        plain = [f for f in self.files if not f.startswith(b"sparse/")]
        for _ in range(self.rng.randint(4, 8) if not self.large else 40):
            src = self.rng.choice(plain)
            for _ in range(self.rng.randint(1, 3)):
                self.hardlink(src, self.join(self.random_dir(), self.pick_name()))
        self.hardlink(b"empty", self.join(self.random_dir(), b"empty-link"))
        longs = [f for f in self.files if f.startswith(b"long-")]
        for src in self.rng.sample(longs, min(3, len(longs))):
            self.hardlink(src, self.join(self.random_dir(), self.word(90, 120)))
        fifo = self.fifo(self.join(d, b"linked-fifo"))
        self.hardlink(fifo, self.join(self.random_dir(), b"fifo-link"))
        sym = self.symlink(b"target of a hard-linked symlink", self.join(d, b"linked-symlink"))
        self.hardlink(sym, self.join(self.random_dir(), b"symlink-link"), follow=False)

    def make_xattrs(self):
        probe = self.p(b"empty")
        try:
            os.setxattr(probe, b"user.probe", b"1")
            os.removexattr(probe, b"user.probe")
            self.xattrs_ok = True
        except OSError as e:
            self.xattrs_ok = False
            self.note("no user xattrs here (%s)" % e.strerror)
            return
        targets = [r for r in self.nodes
                   if stat.S_ISREG(os.lstat(self.p(r)).st_mode) or stat.S_ISDIR(os.lstat(self.p(r)).st_mode)]
        chosen = self.rng.sample(targets, min(len(targets), self.rng.randint(10, 25)))
        chosen += [b"sparse/hole-%d" % (100 * MiB), b"sparse/many-extents-0", b"empty-dir", b""]
        done = set()
        for rel in chosen:
            key = self.inodes.get(rel, rel)
            if key in done:
                continue
            done.add(key)
            budget = 3000
            for i in range(self.rng.randint(1, 5)):
                name = b"user." + self.rng.choice([b"coffer", b"test", b"a.b.c", b"x"]) + b".%d" % i
                if self.rng.random() < 0.25 and "xattrname" not in self.avoid:
                    # odd names: pax keywords carry them %-encoded
                    name = b"user." + self.rng.choice(ODD_XATTR_NAMES) + b".%d" % i
                    if "badutf8" in self.avoid:
                        name = self.fix(name)
                kind = self.rng.randrange(5)
                if kind == 0:
                    value = b""
                elif kind == 1:
                    value = self.rng.randbytes(self.rng.randint(1, 64))           # binary, NULs
                elif kind == 2:
                    value = b"\0" + self.rng.randbytes(8) + b"\0"
                elif kind == 3:
                    value = self.word(1, 40)
                else:
                    value = self.payload(self.rng.randint(100, 1500))
                if len(value) + len(name) + 32 > budget:
                    continue
                budget -= len(value) + len(name) + 32
                try:
                    os.setxattr(self.p(rel), name, value, follow_symlinks=False)
                    self.bump("xattrs")
                except OSError as e:
                    self.note("setxattr %s: %s" % (name.decode(), e.strerror))

    def make_owners_modes(self):
        file_modes = [0o644, 0o600, 0o755, 0o700, 0o444, 0o400, 0o000, 0o777, 0o640, 0o007,
                      0o123, 0o751]
        dir_modes = [0o755, 0o700, 0o750, 0o775, 0o711]
        if self.is_root:
            file_modes += [0o4755, 0o2755, 0o6711, 0o1644, 0o7777, 0o4000]
            dir_modes += [0o555, 0o1777, 0o2775, 0o3770, 0o000, 0o500]
        ids = [0, 1, 2, 65534, 1000, 1234, 54321, 2097151, 2097152, 16777216, 4294967294]
        seen = set()
        for rel in self.nodes + [b""]:
            key = self.inodes.get(rel, rel)
            if key in seen:
                continue
            seen.add(key)
            path = self.p(rel)
            st = os.lstat(path)
            if self.is_root and self.rng.random() < 0.3:
                uid, gid = self.rng.choice(ids), self.rng.choice(ids)
                os.chown(path, uid, gid, follow_symlinks=False)
                self.bump("chowned")
            if stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_ISDIR(st.st_mode):
                mode = self.rng.choice(dir_modes) if self.rng.random() < 0.4 else 0o755
                if rel == b"":
                    mode = 0o755  # the root: the test needs to read and remove it
            else:
                mode = self.rng.choice(file_modes) if self.rng.random() < 0.5 else 0o644
                if not self.is_root:
                    # Only root reads what its owner may not; and GNU tar
                    # run by its owner cannot set the xattrs of a read-only file.
                    mode |= 0o600
            os.chmod(path, mode)

    def make_times(self):
        # ext4 keeps -2^31 .. 2^34 - 2^31 - 1 (1901..2446); ustar's field ends at 2^33 - 1.
        top = 2**34 - 2**31 - 1
        edge = [0, 1, -1, -2**31, 2**31 - 1, 2**31, 2**32, 2**33 - 1, 2**33, 2**33 + 1, top,
                10**9, 1234567890, -86400 * 365]
        check = {}
        rels = sorted(self.nodes + [b""], key=lambda r: (-r.count(b"/") - (1 if r else 0), r))
        for rel in rels:
            r = self.rng.random()
            if r < 0.15:
                sec = self.rng.choice(edge)
            elif r < 0.25:
                sec = self.rng.randint(-2**31 + 1, -1)
            elif r < 0.35:
                sec = self.rng.randint(2**31, top)
            else:
                sec = self.rng.randint(946684800, 1893456000)  # 2000..2030
            nsec = self.rng.choice([0, 1, 999999999, 500000000, self.rng.randrange(10**9),
                                    self.rng.randrange(10**9)])
            # Within the range: the edges themselves only with no nanoseconds.
            # (ext4 drops the nanoseconds of a time in the first second of its range.)
            # negtime: no time between -1 s and 0 (coffer stores it as -1 s:
            # libarchive's pax writer cannot print it).
            if sec == -2**31 or sec == top or (sec == -1 and "negtime" in self.avoid):
                nsec = 0
            mtime = min(max(sec * 10**9 + nsec, (-2**31 + 1) * 10**9), top * 10**9)
            atime = self.rng.randint(946684800, 1893456000) * 10**9 + self.rng.randrange(10**9)
            os.utime(self.p(rel), ns=(atime, mtime), follow_symlinks=False)
            check[self.inodes.get(rel, rel)] = (rel, mtime)  # hard links: the last one set
        # A filesystem without nanoseconds or such ranges keeps something else;
        # then the test compares what it kept, but say so.
        lost = sum(1 for rel, m in check.values()
                   if os.lstat(self.p(rel)).st_mtime_ns != m)
        if lost:
            self.note("%d mtime(s) not kept exactly by this filesystem" % lost)

    def run(self):
        os.makedirs(self.root, exist_ok=True)
        if os.listdir(self.root):
            raise SystemExit("gentree: %s is not empty" % os.fsdecode(self.root))
        os.chmod(self.root, 0o755)
        self.make_dirs()
        self.make_plain()
        self.make_sparse()
        self.make_names()
        self.make_links()
        if self.beyond_path_max:
            self.make_beyond_path_max()  # its own times; before the times of long-paths
        self.make_xattrs()
        self.make_owners_modes()
        self.make_times()


# Awkward names (bytes): newlines, tabs, backslashes, quotes, leading dashes,
# tar's own magic names, invalid UTF-8 sequences.
ODD_NAMES = [
    b"new\nline", b"\nleading-newline", b"trailing-newline\n", b"tab\there", b"\ttab",
    b"carriage\rreturn", b"back\\slash", b"\\", b"\\\\n", b'double"quote', b"single'quote",
    b"-leading-dash", b"--", b"-", b"-rf", b"--help", b"*?[glob]", b"{brace}", b"$dollar",
    b"with space", b" leading-space", b"trailing-space ", b"...", b"..x", b".hidden",
    b"esc\x1b[0m", b"bell\x07", b"del\x7f", b"\x01ctl",
    b"@LongLink", b"PaxHeader", b"GNUSparseFile.0", b"%d%s%n",
    b"invalid-\xff", b"\xff", b"\xfe\xff", b"\x80cont", b"trunc-\xc3", b"bad-\xc3\x28",
    b"overlong-\xc0\xaf", b"surrogate-\xed\xa0\x80", b"latin1-caf\xe9",
    "utf8-\u00e9\u65e5\u672c\U0001f600".encode(), "rtl-\u202eabc".encode(),
    b"equals=sign", b"percent%41", b"colon:semi;", b"hash#", b"tilde~",
]
ODD_NAMES = [n for n in ODD_NAMES if b"/" not in n]

# Awkward xattr names (after "user."): spaces, '=', '%', control characters,
# non-ASCII and invalid UTF-8, a long one (names end at 255 bytes).
ODD_XATTR_NAMES = [
    b"with space", b"eq=sign", b"pct%41", b"pct%", b"new\nline", b"tab\t", b"\xc3\xbc-utf8",
    b"bad-\xff", b"SCHILY.xattr.x", b"LIBARCHIVE.xattr.y", b"l" * 230,
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seed", help="the seed (an integer, or any string)")
    ap.add_argument("dir", help="where to make the tree (must be absent or empty)")
    ap.add_argument("--size", choices=["small", "large"], default="small",
                    help="small: quick, for CI (default); large: more and bigger entries")
    ap.add_argument("--no-huge", action="store_true",
                    help="no sparse files past 8 GiB (apparent size)")
    ap.add_argument("--avoid", default="", metavar="WHAT[,WHAT]",
                    help="leave out what is known to fail, to look for other bugs: "
                         "nfd (names in Unicode NFD), negtime (mtimes before 1970 with "
                         "nanoseconds), badutf8 (names and symlink targets that are not UTF-8), "
                         "xattrname (xattr names with spaces, '=', '%%', control or non-ASCII "
                         "characters)")
    ap.add_argument("--beyond-path-max", action="store_true",
                    help="also one path whose absolute name is longer than PATH_MAX")
    args = ap.parse_args()
    avoid = [w for w in args.avoid.split(",") if w]
    for w in avoid:
        if w not in ("nfd", "negtime", "badutf8", "xattrname"):
            ap.error("--avoid: unknown '%s' (nfd, negtime, badutf8, xattrname)" % w)
    try:
        seed = int(args.seed)
    except ValueError:
        seed = args.seed
    g = Gen(seed, args.dir, args.size, not args.no_huge, avoid, args.beyond_path_max)
    print("gentree: seed %s, size %s%s%s%s, into %s"
          % (args.seed, args.size, ", no huge files" if args.no_huge else "",
             ", avoiding " + ",".join(avoid) if avoid else "",
             ", beyond PATH_MAX" if args.beyond_path_max else "", args.dir))
    sys.stdout.flush()
    g.run()
    parts = ["%d %s" % (v, k) for k, v in sorted(g.count.items())]
    print("gentree: %d entries: %s" % (len(g.nodes) + 1 + g.extra_entries, ", ".join(parts)))
    print("gentree: %.1f MiB apparent size in regular files, %.1f MiB of data written"
          % (g.apparent / MiB, g.data / MiB))
    for n in g.notes:
        print("gentree: note: %s" % n)


if __name__ == "__main__":
    main()
