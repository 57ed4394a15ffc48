"""Artifact store contract over a local folder and a real S3-compatible server (moto)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import modelworks as mw
from modelworks.store.artifacts import ArtifactStore, safe_relpath


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(str(tmp_path / "artifacts"))
    opts = request.getfixturevalue("s3_server")
    return ArtifactStore(f"s3://mw-test/{tmp_path.name}", storage_options=opts)


def test_round_trip_and_dedup(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put_bytes(b"hello")
    assert ref.sha256 == hashlib.sha256(b"hello").hexdigest() and ref.size == 5
    assert store.get_bytes(ref.sha256) == b"hello"
    again = store.put_bytes(b"hello")
    assert again == ref
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(3 << 20))
    fref = store.put_file(src)
    assert fref.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert store.put_file(src) == fref
    objects = sorted(store.iter_objects())
    assert objects == sorted([ref.sha256, fref.sha256])  # identical content stored once
    out = store.get_file(fref.sha256, tmp_path / "out" / "model.bin")
    assert out.read_bytes() == src.read_bytes()


def test_put_many_stores_each_blob_once(store: ArtifactStore) -> None:
    blobs = [b"first", b"second blob", b"first"]
    refs = store.put_many(blobs)
    assert [r.sha256 for r in refs] == [hashlib.sha256(b).hexdigest() for b in blobs]
    assert [r.size for r in refs] == [5, 11, 5]
    assert [store.get_bytes(r.sha256) for r in refs] == blobs
    assert store.put_many([b"second blob", b"third"])[0] == refs[1]  # stored ones are kept
    assert store.get_bytes(hashlib.sha256(b"third").hexdigest()) == b"third"
    assert store.put_many([]) == []
    if store.is_local:  # every temporary file was renamed into place
        assert list(Path(store.root, "tmp").iterdir()) == []
        assert sum(1 for _ in store.iter_objects()) == 3


def test_tampered_object_raises_integrity_error(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put_bytes(b"original bytes")
    store.fs.pipe_file(store._path(ref.sha256), b"tampered bytes")
    with pytest.raises(mw.IntegrityError, match=ref.sha256):
        store.get_bytes(ref.sha256)
    dest = tmp_path / "dest.bin"
    with pytest.raises(mw.IntegrityError):
        store.get_file(ref.sha256, dest)
    assert not dest.exists()  # nothing half-verified is left behind


def test_missing_and_malformed(store: ArtifactStore) -> None:
    with pytest.raises(mw.NotFound):
        store.get_bytes("0" * 64)
    with pytest.raises(mw.InvalidInput, match="sha256"):
        store.get_bytes("../../etc/passwd")


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "~/x", "", " ",
                                 "C:/x", "a\\..\\b", "a\x00b"])
def test_escaping_names_are_refused(bad: str) -> None:
    with pytest.raises(mw.InvalidInput):
        safe_relpath(bad)


def test_safe_names_are_normalised() -> None:
    assert safe_relpath("plots/./roc.png") == "plots/roc.png"
    assert safe_relpath("a//b") == "a/b"


def test_run_artifact_names_cannot_escape(tmp_path: Path) -> None:
    ws = mw.Workspace(tmp_path / "ws", user="alice")
    f = tmp_path / "f.txt"
    f.write_text("x")
    with ws.start_run(experiment="e") as run, pytest.raises(mw.InvalidInput, match=r"\.\."):
        run.log_artifact(f, artifact_path="../outside")
    ws.close()


_WRITER = """
import sys
from modelworks.store.artifacts import ArtifactStore
store = ArtifactStore(sys.argv[1])
print("go", flush=True)
store.put_file(sys.argv[2])
"""


@pytest.mark.slow
def test_killed_writer_leaves_no_half_object(tmp_path: Path) -> None:
    """A process killed mid-write leaves at most a temp file, never a bad object."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        for _ in range(64):
            fh.write(os.urandom(4 << 20))  # 256 MiB: long enough to be killed mid-copy
    root = tmp_path / "artifacts"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(big)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "go"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = ArtifactStore(str(root))
    for sha in store.iter_objects():
        store.get_bytes(sha)  # every object under a real name verifies
    # and the write can simply be repeated
    ref = store.put_file(big)
    assert list(store.iter_objects()) == [ref.sha256]


_FULL_DISK = """
import resource, signal, sys
from modelworks.errors import StoreUnavailable
from modelworks.store.artifacts import ArtifactStore
store = ArtifactStore(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # files up to 4 KiB: a "full disk"
try:
    store.put_many([b"small" * 10, b"x" * 10_000])
except StoreUnavailable as exc:
    print("refused:", exc)
"""


def test_a_failed_batch_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    ArtifactStore(str(root))
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(root)], capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.startswith("refused: artifact store") and "could not be written" in \
        done.stdout, done.stdout + done.stderr
    assert list((root / "tmp").iterdir()) == []
    assert list(ArtifactStore(str(root)).iter_objects()) == []  # the batch is all or nothing
