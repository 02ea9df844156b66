"""Clients of imgspool's HTTP drop-in (stdlib only): POST /images/upload with a multipart body
built by hand, the file streamed from disk (sendfile), and a pool of client threads that take
photos from one shared list. A 503 is retried after its Retry-After."""
import collections
import http.client
import json
import os
import socket
import threading
import time
import uuid

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def free_port(host="127.0.0.1"):
    """A port nothing listens on right now (the daemon binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def multipart_envelope(field, filename, content_type, boundary):
    """The bytes before and after the file's bytes in a multipart/form-data body of one file field."""
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{quoted}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode("utf-8")
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    return head, tail


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def retry_after(self, default=1.0):
        try:
            return max(0.0, float(self.headers.get("retry-after", default)))
        except ValueError:
            return default


def upload(host, port, path, token="", timeout=300):
    """One POST /images/upload of the file at `path` (field "image") on a connection of its own.
    Returns the Answer; raises OSError/http.client.HTTPException when the exchange breaks
    (e.g. the server answered early and closed while the body was still being sent)."""
    boundary = "imgspool-bench-" + uuid.uuid4().hex
    name = os.path.basename(path)
    ctype = CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")
    head, tail = multipart_envelope("image", name, ctype, boundary)
    size = os.path.getsize(path)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest("POST", "/images/upload", skip_accept_encoding=True)
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        if token:
            conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Connection", "close")
        conn.endheaders()
        try:
            conn.send(head)
            with open(path, "rb") as f:
                conn.sock.sendfile(f)
            conn.send(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # an early answer (401, 413, 503) closes the connection: read it below
        resp = conn.getresponse()
        body = resp.read()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


def get_json(host, port, target, token="", timeout=30):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", target, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


class UploadPool:
    """`clients` threads upload `files` (one shared list, taken in order) to host:port.
    accepted: {upload_id: {"path", "sent", "answered", "attempts", "answer"}} as 202s arrive
    (times are time.monotonic()); busy: 503s retried; broken: exchanges that broke and were
    retried after a second; errors: answers that were neither 202 nor 503 (the pool stops)."""

    def __init__(self, host, port, files, clients=4, token="", max_broken=20):
        self.host, self.port, self.token = host, port, token
        self.todo = collections.deque(files)
        self.total = len(files)
        self.clients = clients
        self.max_broken = max_broken
        self.lock = threading.Lock()
        self.accepted = {}
        self.busy = 0
        self.broken = 0
        self.errors = []
        self.first_sent = None
        self.threads = []

    def start(self):
        for i in range(self.clients):
            t = threading.Thread(target=self._client, name=f"upload-client-{i}", daemon=True)
            self.threads.append(t)
            t.start()

    def finished(self):
        return not any(t.is_alive() for t in self.threads)

    def join(self, timeout=None):
        for t in self.threads:
            t.join(timeout)

    def _next(self):
        with self.lock:
            if self.errors or not self.todo:
                return None
            return self.todo.popleft()

    def _client(self):
        while (path := self._next()) is not None:
            attempts = 0
            sent = time.monotonic()
            with self.lock:
                if self.first_sent is None or sent < self.first_sent:
                    self.first_sent = sent
            while True:
                attempts += 1
                try:
                    answer = upload(self.host, self.port, path, self.token)
                except (OSError, http.client.HTTPException) as e:
                    with self.lock:
                        self.broken += 1
                        if self.broken > self.max_broken:
                            self.errors.append(f"{path}: {self.broken} broken exchanges, the last: {e!r}")
                            return
                    time.sleep(1.0)
                    continue
                if answer.status == 503:
                    with self.lock:
                        self.busy += 1
                    time.sleep(answer.retry_after())
                    continue
                break
            answered = time.monotonic()
            if answer.status != 202:
                with self.lock:
                    self.errors.append(f"{path}: HTTP {answer.status}: {answer.body[:300]!r}")
                return
            try:
                body = answer.json()
                upload_id = body["uploadId"]
            except (ValueError, KeyError) as e:
                with self.lock:
                    self.errors.append(f"{path}: 202 without an uploadId ({e!r}): {answer.body[:300]!r}")
                return
            with self.lock:
                self.accepted[upload_id] = {"path": path, "sent": sent, "answered": answered,
                                            "attempts": attempts, "answer": body}
