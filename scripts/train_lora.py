from realfake.budget import Checkpointing, TimeBudget
from realfake.captions import read_captions
from realfake.data import read_manifest
from realfake.guidance import guidance_rows
from realfake.jobs import start_job
from realfake.lora import LoraSettings, train_lora

log = start_job(snakemake.log.main, snakemake.threads)
runtime = snakemake.config["runtime"]
budget = TimeBudget(snakemake.resources.get("runtime"), runtime["time_limit_margin_minutes"])
settings = LoraSettings(**snakemake.params.lora)
train = read_manifest(snakemake.input.manifest, "train")
captions = read_captions(snakemake.input.captions, len(train)) if snakemake.input.captions else None
guidance = (guidance_rows(snakemake.input.guidance, settings.guidance_mode, train["label"], train["index"])
            if snakemake.input.guidance else None)
stats = train_lora(snakemake.params.model, train, snakemake.output[0], settings, captions, guidance,
                   checkpoint_path=snakemake.output[0] + ".checkpoint.pt",
                   checkpointing=Checkpointing(runtime["lora_checkpoint_every"], runtime["checkpoint_minutes"]),
                   budget=budget, device=runtime["device"],
                   num_workers=runtime["num_workers"], loss_log=snakemake.log.losses,
                   log_every=runtime["lora_log_every"])
log.info("LoRA trained: %s", stats)
