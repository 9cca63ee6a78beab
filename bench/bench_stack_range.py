"""What a stack over several gratings covers: the default grid vs ``wavelength_grid='union'`` (issue 17.4).

Two objects: the reference's example object ``ember_uds_p4_123456`` of the demo archive
(``calibrate_and_stack(obj.spectra, ...)``: PRISM + gratings) and the real three-grating
spectra of stark-rxcj2248 2478_3 (G140M + G235M + G395M, ``stack_spectra``). Prints the
inputs' coverage, what each grid keeps (pixels with at least one input), its size, the
warning the default gives, and the wall time.

    python bench/bench_stack_range.py [DEMO_ROOT]      # default /work/demo-v3
"""
from __future__ import annotations

import os
import pathlib
import sys
import time
import warnings

STARK = sorted(pathlib.Path("/work/shared/data/real/spectra/dja_v4").glob("stark-rxcj2248-v4_*_2478_3.spec.fits"))


def _row(name, inputs, make):
    from campfire.tasks.grids import coverage

    cov = sorted(iv for s in inputs for iv in coverage(s))
    for label, grid in (("default", None), ("'union'", "union")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            st = make(grid)
            dt = time.perf_counter() - t0
        kept = st.wavelength[st.count > 0]
        msg = next((str(w.message) for w in caught if "leaves out" in str(w.message)), "")
        lost = msg.split("leaves out ")[1].split(" that")[0] if msg else "—"
        print(f"| {name} | {'+'.join(sorted({s.grating for s in inputs}))} | {cov[0][0]:.2f}–{cov[-1][1]:.2f} | "
              f"{label} | {kept.min():.2f}–{kept.max():.2f} | {st.wavelength.size:,} | {lost} | {dt:.2f} |")


def main(root: str = "/work/demo-v3") -> None:
    from campfire import calibrate_and_stack, stack_spectra
    from campfire.models import SpectrumData

    print(f"# stack range: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n")
    print("| object | gratings | opened inputs cover μm | grid | stack covers μm | pixels | warning: left out | s |")
    print("|---|---|---|---|---|---:|---|---:|")
    if pathlib.Path(root, "meta", "campfire.db").exists():
        from campfire import Campfire

        cf = Campfire(data_dir=root)
        obj = cf.get_object("ember_uds_p4_123456")
        inputs = [s.open() for s in obj.spectra]
        _row(obj.object_id, inputs, lambda g: calibrate_and_stack(obj.spectra, photometry=obj.photometry,
                                                                  object_id=obj.object_id,
                                                                  wavelength_grid=g).spectrum)
    stark = [SpectrumData.from_fits(p) for p in STARK]
    _row("stark-rxcj2248 2478_3 (real)", stark, lambda g: stack_spectra(stark, wavelength_grid=g))


if __name__ == "__main__":
    main(*sys.argv[1:])
