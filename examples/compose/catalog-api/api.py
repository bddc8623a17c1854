"""The catalogue's API: GET / answers one item of the catalogue (a random one, as a home page
showing a product), GET /item/<n> item n, GET /healthz 200. Each item is read from memcached
and, on a miss, from PostgreSQL (a query of QUERY_MS) through a pool of POOL connections, then
put in the cache. A cache that does not answer is a miss (after CACHE_TIMEOUT_MS).

Configured by DATABASE_URL (libpq), MEMCACHED (host:port), POOL, QUERY_MS, ITEMS, ITEM_BYTES.
The answer says `x-cache: hit` or `miss`."""

import os
import queue
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
from pymemcache.client.base import Client

DATABASE_URL = os.environ["DATABASE_URL"]
HOST, _, PORT = os.environ.get("MEMCACHED", "cache:11211").partition(":")
POOL = int(os.environ.get("POOL", "4"))
QUERY_MS = int(os.environ.get("QUERY_MS", "50"))
ITEMS = int(os.environ.get("ITEMS", "500"))
ITEM_BYTES = int(os.environ.get("ITEM_BYTES", "4096"))
CACHE_TIMEOUT = int(os.environ.get("CACHE_TIMEOUT_MS", "100")) / 1000

connections = queue.Queue()
local = threading.local()


def cache():
    if not hasattr(local, "mc"):
        local.mc = Client((HOST, int(PORT or 11211)), connect_timeout=CACHE_TIMEOUT,
                          timeout=CACHE_TIMEOUT)
    return local.mc


def from_db(n):
    try:
        conn = connections.get_nowait()
    except queue.Empty:
        conn = None
    if conn is None:
        conn = psycopg2.connect(DATABASE_URL)
        conn.autocommit = True
    ok = False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(%s), repeat(md5(%s::text), %s)",
                        (QUERY_MS / 1000, n, ITEM_BYTES // 32))
            value = cur.fetchone()[1].encode()
        ok = True
        return value
    finally:
        if ok:
            connections.put(conn)
        else:
            conn.close()


# At most POOL queries at once: the others wait for a connection (the pool's queue).
slots = threading.BoundedSemaphore(POOL)


def item(n):
    key = f"item/{n}"
    try:
        value = cache().get(key)
    except Exception:
        local.__dict__.pop("mc", None)
        value = None
    if value is not None:
        return value, "hit"
    with slots:
        value = from_db(n)
    try:
        cache().set(key, value)
    except Exception:
        local.__dict__.pop("mc", None)
    return value, "miss"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/healthz":
            return self.answer(200, b"ok", None)
        if self.path == "/":
            n = random.randint(1, ITEMS)
        elif self.path.startswith("/item/") and self.path[6:].isdigit():
            n = int(self.path[6:])
        else:
            return self.answer(404, b"no such page", None)
        try:
            value, how = item(n)
        except Exception as e:
            return self.answer(503, str(e).encode(), None)
        self.answer(200, value, how)

    def answer(self, status, body, how):
        self.send_response(status)
        if how:
            self.send_header("x-cache", how)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
