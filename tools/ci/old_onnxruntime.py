#!/usr/bin/env python3
"""Prints the path of an onnxruntime library older than 1.17, fetching it
from PyPI into target/onnxruntime-old/ the first time.

The onnxruntime engine must refuse such a library by its version
(tests/engines.rs, run by CI with LSGM_TEST_OLD_ORT set to this path).
onnxruntime's own wheels before 1.17 carry no libonnxruntime.so (the runtime
is linked into their Python module); piper-phonemize 1.1.0's wheel bundles
onnxruntime 1.14.1's library, renamed by auditwheel.
"""
import glob
import os
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, "target", "onnxruntime-old")
LIB = os.path.join(CACHE, "libonnxruntime.so.1.14.1")

if not os.path.exists(LIB):
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--dest", CACHE,
                    "piper-phonemize==1.1.0"], check=True, stdout=subprocess.DEVNULL)
    with zipfile.ZipFile(glob.glob(os.path.join(CACHE, "piper_phonemize-1.1.0-*.whl"))[0]) as z:
        name = next(n for n in z.namelist() if "libonnxruntime" in n and n.endswith(".so.1.14.1"))
        with open(LIB + ".tmp", "wb") as out:
            out.write(z.read(name))
    os.rename(LIB + ".tmp", LIB)
print(LIB)
