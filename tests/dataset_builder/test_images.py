"""Subject images: local files (JPEG/PNG/FITS), verification, and downloads (retry, resume, cache, offline)
against a local http.server on 127.0.0.1."""

from __future__ import annotations

import io
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from dataset_builder.images import ImageStore, fetch_images
from dataset_builder.records import Reject, Subject


def gradient(size=(16, 16), colour=(200, 80, 40)) -> Image.Image:
    """A colour with a horizontal ramp: not constant (a constant image is rejected as blank)."""
    width, height = size
    ramp = np.linspace(0, 40, width)[None, :, None]
    pixels = np.clip(np.array(colour, dtype=float)[None, None, :] + ramp, 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(pixels, height, axis=0), mode="RGB")


def jpeg_bytes(size=(16, 16), colour=(200, 80, 40)) -> bytes:
    out = io.BytesIO()
    gradient(size, colour).save(out, format="JPEG")
    return out.getvalue()


def png_bytes(size=(16, 16)) -> bytes:
    out = io.BytesIO()
    gradient(size, (0, 128, 200)).save(out, format="PNG")
    return out.getvalue()


def write_cube(path, bands=("g", "r", "z")):
    """A 3-band 16x16 cube: a z (red) blob in the top-left, a g (blue) blob in the bottom-right.
    FITS row 0 is the bottom of the sky image."""
    from astropy.io import fits

    cube = np.zeros((3, 8, 8), dtype=np.float32)
    order = {b: i for i, b in enumerate(bands)}
    cube[order["z"], 6:8, 0:2] = 100.0  # top-left on the sky
    cube[order["g"], 0:2, 6:8] = 100.0  # bottom-right
    cube[order["r"], 3:5, 3:5] = 2.0  # faint: mid-grey green, not saturated
    header = fits.Header()
    for i, band in enumerate(bands):
        header[f"BAND{i}"] = band
    cube = np.kron(cube, np.ones((2, 2), dtype=np.float32))  # 16x16: the smallest accepted size
    fits.PrimaryHDU(cube, header=header).writeto(path)
    return path


# --- local files --------------------------------------------------------------------------------


