"""A loopback Hugging Face Hub for tests: the subset of the Hub protocol that `huggingface_hub`,
`transformers` and `datasets` use to push and pull models and datasets.

Stdlib only (PyYAML is used when importable, to validate and parse README metadata as the Hub
does). Repos live in memory: models, datasets and spaces, each with a single `main` branch and a
linear history of commits with 40-hex ids; `revision` may be `main` or any commit id.

Routes (the shapes follow huggingface_hub 2.4's `hf_api.py`, `_commit_api.py`, `lfs.py` and
`file_download.py`; "{t}" is models|datasets|spaces, "{p}" the URL prefix: "" for models,
"datasets/" or "spaces/"):

    GET    /api/whoami-v2
    GET    /api/agent-harnesses                   empty registry (the client fetches it best effort)
    POST   /api/repos/create                      409 when the repo exists
    DELETE /api/repos/delete
    POST   /api/validate-yaml
    GET    /api/{t}/{repo}[/revision/{rev}]        repo info (sha, siblings, cardData)
    GET    /api/{t}/{repo}/tree/{rev}[/{path}]     ?recursive=&expand=; 404 EntryNotFound for a missing folder
    POST   /api/{t}/{repo}/paths-info/{rev}
    GET    /api/{t}/{repo}/commits/{rev}
    GET    /api/{t}/{repo}/refs
    POST   /api/{t}/{repo}/preupload/{rev}         regular vs LFS upload mode
    POST   /api/{t}/{repo}/commit/{rev}            NDJSON: header, file, lfsFile, deletedFile, deletedFolder
    POST   /{p}{repo}.git/info/lfs/objects/batch   LFS batch API (upload only)
    PUT    /{p}{repo}.git/info/lfs/objects/{oid}   LFS object upload (sha256 and size checked)
    POST   /{p}{repo}.git/info/lfs/objects/verify
    GET    /{p}{repo}/resolve/{rev}/{path}         also HEAD; Range (206), ETag, X-Repo-Commit, X-Linked-*

Errors carry the `X-Error-Code` header the client turns into typed exceptions: `RepoNotFound`,
`RevisionNotFound`, `EntryNotFound` (404). Any other route gets a 404 that is logged at WARNING
so a missing route shows up in the test output.

Usage:
    with HubServer() as hub:              # or hub.start() / hub.stop()
        os.environ["HF_ENDPOINT"] = hub.url   # before huggingface_hub is imported
    python tests/hub_server.py --port 8000 [-v]   # standalone, for manual checks
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import fnmatch
import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger("hub_server")

USER_NAME = "local-user"
MAIN_BRANCH = "main"
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}

# The Hub stores a file with LFS when it matches a `filter=lfs` rule of the repo's .gitattributes,
# is larger than 10 MB, or looks binary (a NUL byte in its first bytes, git's own heuristic).
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024

_LFS_RULE = "filter=lfs diff=lfs merge=lfs -text"
_COMMON_LFS_PATTERNS = [
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
    "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
    "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*",
    "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
]
_DATASET_LFS_PATTERNS = ["*.mp3", "*.ogg", "*.wav", "*.jpg", "*.jpeg", "*.png", "*.webp", "*.lz4", "*.mds"]

_COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def default_gitattributes(repo_type: str) -> bytes:
    """The .gitattributes the Hub puts in a new repo's first commit."""
    patterns = _COMMON_LFS_PATTERNS + (_DATASET_LFS_PATTERNS if repo_type == "dataset" else [])
    return "".join(f"{pattern} {_LFS_RULE}\n" for pattern in patterns).encode()


