"""Why jobs stay idle: splitting Requirements, when to explain, and the words (pure); the tick's use of it (fake)."""

from fakes import drop, fake_pipeline, report

from chtcd import idle
from chtcd.state import BundleRecord, JobRecord, Stage

CHTC = (
    '(TARGET.PoolName == "CHTC") && ((((Target.OpSysMajorVer == 9) && (Target.OpSysName =!= "Debian") &&  '
    '!(Target.OSPool ?: false))) || (((Target.OSPool ?: false) && ((Target.OSGVO_OS_STRING ?: "") == "RHEL 9")))) && '
    '(TARGET.Arch == "X86_64") && (TARGET.Memory >= RequestMemory)'
)


def test_conjuncts_are_the_top_level_ands_without_their_parentheses():
    assert idle.conjuncts(CHTC) == [
        'TARGET.PoolName == "CHTC"',
        '(((Target.OpSysMajorVer == 9) && (Target.OpSysName =!= "Debian") &&  !(Target.OSPool ?: false))) || '
        '(((Target.OSPool ?: false) && ((Target.OSGVO_OS_STRING ?: "") == "RHEL 9")))',
        'TARGET.Arch == "X86_64"',
        "TARGET.Memory >= RequestMemory",
    ]


def test_a_parenthesised_conjunction_is_opened_and_a_repeated_clause_kept_once():
    """What the bindings send: the submit file's Requirements in parentheses, then HTCondor's own clauses."""
    sent = (
        '((TARGET.OpSys == "LINUX") && (TARGET.Memory >= RequestMemory) && ((TARGET.FileSystemDomain == MY.FileSystemDomain) || '
        '(TARGET.HasFileTransfer))) && (TARGET.Arch == "X86_64") && (TARGET.Memory >= RequestMemory)'
    )
    assert idle.conjuncts(sent) == [
        'TARGET.OpSys == "LINUX"',
        "TARGET.Memory >= RequestMemory",
        "(TARGET.FileSystemDomain == MY.FileSystemDomain) || (TARGET.HasFileTransfer)",
        'TARGET.Arch == "X86_64"',
    ]


def test_conjuncts_leave_strings_lists_and_single_clauses_whole():
    assert idle.conjuncts('Name == "a && b" && member(X, {"&&", 1})') == ['Name == "a && b"', 'member(X, {"&&", 1})']
    assert idle.conjuncts("((OpSysMajorVer == 9))") == ["OpSysMajorVer == 9"]
    assert idle.conjuncts("(A) || (B)") == ["(A) || (B)"]
    assert idle.conjuncts('Name == "say \\"&&\\"" && Y') == ['Name == "say \\"&&\\""', "Y"]
    assert idle.conjuncts("") == []


def _record(*jobs: JobRecord, explained=None, stage=Stage.RUNNING) -> BundleRecord:
    return BundleRecord(id="b", name="b", stage=stage, claimed_at=0.0, cluster=9,
                        jobs={str(j.proc): j for j in jobs}, idle_explained_at=explained)


def test_due_only_past_the_threshold_and_then_at_most_hourly():
    rec = _record(JobRecord(proc=0, status=2, entered_status_at=0.0), JobRecord(proc=1, status=1, entered_status_at=100.0),
                  JobRecord(proc=2, status=1, entered_status_at=50.0))
    assert idle.due(rec, 649.0, 600) is None, "idle 599 s: not yet"
    assert idle.due(rec, 650.0, 600) == 2, "the job idle longest"
    rec.idle_explained_at = 650.0
    assert idle.due(rec, 650.0 + 3599, 600) is None, "explained within the hour"
    assert idle.due(rec, 650.0 + 3600, 600) == 2
    assert idle.due(_record(JobRecord(proc=0, status=1, entered_status_at=0.0), stage=Stage.DELIVERED), 9999, 600) is None
    assert idle.due(_record(JobRecord(proc=0, status=5, hold_code=16, entered_status_at=0.0)), 9999, 600) is None
    assert idle.due(_record(JobRecord(proc=0, status=1, entered_status_at=0.0, gone=True)), 9999, 600) is None


def _facts(*clauses, slots=3, matching=0, **kw):
    return idle.Facts(job="9.0", idle_since=0.0, requirements="", slots=slots, matching=matching,
                      clauses=[idle.Clause(*c) for c in clauses], **kw)


def test_a_clause_no_slot_meets_is_named_with_the_slots_meeting_the_rest_and_a_hint():
    why = idle.explain(_facts(("OpSysMajorVer == 9", 0, 3), ("TARGET.Memory >= RequestMemory", 3, 0)), 700.0)
    assert why["summary"] == "no slot matches: none of the pool's 3 slot(s) meets OpSysMajorVer == 9 (3 meet the rest)"
    assert why["hints"] == ["no slot has OpSysMajorVer == 9: drop that clause or use a container (container_image)"]
    assert why["idle_for_seconds"] == 700 and why["clauses"][0] == {
        "clause": "OpSysMajorVer == 9", "slots": 0, "slots_meeting_the_rest": 3, "undefined": 0}


