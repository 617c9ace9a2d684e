"""Encryption at rest for face templates: plain SQLite vs SQLCipher vs AES-256-GCM per value.

Three ways to store the gallery's templates table, measured on this machine in
the same run (the plain variant is the baseline every ratio is taken against):

1. ``plain``: stdlib ``sqlite3`` with the pragmas faceprint uses (WAL,
   synchronous=FULL, secure_delete=ON);
2. ``sqlcipher``: SQLCipher through the ``sqlcipher3-binary`` wheel (module
   ``sqlcipher3``), a raw 256-bit key (``PRAGMA key = "x'<64 hex>'"``, so no
   PBKDF2 on open) and the same pragmas; every page is AES-256-CBC + HMAC-SHA512;
3. ``aesgcm_column``: stdlib ``sqlite3`` as in 1, with only the ``vector`` BLOB
   encrypted by ``cryptography``'s AESGCM (256-bit key): each value is a
   12-byte random nonce || ciphertext || 16-byte tag, AAD
   ``b"faceprint:templates.vector"``.

Workload, modelled on the gallery: ``templates(id INTEGER PRIMARY KEY,
subject_id INTEGER, model_id TEXT, vector BLOB)`` holding N random unit
128-float32 vectors (512 bytes; ``np.random.default_rng(0)``), four templates
per subject.  All connections use ``cache_size=-2000`` (stdlib's default;
the SQLCipher build's own default is -8000) so the page caches are alike.
Per variant and run, in a fresh database:

(a) insert N templates in transactions of 100 rows (``BEGIN``; executemany;
    ``COMMIT``), encryption included: templates/s;
(b) on a new connection, read every vector back into one (N, 128) float32
    array the way ``GalleryStore.vectors`` does (``SELECT id, subject_id,
    vector ... WHERE model_id=? ORDER BY id``, join, ``np.frombuffer``),
    decryption included: seconds, per 100k and linearly extrapolated to 1M
    (the index rebuild path); ``open_ms`` is the connect + key + pragmas +
    a query of sqlite_master before it (where SQLCipher checks the key); the
    OS page cache is warm for every variant alike;
(c) 1,000 point lookups by random id (``SELECT vector ... WHERE id=?`` and
    ``np.frombuffer``): microseconds each;
(d) file size (database after the last connection closed) per template.

Variants run in rotating order in each run; every figure is the median over
--runs runs (``range`` gives min / max of the timed ones); ``cpu`` holds the
same timings in process CPU time (no disk waits, less sensitive to other load
on a shared machine).  ``vs_plain`` holds, per figure, the median over runs of
the ratio variant / plain within the run (above 1: slower or bigger).

Besides (e) AES-GCM alone: a --file-mb buffer (default 256 MB) encrypted and
decrypted in 1 MiB chunks (own nonce each, chunk number in the AAD; decryption
with ``decrypt_into`` one preallocated buffer, as an index load would): MB/s and
seconds per 512 MB (the vectors of a 1M-template index file), in memory and
as a file round trip (write + fsync, read back) against the same file written
and read in plain; and the per-call cost of encrypting (nonce included) /
decrypting one 512-byte value.

Checks (f): are sampled raw vector bytes present in the database files (db +
-wal while the writer is open, db after close)? Expected: yes for plain, no
for the two encrypted ones.  Also: WAL and secure_delete really in effect in
SQLCipher (the pragmas' answers, a -wal file, and a deleted row's bytes absent
from the decrypted pages with secure_delete=ON but present with OFF, the
pages decrypted here with the key following SQLCipher 4's page format); the
same secure_delete test on stdlib sqlite; a wrong key refused; a tampered
AES-GCM value and a wrong AAD refused; the read-back arrays equal to what was
written.

    .venv/bin/python benchmarks/encryption.py [--n 100000] [--runs 5] [--file-mb 256] [--dir TMP] [--smoke]

--smoke: N=2,000, one run, a 32 MB file buffer.  Needs ``pip install
cryptography sqlcipher3-binary``.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import sqlcipher3
from _common import emit, machine
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DIM = 128
BATCH = 100
LOOKUPS = 1000
MODEL = "sface-2021dec"
AAD = b"faceprint:templates.vector"
NONCE = 12
CHUNK = 1 << 20
SCHEMA = "CREATE TABLE templates(id INTEGER PRIMARY KEY, subject_id INTEGER, model_id TEXT, vector BLOB)"
INSERT = "INSERT INTO templates(id, subject_id, model_id, vector) VALUES (?,?,?,?)"
SELECT_ALL = "SELECT id, subject_id, vector FROM templates WHERE model_id=? ORDER BY id"
SELECT_ONE = "SELECT vector FROM templates WHERE id=?"
SQLCIPHER_PAGE, SQLCIPHER_RESERVE = 4096, 80  # SQLCipher 4 defaults: 16-byte IV + 64-byte HMAC-SHA512 per page


# -- variants -------------------------------------------------------------------------


class Variant:
    """How to open a database and how a vector value is written / read."""

    def __init__(self, name: str, module: Any, key_hex: str | None = None, aead: AESGCM | None = None):
        self.name, self.module, self.key_hex, self.aead = name, module, key_hex, aead

    def open(self, path: Path, secure_delete: bool = True) -> Any:
        db = self.module.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
        if self.key_hex:
            db.execute(f"PRAGMA key = \"x'{self.key_hex}'\"")
        db.execute(f"PRAGMA secure_delete={'ON' if secure_delete else 'OFF'}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA cache_size=-2000")
        return db

    def encode(self, raw: bytes) -> bytes:
        if self.aead is None:
            return raw
        nonce = os.urandom(NONCE)
        return nonce + self.aead.encrypt(nonce, raw, AAD)

    def decode(self, value: bytes) -> bytes:
        if self.aead is None:
            return value
        return self.aead.decrypt(value[:NONCE], value[NONCE:], AAD)


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def file_bytes(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


# -- one variant, one run ---------------------------------------------------------------


def run_variant(v: Variant, vectors: np.ndarray, lookup_ids: np.ndarray, path: Path, check_raw: bool) -> dict[str, Any]:
    n = len(vectors)
    remove_db(path)
    db = v.open(path)
    db.execute(SCHEMA)
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, n, BATCH):
        rows = [(i + 1, i // 4, MODEL, v.encode(vectors[i].tobytes())) for i in range(start, min(start + BATCH, n))]
        db.execute("BEGIN")
        db.executemany(INSERT, rows)
        db.execute("COMMIT")
    insert_s, insert_cpu = time.perf_counter() - t0, time.process_time() - c0
    out: dict[str, Any] = {}
    sample = np.random.default_rng(1).choice(n, min(100, n), replace=False)
    if check_raw:
        out["wal_file_while_open"] = Path(str(path) + "-wal").exists()
        blob = file_bytes(path) + file_bytes(Path(str(path) + "-wal"))
        out["raw_vectors_found_open_db_wal"] = int(sum(vectors[i].tobytes() in blob for i in sample))
    db.close()
    wal = Path(str(path) + "-wal")
    out["file_bytes"] = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    if check_raw:
        blob = file_bytes(path)
        out["raw_vectors_found_closed_db"] = int(sum(vectors[i].tobytes() in blob for i in sample))
        out["raw_vectors_sampled"] = int(len(sample))
        out["sqlite_header_in_clear"] = blob[:16] == b"SQLite format 3\x00"

    t0 = time.perf_counter()
    db = v.open(path)
    db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads page 1: SQLCipher checks the key here
    open_s = time.perf_counter() - t0

    t0, c0 = time.perf_counter(), time.process_time()
    rows = db.execute(SELECT_ALL, (MODEL,)).fetchall()
    ids = np.array([r[0] for r in rows], np.int64)
    subjects = np.array([r[1] for r in rows], np.int64)
    vecs = np.frombuffer(b"".join(v.decode(r[2]) for r in rows), np.float32).reshape(len(rows), DIM).copy()
    read_s, read_cpu = time.perf_counter() - t0, time.process_time() - c0
    del rows
    out["read_back_equal"] = bool(np.array_equal(vecs, vectors) and np.array_equal(ids, np.arange(1, n + 1)) and np.array_equal(subjects, np.arange(n) // 4))

    t0, c0 = time.perf_counter(), time.process_time()
    for i in lookup_ids:
        (value,) = db.execute(SELECT_ONE, (int(i),)).fetchone()
        got = np.frombuffer(v.decode(value), np.float32)
    lookup_s, lookup_cpu = time.perf_counter() - t0, time.process_time() - c0
    out["read_back_equal"] &= bool(np.array_equal(got, vectors[int(lookup_ids[-1]) - 1]))
    db.close()
    remove_db(path)

    out.update(insert_s=insert_s, read_all_s=read_s, lookup_us=lookup_s / len(lookup_ids) * 1e6, open_ms=open_s * 1e3)
    out.update(insert_cpu_s=insert_cpu, read_all_cpu_s=read_cpu, lookup_cpu_us=lookup_cpu / len(lookup_ids) * 1e6)
    return out


def summarise(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    med = lambda k: float(statistics.median(r[k] for r in runs))  # noqa: E731
    insert_s, read_s = med("insert_s"), med("read_all_s")
    out = {
        "insert_templates_per_s": n / insert_s,
        "insert_s": insert_s,
        "read_all_s": read_s,
        "read_all_s_per_100k": read_s * 100_000 / n,
        "read_all_s_per_1M_extrapolated": read_s * 1_000_000 / n,
        "lookup_us": med("lookup_us"),
        "open_ms": med("open_ms"),
        "cpu": {"insert_s": med("insert_cpu_s"), "read_all_s": med("read_all_cpu_s"), "lookup_us": med("lookup_cpu_us")},
        "file_bytes": int(med("file_bytes")),
        "bytes_per_template": med("file_bytes") / n,
        "range": {k: [min(r[k] for r in runs), max(r[k] for r in runs)] for k in ("insert_s", "read_all_s", "lookup_us")},
        "read_back_equal": all(r["read_back_equal"] for r in runs),
    }
    first = runs[0]
    for k in ("wal_file_while_open", "raw_vectors_sampled", "raw_vectors_found_open_db_wal", "raw_vectors_found_closed_db", "sqlite_header_in_clear"):
        if k in first:
            out.setdefault("checks", {})[k] = first[k]
    if "checks" in out:
        c = out["checks"]
        c["raw_vector_bytes_present"] = bool(c["raw_vectors_found_open_db_wal"] or c["raw_vectors_found_closed_db"])
    return out


def ratios(runs: list[dict[str, Any]], base: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over runs of the per-run ratio variant / plain (paired: both ran in the same run,
    so load from other processes on the machine cancels better than in a ratio of medians)."""
    pair = lambda k: float(statistics.median(r[k] / b[k] for r, b in zip(runs, base)))  # noqa: E731
    return {
        "insert_time": pair("insert_s"),
        "read_all_time": pair("read_all_s"),
        "lookup_time": pair("lookup_us"),
        "open_time": pair("open_ms"),
        "file_size": pair("file_bytes"),
        "cpu": {"insert": pair("insert_cpu_s"), "read_all": pair("read_all_cpu_s"), "lookup": pair("lookup_cpu_us")},
    }


