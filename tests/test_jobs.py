"""A job's log holds every attempt of a chunked run (issue 31, item 7): Snakemake deletes the log
before each attempt, so the job keeps a history beside it and copies it back."""

from realfake.jobs import history_path, open_job_log


def _attempt(log, attempt, line, environ):
    stream = open_job_log(log, attempt, environ)
    stream.write(line + "\n")
    for s in stream.streams:
        s.close()


def test_retries_and_requeues_append_and_a_fresh_run_starts_anew(tmp_path):
    log = tmp_path / "logs" / "train.log"
    _attempt(log, 1, "epoch 1 of chunk one", {"SLURM_JOB_ID": "101"})
    log.unlink()  # Snakemake removes a job's log before every attempt
    _attempt(log, 2, "epoch 2 of chunk two", {"SLURM_JOB_ID": "102"})
    log.unlink()
    _attempt(log, 2, "epoch 3 after a node failure", {"SLURM_JOB_ID": "102", "SLURM_RESTART_COUNT": "1"})
    text = log.read_text()
    lines = [line for line in text.splitlines() if not line.startswith("=====")]
    assert lines == ["epoch 1 of chunk one", "epoch 2 of chunk two", "epoch 3 after a node failure"]
    assert "===== attempt 1, SLURM job 101 (restart 0), host " in text
    assert "===== attempt 2, SLURM job 102 (restart 0), host " in text
    assert "===== attempt 2, SLURM job 102 (restart 1), host " in text
    assert history_path(log).read_text() == text
    _attempt(log, 1, "a rerun after a config edit", {})
    assert log.read_text().splitlines()[1:] == ["a rerun after a config edit"]
    assert "===== attempt 1, no SLURM job, host " in log.read_text()
