#!/bin/sh
# Regenerate the archive fixtures of tests/unit/oci/extract_test.c (and the seeds of
# testdata/fuzz/tar/). Output is deterministic: mtime 0, uid/gid 0, gzip header mtime 0.
# Usage: testdata/artifacts/mk-evil.sh   (writes next to this script)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 - "$here" <<'EOF'
import gzip, io, os, shutil, sys, tarfile

out = sys.argv[1]
fuzz = os.path.join(out, "..", "fuzz", "tar")
os.makedirs(fuzz, exist_ok=True)


def info(name, type=tarfile.REGTYPE, mode=0o644, size=0, **kw):
    t = tarfile.TarInfo(name)
    t.type = type
    t.mode = mode
    t.size = size
    t.mtime = 0
    t.uid = t.gid = 0
    t.uname = t.gname = ""
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            if isinstance(e, tuple):
                t, data = e
                t.size = len(data)
                tf.addfile(t, io.BytesIO(data))
            else:
                tf.addfile(e)
    return buf.getvalue()


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(data)
    return buf.getvalue()


def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


root = info(".", tarfile.DIRTYPE, 0o755)
a = (info("a.yaml"), b"a: 1\n")

# The well-behaved archive: "./" prefixes like GNU tar, a PAX (non-ASCII) name, modes.
good = tar_bytes([
    info("./", tarfile.DIRTYPE, 0o755),
    (info("./a.yaml"), b"a: 1\n"),
    info("./sub", tarfile.DIRTYPE, 0o750),
    (info("./sub/run.sh", mode=0o755), b"#!/bin/sh\necho hi\n"),
    (info("./sub/h\u00e9llo.yaml"), "caf\u00e9: 2\n".encode()),
    info("./empty", tarfile.DIRTYPE, 0o755),
    (info("./deep/er/file.txt"), b"implicit parents\n"),
])
write("good.tar.gz", gz(good))
write("good.tar", good)
# The same tar split across two gzip members (cat a.gz b.gz).
write("multi.tar.gz", gz(good[:1500]) + gz(good[1500:]))

write("dotdot.tar.gz", gz(tar_bytes([root, a, (info("../x"), b"escaped\n")])))
write("nested-dotdot.tar.gz", gz(tar_bytes([root, (info("sub/../../x"), b"escaped\n")])))
write("abs.tar.gz", gz(tar_bytes([root, (info("/abs/x"), b"absolute\n")])))
write("backslash.tar.gz", gz(tar_bytes([root, (info("a\\..\\x"), b"windows\n")])))
write("symlink-escape.tar.gz", gz(tar_bytes([
    root, a, info("sub", tarfile.DIRTYPE, 0o755),
    info("sub/evil", tarfile.SYMTYPE, 0o777, linkname="../../etc/passwd")])))
write("symlink-abs.tar.gz", gz(tar_bytes([
    root, a, info("evil", tarfile.SYMTYPE, 0o777, linkname="/etc/passwd")])))
write("symlink-inside.tar.gz", gz(tar_bytes([
    root, a, info("sub", tarfile.DIRTYPE, 0o755),
    info("sub/link", tarfile.SYMTYPE, 0o777, linkname="../a.yaml"),
    (info("sub/b.yaml"), b"b: 2\n")])))
write("hardlink.tar.gz", gz(tar_bytes([
    root, a, info("b.yaml", tarfile.LNKTYPE, 0o644, linkname="a.yaml")])))
write("device.tar.gz", gz(tar_bytes([
    root, a, info("null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3)])))
write("fifo.tar.gz", gz(tar_bytes([root, a, info("pipe", tarfile.FIFOTYPE, 0o644)])))
# Through a symlinked directory: "sub" is a symlink, then "sub/x" is written through it.
write("symlink-dir-write.tar.gz", gz(tar_bytes([
    root, info("sub", tarfile.SYMTYPE, 0o777, linkname="."),
    (info("sub/x"), b"through the link\n")])))

# Bombs: 32 MiB of zeros (about 32 KiB compressed), a header claiming 4 GiB followed by
# nothing much, and 200 empty files.
zeros = tar_bytes([root, (info("zeros.bin"), b"\0" * (32 << 20))])
write("zeros.tar.gz", gz(zeros))
huge = info("huge.bin", size=4 << 30)
write("huge-header.tar.gz", gz(tar_bytes([root])[:512] + huge.tobuf(tarfile.PAX_FORMAT) +
                              b"\0" * 8192))
write("many.tar.gz", gz(tar_bytes([root] + [(info("f%03d" % i), b"") for i in range(200)])))

# Fuzz seeds: the small fixtures, a plain tar, and a GNU-format long name.
for name in ("good.tar.gz", "good.tar", "multi.tar.gz", "dotdot.tar.gz", "symlink-escape.tar.gz",
             "hardlink.tar.gz", "device.tar.gz", "huge-header.tar.gz"):
    shutil.copyfile(os.path.join(out, name), os.path.join(fuzz, name))
gnu = tar_bytes([root, (info("d" * 150 + "/f"), b"long\n")], fmt=tarfile.GNU_FORMAT)
with open(os.path.join(fuzz, "gnu-longname.tar"), "wb") as f:
    f.write(gnu)
with open(os.path.join(fuzz, "empty"), "wb") as f:
    pass
with open(os.path.join(fuzz, "gzip-header-only"), "wb") as f:
    f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
EOF
