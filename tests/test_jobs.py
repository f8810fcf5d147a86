"""A job's log holds every attempt of a chunked run (issue 31, item 7): Snakemake deletes the log
before each attempt, so the job keeps a history beside it and copies it back."""

import subprocess
import sys

from realfake.jobs import finish_job_log, history_path, open_job_log


def _attempt(log, line, environ, finished=False):
    stream, attempt = open_job_log(log, environ)
    stream.write(line + "\n")
    if finished:
        finish_job_log(stream, attempt)
    for s in stream.streams:
        s.close()
    return attempt


def test_retries_and_requeues_append_and_a_run_after_a_finished_one_starts_anew(tmp_path):
    log = tmp_path / "logs" / "train.log"
    assert _attempt(log, "epoch 1 of chunk one", {"SLURM_JOB_ID": "101"}) == 1
    log.unlink()  # Snakemake removes a job's log before every attempt
    assert _attempt(log, "epoch 2 of chunk two", {"SLURM_JOB_ID": "102"}) == 2
    log.unlink()
    assert _attempt(log, "epoch 3 after a node failure", {"SLURM_JOB_ID": "102", "SLURM_RESTART_COUNT": "1"},
                    finished=True) == 3
    text = log.read_text()
    lines = [line for line in text.splitlines() if not line.startswith("=====")]
    assert lines == ["epoch 1 of chunk one", "epoch 2 of chunk two", "epoch 3 after a node failure"]
    assert "===== attempt 1, SLURM job 101 (restart 0), host " in text
    assert "===== attempt 2, SLURM job 102 (restart 0), host " in text
    assert "===== attempt 3, SLURM job 102 (restart 1), host " in text
    assert text.splitlines()[-1].startswith("===== finished after attempt 3 at ")
    assert history_path(log).read_text() == text
    assert _attempt(log, "a rerun after a config edit", {}) == 1
    assert log.read_text().splitlines()[1:] == ["a rerun after a config edit"]
    assert "===== attempt 1, no SLURM job, host " in log.read_text()


SCRIPT = """
import sys
from realfake.jobs import start_job
log = start_job(sys.argv[1])
log.info("working")
if sys.argv[2] == "fail":
    raise RuntimeError("stopped at its time limit")
"""


def test_a_job_is_marked_finished_only_when_it_exits_cleanly(tmp_path):
    log = tmp_path / "job.log"
    for outcome in ("fail", "ok", "ok"):
        subprocess.run([sys.executable, "-c", SCRIPT, str(log), outcome], check=False)
    text = log.read_text()  # a failed attempt, the retry that finished it; then a fresh run
    assert text.count("===== attempt ") == 1 and "===== attempt 1, " in text and "RuntimeError" not in text
    subprocess.run([sys.executable, "-c", SCRIPT, str(log), "fail"], check=False)
    subprocess.run([sys.executable, "-c", SCRIPT, str(log), "ok"], check=False)
    text = log.read_text()
    assert "===== attempt 1, " in text and "RuntimeError: stopped at its time limit" in text
    assert "===== attempt 2, " in text and text.splitlines()[-1].startswith("===== finished after attempt 2")
