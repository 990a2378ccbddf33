"""Cost of refusing an over-limit image: GZ-LLaVA's header checks vs reading the pixels first (the reference).

Cases (each in its own subprocess, so peak RSS is that case's own):
  fits      an 8192x8192 float32 FITS file, max_image_pixels 4096^2. Ours: `load_image` (size from the header).
            Reference: what the loader did before, read the data as float64 and stretch it, then compare the size.
  png-url   an 8192x8192 greyscale PNG served on 127.0.0.1, same limit. Ours: `load_image(url)` (streamed, size
            from the PNG header). Reference: `transformers.image_utils.load_image(url)` (downloads, decodes to RGB).

    OMP_NUM_THREADS=1 python benchmarks/bench_image_limits.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZE = 8192
LIMIT = 4096 * 4096


class RssPeak:
    """Peak resident memory above the level at entry, sampled every 2 ms from /proc/self/statm (Linux)."""

    def __enter__(self):
        import threading

        self.page = resource.getpagesize()
        self.start = self.peak = self._rss()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page

    def _poll(self):
        while not self.done.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def run_case(case: str, kind: str, folder: Path) -> dict:
    """In a child process: the time and the peak-RSS growth of refusing one over-limit image."""
    import httpx  # noqa: F401  (imported before timing, as transformers' loader has it imported already)
    import numpy as np
    from astropy.io import fits
    from transformers.image_utils import load_image as transformers_load_image

    from gzllava.testing import ImageServer
    from image_processing_gzllava import load_image, stretch_to_uint8

    png = (folder / "huge.png").read_bytes() if case == "png-url" else b""
    with ImageServer({"/huge.png": (png, "image/png")}) as server, RssPeak() as memory:
        start = time.perf_counter()
        refused = ""
        try:
            if case == "fits" and kind == "ours":
                load_image(folder / "huge.fits", max_pixels=LIMIT)
            elif case == "fits":
                data = np.asarray(fits.getdata(folder / "huge.fits"), dtype=np.float64)
                stretch_to_uint8(data, "asinh")
                if data.shape[0] * data.shape[1] > LIMIT:
                    raise ValueError("above the limit")
            elif kind == "ours":
                load_image(server.url("/huge.png"), max_pixels=LIMIT)
            else:
                image = transformers_load_image(server.url("/huge.png"))
                if image.width * image.height > LIMIT:
                    raise ValueError("above the limit")
        except ValueError as error:
            refused = str(error)[:80]
        seconds = time.perf_counter() - start
    return {"case": case, "kind": kind, "seconds": seconds, "peak_growth_mib": memory.growth_mib, "refused": refused}


def main() -> None:
    if len(sys.argv) == 4:
        print(json.dumps(run_case(sys.argv[1], sys.argv[2], Path(sys.argv[3]))))
        return
    import numpy as np
    from astropy.io import fits
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rng = np.random.default_rng(0)
        fits.PrimaryHDU(rng.normal(0.0, 1.0, (SIZE, SIZE)).astype(np.float32)).writeto(folder / "huge.fits")
        Image.new("L", (SIZE, SIZE), 0).save(folder / "huge.png")
        print(f"files: huge.fits {os.path.getsize(folder / 'huge.fits') / 2**20:.0f} MiB, "
              f"huge.png {os.path.getsize(folder / 'huge.png') / 2**10:.0f} KiB; limit {LIMIT} pixels")
        rows = []
        for case in ("fits", "png-url"):
            for kind in ("ours", "reference"):
                out = subprocess.run([sys.executable, __file__, case, kind, str(folder)], capture_output=True, text=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| case | ours: time | ours: peak RSS growth | reference: time | reference: peak RSS growth | time ratio ref/ours |")
    print("|---|---:|---:|---:|---:|---:|")
    for case in ("fits", "png-url"):
        ours, ref = (next(r for r in rows if r["case"] == case and r["kind"] == kind) for kind in ("ours", "reference"))
        assert ours["refused"] and ref["refused"], (ours, ref)
        print(f"| {case} | {ours['seconds'] * 1000:.1f} ms | {ours['peak_growth_mib']:.0f} MiB | "
              f"{ref['seconds'] * 1000:.0f} ms | {ref['peak_growth_mib']:.0f} MiB | {ref['seconds'] / ours['seconds']:.0f}x |")


if __name__ == "__main__":
    main()