def git_blob_sha1(data: bytes) -> str:
    """Git's object id of a blob: what the Hub returns as `oid`/ETag for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The pointer file git stores in place of an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# Storage model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    """A file at some commit. LFS files keep their content too: the server has no separate CDN."""

    content: bytes
    is_lfs: bool
    sha256: str
    git_oid: str  # sha1 of the blob, or of the LFS pointer for LFS files (as on the Hub)
    pointer_size: int | None

    @classmethod
    def create(cls, content: bytes, is_lfs: bool) -> StoredFile:
        sha256 = hashlib.sha256(content).hexdigest()
        if is_lfs:
            pointer = lfs_pointer(sha256, len(content))
            return cls(content, True, sha256, git_blob_sha1(pointer), len(pointer))
        return cls(content, False, sha256, git_blob_sha1(content), None)

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def etag(self) -> str:
        # The Hub's ETag is the sha256 for LFS files and the git blob id for regular files.
        return self.sha256 if self.is_lfs else self.git_oid

    def tree_entry(self, path: str) -> dict:
        entry = {"type": "file", "oid": self.git_oid, "size": self.size, "path": path}
        if self.is_lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": self.pointer_size}
        return entry


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, StoredFile]

    def folders(self) -> set[str]:
        """Every folder that holds a file at this commit ("" excluded)."""
        out: set[str] = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return out

    def files_under(self, folder: str) -> dict[str, StoredFile]:
        prefix = f"{folder}/" if folder else ""
        return {path: f for path, f in self.files.items() if path.startswith(prefix)}

    def folder_oid(self, folder: str) -> str:
        listing = "".join(f"{p} {f.git_oid}\n" for p, f in sorted(self.files_under(folder).items()))
        return hashlib.sha1(f"tree {folder}\n{listing}".encode()).hexdigest()


@dataclass
class Repo:
    repo_type: str  # "model" | "dataset" | "space"
    repo_id: str
    private: bool
    created_at: str
    commits: list[Commit] = field(default_factory=list)  # oldest first

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    @property
    def url_path(self) -> str:
        return f"{URL_PREFIXES[self.repo_type]}{self.repo_id}"

    def resolve(self, revision: str) -> Commit:
        """Commit for `main` or a commit id, else 404 RevisionNotFound."""
        if revision == MAIN_BRANCH:
            return self.head
        if _COMMIT_ID.match(revision):
            for commit in self.commits:
                if commit.oid == revision:
                    return commit
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def add_commit(self, title: str, message: str, files: dict[str, StoredFile]) -> Commit:
        parent = self.commits[-1].oid if self.commits else None
        seed = f"{self.repo_type}/{self.repo_id}\n{parent}\n{len(self.commits)}\n{title}\n{message}\n"
        seed += "".join(f"{p} {f.git_oid}\n" for p, f in sorted(files.items()))
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, title, message, _now_iso(), files)
        self.commits.append(commit)
        return commit

    def last_commit_touching(self, path: str, upto: Commit) -> Commit:
        """Newest commit (at or before `upto`) that changed `path` (a file or a folder)."""
        history = self.commits[: self.commits.index(upto) + 1]

        def fingerprint(commit: Commit) -> str:
            stored = commit.files.get(path)
            return stored.git_oid if stored is not None else commit.folder_oid(path)

        for newer, older in zip(reversed(history), reversed(history[:-1])):
            if fingerprint(newer) != fingerprint(older):
                return newer
        return history[0]


class HubError(Exception):
    """An error answer: status code, message, and the `X-Error-Code` the client dispatches on."""

    def __init__(self, status: int, message: str, error_code: str | None = None,
                 headers: dict | None = None, body: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = headers or {}
        self.body = body or {}  # extra JSON fields next to "error"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it: tests assert on these (e.g. no GET after an ETag hit)."""

    method: str
    path: str  # decoded path, without the query string
    status: int
    range: str | None


class HubState:
    """All repos plus the LFS object store (shared by all repos, like the Hub's dedup), behind one lock."""

    def __init__(self, lfs_size_threshold: int = LFS_SIZE_THRESHOLD):
        self.lfs_size_threshold = lfs_size_threshold
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content
        self.lfs_announced_sizes: dict[str, int] = {}  # sha256 -> size promised in the batch call
        self.lock = threading.RLock()

    def get_repo(self, repo_type: str, repo_id: str, authorized: bool) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not authorized):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def upload_mode(self, repo: Repo, path: str, size: int, sample: bytes) -> str:
        if size > self.lfs_size_threshold or b"\0" in sample:
            return "lfs"
        gitattributes = repo.head.files.get(".gitattributes")
        if gitattributes is not None:
            for line in gitattributes.content.decode(errors="replace").splitlines():
                pattern, _, attributes = line.strip().partition(" ")
                if pattern and not pattern.startswith("#") and "filter=lfs" in attributes:
                    target = path if "/" in pattern else path.rsplit("/", 1)[-1]
                    if fnmatch.fnmatchcase(target, pattern):
                        return "lfs"
        return "regular"


