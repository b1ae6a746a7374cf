"""What to ask for next time: requested against used, and the request_* line to write (pure)."""

from fakes import drop, fake_pipeline, report

from chtcd import sizing

GB = 1024


def done(memory_mb=None, request_memory_mb=None, disk_kb=None, request_disk_kb=None, cpu=None, wall=None, cpus=None):
    return {"status": 4, "memory_mb": memory_mb, "request_memory_mb": request_memory_mb, "disk_kb": disk_kb,
            "request_disk_kb": request_disk_kb, "cpu_seconds": cpu, "wall_seconds": wall, "request_cpus": cpus}


def lines_by_resource(assessment):
    return {s["resource"]: s["line"] for s in assessment["suggestions"]}


def test_memory_far_above_use_gets_the_largest_use_plus_a_margin_rounded_up():
    jobs = [done(memory_mb=m, request_memory_mb=16 * GB) for m in (1000, 1200, 1900)]
    found = sizing.assess(jobs)
    assert found["memory"] == {"requested": {"max": 16 * GB, "median": 16 * GB}, "used": {"max": 1900, "median": 1200}}
    assert lines_by_resource(found) == {"memory": "request_memory = 3GB"}  # 1900 x 1.25 = 2375 MB -> 3 GB
    assert "at most 1.9 GB of the 16.0 GB requested" in found["suggestions"][0]["why"]


def test_a_request_close_to_use_gets_no_suggestion():
    found = sizing.assess([done(memory_mb=1500, request_memory_mb=2 * GB, disk_kb=900_000, request_disk_kb=1024 * 1024)])
    assert found["suggestions"] == []
    assert found["disk"]["used"] == {"max": 900_000, "median": 900_000}


def test_small_requests_are_not_worth_a_line():
    assert sizing.assess([done(memory_mb=5, request_memory_mb=64)])["suggestions"] == []


def test_jobs_held_for_exceeding_memory_get_a_larger_request():
    held = {"status": 5, "hold_code": 34, "hold_reason": "memory usage exceeded request_memory",
            "memory_mb": 1500, "request_memory_mb": GB}
    found = sizing.assess([held, done(memory_mb=700, request_memory_mb=GB)])
    assert found["memory"]["used"] == {"max": 1500, "median": 1100}
    (suggestion,) = found["suggestions"]
    assert suggestion["line"] == "request_memory = 2GB" and suggestion["why"].startswith("1 job(s) were held")


def test_jobs_held_for_exceeding_disk_get_a_larger_disk_request():
    held = {"status": 5, "hold_code": 21, "hold_reason": "Job disk usage (3000000 KB) exceeded request_disk",
            "disk_kb": 3_000_000, "request_disk_kb": 1024 * 1024}
    assert lines_by_resource(sizing.assess([held])) == {"disk": "request_disk = 4GB"}  # 2.9 GB used x 1.25 = 3.6 GB


def test_a_hold_for_something_else_suggests_nothing():
    held = {"status": 5, "hold_code": 13, "hold_reason": "Transfer input files failure", "request_memory_mb": 64 * GB}
    assert sizing.assess([held])["suggestions"] == []


def test_cpus_requested_but_idle_and_cpus_used_beyond_the_request():
    lazy = sizing.assess([done(cpu=3600 * 1.02, wall=3600, cpus=8)])
    assert lines_by_resource(lazy) == {"cpus": "request_cpus = 2"}  # 1.02 x 1.25 = 1.3 -> 2
    busy = sizing.assess([done(cpu=3600 * 3.9, wall=3600, cpus=1)])
    assert lines_by_resource(busy) == {"cpus": "request_cpus = 5"}
    assert "ask for the threads" in busy["suggestions"][0]["why"]


def test_numbers_as_the_state_file_holds_them_for_status():
    """`status` reads floats as text (glance); sizing takes them as they come."""
    found = sizing.assess([{"status": 4, "cpu_seconds": "7200.0", "wall_seconds": "3600.0", "request_cpus": 8}])
    assert found["cpus"]["used"] == {"max": 2.0, "median": 2.0}


def test_the_report_has_resources_and_the_line_to_write(tmp_path):
    pipe, ap, layout = fake_pipeline(tmp_path)
    drop(layout, "big", "queue 2")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    for proc, used in ((0, 900), (1, 1400)):
        ap.set_status(cluster, proc, 4, exit_code=0, memory_mb=used, request_memory_mb=32 * GB,
                      request_disk_kb=1024 * 1024, disk_kb=1000, request_cpus=1)
    pipe.tick(2.0)
    rep = report(layout, "big")
    assert rep["resources"]["memory"] == {"requested": {"max": 32 * GB, "median": 32 * GB}, "used": {"max": 1400, "median": 1150}}
    assert [s["line"] for s in rep["resources"]["suggestions"]] == ["request_memory = 2GB"]
