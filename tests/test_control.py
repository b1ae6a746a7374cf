"""Pause, cancel, retry and hearing back, through the pipeline against the in-memory access point.

The real-pool versions are in test_pool_living.py; these pin the flow's logic fast.
"""


import pytest
from doubles import recorded, recording_script
from fakes import drop, fake_pipeline, report

from chtcd import config as configuration
from chtcd import control, notify
from chtcd.state import Stage


@pytest.fixture
def env(tmp_path):
    return fake_pipeline(tmp_path, notify={"desktop": True, "on_delivery": f"{tmp_path / 'hook'} --flag"})


def test_paused_intake_claims_nothing_but_tracking_goes_on(env):
    pipe, ap, layout = env
    drop(layout, "first")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    assert control.pause(layout) and not control.pause(layout)
    drop(layout, "second")
    ap.set_status(cluster, 0, 4, exit_code=0)
    pipe.tick(2.0)
    assert (layout.outbox / "second").is_dir() and pipe.state.paused
    assert report(layout, "first")["outcome"] == "delivered"
    assert control.resume(layout)
    pipe.tick(3.0)
    assert not (layout.outbox / "second").exists() and not pipe.state.paused


def test_cancel_removes_jobs_and_delivers_cancelled(env):
    pipe, ap, layout = env
    drop(layout, "long", "queue 3")
    pipe.tick(1.0)
    message = control.request_cancel(layout, "long", pipe.state, "ap.fake")
    assert "asked the daemon" in message and layout.cancel_request("long").exists()
    pipe.intake(2.0)
    assert ap.clusters() == [] and "remove" in ap.calls
    rep = report(layout, "long")
    assert rep["outcome"] == "cancelled" and "chtcd cancel" in rep["reason"]
    assert (layout.inbox / "long" / "run.sh").exists()
    assert not layout.cancel_request("long").exists()


def test_cancel_waits_for_the_access_point(env):
    pipe, ap, layout = env
    drop(layout, "long")
    pipe.tick(1.0)
    control.request_cancel(layout, "long", pipe.state, "ap.fake")
    ap.down = True
    pipe.tick(2.0)
    assert layout.cancel_request("long").exists() and not (layout.inbox / "long").exists()
    ap.down = False
    for t in range(3, 6):
        pipe.tick(float(t))
    assert report(layout, "long")["outcome"] == "cancelled" and ap.clusters() == []
    assert not layout.cancel_request("long").exists()


def test_cancel_before_the_daemon_takes_it(env):
    pipe, ap, layout = env
    drop(layout, "early")
    control.pause(layout)
    pipe.tick(1.0)
    message = control.request_cancel(layout, "early", pipe.state, "ap.fake")
    assert "had not been sent" in message
    assert report(layout, "early")["outcome"] == "cancelled" and not (layout.outbox / "early").exists()
    assert "submit" not in ap.calls and not layout.cancel_request("early").exists()


def test_cancel_of_unknown_or_finished_bundle_is_refused(env):
    pipe, ap, layout = env
    with pytest.raises(control.ControlError, match="no bundle named ghost"):
        control.request_cancel(layout, "ghost", pipe.state, "ap.fake")
    with pytest.raises(control.ControlError):
        control.request_cancel(layout, "../escape", pipe.state, "ap.fake")
    drop(layout, "finished")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0)
    pipe.tick(2.0)
    assert report(layout, "finished")["outcome"] == "delivered"
    with pytest.raises(control.ControlError, match="no bundle named finished"):
        control.request_cancel(layout, "finished", pipe.state, "ap.fake")
    assert not layout.cancel_request("finished").exists()


def test_retry_sends_a_bundle_through_again(env):
    pipe, ap, layout = env
    (layout.outbox / "bad").mkdir()
    (layout.outbox / "bad" / "data.txt").write_text("x")
    pipe.tick(1.0)
    assert report(layout, "bad")["outcome"] == "rejected"
    (layout.inbox / "bad" / "bad.sub").write_text("executable = run.sh\nqueue\n")
    (layout.inbox / "bad" / "run.sh").write_text("#!/bin/sh\n")
    target = control.retry(layout, "bad")
    assert target == layout.outbox / "bad"
    assert not (target / "chtcd-report.json").exists() and not (layout.inbox / "bad").exists()
    pipe.tick(2.0)
    assert len(ap.clusters()) == 1
    with pytest.raises(control.ControlError, match="not a folder in the inbox"):
        control.retry(layout, "bad")