def test_hints_for_memory_pool_typo_and_a_busy_pool():
    memory = idle.explain(_facts(("TARGET.Memory >= RequestMemory", 0, 3), request_memory_mb=500 * 1024), 0)
    assert memory["hints"][0].startswith("no slot has the 500.0 GB of memory requested: lower request_memory")
    pool = idle.explain(_facts(('TARGET.PoolName == "CHTC"', 0, 3)), 0)
    assert "CHTC's default Requirements" in pool["hints"][0] and "localpool env" in pool["hints"][0]
    typo = idle.explain(_facts(("TARGET.OpSysMajorVerr == 9", 0, 3, 3)), 0)
    assert typo["hints"][0].startswith("no slot defines OpSysMajorVerr: check the spelling")
    busy = idle.explain(_facts(("TARGET.Memory >= RequestMemory", 3, 3), matching=3, last_rejection="insufficient priority"), 0)
    assert busy["summary"] == "3 of 3 slots match: the jobs wait for one to be free"
    assert busy["hints"][-1] == "the access point's last word on it: insufficient priority"


def test_clauses_each_met_somewhere_but_never_together():
    why = idle.explain(_facts(("A", 2, 0), ("B", 1, 2), slots=3), 0)
    assert why["summary"].startswith("no slot matches: each clause is met by some slot, but none of 3 meets them all")
    assert "without B, 2 would" in why["summary"]


def test_the_tick_explains_once_then_hourly_and_drops_the_answer_once_jobs_run(tmp_path):
    pipe, ap, layout = fake_pipeline(tmp_path, daemon={"tick_seconds": 1, "settle_seconds": 0, "explain_idle_after_seconds": 600})
    ap.slots_meeting = {"OpSysMajorVer == 9": 0, "TARGET.Memory >= RequestMemory": 1}
    drop(layout, "stuck")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 1, now=1.0)
    for now in (2.0, 600.0):
        pipe.tick(now)
    assert ap.calls.count("idle_facts") == 0, "not before the jobs were idle for explain_idle_after_seconds"
    (record,) = pipe.state.bundles.values()
    for now in range(601, 701, 10):
        pipe.tick(float(now))
    assert ap.calls.count("idle_facts") == 1, "once, not on every tick"
    assert record.idle["summary"].startswith("no slot matches: none of the pool's 1 slot(s) meets OpSysMajorVer == 9")
    pipe.tick(601.0 + 3599)
    assert ap.calls.count("idle_facts") == 1, "not within the hour"
    pipe.tick(601.0 + 3600)
    assert ap.calls.count("idle_facts") == 2, "again after an hour"
    ap.set_status(cluster, 0, 2, now=4300.0)
    pipe.tick(4301.0)
    assert record.idle is None, "running now: the explanation is dropped"
    assert ap.calls.count("idle_facts") == 2


def test_a_cancelled_idle_bundle_reports_why_it_was_idle(tmp_path):
    from chtcd import control

    pipe, ap, layout = fake_pipeline(tmp_path, daemon={"tick_seconds": 1, "settle_seconds": 0, "explain_idle_after_seconds": 5})
    ap.slots_meeting = {"TARGET.Memory >= RequestMemory": 0}
    drop(layout, "huge")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 1, now=1.0)
    pipe.tick(20.0)
    (record,) = pipe.state.bundles.values()
    assert record.idle is not None
    control.request_cancel(layout, "huge", pipe.state, "ap.fake")
    pipe.tick(21.0)
    rep = report(layout, "huge")
    assert rep["outcome"] == "cancelled"
    assert rep["idle"]["summary"].startswith("no slot matches: none of the pool's 1 slot(s) meets TARGET.Memory >= RequestMemory")


def test_one_notification_per_idle_bundle_however_often_re_explained(tmp_path, monkeypatch):
    from chtcd import notify
    from chtcd.state import State

    shown = []
    monkeypatch.setattr(notify.Notifier, "notify", lambda self, title, body: shown.append((title, body)))
    rec = _record(JobRecord(proc=0, status=1, entered_status_at=0.0))
    state = State(client_id="c", bundles={rec.id: rec})
    watcher = notify.Watcher(notify.Notifier.__new__(notify.Notifier), state)
    watcher.look(state)
    assert shown == []
    rec.idle = idle.explain(_facts(("OpSysMajorVer == 9", 0, 3)), 700.0)
    watcher.look(state)
    rec.idle = idle.explain(_facts(("OpSysMajorVer == 9", 0, 3)), 4300.0)
    watcher.look(state)
    assert shown == [("chtcd: b: jobs stay idle", rec.idle["summary"] + "\n" + rec.idle["hints"][0])]
