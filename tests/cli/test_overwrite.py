"""fit --out / --overwrite never loses the user's data; replacement is atomic and locked (issue 9 s1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from leapscreen.persist import atomic
from tests.cli.conftest import TINY, assert_clean_error, invoke


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def _fit(dataset, out, *extra):
    return invoke(["fit", "--data", dataset, *TINY, "--out", out, "-q", *extra])


def test_overwrite_refuses_a_user_directory(screen_files, tmp_path):
    user = tmp_path / "results"
    user.mkdir()
    (user / "notes.txt").write_text("my notes")
    (user / "sub").mkdir()
    (user / "sub" / "data.csv").write_bytes(screen_files["expression"].read_bytes())
    before = _snapshot(user)
    res = _fit(screen_files["dataset"], user, "--overwrite")
    assert_clean_error(res, str(user), "does not hold a leapscreen model", "notes.txt", "--out")
    assert _snapshot(user) == before  # every file still there, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no temp or lock left


def test_overwrite_refuses_a_file_and_a_foreign_json(screen_files, tmp_path):
    f = tmp_path / "model.csv"
    f.write_text("a,b\n1,2\n")
    res = _fit(screen_files["dataset"], f, "--overwrite")
    assert_clean_error(res, "not a directory", str(f))
    assert f.read_text() == "a,b\n1,2\n"
    foreign = tmp_path / "other"
    foreign.mkdir()
    (foreign / "leapscreen_model.json").write_text(json.dumps({"format": "something.else"}))
    res = _fit(screen_files["dataset"], foreign, "--overwrite")
    assert_clean_error(res, "does not hold a leapscreen model")
    assert json.loads((foreign / "leapscreen_model.json").read_text()) == {
        "format": "something.else"
    }


def test_out_checked_before_reading_inputs(tmp_path):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    res = invoke(["fit", "-x", tmp_path / "missing.csv", "-y", tmp_path / "r.csv", "--out", out])
    assert_clean_error(res, "never overwrites", "--overwrite")
    assert "missing.csv" not in res.output
    res = invoke(
        [
            "fit",
            "-x",
            tmp_path / "missing.csv",
            "-y",
            tmp_path / "r.csv",
            "--out",
            out,
            "--overwrite",
        ]
    )
    assert_clean_error(res, "does not hold a leapscreen model")
    assert "missing.csv" not in res.output


def test_overwrite_replaces_a_model_and_an_empty_dir_with_normal_permissions(
    screen_files, tmp_path
):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _fit(screen_files["dataset"], empty, "--overwrite")
    assert res.exit_code == 0, res.output
    assert atomic.is_model_directory(empty)
    old = (empty / "leapscreen_model.json").read_bytes()
    res = _fit(screen_files["dataset"], empty, "--overwrite", "--seed", "1")
    assert res.exit_code == 0, res.output
    assert (empty / "leapscreen_model.json").read_bytes() != old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no .old, no temp, no lock
    mode = empty.stat().st_mode & 0o777
    assert mode == 0o777 & ~atomic._umask()  # the user's umask, not mkdtemp's 0700


def _fake_model(path: Path, tag: str) -> Path:
    path.mkdir()
    (path / "leapscreen_model.json").write_text(
        json.dumps({"format": "leapscreen.LEAP", "tag": tag})
    )
    (path / "arrays.npz").write_bytes(tag.encode() * 100)
    return path


def _tag(path: Path) -> str:
    return json.loads((path / "leapscreen_model.json").read_text())["tag"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-fallback"])
def test_publish_interrupted_at_each_step_leaves_old_or_new(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = _fake_model(tmp_path / "model", "old")
    # interrupted before the swap: the old model is untouched
    new = _fake_model(tmp_path / ".model.new1", "new")
    real_rename = Path.rename
    calls = {"n": 0}

    def failing_rename(self, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # fallback: after parking the old model, before the new one moves
            raise KeyboardInterrupt
        return real_rename(self, dst)

    if exchange:
        monkeypatch.setattr(
            atomic, "_exchange", lambda a, b: (_ for _ in ()).throw(KeyboardInterrupt)
        )
    else:
        monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(KeyboardInterrupt):
        atomic.publish_directory(new, target)
    monkeypatch.undo()
    assert _tag(target) == "old"
    assert not atomic.backup_path(target).exists()
    # interrupted after the swap, while removing the old copy: the new model is in place
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)

    def interrupted_remove(path):
        if path.exists():  # removing the old copy (already swapped out of place)
            assert _tag(path) == "old"
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.publish_directory(new, target, _remove=interrupted_remove)
    assert _tag(target) == "new"


def test_recover_restores_a_parked_model(tmp_path):
    target = tmp_path / "model"
    _fake_model(atomic.backup_path(target), "old")  # a hard kill between the two renames
    atomic.recover(target)
    assert _tag(target) == "old" and not atomic.backup_path(target).exists()


def test_interrupted_fit_keeps_the_old_model(screen_files, tmp_path, monkeypatch):
    out = tmp_path / "model"
    assert _fit(screen_files["dataset"], out).exit_code == 0
    before = _snapshot(out)
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: (_ for _ in ()).throw(KeyboardInterrupt))
    # Ctrl-C at the swap (click turns it into "Aborted!", exit 1)
    res = _fit(screen_files["dataset"], out, "--overwrite", "--seed", "4")
    assert res.exit_code != 0
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # temp dir and lock removed


def test_concurrent_fit_gets_a_clear_error(screen_files, tmp_path):
    import socket

    out = tmp_path / "model"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # another live process holds the lock on --out
        atomic.lock_path(out).write_text(f"{other.pid} {socket.gethostname()}\n")
        res = _fit(screen_files["dataset"], out)
        assert_clean_error(res, "another leapscreen process", str(other.pid), "--out")
        assert sorted(p.name for p in tmp_path.iterdir()) == [".model.lock"]  # its lock, kept
        assert not out.exists()
    finally:
        other.kill()
        other.wait()


def test_lock_is_reentrant_in_one_process(tmp_path):
    target = tmp_path / "model"
    with atomic.target_lock(target), atomic.target_lock(target):
        assert atomic.lock_path(target).exists()
    assert not atomic.lock_path(target).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(screen_files, tmp_path):
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    import socket

    atomic.lock_path(out).write_text(f"{proc.stdout.strip()} {socket.gethostname()}\n")
    half = tmp_path / ".model.ab12_xyz"  # a killed writer's half-written temp dir
    half.mkdir()
    (half / "arrays.npz").write_bytes(b"partial")
    mine = tmp_path / ".model.keepme12"  # same pattern, but holds a user file: left alone
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    res = _fit(screen_files["dataset"], out)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.keepme12", "model"]
    assert (mine / "thesis.tex").read_text() == "x"


def test_two_real_processes_one_wins(tmp_path):
    """Two lock takers at once (separate processes): exactly one gets the lock."""
    code = (
        "import sys, time\n"
        "from leapscreen.persist.atomic import target_lock\n"
        "from leapscreen.errors import InputError\n"
        "try:\n"
        "    with target_lock(sys.argv[1]):\n"
        "        time.sleep(1.5)\n"
        "    print('won')\n"
        "except InputError as e:\n"
        "    print('lost', e)\n"
    )
    target = tmp_path / "model"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = sorted(p.communicate(timeout=60)[0].split()[0] for p in procs)
    assert outs == ["lost", "won"]
    assert not atomic.lock_path(target).exists()
