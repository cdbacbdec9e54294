"""Benchmark: residents' reports through Open311 — POST throughput with a photo, against the bare service.

    python tests/bench/reports.py [--posts 100] [--width 4000 --height 3000]

Runs on a database of its own (``onemap_bench_reports``, made afresh, migrated, the demo
loaded) with a scratch ``ONEMAP_VAR_DIR`` for the photos, in one process: requests go through
Django's test client (the whole Open311 view: form parsing, the key, the checks, the report
service, the XML answer), not over a socket. Each figure beside a baseline of the same run:

- **baseline**: ``report_submit`` called directly, without a photo (the report, its incident,
  its case, committed);
- **POST without a photo**: ``POST /open311/v2/requests.xml`` form-encoded;
- **POST with a photo**: multipart with a phone-sized JPEG (``--width`` × ``--height``) in ``media``,
  checked by content, decoded, scaled to 1,600 px, re-encoded and fsynced before the commit;
- **the photo alone**: ``photos.clean`` of the same JPEG, to show where the time goes.

The hourly limit per key is lifted for the run (it would refuse the 601st request).

The issue's other figure, the phone's task list p95 for a worker with 200 open tasks, is
``tests/bench/mobile.py`` (a real server; ``make bench`` runs both).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATABASE = "onemap_bench_reports"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        return _measure(posts=args.posts, width=args.width, height=args.height)
    from host.embedded_db import ensure_running, recreate_database

    server_url = ensure_running(log=lambda msg: print(msg, file=sys.stderr))
    url = recreate_database(server_url, DATABASE)
    with tempfile.TemporaryDirectory(prefix="onemap-bench-reports-") as var_dir:
        env = dict(os.environ, ONEMAP_DATABASE_URL=url, ONEMAP_VAR_DIR=var_dir)
        for step in (["migrate"], ["load-demo"]):
            subprocess.run([sys.executable, "-m", "host.cli", *step], env=env, cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
        return subprocess.run([sys.executable, __file__, "--child", "--posts", str(args.posts),
                               "--width", str(args.width), "--height", str(args.height)],
                              env=env, cwd=ROOT, check=False).returncode


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--posts", type=int, default=100, help="requests per measure")
    p.add_argument("--width", type=int, default=4000, help="the photo's width in pixels")
    p.add_argument("--height", type=int, default=3000, help="the photo's height in pixels")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p


def _measure(*, posts: int, width: int, height: int) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from gis.open311.services import key_add
    from gis.reports import photos
    from gis.reports import services as reports

    reports.LIMITS_PER_HOUR["api_key"] = 10**9  # a bench, not a flood
    with connection.cursor() as cursor:  # places well inside the level-3 grids, one per request, round robin
        cursor.execute("""
            SELECT ST_X(p), ST_Y(p) FROM grids g,
                   LATERAL (SELECT ST_PointOnSurface(ST_Buffer(g.geom::geography, -60)::geometry) AS p) q
            WHERE g.level = 3 AND NOT ST_IsEmpty(p) ORDER BY g.code""")
        places = cursor.fetchall()
    _, secret = key_add(name="bench")
    client = Client(HTTP_HOST="127.0.0.1")
    photo = _phone_photo(width, height)
    counter = iter(range(10**9))

    def form(n: int) -> dict:
        lon, lat = places[n % len(places)]
        return {"api_key": secret, "service_code": "sanitation", "lat": f"{lat:.7f}", "long": f"{lon:.7f}",
                "description": "楼下垃圾堆了三天", "device_id": f"bench-{n}"}

    def direct(n: int) -> None:
        lon, lat = places[n % len(places)]
        reports.report_submit(category="sanitation", description="楼下垃圾堆了三天", lon=lon, lat=lat,
                              sender=reports.Sender(device=f"direct-{n}"))

    def plain(n: int) -> None:
        _check(client.post("/open311/v2/requests.xml", form(n)))

    def with_photo(n: int) -> None:
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("photo.jpg", photo, content_type="image/jpeg")
        _check(client.post("/open311/v2/requests.xml", {**form(n), "media": upload}))

    def clean_only(n: int) -> None:
        photos.clean(photo)

    for warm in (direct, plain, with_photo):  # first calls load code and fill caches
        warm(next(counter))
    base = _rate(direct, posts, counter)
    rows = [("report_submit, no photo (baseline)", base),
            ("POST requests.xml, no photo", _rate(plain, posts, counter)),
            (f"POST requests.xml, {width}x{height} JPEG ({len(photo) / 1e6:.1f} MB) in media",
             _rate(with_photo, posts, counter)),
            ("photos.clean of that JPEG alone", _rate(clean_only, posts, counter))]
    print(f"{'measure (' + str(posts) + ' each)':<58} {'per second':>11} {'ms each':>9} {'vs baseline':>12}")
    for name, rate in rows:
        print(f"{name:<58} {rate:>11.1f} {1000 / rate:>9.1f} {base / rate:>11.2f}x")
    return 0


def _rate(step, n: int, counter) -> float:
    started = time.perf_counter()
    for _ in range(n):
        step(next(counter))
    return n / (time.perf_counter() - started)


def _check(response) -> None:
    if response.status_code != 201:
        raise SystemExit(f"the POST was refused: {response.status_code} {response.content[:300]!r}")


def _phone_photo(width: int, height: int) -> bytes:
    """A JPEG with the detail of a photo (noise and shapes), as a phone sends it: a few MB."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(7)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (5, 5), 0)
    cv2.rectangle(image, (width // 4, height // 4), (width // 2, height // 2), (40, 40, 200), -1)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


if __name__ == "__main__":
    sys.exit(main())
