"""s3_mirror's asset trash, restore, purge_trash, protected keys and interruptions, against moto's S3 server over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from sandbox.directus_fixture import bucket_listing
from sandbox.module_runner import MODULE_PACKAGE, module_env

MODULE = "s3_mirror"
TRASH = "_directus_promote_trash/"
FAULT_ENV = "CASPER_DIRECTUS_PROMOTE_FAULT"


def unique(name):
    return "s3t-%s-%s" % (name, uuid.uuid4().hex[:10])


def conn(sandbox, endpoint=None, **extra):
    return sandbox.aws.module_args(endpoint, **extra)


@pytest.fixture
def s3(sandbox):
    return sandbox.aws.client("s3")


def new_bucket(s3, name, versioned=False):
    bucket = unique(name)
    s3.create_bucket(Bucket=bucket)
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def put(s3, bucket, key, body, **kwargs):
    s3.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)


def state(s3, bucket, prefix="", skip=TRASH):
    """{key: (bytes, content type, cache control, user metadata, tags)} of a bucket (without the trash folder)."""
    out = {}
    for key in bucket_listing(s3, bucket, prefix):
        if skip and key.startswith(skip):
            continue
        obj = s3.get_object(Bucket=bucket, Key=key)
        tags = sorted((t["Key"], t["Value"]) for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"])
        out[key] = (obj["Body"].read(), obj.get("ContentType"), obj.get("CacheControl"), obj.get("Metadata"), tags)
    return out


def everything(s3, *buckets):
    """Every version and delete marker of every bucket: a check-mode run must leave this exactly as it was."""
    out = {}
    for bucket in buckets:
        versions = s3.list_object_versions(Bucket=bucket)
        out[bucket] = (sorted((v["Key"], v["VersionId"], v["ETag"], v["IsLatest"]) for v in versions.get("Versions", [])),
                       sorted((m["Key"], m["VersionId"], m["IsLatest"]) for m in versions.get("DeleteMarkers", [])))
    return out


def manifests(s3, bucket, prefix=TRASH):
    return sorted(key for key in bucket_listing(s3, bucket, prefix) if key.rsplit("/", 1)[-1].startswith("manifest-"))


def promotion(s3, versioned=False, trash_bucket=False):
    """A production target and a staging source that differ in every way: overwritten, deleted, added, unchanged."""
    src, dst = new_bucket(s3, "src"), new_bucket(s3, "dst", versioned)
    put(s3, dst, "a.jpg", b"production a", ContentType="image/jpeg", CacheControl="max-age=60", Metadata={"who": "prod"})
    put(s3, dst, "b.jpg", b"production b, deleted by the prune", ContentType="image/png", Metadata={"x": "1"},
        Tagging="keep=yes")
    put(s3, dst, "b__thumb.jpg", b"thumbnail of b")
    put(s3, dst, "same.txt", b"same")
    put(s3, dst, "only-prod-1.txt", b"1")
    put(s3, src, "a.jpg", b"staging a, longer", ContentType="image/webp", Metadata={"who": "staging"})
    put(s3, src, "same.txt", b"same")
    put(s3, src, "new.jpg", b"staging new")
    put(s3, src, "new__thumb.jpg", b"staging new thumb")
    put(s3, src, "only-prod-1.txt", b"1")
    extra = {}
    if trash_bucket:
        extra["trash_bucket"] = new_bucket(s3, "trash")
    return src, dst, extra


def promote(run_module, sandbox, src, dst, run_id, **extra):
    args = dict(conn(sandbox), source_bucket=src, target_bucket=dst, run_id=run_id, max_delete_percent=100, **extra)
    copy = run_module(MODULE, dict(args, mode="copy"))
    assert not copy.get("failed"), copy.get("msg")
    prune = run_module(MODULE, dict(args, mode="prune"))
    assert not prune.get("failed"), prune.get("msg")
    return copy, prune


@pytest.mark.parametrize("kind", ["unversioned", "versioned", "trash_bucket"])
def test_restore_gives_back_the_target_as_it_was(sandbox, s3, run_module, kind):
    src, dst, extra = promotion(s3, versioned=kind == "versioned", trash_bucket=kind == "trash_bucket")
    trash_bucket = extra.get("trash_bucket", dst)
    before = state(s3, dst)
    run_id = "prod-20261203T160000Z-%s" % uuid.uuid4().hex[:8]

    copy, prune = promote(run_module, sandbox, src, dst, run_id, **extra)
    assert copy["run_id"] == run_id and copy["changed"] is True
    assert copy["trash"]["versioned"] is (kind == "versioned")
    assert (copy["trash"]["saved"], copy["trash"]["added"]) == (1, 2)  # a.jpg saved; new.jpg, new__thumb.jpg added
    assert (prune["trash"]["saved"], prune["trash"]["added"]) == (2, 0)  # b.jpg, b__thumb.jpg
    assert copy["trash"]["location"] == "s3://%s/%s%s/" % (trash_bucket, TRASH, run_id)
    assert manifests(s3, trash_bucket) == ["%s%s/manifest-000001-copy.json" % (TRASH, run_id),
                                           "%s%s/manifest-000002-prune.json" % (TRASH, run_id)]
    assert state(s3, dst) == state(s3, src, skip=None)
    saved_copies = [key for key in bucket_listing(s3, trash_bucket, TRASH) if "/objects/" in key]
    if kind == "versioned":
        assert saved_copies == []  # the previous versions are kept by the bucket, their ids are in the manifests
        document = json.loads(s3.get_object(Bucket=trash_bucket, Key=manifests(s3, trash_bucket)[1])["Body"].read())
        assert sorted(entry["key"] for entry in document["saved"]) == ["b.jpg", "b__thumb.jpg"]
        assert all(entry["version_id"] for entry in document["saved"])
    else:
        assert sorted(saved_copies) == ["%s%s/objects/%s" % (TRASH, run_id, key) for key in ("a.jpg", "b.jpg", "b__thumb.jpg")]

    args = dict(conn(sandbox), target_bucket=dst, mode="restore", run_id=run_id, **extra)
    untouched = everything(s3, src, dst, trash_bucket)
    check = run_module(MODULE, args, check=True, diff=True)
    assert not check.get("failed"), check.get("msg")
    assert everything(s3, src, dst, trash_bucket) == untouched
    assert (check["changed"], check["restored"], check["removed"]) == (True, 3, 2)
    assert check["restored_keys"] == ["a.jpg", "b.jpg", "b__thumb.jpg"]
    assert check["removed_keys"] == ["new.jpg", "new__thumb.jpg"]
    assert "new.jpg (removed)" in check["diff"]["before"] and "a.jpg (restored" in check["diff"]["after"]

    restore = run_module(MODULE, args)
    assert not restore.get("failed"), restore.get("msg")
    assert {name: restore[name] for name in ("changed", "restored", "removed", "restored_keys", "removed_keys")} == {
        name: check[name] for name in ("changed", "restored", "removed", "restored_keys", "removed_keys")}
    assert state(s3, dst) == before  # bytes, headers, user metadata, tags and the key set
    again = run_module(MODULE, args)
    assert (again["changed"], again["restored"], again["removed"], again["in_place"]) == (False, 0, 0, 3)
    assert state(s3, dst) == before


def test_restore_leaves_objects_changed_since_the_run_alone(sandbox, s3, run_module):
    src, dst, _extra = promotion(s3)
    run_id = "r-" + uuid.uuid4().hex[:8]
    promote(run_module, sandbox, src, dst, run_id)
    put(s3, dst, "new.jpg", b"uploaded on production after the promotion")
    put(s3, dst, "a.jpg", b"edited on production after the promotion")
    result = run_module(MODULE, dict(conn(sandbox), target_bucket=dst, mode="restore", run_id=run_id))
    assert not result.get("failed"), result.get("msg")
    assert result["changed_since"] == ["a.jpg", "new.jpg"]
    assert result["restored_keys"] == ["b.jpg", "b__thumb.jpg"] and result["removed_keys"] == ["new__thumb.jpg"]
    assert s3.get_object(Bucket=dst, Key="new.jpg")["Body"].read() == b"uploaded on production after the promotion"
    assert s3.get_object(Bucket=dst, Key="a.jpg")["Body"].read() == b"edited on production after the promotion"


def test_a_rerun_with_the_same_run_id_keeps_the_first_saved_original(sandbox, s3, run_module):
    src, dst, _extra = promotion(s3)
    before = state(s3, dst)
    run_id = "r-" + uuid.uuid4().hex[:8]
    args = dict(conn(sandbox), source_bucket=src, target_bucket=dst, run_id=run_id, mode="copy")
    assert run_module(MODULE, args)["trash"]["saved"] == 1
    put(s3, src, "a.jpg", b"staging a, edited again between the two attempts")
    second = run_module(MODULE, args)
    assert second["changed"] is True and second["counts"]["updated"] == 1
    assert second["trash"]["saved"] == 0  # a.jpg is already saved: its saved copy holds production's bytes
    saved = s3.get_object(Bucket=dst, Key="%s%s/objects/a.jpg" % (TRASH, run_id))["Body"].read()
    assert saved == b"production a"
    third = run_module(MODULE, args)
    assert third["changed"] is False and len(manifests(s3, dst)) == 2  # no change: no manifest either
    restore = run_module(MODULE, dict(conn(sandbox), target_bucket=dst, mode="restore", run_id=run_id))
    assert restore["restored_keys"] == ["a.jpg"] and restore["removed_keys"] == ["new.jpg", "new__thumb.jpg"]
    assert state(s3, dst) == before


def test_the_trash_inside_the_target_range_is_never_copied_compared_or_pruned(sandbox, s3, run_module):
    src, dst = new_bucket(s3, "src"), new_bucket(s3, "dst")
    put(s3, src, "live/a.txt", b"a")
    put(s3, src, "live/%sfrom-staging.txt" % TRASH, b"a staging object where production keeps its trash")
    put(s3, dst, "live/old.txt", b"old")
    put(s3, dst, "live/%searlier-run/objects/x" % TRASH, b"an earlier run's trash")
    args = dict(conn(sandbox), source_bucket=src, source_prefix="live/", target_bucket=dst, target_prefix="live/",
                trash_prefix="live/" + TRASH, max_delete_percent=100, run_id="r1")
    result = run_module(MODULE, args)
    assert not result.get("failed"), result.get("msg")
    assert result["changed_keys"] == ["live/a.txt"] and result["deleted_keys"] == ["live/old.txt"]
    assert result["plan"]["source_objects"] == 1 and result["plan"]["target_objects"] == 1
    keys = sorted(bucket_listing(s3, dst))
    assert "live/%searlier-run/objects/x" % TRASH in keys
    assert "live/%sfrom-staging.txt" % TRASH not in keys
    assert "live/%sr1/objects/live/old.txt" % TRASH in keys
    again = run_module(MODULE, args)
    assert again["changed"] is False and again["plan"]["target_objects"] == 1
    # a trash that would hold the target range is refused before any request
    refused = run_module(MODULE, dict(args, trash_prefix=""))
    assert refused["failed"] and "trash_prefix must not be empty" in refused["msg"]


def test_purge_trash_keeps_the_newest_runs(sandbox, s3, run_module):
    src, dst = new_bucket(s3, "src", versioned=False), new_bucket(s3, "dst", versioned=True)
    args = dict(conn(sandbox), source_bucket=src, target_bucket=dst, max_delete_percent=100)
    runs = []
    for number in range(4):
        put(s3, dst, "k.txt", b"production before run %d" % number)
        put(s3, src, "k.txt", b"staging for run %d" % number)
        run_id = "run%d-%s" % (number, uuid.uuid4().hex[:6])
        result = run_module(MODULE, dict(args, run_id=run_id))
        assert result["trash"]["saved"] == 1, result
        runs.append(run_id)
        time.sleep(1.1)  # S3 times have a resolution of one second
    purge = dict(conn(sandbox), target_bucket=dst, mode="purge_trash", keep_runs=2)
    versions_before = everything(s3, src, dst)
    check = run_module(MODULE, purge, check=True)
    assert not check.get("failed"), check.get("msg")
    assert everything(s3, src, dst) == versions_before
    assert check["kept_runs"] == [runs[3], runs[2]] and check["purged_runs"] == [runs[1], runs[0]]
    assert check["purged"] == {"runs": 2, "objects": 2, "versions": 2}
    result = run_module(MODULE, purge)
    assert result["purged"] == check["purged"] and result["changed"] is True
    assert sorted({key.split("/")[1] for key in bucket_listing(s3, dst, TRASH)}) == sorted(runs[2:])
    live = s3.list_object_versions(Bucket=dst, Prefix="k.txt")["Versions"]
    assert len(live) == 8 - 2  # the two purged runs' recorded versions are gone, the current one stays
    assert s3.get_object(Bucket=dst, Key="k.txt")["Body"].read() == b"staging for run 3"
    # the kept runs can still be undone
    restore = run_module(MODULE, dict(conn(sandbox), target_bucket=dst, mode="restore", run_id=runs[3]))
    assert restore["restored_keys"] == ["k.txt"]
    assert s3.get_object(Bucket=dst, Key="k.txt")["Body"].read() == b"production before run 3"
    assert run_module(MODULE, purge)["changed"] is False


def test_check_mode_with_the_trash_writes_nothing(sandbox, s3, run_module):
    src, dst, _extra = promotion(s3)
    untouched = everything(s3, src, dst)
    for mode in ("mirror", "copy", "prune"):
        result = run_module(MODULE, dict(conn(sandbox), source_bucket=src, target_bucket=dst, mode=mode, run_id="c1",
                                         max_delete_percent=100), check=True, diff=True)
        assert not result.get("failed"), result.get("msg")
        assert result["trash"]["saved"] == {"mirror": 3, "copy": 1, "prune": 2}[mode]
        assert result["trash"]["manifest"] is None
    assert everything(s3, src, dst) == untouched


def test_protected_keys_and_their_thumbnails_are_never_deleted_or_overwritten(sandbox, s3, run_module):
    src, dst = new_bucket(s3, "src"), new_bucket(s3, "dst")
    for key in ("f1.jpg", "f1__a1b2.jpg", "f1__c3d4.webp", "f2.jpg", "f2__a1b2.jpg", "f10.jpg", "keep.png"):
        put(s3, dst, key, b"production " + key.encode())
    put(s3, src, "keep.png", b"staging keep.png, different")
    put(s3, src, "f10.jpg", b"production f10.jpg")
    args = dict(conn(sandbox), source_bucket=src, target_bucket=dst, protect=["f1.jpg", "keep.png"], force_delete=True,
                run_id="p1")
    result = run_module(MODULE, args)
    assert not result.get("failed"), result.get("msg")
    assert result["deleted_keys"] == ["f2.jpg", "f2__a1b2.jpg"]
    assert result["protected_keys"] == ["f1.jpg", "f1__a1b2.jpg", "f1__c3d4.webp", "keep.png"]
    assert result["plan"]["protected"] == 4 and result["counts"]["updated"] == 0
    assert sorted(bucket_listing(s3, dst)) == sorted(
        ["f1.jpg", "f1__a1b2.jpg", "f1__c3d4.webp", "f10.jpg", "keep.png"] + [
            key for key in bucket_listing(s3, dst) if key.startswith(TRASH)])
    assert s3.get_object(Bucket=dst, Key="keep.png")["Body"].read() == b"production keep.png"
    assert run_module(MODULE, args)["changed"] is False


def test_options_the_modes_need_are_checked_before_any_request(sandbox, s3, run_module):
    dst = unique("never-created")
    for args, message in (
            (dict(target_bucket=dst), "source_bucket is required with mode=mirror"),
            (dict(target_bucket=dst, mode="restore"), "run_id is required with mode=restore"),
            (dict(target_bucket=dst, mode="purge_trash"), "keep_runs is required with mode=purge_trash"),
            (dict(target_bucket=dst, mode="restore", run_id="../x"), "run_id must be"),
            (dict(target_bucket=dst, source_bucket="s", source_prefix="a/", trash_bucket="s", trash_prefix="a/t/"),
             "overlaps the source range")):
        result = run_module(MODULE, dict(conn(sandbox), **args))
        assert result["failed"] and message in result["msg"], (args, result.get("msg"))


# ---------------------------------------------------------------- interruptions

def start_module(args, fault):
    payload = dict(args)
    payload.update({"_ansible_check_mode": False, "_ansible_diff": False, "_ansible_verbosity": 0})
    proc = subprocess.Popen([sys.executable, "-m", "%s.%s" % (MODULE_PACKAGE, MODULE)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=module_env({FAULT_ENV: fault}))
    proc.stdin.write(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
    proc.stdin.close()
    proc.stdin = None  # communicate() must not flush it
    return proc


def wait_for(path, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the module never reached its fault point"
        time.sleep(0.02)


def interrupted_promotion(s3):
    src, dst = new_bucket(s3, "src"), new_bucket(s3, "dst")
    for number in range(6):
        put(s3, dst, "k%d.txt" % number, b"production %d" % number, Metadata={"n": str(number)})
        put(s3, src, "k%d.txt" % number, b"staging %d, changed" % number)
    put(s3, dst, "old1.txt", b"old 1")
    put(s3, dst, "old2.txt", b"old 2")
    return src, dst


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_during_the_copies_ends_with_json_and_a_restorable_trash(sandbox, s3, run_module, tmp_path, signame):
    src, dst = interrupted_promotion(s3)
    before = state(s3, dst)
    marker = tmp_path / "waiting"
    args = dict(conn(sandbox), source_bucket=src, target_bucket=dst, run_id="sig1", workers=1, force_delete=True)
    proc = start_module(args, "copying:wait:%s" % marker)  # after two copies were handed out
    wait_for(str(marker), proc)
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=60)
    result = json.loads(out)
    assert result["failed"] is True and "Traceback" not in err
    assert result["msg"].startswith("s3_mirror interrupted by %s after copying 2 and deleting 0 object(s)" % signame)
    assert "mode=restore with run_id=sig1" in result["msg"]
    assert result["counts"]["updated"] == 2 and result["counts"]["deleted"] == 0
    assert sorted(result["changed_keys"]) == ["k0.txt", "k1.txt"] and result["deleted_keys"] == []
    assert result["trash"]["saved"] == 8 and result["trash"]["manifest"]
    assert sandbox.aws.secret_key not in out
    assert s3.get_object(Bucket=dst, Key="k2.txt")["Body"].read() == b"production 2"

    restore = run_module(MODULE, dict(conn(sandbox), target_bucket=dst, mode="restore", run_id="sig1"))
    assert not restore.get("failed"), restore.get("msg")
    assert restore["restored_keys"] == ["k0.txt", "k1.txt"] and restore["in_place"] == 6
    assert state(s3, dst) == before


def test_sigterm_while_deleting_reports_the_deletions(sandbox, s3, run_module, tmp_path):
    src, dst = interrupted_promotion(s3)
    before = state(s3, dst)
    marker = tmp_path / "waiting"
    args = dict(conn(sandbox), source_bucket=src, target_bucket=dst, run_id="sig2", force_delete=True)
    proc = start_module(dict(args, mode="prune"), "deleting:wait:%s" % marker)
    wait_for(str(marker), proc)
    proc.send_signal(signal.SIGTERM)
    result = json.loads(proc.communicate(timeout=60)[0])
    assert result["failed"] and "after copying 0 and deleting 2 object(s)" in result["msg"]
    assert sorted(result["deleted_keys"]) == ["old1.txt", "old2.txt"]
    restore = run_module(MODULE, dict(conn(sandbox), target_bucket=dst, mode="restore", run_id="sig2"))
    assert restore["restored_keys"] == ["old1.txt", "old2.txt"]
    assert state(s3, dst) == before


def test_sigkill_at_any_step_leaves_a_restorable_run(sandbox, s3, run_module):
    src, dst = interrupted_promotion(s3)
    before = state(s3, dst)
    args = dict(conn(sandbox), source_bucket=src, target_bucket=dst, run_id="kill1", workers=1, force_delete=True)
    for fault in ("trash_saved:kill", "journaled:kill", "copying:kill"):
        proc = start_module(args, fault)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, fault
    restore = run_module(MODULE, dict(conn(sandbox), target_bucket=dst, mode="restore", run_id="kill1"))
    assert not restore.get("failed"), restore.get("msg")
    # SIGKILL came while the first two copies were in flight: restored are those that completed
    assert set(restore["restored_keys"]) <= {"k0.txt", "k1.txt"} and restore["removed"] == 0
    assert state(s3, dst) == before
    # the run finished later (same run id) is still undone to the state before its first attempt
    finished = run_module(MODULE, args)
    assert finished["counts"]["updated"] == 6 and finished["counts"]["deleted"] == 2
    assert run_module(MODULE, dict(conn(sandbox), target_bucket=dst, mode="restore", run_id="kill1"))["restored"] == 8
    assert state(s3, dst) == before


def test_a_restore_stopped_by_sigterm_says_what_it_did_and_finishes_when_run_again(sandbox, s3, run_module):
    src, dst, _extra = promotion(s3)
    before = state(s3, dst)
    promote(run_module, sandbox, src, dst, "undo1")
    proc = start_module(dict(conn(sandbox), target_bucket=dst, mode="restore", run_id="undo1"), "restored:term")
    out, err = proc.communicate(timeout=60)
    result = json.loads(out)
    assert result["failed"] and "Traceback" not in err
    assert result["msg"].startswith("Restore of run 'undo1' interrupted by SIGTERM after restoring 3 and removing 0 object(s)")
    assert result["restored_keys"] == ["a.jpg", "b.jpg", "b__thumb.jpg"] and result["removed"] == 0
    assert set(bucket_listing(s3, dst)) >= {"a.jpg", "b.jpg", "new.jpg"}  # everything that existed is back; added ones still there
    again = run_module(MODULE, dict(conn(sandbox), target_bucket=dst, mode="restore", run_id="undo1"))
    assert (again["restored"], again["removed_keys"]) == (0, ["new.jpg", "new__thumb.jpg"])
    assert state(s3, dst) == before


# ---------------------------------------------------------------- a second S3 implementation

@pytest.fixture(scope="module")
def rclone_s3(tmp_path_factory):
    from sandbox.servers import RcloneS3Server

    server = RcloneS3Server(tmp_path_factory.mktemp("rclone"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_trash_and_restore_on_rclone_serve_s3(rclone_s3, run_module):
    # rclone's S3 server has no versioning: GetBucketVersioning must not stop the trash
    s3 = rclone_s3.client()
    src, dst = unique("src"), unique("dst")
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=dst)
    put(s3, dst, "a.txt", b"production a", ContentType="text/plain")
    put(s3, dst, "gone.txt", b"production only")
    put(s3, src, "a.txt", b"staging a, other bytes", ContentType="text/markdown")
    put(s3, src, "new.txt", b"staging new")
    before = {key: s3.get_object(Bucket=dst, Key=key)["Body"].read() for key in bucket_listing(s3, dst)}
    args = rclone_s3.module_args(target_bucket=dst, run_id="rc1")
    copy = run_module(MODULE, dict(args, source_bucket=src, mode="copy"))
    prune = run_module(MODULE, dict(args, source_bucket=src, mode="prune", max_delete_percent=100))
    assert not copy.get("failed") and not prune.get("failed"), (copy.get("msg"), prune.get("msg"))
    assert copy["trash"]["versioned"] is False and copy["trash"]["saved"] == 1 and prune["trash"]["saved"] == 1
    restore = run_module(MODULE, dict(args, mode="restore"))
    assert not restore.get("failed"), restore.get("msg")
    assert restore["restored_keys"] == ["a.txt", "gone.txt"] and restore["removed_keys"] == ["new.txt"]
    after = {key: s3.get_object(Bucket=dst, Key=key)["Body"].read() for key in bucket_listing(s3, dst) if not key.startswith(TRASH)}
    assert after == before
    assert s3.head_object(Bucket=dst, Key="a.txt")["ContentType"] == "text/plain"
    assert run_module(MODULE, dict(args, mode="restore"))["changed"] is False