# ---------------------------------------------------------------------------------------------
# HTTP layer
# ---------------------------------------------------------------------------------------------

_T = r"(?P<type>models|datasets|spaces)"
_REPO = r"(?P<repo>[^/]+/[^/]+)"
_PREFIXED_REPO = r"(?:(?P<type>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+?)"
_ROUTES: list[tuple[str, re.Pattern, str]] = [
    (method, re.compile(f"^{pattern}$"), handler)
    for method, pattern, handler in [
        ("GET", r"/api/whoami-v2", "whoami"),
        ("GET", r"/api/agent-harnesses", "agent_harnesses"),
        ("POST", r"/api/repos/create", "create_repo"),
        ("DELETE", r"/api/repos/delete", "delete_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("GET", rf"/api/{_T}/{_REPO}", "repo_info"),
        ("GET", rf"/api/{_T}/{_REPO}/revision/(?P<rev>[^/]+)", "repo_info"),
        ("GET", rf"/api/{_T}/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
        ("POST", rf"/api/{_T}/{_REPO}/paths-info/(?P<rev>[^/]+)", "paths_info"),
        ("GET", rf"/api/{_T}/{_REPO}/commits/(?P<rev>[^/]+)", "commits"),
        ("GET", rf"/api/{_T}/{_REPO}/refs", "refs"),
        ("POST", rf"/api/{_T}/{_REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
        ("POST", rf"/api/{_T}/{_REPO}/commit/(?P<rev>[^/]+)", "commit"),
        ("POST", rf"/{_PREFIXED_REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
        ("POST", rf"/{_PREFIXED_REPO}\.git/info/lfs/objects/verify", "lfs_verify"),
        ("PUT", rf"/{_PREFIXED_REPO}\.git/info/lfs/objects/(?P<oid>[0-9a-f]{{64}})", "lfs_put"),
        ("GET", rf"/{_PREFIXED_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
        ("HEAD", rf"/{_PREFIXED_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]
]


class HubRequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps the client's connections alive; every answer therefore has a Content-Length
    # and every request body is read in full before routing.
    protocol_version = "HTTP/1.1"
    server: _HubHTTPServer

    # -- plumbing ---------------------------------------------------------------------------

    def log_message(self, format: str, *args) -> None:  # http.server's own access log -> DEBUG
        logger.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # httpx streams file objects of unknown length (the LFS PUT) with chunked encoding.
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.body = self._read_body()
        self.authorized = self.headers.get("Authorization", "").startswith("Bearer ")
        self.range_header = self.headers.get("Range")
        try:
            for method, pattern, handler_name in _ROUTES:
                match = pattern.match(url.path) if method == self.command else None
                if match:
                    params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    getattr(self, f"handle_{handler_name}")(**params)
                    break
            else:
                logger.warning("hub_server: no route for %s %s (answered 404)", self.command, self.path)
                raise HubError(404, f"The loopback Hub has no route for {self.command} {url.path}")
        except HubError as error:
            self._send_error(error)
        except Exception as error:  # a server bug: answer 500 and keep the traceback in the log
            logger.exception("hub_server: %s %s failed", self.command, self.path)
            self._send_error(HubError(500, f"{type(error).__name__}: {error}"))

    def _start_response(self, status: int) -> None:
        # Recorded before any byte goes out: a test that saw the answer also sees the record.
        path = unquote(urlsplit(self.path).path)
        self.server.hub.record(RecordedRequest(self.command, path, status, self.range_header))
        self.send_response(status)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self._start_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, payload: object, status: int = 200, headers: dict | None = None,
                   content_type: str = "application/json") -> None:
        self._send(status, json.dumps(payload).encode(), content_type, headers)

    def _send_error(self, error: HubError) -> None:
        headers = {"X-Error-Message": error.message, **error.headers}
        if error.error_code:
            headers["X-Error-Code"] = error.error_code
        self._send_json({"error": error.message, **error.body}, status=error.status, headers=headers)

    def _json_body(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as error:
            raise HubError(400, f"Request body is not valid JSON: {error}") from None

    def _require_auth(self) -> None:
        if not self.authorized:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, type: str | None, repo: str) -> Repo:
        repo_type = REPO_TYPES.get(type, type) if type else "model"
        return self.server.hub.state.get_repo(repo_type, repo, self.authorized)

    def _repo_url(self, repo: Repo) -> str:
        return f"{self.server.hub.url}/{repo.url_path}"

    # -- account and repos ------------------------------------------------------------------

    def handle_whoami(self) -> None:
        self._require_auth()
        self._send_json({
            "type": "user", "id": "0" * 24, "name": USER_NAME, "fullname": "Loopback Test User",
            "email": None, "emailVerified": False, "isPro": False, "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": "write"}},
        })

    def handle_agent_harnesses(self) -> None:
        # huggingface_hub fetches this registry (best effort) to tag requests made by AI agents.
        self._send_json({"standardEnvVars": [], "harnesses": {}})

    def handle_create_repo(self) -> None:
        self._require_auth()
        payload = self._json_body()
        repo_type = payload.get("type") or "model"
        if repo_type not in URL_PREFIXES:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        name = payload.get("name")
        if not name or "/" in name:
            raise HubError(400, f"Invalid repo name {name!r}")
        repo_id = f"{payload.get('organization') or USER_NAME}/{name}"
        private = payload.get("private") or payload.get("visibility") == "private"
        state = self.server.hub.state
        with state.lock:
            existing = state.repos.get((repo_type, repo_id))
            if existing is not None:
                # create_repo(exist_ok=True) reads the repo url from the 409 answer.
                raise HubError(409, f"You already created this {repo_type} repo: {repo_id}",
                               body={"url": self._repo_url(existing)})
            repo = Repo(repo_type, repo_id, bool(private), _now_iso())
            gitattributes = StoredFile.create(default_gitattributes(repo_type), is_lfs=False)
            repo.add_commit("initial commit", "", {".gitattributes": gitattributes})
            state.repos[(repo_type, repo_id)] = repo
        logger.info("hub_server: created %s %s", repo_type, repo_id)
        self._send_json({"url": self._repo_url(repo), "name": repo_id, "id": repo_id})

    def handle_delete_repo(self) -> None:
        self._require_auth()
        payload = self._json_body()
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or USER_NAME}/{payload.get('name')}"
        state = self.server.hub.state
        with state.lock:
            if state.repos.pop((repo_type, repo_id), None) is None:
                raise HubError(404, "Repository not found", "RepoNotFound")
        self._send_json({})

    def handle_validate_yaml(self) -> None:
        content = self._json_body().get("content", "")
        errors = []
        try:
            _parse_card_metadata(content)
        except ValueError as error:
            errors.append({"message": str(error)})
        self._send_json({"errors": errors, "warnings": []}, status=400 if errors else 200)

    def handle_repo_info(self, type: str, repo: str, rev: str = MAIN_BRANCH) -> None:
        hub_repo = self._repo(type, repo)
        with self.server.hub.state.lock:
            commit = hub_repo.resolve(rev)
        with_blobs = self.query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, stored in sorted(commit.files.items()):
            sibling: dict = {"rfilename": path}
            if with_blobs:
                sibling.update(size=stored.size, blobId=stored.git_oid)
                if stored.is_lfs:
                    sibling["lfs"] = {"size": stored.size, "sha256": stored.sha256, "pointerSize": stored.pointer_size}
            siblings.append(sibling)
        readme = commit.files.get("README.md")
        try:
            card_data = _parse_card_metadata(readme.content.decode()) if readme else None
        except ValueError:
            card_data = None
        self._send_json({
            "_id": hashlib.sha1(hub_repo.url_path.encode()).hexdigest()[:24],
            "id": hub_repo.repo_id,
            "author": hub_repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "createdAt": hub_repo.created_at,
            "lastModified": commit.date,
            "private": hub_repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "cardData": card_data,
            "siblings": siblings,
            "usedStorage": sum(f.size for f in commit.files.values()),
        })

    # -- listing ----------------------------------------------------------------------------

    def _entry(self, hub_repo: Repo, commit: Commit, path: str, expand: bool) -> dict:
        stored = commit.files.get(path)
        if stored is not None:
            entry = stored.tree_entry(path)
        else:
            entry = {"type": "directory", "oid": commit.folder_oid(path), "size": 0, "path": path}
        if expand:
            last = hub_repo.last_commit_touching(path, upto=commit)
            entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        return entry

    def handle_tree(self, type: str, repo: str, rev: str, path: str = "") -> None:
        hub_repo = self._repo(type, repo)
        path = path.strip("/")
        recursive = self.query.get("recursive", "").lower() in ("1", "true")
        expand = self.query.get("expand", "").lower() in ("1", "true")
        with self.server.hub.state.lock:
            commit = hub_repo.resolve(rev)
            folders = commit.folders()
            if path and path not in folders:
                raise HubError(404, f"{path} does not exist on {rev!r}", "EntryNotFound",
                               headers={"X-Repo-Commit": commit.oid})
            prefix = f"{path}/" if path else ""
            children = [p for p in sorted(set(commit.files) | folders) if p.startswith(prefix)]
            if not recursive:
                children = [p for p in children if "/" not in p[len(prefix):]]
            entries = [self._entry(hub_repo, commit, p, expand) for p in children]
        self._send_json(entries, headers={"X-Repo-Commit": commit.oid})

    def handle_paths_info(self, type: str, repo: str, rev: str) -> None:
        hub_repo = self._repo(type, repo)
        if self.headers.get("Content-Type", "").startswith("application/json"):
            payload = self._json_body()
            paths, expand = payload.get("paths", []), bool(payload.get("expand"))
        else:  # huggingface_hub posts a form: paths=a&paths=b&expand=False
            form = parse_qs(self.body.decode())
            paths, expand = form.get("paths", []), form.get("expand", ["False"])[-1].lower() in ("1", "true")
        with self.server.hub.state.lock:
            commit = hub_repo.resolve(rev)
            folders = commit.folders()
            # Paths that do not exist are left out, as on the Hub.
            entries = [
                self._entry(hub_repo, commit, p.strip("/"), expand)
                for p in paths
                if p.strip("/") in commit.files or p.strip("/") in folders
            ]
        self._send_json(entries, headers={"X-Repo-Commit": commit.oid})

    def handle_commits(self, type: str, repo: str, rev: str) -> None:
        hub_repo = self._repo(type, repo)
        with self.server.hub.state.lock:
            head = hub_repo.resolve(rev)
            history = hub_repo.commits[: hub_repo.commits.index(head) + 1]
        self._send_json([
            {"id": c.oid, "title": c.title, "message": c.message, "date": c.date, "authors": [{"user": USER_NAME}]}
            for c in reversed(history)
        ])

    def handle_refs(self, type: str, repo: str) -> None:
        hub_repo = self._repo(type, repo)
        branch = {"name": MAIN_BRANCH, "ref": f"refs/heads/{MAIN_BRANCH}", "targetCommit": hub_repo.head.oid}
        self._send_json({"branches": [branch], "converts": [], "tags": [], "pullRequests": []})

    # -- upload -----------------------------------------------------------------------------

    def _writable_branch(self, hub_repo: Repo, rev: str) -> None:
        self._require_auth()
        if self.query.get("create_pr"):
            raise HubError(400, "The loopback Hub does not support pull requests (create_pr)")
        if rev != MAIN_BRANCH:
            hub_repo.resolve(rev)  # 404 RevisionNotFound for unknown names
            raise HubError(400, f"Can only commit to the {MAIN_BRANCH!r} branch, not {rev!r}")

    def handle_preupload(self, type: str, repo: str, rev: str) -> None:
        hub_repo = self._repo(type, repo)
        self._writable_branch(hub_repo, rev)
        state = self.server.hub.state
        answers = []
        with state.lock:
            head = hub_repo.head
            for item in self._json_body().get("files", []):
                path, size = item["path"], int(item["size"])
                mode = state.upload_mode(hub_repo, path, size, base64.b64decode(item.get("sample", "")))
                existing = head.files.get(path)
                # The client compares this with its own oid to skip unchanged files: sha256 for
                # LFS files, git blob sha1 for regular ones (see CommitOperationAdd._local_oid).
                oid = None if existing is None else (existing.sha256 if existing.is_lfs else existing.git_oid)
                answers.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._send_json({"files": answers, "commitOid": head.oid})

    def handle_commit(self, type: str, repo: str, rev: str) -> None:
        hub_repo = self._repo(type, repo)
        self._writable_branch(hub_repo, rev)
        try:
            lines = [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise HubError(400, f"Commit payload is not valid NDJSON: {error}") from None
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "Commit payload must start with a 'header' line")
        header = lines[0]["value"]
        state = self.server.hub.state
        with state.lock:
            head = hub_repo.head
            parent = header.get("parentCommit")
            if parent is not None and parent != head.oid:
                raise HubError(412, f"A commit has happened since {parent}. Please refresh and try again.")
            files = dict(head.files)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value", {})
                path = _checked_repo_path(value.get("path", ""))
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise HubError(400, f"Unsupported encoding {value.get('encoding')!r} for {path}")
                    files[path] = StoredFile.create(base64.b64decode(value["content"]), is_lfs=False)
                elif key == "lfsFile":
                    oid = value.get("oid", "")
                    content = state.lfs_objects.get(oid)
                    if content is None:
                        raise HubError(400, f"LFS object {oid} for {path} was never uploaded")
                    if "size" in value and int(value["size"]) != len(content):
                        raise HubError(400, f"Size {value['size']} given for {path} does not match LFS object {oid}")
                    files[path] = StoredFile.create(content, is_lfs=True)
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    doomed = [p for p in files if p.startswith(prefix)]
                    if not doomed:
                        raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in doomed:
                        del files[p]
                else:
                    raise HubError(400, f"Unknown commit operation {key!r} (path {path!r})")
            commit = hub_repo.add_commit(header.get("summary") or "", header.get("description") or "", files)
        logger.info("hub_server: commit %s on %s %s (%d files)",
                    commit.oid[:8], hub_repo.repo_type, hub_repo.repo_id, len(files))
        self._send_json({
            "success": True,
            "commitOid": commit.oid,
            "commitUrl": f"{self._repo_url(hub_repo)}/commit/{commit.oid}",
            "hookOutput": "",
            "pullRequestUrl": None,
        })

    # -- Git LFS (https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md) ------------

    def handle_lfs_batch(self, repo: str, type: str | None = None) -> None:
        hub_repo = self._repo(type, repo)
        self._require_auth()
        payload = self._json_body()
        if payload.get("operation") != "upload":
            raise HubError(400, f"The loopback Hub's LFS batch API only does uploads, not {payload.get('operation')!r}")
        state = self.server.hub.state
        base = f"{self._repo_url(hub_repo)}.git/info/lfs/objects"
        objects = []
        with state.lock:
            for obj in payload.get("objects", []):
                oid, size = obj.get("oid"), obj.get("size")
                if not (isinstance(oid, str) and _SHA256.match(oid) and isinstance(size, int) and size >= 0):
                    problem = {"code": 422, "message": "oid must be a sha256 hex digest and size an int"}
                    objects.append({"oid": str(oid), "size": size if isinstance(size, int) else -1, "error": problem})
                elif oid in state.lfs_objects:
                    objects.append({"oid": oid, "size": size})  # already stored: no actions, nothing to upload
                else:
                    state.lfs_announced_sizes[oid] = size
                    objects.append({"oid": oid, "size": size, "authenticated": True, "actions": {
                        "upload": {"href": f"{base}/{oid}"},
                        "verify": {"href": f"{base}/verify"},
                    }})
        self._send_json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                        content_type="application/vnd.git-lfs+json")

    def handle_lfs_put(self, repo: str, oid: str, type: str | None = None) -> None:
        self._repo(type, repo)
        state = self.server.hub.state
        actual = hashlib.sha256(self.body).hexdigest()
        if actual != oid:
            raise HubError(400, f"LFS upload for {oid} has sha256 {actual}")
        with state.lock:
            announced = state.lfs_announced_sizes.get(oid)
            if announced is not None and announced != len(self.body):
                raise HubError(400, f"LFS upload for {oid} has {len(self.body)} bytes, the batch call said {announced}")
            state.lfs_objects[oid] = self.body
        self._send(200, b"", "text/plain", {"ETag": f'"{oid}"'})

    def handle_lfs_verify(self, repo: str, type: str | None = None) -> None:
        self._repo(type, repo)
        payload = self._json_body()
        content = self.server.hub.state.lfs_objects.get(payload.get("oid", ""))
        if content is None or len(content) != payload.get("size"):
            raise HubError(404, f"LFS object {payload.get('oid')} ({payload.get('size')} bytes) is not stored")
        self._send_json({}, content_type="application/vnd.git-lfs+json")

    # -- download ---------------------------------------------------------------------------

    def handle_resolve(self, repo: str, rev: str, path: str, type: str | None = None) -> None:
        hub_repo = self._repo(type, repo)
        with self.server.hub.state.lock:
            commit = hub_repo.resolve(rev)
        stored = commit.files.get(path)
        if stored is None:
            # X-Repo-Commit lets the client cache the miss (.no_exist) for this commit.
            raise HubError(404, "Entry not found", "EntryNotFound", headers={"X-Repo-Commit": commit.oid})
        filename = path.rsplit("/", 1)[-1]
        headers = {
            "ETag": f'"{stored.etag}"',
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"inline; filename*=UTF-8''{filename}; filename=\"{filename}\";",
        }
        if stored.is_lfs:
            headers["X-Linked-Etag"] = f'"{stored.sha256}"'
            headers["X-Linked-Size"] = stored.size
        body, status = stored.content, 200
        if self.range_header:
            start, end = _parse_range(self.range_header, stored.size)
            body, status = stored.content[start : end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{stored.size}"
        cut = self.server.hub.take_fault(self.command, path)
        if cut is not None:
            # Fault injection: announce the full length, send `cut` bytes, drop the connection.
            self._start_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, str(value))
            self.end_headers()
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(status, body, "application/octet-stream", headers)


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """Inclusive byte range of a single-range `Range` header, else 416."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not match or match.groups() == ("", ""):
        raise HubError(416, f"Unsupported Range header {header!r}", headers={"Content-Range": f"bytes */{size}"})
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise HubError(416, f"Range {header!r} is outside the file ({size} bytes)",
                       headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _checked_repo_path(path: str) -> str:
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in path.rstrip("/").split("/")):
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


def _parse_card_metadata(content: str) -> dict | None:
    """YAML front matter of a README as a dict, None without front matter; ValueError if malformed."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
    if match is None:
        return None
    try:
        import yaml  # a huggingface_hub dependency; without it the metadata is accepted unchecked
    except ImportError:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        raise ValueError(f"README.md metadata is not valid YAML: {error}") from None
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"README.md metadata must be a mapping, got {type(data).__name__}")
    return data or {}


class _HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    hub: HubServer


class HubServer:
    """A loopback Hub on 127.0.0.1. `url` is what HF_ENDPOINT must be set to."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, lfs_size_threshold: int = LFS_SIZE_THRESHOLD):
        self.state = HubState(lfs_size_threshold)
        self.requests: list[RecordedRequest] = []
        self._faults: dict[tuple[str, str], int] = {}
        self._record_lock = threading.Lock()
        self._httpd = _HubHTTPServer((host, port), HubRequestHandler, bind_and_activate=False)
        self._httpd.hub = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._httpd.allow_reuse_address = True
        self._httpd.server_bind()
        self._httpd.server_activate()
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        logger.info("hub_server: listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- test helpers -----------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._record_lock:
            self.requests.append(request)

    def requests_for(self, path_suffix: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose decoded path ends with `path_suffix` (optionally one method)."""
        with self._record_lock:
            return [r for r in self.requests if r.path.endswith(path_suffix) and method in (None, r.method)]

    def cut_next_download(self, path_in_repo: str, after_bytes: int) -> None:
        """Fault injection: the next GET of `path_in_repo` sends `after_bytes` bytes, then hangs up."""
        with self._record_lock:
            self._faults[("GET", path_in_repo)] = after_bytes

    def take_fault(self, method: str, path_in_repo: str) -> int | None:
        with self._record_lock:
            return self._faults.pop((method, path_in_repo), None)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the loopback Hub-protocol test server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request (DEBUG)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    server = HubServer(args.host, args.port).start()
    print(f"Loopback Hub at {server.url}\n"
          f"  export HF_ENDPOINT={server.url} HF_HUB_DISABLE_XET=1 HF_TOKEN=hf_local_test_token")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