# -- functional checks ------------------------------------------------------------------


def sqlcipher_plaintext(path: Path, key: bytes) -> bytes:
    """Every page of an SQLCipher 4 database (and of its -wal frames) decrypted with the raw key."""
    P, R = SQLCIPHER_PAGE, SQLCIPHER_RESERVE

    def page(pg: bytes, first: bool) -> bytes:
        off = 16 if first else 0  # page 1 starts with the 16-byte salt
        d = Cipher(algorithms.AES(key), modes.CBC(pg[P - R : P - R + 16])).decryptor()
        return d.update(pg[off : P - R]) + d.finalize()

    raw = file_bytes(path)
    out = [page(raw[i : i + P], i == 0) for i in range(0, len(raw) - P + 1, P)]
    wal = file_bytes(Path(str(path) + "-wal"))
    for i in range(32, len(wal) - (24 + P) + 1, 24 + P):  # 32-byte WAL header, 24-byte frame headers
        pgno = int.from_bytes(wal[i : i + 4], "big")
        out.append(page(wal[i + 24 : i + 24 + P], pgno == 1))
    return b"".join(out)


def secure_delete_check(v: Variant, folder: Path, key: bytes | None) -> dict[str, Any]:
    """Insert two 512-byte random values, checkpoint, delete one, checkpoint: is the deleted one
    still in the (decrypted) file?  With secure_delete ON it should not be; OFF is the control."""
    out: dict[str, Any] = {}
    for mode in (True, False):
        path = folder / f"{v.name}-secure-delete-{mode}.db"
        remove_db(path)
        db = v.open(path, secure_delete=mode)
        kept, gone = os.urandom(512), os.urandom(512)
        db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        db.execute("INSERT INTO t VALUES (1, ?), (2, ?)", (kept, gone))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("DELETE FROM t WHERE id=2")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if mode:
            out["journal_mode"] = db.execute("PRAGMA journal_mode").fetchone()[0]
            out["secure_delete_pragma"] = int(db.execute("PRAGMA secure_delete").fetchone()[0])
            out["synchronous_pragma"] = int(db.execute("PRAGMA synchronous").fetchone()[0])
            db.execute("INSERT INTO t VALUES (3, x'00')")
            out["wal_file_after_write"] = Path(str(path) + "-wal").stat().st_size > 0
        text = sqlcipher_plaintext(path, key) if key else file_bytes(path) + file_bytes(Path(str(path) + "-wal"))
        db.close()
        label = "on" if mode else "off_control"
        out[f"kept_value_found_{label}"] = kept in text  # True proves the search (and decryption) works
        out[f"deleted_value_found_{label}"] = gone in text
        remove_db(path)
    out["secure_delete_effective"] = out["kept_value_found_on"] and not out["deleted_value_found_on"] and out["deleted_value_found_off_control"]
    return out


