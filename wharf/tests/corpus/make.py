#!/usr/bin/env python3
"""Regenerates the malicious layer corpus used by tests/corpus.rs.

Each tar tries to create or change something outside the directory it is unpacked
into. Python's tarfile writes the raw names without the sanitising tar::Builder does.
"""
import io
import tarfile


def add(t, name, kind=tarfile.REGTYPE, link="", data=b""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o644
    t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def write(name, entries):
    with tarfile.open(name, "w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            add(t, *e)


write("dotdot.tar", [("../../../../../../tmp/wharf-pwned-dotdot", tarfile.REGTYPE, "", b"x")])
write("absolute-path.tar", [("/tmp/wharf-pwned-abs", tarfile.REGTYPE, "", b"x")])
write("absolute-symlink-parent.tar", [
    ("root", tarfile.SYMTYPE, "/"),
    ("root/tmp/wharf-pwned-abs-symlink", tarfile.REGTYPE, "", b"x"),
])
write("relative-symlink-parent.tar", [
    ("up", tarfile.SYMTYPE, "../../../../../../../../tmp"),
    ("up/wharf-pwned-rel-symlink", tarfile.REGTYPE, "", b"x"),
])
write("symlink-replaced-by-file.tar", [
    ("f", tarfile.SYMTYPE, "/tmp/wharf-pwned-replace"),
    ("f", tarfile.REGTYPE, "", b"x"),
])
write("hardlink-dotdot.tar", [("h", tarfile.LNKTYPE, "../../../../../../etc/passwd")])
write("hardlink-through-symlink.tar", [
    ("e", tarfile.SYMTYPE, "/etc"),
    ("p", tarfile.LNKTYPE, "e/passwd"),
])
write("whiteout-dotdot.tar", [("d/.wh...", tarfile.REGTYPE, "", b"")])
write("symlink-chain.tar", [
    ("a", tarfile.SYMTYPE, "b/../../../../../../tmp"),
    ("b", tarfile.SYMTYPE, "."),
    ("a/wharf-pwned-chain", tarfile.REGTYPE, "", b"x"),
])