def test_local_folder_by_subject_id_and_alias_in_subfolders(tmp_path):
    (tmp_path / "J000").mkdir()
    (tmp_path / "123.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "J000" / "J000000.80+004200.0.png").write_bytes(png_bytes())
    store = ImageStore(tmp_path, aliases={"456": ["J000000.80+004200.0"]})
    assert store.load(Subject("123")) == (tmp_path / "123.jpg").read_bytes(), "JPEG passed on unchanged"
    assert Image.open(io.BytesIO(store.load(Subject("456")))).format == "PNG"
    missing = store.load(Subject("789"))
    assert isinstance(missing, Reject) and missing.reason.startswith("missing") and "789" in missing.reason


def test_corrupt_and_truncated_and_too_large_images_are_rejected_with_the_file_named(tmp_path):
    (tmp_path / "1.jpg").write_bytes(jpeg_bytes((64, 64))[:300])  # truncated JPEG
    (tmp_path / "2.jpg").write_bytes(b"this is not an image at all")
    (tmp_path / "3.png").write_bytes(png_bytes((40, 40)))
    store = ImageStore(tmp_path, max_pixels=1000)
    for sid, category in (("1", "corrupt"), ("2", "corrupt"), ("3", "too large")):
        out = store.load(Subject(sid))
        assert isinstance(out, Reject), sid
        assert out.stage == "image" and out.id == sid
        assert out.reason.startswith(category) and str(tmp_path / f"{sid}.") in out.reason


@pytest.mark.parametrize("bands", [("g", "r", "z"), ("z", "r", "g")])
def test_fits_cube_becomes_rgb_png_north_up(tmp_path, bands):
    write_cube(tmp_path / "77.fits", bands)
    data = ImageStore(tmp_path).load(Subject("77"))
    assert not isinstance(data, Reject), data
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (16, 16)
    pixels = np.asarray(image).astype(int)  # (H, W, 3), row 0 = top
    red_blob, blue_blob, sky = pixels[0, 0], pixels[15, 15], pixels[0, 15]
    assert red_blob[0] > 200 and red_blob[2] < 30, red_blob  # z -> R, and north up
    assert blue_blob[2] > 200 and blue_blob[0] < 30, blue_blob  # g -> B
    assert sky.max() < 10, sky
    assert 0 < pixels[8, 8, 1] < 255 and pixels[8, 8, 1] > pixels[8, 8, 0]  # r -> G, not saturated


def test_gzipped_single_band_fits_is_grey(tmp_path):
    from astropy.io import fits

    image = np.zeros((16, 16), dtype=np.float32)
    image[6:10, 6:10] = 50.0
    fits.PrimaryHDU(image).writeto(tmp_path / "5.fits.gz")
    pixels = np.asarray(Image.open(io.BytesIO(ImageStore(tmp_path).load(Subject("5")))))
    assert pixels[7, 7, 0] == pixels[7, 7, 1] == pixels[7, 7, 2] > 200


def test_corrupt_fits_is_rejected(tmp_path):
    (tmp_path / "9.fits").write_bytes(b"SIMPLE  =                    T" + b"\0" * 50)
    out = ImageStore(tmp_path).load(Subject("9"))
    assert isinstance(out, Reject) and out.reason.startswith("corrupt") and "9.fits" in out.reason


# --- downloads ------------------------------------------------------------------------------------


class Server:
    """A loopback HTTP server: /flaky.jpg fails twice then works, /missing.jpg is 404, /big.jpg serves
    Range requests; every request is recorded."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests: list[tuple[str, str | None]] = []
        self.flaky_failures = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                outer.requests.append((self.path, self.headers.get("Range")))
                if self.path == "/missing.jpg":
                    self.send_error(404)
                    return
                if self.path == "/flaky.jpg" and outer.flaky_failures < 2:
                    outer.flaky_failures += 1
                    self.send_error(503)
                    return
                body, status = outer.payload, 200
                rng = self.headers.get("Range")
                if rng and self.path == "/big.jpg":
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    body, status = outer.payload[start:], 206
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server(jpeg_bytes((32, 32)))
    yield srv
    srv.close()


def test_download_retries_transient_failures_then_caches(server, tmp_path):
    subject = Subject("1", image_ref=f"{server.url}/flaky.jpg")
    with ImageStore(cache_dir=tmp_path / "cache", backoff=0.01) as store:
        assert store.load(subject) == server.payload
    assert [p for p, _ in server.requests] == ["/flaky.jpg"] * 3, "two 503s, then success"
    with ImageStore(cache_dir=tmp_path / "cache", backoff=0.01) as again:
        assert again.load(subject) == server.payload
        assert again.downloads == 0
    assert len(server.requests) == 3, "a cached file is never fetched again"
    assert not list((tmp_path / "cache").glob("*.part"))


def test_http_404_is_missing_without_retry(server):
    with ImageStore(backoff=0.01) as store:
        out = store.load(Subject("2", image_ref=f"{server.url}/missing.jpg"))
    assert isinstance(out, Reject) and out.reason.startswith("missing") and "HTTP 404" in out.reason
    assert len(server.requests) == 1


def test_partial_download_resumes_with_range(server, tmp_path):
    url = f"{server.url}/big.jpg"
    store = ImageStore(cache_dir=tmp_path, backoff=0.01)
    part = store.cache_path(url).with_name(store.cache_path(url).name + ".part")
    part.write_bytes(server.payload[:100])  # an earlier run stopped after 100 bytes
    assert store.load(Subject("3", image_ref=url)) == server.payload
    assert server.requests == [("/big.jpg", "bytes=100-")]
    store.close()


def test_server_down_counts_as_missing_and_is_not_fatal(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subjects = {str(i): Subject(str(i), image_ref=f"http://127.0.0.1:{port}/{i}.jpg") for i in range(5)}
    store = ImageStore(cache_dir=tmp_path, retries=1, backoff=0.01, host_failure_limit=2, timeout=2)
    rejects = fetch_images(subjects, store, workers=1)
    store.close()
    assert [r.id for r in rejects] == [str(i) for i in range(5)]
    assert all(r.reason.startswith("missing") for r in rejects)
    assert sum("is down" in r.reason for r in rejects) == 3, "after 2 failures the host is skipped"
    assert all(s.image_bytes is None for s in subjects.values())


def test_offline_mode_uses_only_the_cache(server, tmp_path):
    url = f"{server.url}/flaky.jpg"
    out = ImageStore(cache_dir=tmp_path, offline=True).load(Subject("4", image_ref=url))
    assert isinstance(out, Reject) and "offline" in out.reason and server.requests == []


def test_fetch_images_fills_subjects_concurrently_in_order(server, tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "a.jpg").write_bytes(jpeg_bytes())
    subjects = {
        "a": Subject("a"),
        "b": Subject("b", image_ref=f"{server.url}/ok_b.jpg"),
        "c": Subject("c", image_ref=f"{server.url}/missing.jpg"),
        "d": Subject("d"),
        "e": Subject("e", image_ref=f"{server.url}/ok_e.jpg"),
    }
    with ImageStore(tmp_path / "local", cache_dir=tmp_path / "cache", backoff=0.01) as store:
        rejects = fetch_images(subjects, store, workers=4)
    assert [r.id for r in rejects] == ["c", "d"]
    assert subjects["a"].image_bytes == (tmp_path / "local" / "a.jpg").read_bytes()
    assert subjects["a"].image_ref == str(tmp_path / "local" / "a.jpg")
    assert subjects["b"].image_bytes == server.payload == subjects["e"].image_bytes
    assert subjects["b"].image_ref.endswith("/ok_b.jpg")
