"""Benchmark: the survey web form opened on a slow phone network, cold and warm.

Run by hand (it is not a test)::

    .venv/bin/python bench/webform.py                          # this checkout
    .venv/bin/python bench/webform.py --before fbf697e         # and the commit before the change, same run
    .venv/bin/python bench/webform.py --throttle proxy         # throttle in the byte-counting proxy instead

It starts a private PostgreSQL + PostGIS cluster (as ``bench/submit.py`` does:
migrated, reference data, approximate 2025 communes), serves this checkout
(and, with ``--before REV``, the files of that commit, taken with ``git
archive`` into a temporary folder, against the same database) with uvicorn,
and opens ``/survey`` in Debian's headless Chromium (``/usr/bin/chromium``,
through Playwright) on a phone context (360 x 740, touch, vi-VN).

Each server is reached through a small TCP proxy on 127.0.0.1 that counts the
bytes the server sends (everything: the page's requests and the service
worker's). The network is throttled to 400 ms latency and 400 kbit/s each way,
by default with the Chrome DevTools Protocol on the page
(``Network.emulateNetworkConditions``), the way the issue measured it; with
``--throttle proxy``, by the proxy itself (200 ms each way per chunk, the
bandwidth shared by all connections), which also slows the service worker's
own fetches, which DevTools' page throttling does not reach.

Per server, ``--runs`` (3) times, with a fresh browser profile each time:

* cold: first open on a new profile: time from navigation to the first
  usable input (the record kind's radio buttons, once the page says it is
  ready), and the bytes sent by the server until the service worker is
  installed and the network has been quiet for a second;
* warm: the browser is closed and started again on the same profile (the
  service worker installed) and the page opened again: the same time, and
  the bytes of that open (until the network is quiet for a second).

Only 127.0.0.1 is contacted; every wait is bounded. The servers, the proxy,
the browsers and the cluster are stopped and the folders removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _result import Figure, emit  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
HOST = "127.0.0.1"
LATENCY_MS = 400
KBITS = 400
QUIET_S = 1.0
# The page says it is usable: the form is built and a first question can be answered.
READY_JS = """() => { const kind = document.querySelector('body.ready input[name="kind"]');
                      return kind && kind.getBoundingClientRect().height > 0; }"""
MARK_READY = """(() => {
  const mark = () => { if (!window.__usable && document.querySelector('body.ready input[name="kind"]')) window.__usable = performance.now(); };
  new MutationObserver(mark).observe(document, { subtree: true, childList: true, attributes: true });
})();"""


# -- a proxy that counts (and may throttle) ------------------------------------------------
class Link:
    """One direction of the simulated network: a delay per chunk and a shared bandwidth."""

    def __init__(self, delay_s: float, bytes_per_s: float | None) -> None:
        self.delay_s = delay_s
        self.bytes_per_s = bytes_per_s
        self.free_at = 0.0

    async def through(self, size: int) -> None:
        now = time.monotonic()
        ready = now + self.delay_s
        if self.bytes_per_s:
            start = max(now, self.free_at)
            self.free_at = start + size / self.bytes_per_s
            ready = max(ready, self.free_at + self.delay_s)
        wait = ready - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass
class Proxy:
    target_port: int
    throttle: bool
    port: int = 0
    down: int = 0  # bytes the server sent
    up: int = 0
    last_byte: float = field(default_factory=time.monotonic)
    loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        started = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            delay = LATENCY_MS / 2000 if self.throttle else 0.0
            rate = KBITS * 1000 / 8 if self.throttle else None
            self.links = (Link(delay, rate), Link(delay, rate))  # up, down
            server = self.loop.run_until_complete(asyncio.start_server(self._serve, HOST, 0))
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        if not started.wait(10):
            raise RuntimeError("the proxy did not start")

    async def _pipe(self, reader, writer, link: Link, downstream: bool) -> None:
        try:
            while True:
                chunk = await reader.read(16384)
                if not chunk:
                    break
                await link.through(len(chunk))
                if downstream:
                    self.down += len(chunk)
                else:
                    self.up += len(chunk)
                self.last_byte = time.monotonic()
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _serve(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            client_writer.close()
            return
        up, down = self.links
        await asyncio.gather(self._pipe(client_reader, server_writer, up, False),
                             self._pipe(server_reader, client_writer, down, True))

    def reset(self) -> None:
        self.down = self.up = 0
        self.last_byte = time.monotonic()

    def wait_quiet(self, seconds: float = QUIET_S, limit: float = 60) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and time.monotonic() - self.last_byte < seconds:
            time.sleep(0.1)

    def stop(self) -> None:
        if self.loop:
            self.loop.call_soon_threadsafe(self.loop.stop)


# -- the servers ---------------------------------------------------------------------------
def serve(tree: Path, dburl: str, folder: Path, name: str) -> tuple[subprocess.Popen, int]:
    from geodata.embedded import free_port

    port = free_port()
    env = os.environ | {"DATABASE_URL": dburl, "LABOUR_ATLAS_SECRET_KEY": "bench-" + os.urandom(24).hex(),
                        "PYTHONPATH": str(tree)}
    log = (folder / f"{name}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--host", HOST, "--port", str(port),
                             "--log-level", "warning"], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the {name} server did not start (see {folder / f'{name}.log'})")
        time.sleep(0.3)


def tree_of(rev: str, folder: Path) -> Path:
    """The files of commit ``rev`` in a folder of their own (no checkout, no change to the repository)."""
    out = folder / f"tree-{rev[:12]}"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


# -- one open ------------------------------------------------------------------------------
@dataclass
class Open:
    usable_ms: float
    kbytes: float


def open_page(p, profile: Path, url: str, proxy: Proxy, throttle: str, *, wait_for_worker: bool) -> Open:
    context = p.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync"],
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, locale="vi-VN",
    )
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.add_init_script(MARK_READY)
        if throttle == "cdp":
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            rate = KBITS * 1000 / 8
            cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": LATENCY_MS,
                                                          "downloadThroughput": rate, "uploadThroughput": rate})
        proxy.reset()
        page.goto(url, wait_until="commit", timeout=60000)
        page.wait_for_function(READY_JS, timeout=60000, polling=50)
        usable = page.evaluate("() => window.__usable || performance.now()")
        if wait_for_worker:
            page.wait_for_function("""async () => { const r = await navigator.serviceWorker.ready;
                const keys = await caches.keys(); return !!r.active && keys.length > 0; }""", timeout=60000)
        proxy.wait_quiet()
        return Open(usable, proxy.down / 1000)
    finally:
        context.close()


def measure(p, name: str, url: str, proxy: Proxy, runs: int, throttle: str, folder: Path) -> dict[str, list[Open]]:
    out: dict[str, list[Open]] = {"cold": [], "warm": []}
    for i in range(runs):
        profile = folder / f"profile-{name}-{i}"
        out["cold"].append(open_page(p, profile, url, proxy, throttle, wait_for_worker=True))
        out["warm"].append(open_page(p, profile, url, proxy, throttle, wait_for_worker=False))
        shutil.rmtree(profile, ignore_errors=True)
        print(f"  {name} run {i + 1}: cold {out['cold'][-1].usable_ms:.0f} ms {out['cold'][-1].kbytes:.1f} KB; "
              f"warm {out['warm'][-1].usable_ms:.0f} ms {out['warm'][-1].kbytes:.1f} KB", flush=True)
    return out


def summary(results: dict[str, dict[str, list[Open]]]) -> list[Figure]:
    figures = []
    print(f"\n{'server':<10} {'open':<5} {'usable s (median, runs)':<32} {'KB per open (median, runs)'}")
    for name, opens in results.items():
        for kind in ("cold", "warm"):
            times = [o.usable_ms / 1000 for o in opens[kind]]
            sizes = [o.kbytes for o in opens[kind]]
            print(f"{name:<10} {kind:<5} {statistics.median(times):5.2f}  ({', '.join(f'{t:.2f}' for t in times)})"
                  f"{'':<8} {statistics.median(sizes):6.1f}  ({', '.join(f'{s:.1f}' for s in sizes)})")
            figures += [Figure(f"{name}, {kind} open: first usable input", statistics.median(times), "s"),
                        Figure(f"{name}, {kind} open: bytes sent", statistics.median(sizes), "KB")]
    if "before" in results and "after" in results:
        for kind in ("cold", "warm"):
            b = statistics.median(o.usable_ms for o in results["before"][kind])
            a = statistics.median(o.usable_ms for o in results["after"][kind])
            bk = statistics.median(o.kbytes for o in results["before"][kind])
            ak = statistics.median(o.kbytes for o in results["after"][kind])
            print(f"{kind}: time after/before {a / b:.2f}, bytes after/before {ak / bk:.2f}")
            figures += [Figure(f"{kind} open: time after / before", a / b, "x"),
                        Figure(f"{kind} open: bytes after / before", ak / bk, "x")]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="a commit to measure in the same run, e.g. the one before the change")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--throttle", choices=("cdp", "proxy"), default="cdp")
    parser.add_argument("--short", action="store_true", help="one run")
    args = parser.parse_args()
    if args.short:
        args.runs = 1
    if not Path(CHROMIUM).exists():
        emit("webform", [], skipped=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        return

    from playwright.sync_api import sync_playwright
    from submit import start_database

    folder = Path(tempfile.mkdtemp(prefix="labour-atlas-bench-webform-"))
    folder.chmod(0o755)  # as root, the cluster runs as 'postgres'
    servers: list[subprocess.Popen] = []
    proxies: list[Proxy] = []
    pg = None
    try:
        print("starting the database (migrations, reference data, approximate communes)...", flush=True)
        pg, dburl = start_database(folder, [])
        trees = {"after": ROOT}
        if args.before:
            trees = {"before": tree_of(args.before, folder), "after": ROOT}
        results = {}
        with sync_playwright() as p:
            for name, tree in trees.items():
                proc, port = serve(tree, dburl, folder, name)
                servers.append(proc)
                proxy = Proxy(port, throttle=args.throttle == "proxy")
                proxy.start()
                proxies.append(proxy)
                print(f"{name}: {tree}", flush=True)
                results[name] = measure(p, name, f"http://{HOST}:{proxy.port}/survey", proxy, args.runs, args.throttle,
                                        folder)
        print(f"\nthrottled by {args.throttle}: {LATENCY_MS} ms latency, {KBITS} kbit/s each way; "
              "KB = bytes sent by the server (page and service worker)")
        figures = summary(results)
    finally:
        for proxy in proxies:
            proxy.stop()
        for proc in servers:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if pg is not None:
            pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
    emit("webform", figures)


if __name__ == "__main__":
    main()
