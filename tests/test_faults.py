"""Faults of whole runs: Snakemake and its job killed mid-write, unlocked and rerun."""

import os
import signal
import subprocess
import time

from conftest import LORA, planned_jobs, reduced_config, seed_workdir, snakemake, snakemake_cmd


def test_killed_synthesis_keeps_finished_shards_and_resumes_identically(upstream, tmp_path):
    """SIGKILL Snakemake and its job while it writes the 2nd of 2 shards in series; --unlock;
    rerun: the finished shard is kept, and the one in flight equals an uninterrupted run's bytes."""
    config = reduced_config()
    config["runtime"]["synthesis_batch_size"] = 4  # 10 batches a shard: time to catch one in flight
    shards = [f"results/digits/realfake/shards/{i:05d}.tar" for i in range(2)]
    folder = tmp_path / "results/digits/realfake/shards"
    seed_workdir(upstream, tmp_path)
    assert planned_jobs(tmp_path, config, None, LORA) == {}
    cmd = snakemake_cmd() + ["--cores", "1", *shards, "--directory", str(tmp_path),
                             "--configfile", str(tmp_path / "config.yaml")]
    job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600

    def writing_second_shard():
        done = [p for p in folder.glob("*.tar")] if folder.is_dir() else []
        return len(done) == 1 and any(folder.glob(".tmp-*.partial"))

    while not writing_second_shard() and time.time() < deadline and job.poll() is None:
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    finished = sorted(p.name for p in folder.glob("*.tar"))
    assert len(finished) == 1, finished  # killed while the second shard was being written
    kept = (folder / finished[0]).read_bytes()
    assert snakemake(tmp_path, "--unlock", config=config).returncode == 0
    assert planned_jobs(tmp_path, config, None, *shards) == {"synthesize_shard": 1}
    rerun = snakemake(tmp_path, "--cores", "2", *shards, config=config)  # one thread a job: same bytes
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (folder / finished[0]).read_bytes() == kept and not list(folder.glob(".tmp-*"))
    # the shard that was in flight, made again by a run that nothing interrupts: the same bytes
    # (the first was never touched again)
    interrupted = shards[1]
    resumed = (tmp_path / interrupted).read_bytes()
    (tmp_path / interrupted).unlink()
    again = snakemake(tmp_path, "--cores", "1", interrupted, config=config)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / interrupted).read_bytes() == resumed