def test_watcher_announces_delivery_holds_and_runs_on_delivery(env, tmp_path, monkeypatch):
    pipe, ap, layout = env
    shown = tmp_path / "notifications.log"
    monkeypatch.setenv("CHTCD_NOTIFY_COMMAND", str(recording_script(tmp_path / "notifier", shown)))
    recording_script(tmp_path / "hook", tmp_path / "hook.log")
    watcher = notify.Watcher(notify.Notifier(pipe.config), pipe.state)
    drop(layout, "job", "queue 2")
    pipe.tick(1.0)
    assert watcher.look(pipe.state) == []
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 1, 5, now=1.0, hold_code=34, hold_reason="memory exceeded")
    pipe.tick(2.0)
    for thread in watcher.look(pipe.state):
        thread.join(10)
    assert recorded(shown) and recorded(shown)[-1]["argv"] == [f"chtcd: job: job {cluster}.1 held", "memory exceeded"]
    assert watcher.look(pipe.state) == [], "a hold is announced once"
    ap.set_status(cluster, 1, 4, exit_code=0)
    ap.set_status(cluster, 0, 4, exit_code=0)
    pipe.tick(3.0)
    for thread in watcher.look(pipe.state):
        thread.join(10)
    assert recorded(shown)[-1]["argv"] == ["chtcd: job is back", str(layout.inbox / "job")]
    (hook,) = recorded(tmp_path / "hook.log")
    assert hook["argv"] == ["--flag", str(layout.inbox / "job")] and hook["outcome"] == "delivered"
    assert hook["cwd"] == str(layout.inbox / "job")


def test_rejected_bundle_is_announced_without_on_delivery(env, tmp_path, monkeypatch):
    pipe, ap, layout = env
    shown = tmp_path / "notifications.log"
    monkeypatch.setenv("CHTCD_NOTIFY_COMMAND", str(recording_script(tmp_path / "notifier", shown)))
    recording_script(tmp_path / "hook", tmp_path / "hook.log")
    watcher = notify.Watcher(notify.Notifier(pipe.config), pipe.state)
    (layout.outbox / "bad").mkdir()
    pipe.tick(1.0)
    for thread in watcher.look(pipe.state):
        thread.join(10)
    (entry,) = recorded(shown)
    assert entry["argv"][0] == "chtcd: bad was refused" and "no submit file" in entry["argv"][1]
    assert recorded(tmp_path / "hook.log") == []


def test_failing_on_delivery_is_logged_not_fatal(env, tmp_path, monkeypatch, capsys):
    pipe, ap, layout = env
    monkeypatch.setenv("CHTCD_NOTIFY_COMMAND", str(recording_script(tmp_path / "notifier", tmp_path / "n.log")))
    recording_script(tmp_path / "hook", tmp_path / "hook.log", exit_code=7)
    watcher = notify.Watcher(notify.Notifier(pipe.config), pipe.state)
    drop(layout, "job")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0)
    pipe.tick(2.0)
    threads = watcher.look(pipe.state)
    for thread in threads:
        thread.join(10)
    assert len(recorded(tmp_path / "hook.log")) == 1
    assert "on_delivery command failed" in capsys.readouterr().out
    assert pipe.state.bundles and all(r.stage in (Stage.DELIVERED, Stage.RELEASED, Stage.DONE) for r in pipe.state.bundles.values())


def test_desktop_off_shows_nothing(env, tmp_path, monkeypatch):
    pipe, ap, layout = env
    monkeypatch.setenv("CHTCD_NOTIFY_COMMAND", str(recording_script(tmp_path / "notifier", tmp_path / "n.log")))
    quiet = configuration.from_mapping({"notify": {"desktop": False}}, None)
    notifier = notify.Notifier(quiet)
    assert notifier.notify("t", "b") is None
    assert recorded(tmp_path / "n.log") == []