def wrong_key_refused(v: Variant, folder: Path) -> bool:
    path = folder / "wrong-key.db"
    remove_db(path)
    db = v.open(path)
    db.execute("CREATE TABLE t(x)")
    db.close()
    db = v.module.connect(str(path), isolation_level=None)
    db.execute("PRAGMA cipher_log_level = NONE")  # the failed HMAC check would be logged to stderr
    db.execute(f"PRAGMA key = \"x'{secrets.token_hex(32)}'\"")
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        refused = False
    except Exception:  # sqlcipher3.DatabaseError: file is not a database
        refused = True
    finally:
        try:
            db.close()
        except Exception:
            pass
    remove_db(path)
    return refused


def aead_checks(aead: AESGCM) -> dict[str, bool]:
    value = Variant("x", sqlite3, aead=aead).encode(os.urandom(512))
    tampered = bytearray(value)
    tampered[40] ^= 1
    out = {}
    for name, data, aad in (("tampered_value_refused", bytes(tampered), AAD), ("wrong_aad_refused", value, b"faceprint:other")):
        try:
            aead.decrypt(data[:NONCE], data[NONCE:], aad)
            out[name] = False
        except InvalidTag:
            out[name] = True
    out["stored_bytes_per_value"] = len(value)
    return out


# -- AES-GCM alone ----------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def aesgcm_file(aead: AESGCM, mb: int, runs: int, folder: Path) -> dict[str, Any]:
    buf = np.random.default_rng(2).integers(0, 256, mb * 1_000_000, np.uint8).tobytes()
    view = memoryview(buf)
    chunks = [view[i : i + CHUNK] for i in range(0, len(buf), CHUNK)]
    path = folder / "index.bin"

    sealed = CHUNK + NONCE + 16  # one chunk on disk: nonce || ciphertext || tag

    def aad(k: int) -> bytes:
        return AAD + k.to_bytes(8, "big")

    def encrypt() -> list[tuple[bytes, bytes]]:
        out = []
        for k, c in enumerate(chunks):
            nonce = os.urandom(NONCE)
            out.append((nonce, aead.encrypt(nonce, c, aad(k))))
        return out

    def decrypt(cts: list[tuple[bytes, bytes]]) -> bytearray:
        """Into one preallocated buffer (what an index load needs), with decrypt_into: no join copy."""
        out = bytearray(sum(len(ct) - 16 for _, ct in cts))
        view, off = memoryview(out), 0
        for k, (nonce, ct) in enumerate(cts):
            off += aead.decrypt_into(nonce, ct, aad(k), view[off : off + len(ct) - 16])
        return out

    def write(parts: list[Any]) -> None:
        with open(path, "wb") as fh:
            for p in parts:
                fh.write(p)
            fh.flush()
            os.fsync(fh.fileno())

    def read_plain() -> bytes:
        return path.read_bytes()

    def read_encrypted() -> bytearray:
        size = path.stat().st_size
        full, rest = divmod(size, sealed)
        out = bytearray(full * CHUNK + max(rest - NONCE - 16, 0))
        view, off = memoryview(out), 0
        piece = bytearray(sealed)
        with open(path, "rb") as fh:
            for k in range(full + (rest > 0)):
                got = fh.readinto(piece)
                pv = memoryview(piece)[:got]
                off += aead.decrypt_into(pv[:NONCE], pv[NONCE:], aad(k), view[off : off + got - NONCE - 16])
        return out

    names = ("encrypt", "decrypt", "write_plain", "read_plain", "write_encrypted", "read_encrypted")
    t: dict[str, list[float]] = {k: [] for k in names}
    ok = True
    for _ in range(runs):
        t0 = time.perf_counter()
        cts = encrypt()
        t["encrypt"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        back = decrypt(cts)
        t["decrypt"].append(time.perf_counter() - t0)
        ok &= back == buf
        del back
        t["write_plain"].append(timed(lambda: write(chunks)))
        t["read_plain"].append(timed(read_plain))
        t["write_encrypted"].append(timed(lambda: write([x for pair in encrypt() for x in pair])))
        t0 = time.perf_counter()
        back = read_encrypted()
        t["read_encrypted"].append(time.perf_counter() - t0)
        ok &= back == buf
        del back, cts
    path.unlink(missing_ok=True)
    med = {k: float(statistics.median(v)) for k, v in t.items()}
    size = len(buf)
    per = 512_000_000 / size
    return {
        "buffer_bytes": size,
        "chunk_bytes": CHUNK,
        "encrypt_MB_per_s": size / 1e6 / med["encrypt"],
        "decrypt_MB_per_s": size / 1e6 / med["decrypt"],
        "encrypt_s_per_512MB": med["encrypt"] * per,
        "decrypt_s_per_512MB": med["decrypt"] * per,
        "file_round_trip_s_per_512MB": {k: v * per for k, v in med.items() if k not in ("encrypt", "decrypt")},
        "vs_plain": {
            "write_time": med["write_encrypted"] / med["write_plain"],
            "read_time": med["read_encrypted"] / med["read_plain"],
        },
        "round_trip_equal": bool(ok),
    }


def aesgcm_value(aead: AESGCM, calls: int, runs: int) -> dict[str, float]:
    value = os.urandom(512)
    enc, dec = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(calls):
            nonce = os.urandom(NONCE)
            ct = aead.encrypt(nonce, value, AAD)
        enc.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(calls):
            aead.decrypt(nonce, ct, AAD)
        dec.append(time.perf_counter() - t0)
    return {
        "calls": calls,
        "encrypt_us_incl_nonce": statistics.median(enc) / calls * 1e6,
        "decrypt_us": statistics.median(dec) / calls * 1e6,
    }


# -- main -------------------------------------------------------------------------------


def versions() -> dict[str, Any]:
    from cryptography.hazmat.backends.openssl.backend import backend

    db = sqlcipher3.connect(":memory:")
    db.execute(f"PRAGMA key = \"x'{'00' * 32}'\"")
    out = {
        "cryptography": metadata.version("cryptography"),
        "cryptography_openssl": backend.openssl_version_text(),
        "sqlcipher3-binary": metadata.version("sqlcipher3-binary"),
        "sqlcipher_sqlite_version": sqlcipher3.sqlite_version,
        "cipher_version": db.execute("PRAGMA cipher_version").fetchone()[0],
        "cipher_provider": db.execute("PRAGMA cipher_provider").fetchone()[0],
        "cipher_provider_version": db.execute("PRAGMA cipher_provider_version").fetchone()[0],
        "stdlib_sqlite_version": sqlite3.sqlite_version,
    }
    db.close()
    try:
        out["cpu_aes_ni"] = " aes " in Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0] + " "
    except (OSError, IndexError):
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="templates (default 100000)")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure, median reported (default 5)")
    ap.add_argument("--file-mb", type=int, default=256, help="AES-GCM file buffer in MB (default 256)")
    ap.add_argument("--value-calls", type=int, default=50_000, help="512-byte AES-GCM calls per run (default 50000)")
    ap.add_argument("--dir", default=None, help="folder for the temporary databases (default: the system temp folder)")
    ap.add_argument("--smoke", action="store_true", help="N=2000, 1 run, 32 MB file buffer")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.runs, args.file_mb, args.value_calls = 2_000, 1, 32, 5_000

    load_start = os.getloadavg()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    lookup_ids = rng.integers(1, args.n + 1, LOOKUPS)

    key = secrets.token_bytes(32)
    aead = AESGCM(secrets.token_bytes(32))
    variants = [
        Variant("plain", sqlite3),
        Variant("sqlcipher", sqlcipher3, key_hex=key.hex()),
        Variant("aesgcm_column", sqlite3, aead=aead),
    ]

    folder = Path(tempfile.mkdtemp(prefix="faceprint-enc-", dir=args.dir))
    try:
        per: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
        t_all = time.perf_counter()
        for r in range(args.runs):
            for v in variants[r % 3 :] + variants[: r % 3]:
                per[v.name].append(run_variant(v, vectors, lookup_ids, folder / f"{v.name}.db", check_raw=r == 0))
        results = {name: summarise(runs, args.n) for name, runs in per.items()}
        checks = {
            "plain": secure_delete_check(variants[0], folder, None),
            "sqlcipher": {
                **secure_delete_check(variants[1], folder, key),
                "wrong_key_refused": wrong_key_refused(variants[1], folder),
            },
            "aesgcm_column": aead_checks(aead),
        }
        for name in results:
            checks.setdefault(name, {}).update(results[name].pop("checks", {}))
        workload_s = time.perf_counter() - t_all
        file = aesgcm_file(aead, args.file_mb, args.runs, folder)
        value = aesgcm_value(aead, args.value_calls, args.runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    emit(
        {
            "benchmark": "encryption",
            "n": args.n,
            "runs": args.runs,
            "dim": DIM,
            "batch": BATCH,
            "lookups": LOOKUPS,
            "smoke": args.smoke,
            "machine": machine(),
            "versions": versions(),
            "loadavg_start_end": [load_start[0], os.getloadavg()[0]],
            "workload_wall_s": workload_s,
            "variants": results,
            "vs_plain": {name: ratios(per[name], per["plain"]) for name in ("sqlcipher", "aesgcm_column")},
            "aesgcm_file": file,
            "aesgcm_value_512B": value,
            "checks": checks,
        }
    )


if __name__ == "__main__":
    main()
