"""Test and benchmark utilities (the tiny offline models are in `gzllava.tiny`)."""

from __future__ import annotations


class ImageServer:
    """A loopback HTTP server (127.0.0.1, a thread) for image-URL tests; `url(path)` gives a route's URL.

    Routes: `files` maps a path to `(body, content_type)` (`(body, content_type, False)`: no Content-Length header,
    the body ends when the connection closes); `/slow` never answers (until the server stops);
    `/drip` sends one byte every 0.1 s for as long as the client reads; any other path is a 404.
    """

    def __init__(self, files: dict[str, tuple] | None = None):
        import http.server
        import threading

        self.files = dict(files or {})
        self.stopping = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                if path == "/slow":
                    server.stopping.wait(60)
                    return
                if path == "/drip":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.end_headers()
                    try:
                        while not server.stopping.wait(0.1):
                            self.wfile.write(b"\0")
                            self.wfile.flush()
                    except OSError:  # the client gave up
                        pass
                    return
                if path not in server.files:
                    self.send_error(404, "Not Found")
                    return
                body, content_type, *declare_length = server.files[path]
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                if declare_length != [False]:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
