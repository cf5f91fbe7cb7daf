#!/usr/bin/env python3
"""Generate breakpad-style multipart/form-data crash report bodies for benchmarking.

Copied from the peer benchmark (shared/bench) so the payloads are rebuilt byte-identical on any
machine; reads the minidumps from Tests/Fixtures and writes into the folder given as the first
argument (default: .build-bench/payloads):
  <name>.body        plain multipart body
  <name>.body.gz     gzip (level 6) of the same body, for Content-Encoding: gzip
  <name>.dump        the upload_file_minidump bytes (for hashing experiments)
  content_type.txt   the Content-Type header value (same boundary for all)
  manifest.json      sizes / ratios / sha256s

Payloads:
  small   : 1 dump = real simple-crashpad.dmp (18,512 B)
  typical : 1 dump ~400 KB = real minidumps concatenated + synthetic "memory" padding
  large   : 1 dump ~4 MB   = same construction, larger
Padding is a deterministic (seeded) mix of 4 KiB pages: random (incompressible),
zero pages (18%), pointer-like tables (8-byte LE values near a base), and ASCII
strings (26%); the random-page share is searched so the whole body gzips ~2.75x.
Annotations: 29 text/plain form fields (classic breakpad form encoding).
"""
import gzip
import hashlib
import json
import os
import random
import struct

import sys
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "Fixtures")
HERE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build-bench", "payloads")
os.makedirs(HERE, exist_ok=True)
BOUNDARY = "---------------------------3b1f6a0c9e2d4f7a8c5b1e0d"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"

ANNOTATIONS = {
    "ProductName": "Firefox",
    "Version": "120.0",
    "ReleaseChannel": "release",
    "BuildID": "20231120000000",
    "ProductID": "{ec8030f7-c20a-464f-9b0e-13a3a9e97384}",
    "Vendor": "Mozilla",
    "ProcessType": "content",
    "CrashTime": "1700500000",
    "StartupTime": "1700499000",
    "UptimeTS": "1000.123456",
    "InstallTime": "1700400000",
    "SecondsSinceLastCrash": "86400",
    "Throttleable": "1",
    "URL": "",
    "Add-ons": "formautofill%40mozilla.org:1.0.1,pictureinpicture%40mozilla.org:1.0.0,"
    "screenshots%40mozilla.org:39.0.1,webcompat%40mozilla.org:120.0.0",
    "AvailablePhysicalMemory": "8123456789",
    "TotalPhysicalMemory": "17098579968",
    "AvailablePageFile": "9123456789",
    "TotalPageFile": "20098579968",
    "AvailableVirtualMemory": "140723456789012",
    "SystemMemoryUsePercentage": "52",
    "useragent_locale": "en-US",
    "AsyncShutdownTimeout": "",
    "MozCrashReason": "MOZ_RELEASE_ASSERT(false) (Synthetic benchmark crash)",
    "Notes": "FP(D00-L1000-W00000000-T000) DWrite? DWrite+ D2D1.1+ WebGL+ ",
    "AdapterVendorID": "0x10de",
    "AdapterDeviceID": "0x2484",
    "ContentSandboxLevel": "6",
    "Hang": "0",
}


def padding(n, rng, rand_pct):
    """Synthetic 'memory' pages; rand_pct of every 100 pages are incompressible."""
    out = bytearray()
    page = 4096
    words = [b"xul.dll", b"nss3.dll", b"mozglue.dll", b"C:\\Program Files\\Mozilla Firefox\\",
             b"ntdll.dll", b"kernel32.dll", b"PATH=", b"LOCALAPPDATA=", b"gfx", b"js::", b"nsThread"]
    zero_pct, ascii_pct = 18, 26
    deck = (["rand"] * rand_pct + ["zero"] * zero_pct + ["ascii"] * ascii_pct
            + ["ptr"] * (100 - rand_pct - zero_pct - ascii_pct))
    while len(out) < n:
        rng.shuffle(deck)
        for kind in deck:
            if kind == "rand":  # raw heap/stack bytes: incompressible
                out += rng.randbytes(page)
            elif kind == "zero":  # zero page
                out += bytes(page)
            elif kind == "ptr":  # pointer table: 8-byte LE values near a base
                base = 0x7FF000000000 + rng.randrange(0, 1 << 32) * 16
                vals = [base + rng.randrange(0, 1 << 14) * 8 for _ in range(page // 8)]
                out += struct.pack("<%dQ" % len(vals), *vals)
            else:  # ascii strings (module names, paths, env)
                s = bytearray()
                while len(s) < page:
                    s += rng.choice(words) + rng.randbytes(rng.randrange(0, 6)) + b"\x00"
                out += s[:page]
            if len(out) >= n:
                break
    return bytes(out[:n])


REAL = ["pipeline-inlines-macos-segv.dmp", "linux-mini.dmp", "simple-crashpad.dmp", "test.dmp"]
TARGET_RATIO = 2.75


def make_dump(target, seed):
    """Real minidump bytes followed by padding; rand_pct tuned so the whole
    multipart body gzips (level 6) at ~TARGET_RATIO."""
    real = b"".join(open(os.path.join(FIX, f), "rb").read() for f in REAL)
    best = None
    for rand_pct in range(0, 57):
        dump = real + padding(target - len(real), random.Random(seed), rand_pct)
        body = build_body({"upload_file_minidump": dump})
        ratio = len(body) / len(gzip.compress(body, 6, mtime=0))
        if best is None or abs(ratio - TARGET_RATIO) < abs(best[0] - TARGET_RATIO):
            best = (ratio, rand_pct, dump)
        if ratio < TARGET_RATIO:
            break
    print(f"make_dump target={target} rand_pct={best[1]} ratio={best[0]:.2f}")
    return best[2]


def build_body(dumps):
    parts = []
    for k, v in ANNOTATIONS.items():
        parts.append(
            (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n").encode()
            + v.encode() + b"\r\n")
    for name, data in dumps.items():
        parts.append(
            (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.dmp\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n")
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def main():
    payloads = {
        "small": open(os.path.join(FIX, "simple-crashpad.dmp"), "rb").read(),
        "typical": make_dump(400 * 1024 - 4000, seed=1),
        "large": make_dump(4 * 1024 * 1024 - 4000, seed=2),
    }
    manifest = {"content_type": CONTENT_TYPE, "annotations": len(ANNOTATIONS), "payloads": {}}
    for name, dump in payloads.items():
        body = build_body({"upload_file_minidump": dump})
        gz = gzip.compress(body, compresslevel=6, mtime=0)
        for suffix, data in (("body", body), ("body.gz", gz), ("dump", dump)):
            with open(os.path.join(HERE, f"{name}.{suffix}"), "wb") as fp:
                fp.write(data)
        manifest["payloads"][name] = {
            "dump_bytes": len(dump), "body_bytes": len(body), "gzip_bytes": len(gz),
            "gzip_ratio": round(len(body) / len(gz), 2),
            "dump_sha256": hashlib.sha256(dump).hexdigest(),
        }
    with open(os.path.join(HERE, "content_type.txt"), "w") as fp:
        fp.write(CONTENT_TYPE + "\n")
    with open(os.path.join(HERE, "manifest.json"), "w") as fp:
        json.dump(manifest, fp, indent=2)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
