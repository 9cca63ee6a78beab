"""Write N input files for the ingest benchmark: demo and real spectra under distinct DJA-style names.

    python bench/make_ingest_corpus.py OUT [N] [DEMO_ROOT]    # default N = 10,000, DEMO_ROOT = the demo

File k is a byte copy of one of the demo archive's products or of the real spectra in
``../shared/data/real/spectra/dja_v4`` + the older msaexp file (cycled, so ~1.5 % are
the 1-5 MB real files), with its primary header given a new identity:
``bench{k // 500:02d}-v4_{grating}-{filter}_{prog}_{k}.spec.fits``, program 9000 + k // 2500,
and a position of its own on a 3.6″ grid (so every file is one object) — the data units
are the source's, untouched. Files go into one folder per observation, 500 each.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import sys
import time

from astropy.io import fits

REAL = pathlib.Path("/work/shared/data/real/spectra")


def sources(demo_root: pathlib.Path) -> list[pathlib.Path]:
    demo = sorted((demo_root / "products").rglob("*.spec.fits"))
    real = sorted((REAL / "dja_v4").glob("*.spec.fits")) + [REAL / "msaexp_tests" / "static-test-driz-center-bkg_933.spec.fits"]
    return demo + real


def main(out: str, n: int = 10_000, demo_root: str | None = None) -> None:
    from campfire.archive.products import archive_copy_bytes

    if demo_root is None:
        import campfire.demo

        demo_root = campfire.demo.ensure()
    src = sources(pathlib.Path(demo_root))
    out_p = pathlib.Path(out)
    t0, total = time.perf_counter(), 0
    cache: dict[pathlib.Path, tuple[bytes, str, str]] = {}
    for k in range(n):
        path = src[k % len(src)]
        if path not in cache:
            data = path.read_bytes()
            with fits.open(path) as hdul:
                h = {**hdul[1].header, **hdul[0].header}
            cache[path] = (data, str(h["GRATING"]).strip().lower(), str(h["FILTER"]).strip().lower())
        data, grating, filt = cache[path]
        root, prog = f"bench{k // 500:02d}-v4", 9000 + k // 2500
        name = f"{root}_{grating}-{filt}_{prog}_{k}.spec.fits"
        ra, dec = 150.0 + (k % 100) * 0.001, 2.0 + (k // 100) * 0.001
        cards = {"PROGRAM": prog, "SOURCEID": k, "SRCNAME": f"{prog}_{k}", "SRCRA": ra, "SRCDEC": dec, "RA": ra,
                 "DEC": dec, "SPECID": None, "BENCHSRC": hashlib.sha256(path.name.encode()).hexdigest()[:16]}
        body = archive_copy_bytes(data, cards, None)
        dest = out_p / root / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name("." + name)
        tmp.write_bytes(body)
        os.replace(tmp, dest)
        total += len(body)
        if (k + 1) % 1000 == 0:
            print(f"{k + 1} files, {total / 1e9:.2f} GB, {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"wrote {n} files ({total / 1e9:.2f} GB) under {out_p} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10_000, sys.argv[3] if len(sys.argv) > 3 else None)
