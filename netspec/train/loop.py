"""The driver: config -> networks, data, optimizer -> steps, logs, evaluations, checkpoints -> trained weights.

``train`` is what ``netspec train`` and ``netspec.train(...)`` call. The loop itself knows nothing about a method: it
asks the method for groups of micro-batches, one per optimizer step, and for evaluations. The data order depends
only on (seed, epoch) and the RNG state is checkpointed, so a killed and resumed CPU run ends bitwise where an
uninterrupted one does.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ErrorList, Loc, NetspecError, SpecError


class TrainError(NetspecError):
    """Training had to stop (a NaN loss, nothing to resume from, ...)."""


@dataclass
class Result:
    """What a run gives back: the trained module(s), the logged history, the final metrics and where it wrote."""

    module: Any
    networks: dict
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    out: Path | None = None
    seconds: float = 0.0


# -- the config: from the spec, or a --config file; then the command line's overrides --------------------------

def resolve_config(spec, config: str | os.PathLike | None, overrides: dict):
    """(TrainConfig, Source its locations come from) with the overrides applied and validated."""
    from ..spec.load import _errors
    from ..spec.parse import load_file
    from .config import TrainConfig, TrainFile
    if config is not None:
        src = load_file(Path(config), str(config))
        if isinstance(src.data, dict):
            from ..errors import did_you_mean
            from ..spec.models import SpecFile
            known = list(dict.fromkeys(["train"] + [f.alias or n for n, f in SpecFile.model_fields.items()]))
            for key in src.data:
                if key not in known:
                    raise SpecError(f"unknown top-level key '{key}' in a training config", src.loc((key,), key=True),
                                    did_you_mean(str(key), known) or "the file holds a 'train:' section (it may be "
                                    "a whole spec file); settings go inside 'train:'")
        try:
            cfg = TrainFile.model_validate(src.data).train
        except ValidationError as e:
            raise ErrorList(_errors(e, src)) from None
    else:
        src = spec.source
        cfg = spec.model.train
        if cfg is None:
            raise SpecError(f"'{spec.file}' has no 'train:' section", spec.source.loc(()),
                            ["add one, e.g. train: {method: classify, data: {source: digits}, epochs: 10}",
                             "or give one in a separate file with --config FILE"])
    if overrides:
        data = cfg.model_dump(by_alias=True)
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "lr":
                data["optimizer"]["lr"] = value
            else:
                data[key] = value
        try:
            cfg = TrainConfig.model_validate(data)
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            where = ".".join(str(x) for x in err["loc"])
            raise SpecError(f"command-line override: {where}: {err['msg']}", None) from None
    return cfg, src


def pick_device(name: str):
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SpecError(f"unknown device {name!r}", None, "use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device {name!r} asked for, but torch sees no CUDA GPU", None, "use --device cpu or auto")
    return dev


# -- what a method may use --------------------------------------------------------------------------------------

class Run:
    """The shared context of one run: config, spec, device, process group, and helpers for the methods."""

    def __init__(self, spec, cfg, src, device, rank: int = 0, world: int = 1):
        import torch
        self.spec, self.cfg, self.src, self.device = spec, cfg, src, device
        self.rank, self.world = rank, world
        self.graphs: dict = {}
        self.params: dict = {}
        self.bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
        self.channels_last = False
        self.log_grads = False          # set by the loop before a log step: the method records per-layer grad norms
        self.grad_norms: dict | None = None
        self._torch = torch

    def loc(self, *path) -> Loc:
        return self.src.loc(("train",) + tuple(path))

    def network_name(self) -> str:
        names = list(self.spec.networks)
        name = self.cfg.network or names[0]
        if name not in names:
            from ..errors import did_you_mean
            raise SpecError(f"no network '{name}' in {self.spec.file}; it has {', '.join(names)}",
                            self.loc("network"), did_you_mean(name, names))
        return name

    def build(self, name: str):
        """The network ``name`` on the run's device, with the config's parameters (those it declares)."""
        from ..codegen.build import build
        from ..graph.expand import expand
        from ..graph.verify import verify
        declared = set(self.spec.networks[name].raw.get("params") or {})
        unknown = set(self.cfg.params) - set().union(*(set(n.raw.get("params") or {})
                                                       for n in self.spec.networks.values()))
        if unknown:
            from ..errors import did_you_mean
            k = sorted(unknown)[0]
            raise SpecError(f"train.params sets '{k}', which no network of the spec declares", self.loc("params", k),
                            did_you_mean(k, sorted(declared)) or f"parameters: {', '.join(sorted(declared))}")
        params = {k: v for k, v in self.cfg.params.items() if k in declared}
        g = expand(self.spec, name, params=params or None)
        verify(g)
        self.graphs[name] = g
        self.params[name] = dict(g.params)
        module = build(g, device=self.device)
        conv = any(isinstance(m, self._torch.nn.Conv2d) for m in module.modules())
        self.channels_last = self.cfg.channels_last is True or (
            self.cfg.channels_last == "auto" and conv and self.device.type == "cuda")
        if self.channels_last:
            module = module.to(memory_format=self._torch.channels_last)
        return module

    @property
    def sharded(self) -> bool:
        """FSDP2 under torchrun: every rank holds a shard, so forwards (evaluation too) run on every rank."""
        return self.world > 1 and self.cfg.strategy == "fsdp"

    def wrap(self, module):
        """What the forward pass calls: the module, compiled (--compile) and/or under DDP or FSDP2 (torchrun).

        FSDP2 shards the module in place (before its optimizer is made), so the method's network is the sharded one.
        """
        if self.sharded:
            from .distributed import shard
            module = shard(module, self.device)
        elif self.world > 1:
            from .distributed import wrap
            module = wrap(module, self.device)
        if self.cfg.compile:
            module = self._torch.compile(module)
        return module

    def autocast(self):
        if self.bf16:
            return self._torch.autocast(self.device.type, dtype=self._torch.bfloat16)
        return contextlib.nullcontext()

    def clip(self, params) -> None:
        if self.cfg.grad_clip is not None:
            self._torch.nn.utils.clip_grad_norm_(list(params), self.cfg.grad_clip)

    def default_loss(self, name: str):
        from pydantic import TypeAdapter
        from .config import LossConfig
        return TypeAdapter(LossConfig).validate_python({"name": name})


# settings a resumed run may change: how long, where, how often it logs and saves, and how fast it runs
RESUMABLE = ("epochs", "steps", "out", "device", "eval_every", "log_every", "checkpoint_every", "keep", "compile",
             "threads", "precision")


def _check_same_run(saved: dict, now: dict, where) -> None:
    diffs = [f"{k}: {json.dumps(saved.get(k))} -> {json.dumps(now.get(k))}" for k in sorted(set(saved) | set(now))
             if k not in RESUMABLE and saved.get(k) != now.get(k)]
    if diffs:
        raise TrainError(f"cannot resume from {where}: it was made with other settings: " + "; ".join(diffs), None,
                         ["resume with the settings of the run (only " + ", ".join(RESUMABLE) + " may change)",
                          "or start a new run in another --out folder"])


# -- the loop ----------------------------------------------------------------------------------------------------

def train(spec_or_path, *, config=None, resume: bool = False, quiet: bool = False, **overrides) -> Result:
    """Train the network(s) of a spec as its ``train:`` section (or ``config``) says.

    Args:
        spec_or_path: a spec path, text, or loaded Spec.
        config: a separate file with a ``train:`` section (instead of the spec's own).
        resume: continue from the newest checkpoint in the output folder.
        quiet: no progress output.
        **overrides: config fields to replace: epochs, steps, lr, batch_size, device, seed, out, compile, ...
    Returns:
        a Result with the trained module, the history of logged records and the final test metrics.
    """
    import torch
    from ..spec.load import Spec, load
    from . import checkpoint as ck
    from . import distributed
    from .methods import method_class
    from .metrics import MetricsLog, plot_curves
    from .progress import Progress

    t_start = time.perf_counter()
    spec = spec_or_path if isinstance(spec_or_path, Spec) else load(spec_or_path)
    cfg, src = resolve_config(spec, config, overrides)
    rank, local_rank, world = distributed.world()
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world > 1:
        distributed.init(device)
    lead = rank == 0
    out = Path(cfg.out.format(name=spec.name))
    if lead:
        out.mkdir(parents=True, exist_ok=True)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)

    run = Run(spec, cfg, src, device, rank, world)
    method = method_class(cfg.method)(run)
    method.setup()
    per_epoch = method.steps_per_epoch()
    total = cfg.steps or cfg.epochs * per_epoch
    method.make_schedules(total)
    metas = {n: ck.weights_meta(Path(spec.file).name, spec.source.text, n, run.params.get(n, {}))
             for n in method.networks}

    step = epoch = in_epoch = 0
    last_ckpt: Path | None = None
    folder = out / "checkpoints"
    if resume:
        last_ckpt = ck.latest_checkpoint(folder)
        if last_ckpt is None:
            raise TrainError(f"nothing to resume: no checkpoint in '{folder}'", None,
                             "run without --resume to start afresh, or give the run's --out folder")
        state = ck.load_checkpoint(last_ckpt, method.networks,
                                   load=distributed.load_full_model if run.sharded else None)
        _check_same_run(state.get("config", {}), cfg.model_dump(mode="json"), last_ckpt)
        for k, opt in method.optimizers.items():
            if run.sharded:
                distributed.load_full_optimizer(method.networks, opt, state["optimizers"][k])
            else:
                opt.load_state_dict(state["optimizers"][k])
        for k, s in method.schedules.items():
            s.load_state_dict(state["schedules"][k])
        method.load_extra_state(state.get("extra", {}))
        ck.set_rng_state(state["rng"])
        step, epoch, in_epoch = state["step"], state["epoch"], state["in_epoch"]
    log = MetricsLog(out / "metrics.jsonl", enabled=lead, resume_step=step if resume else None)
    grad_log = MetricsLog(out / "grad_norms.jsonl", enabled=lead, resume_step=step if resume else None)
    history: list[dict] = []
    bar = Progress(total, step, enabled=lead and not quiet, desc=spec.name)
    if resume and lead and not quiet:
        bar.message(f"resumed from {last_ckpt} (step {step}, epoch {epoch + 1})")

    def record(r: dict) -> None:
        history.append(r)
        log.write(r)

    def gathered() -> tuple[dict, dict | None]:
        """The networks (or their whole state dicts) and optimizer states to write; every rank calls it together."""
        if run.sharded:
            return distributed.full_states(method.networks, method.optimizers)
        return method.networks, None

    saved_step = step if resume else None      # known on every rank (only rank 0 writes)

    def save() -> None:
        nonlocal last_ckpt, saved_step
        saved_step = step
        nets, opts = gathered()
        if not lead:
            return
        if opts is None:
            opts = {k: o.state_dict() for k, o in method.optimizers.items()}
        state = {"step": step, "epoch": epoch, "in_epoch": in_epoch, "rng": ck.rng_state(), "optimizers": opts,
                 "schedules": {k: s.state_dict() for k, s in method.schedules.items()},
                 "extra": method.extra_state(), "config": cfg.model_dump(mode="json")}
        last_ckpt = ck.save_checkpoint(folder, step, nets, state, metas, cfg.keep)

    def evaluate(split: str) -> dict:
        if not lead and not run.sharded:
            return {}
        res = method.evaluate(split)
        if not lead:
            return res
        record({"step": step, "epoch": epoch, "split": split, **res})
        if not quiet:
            bar.message(f"{split} at step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in res.items()))
        return res

    seen, t_log = 0, time.perf_counter()
    try:
        while step < total:
            for group in method.batches(epoch, in_epoch):
                # sharded gradients are gathered to measure them, which every rank must join
                run.log_grads = (lead or run.sharded) and ((step + 1) % cfg.log_every == 0 or step + 1 == total)
                logs = method.train_step(group)
                if not math.isfinite(logs["loss"]):
                    where = f"the last good checkpoint is {last_ckpt}" if last_ckpt else "no checkpoint was written yet"
                    raise TrainError(f"the loss became {logs['loss']} at step {step + 1} (epoch {epoch + 1}); "
                                     f"training stopped and {where}", run.loc("optimizer"),
                                     ["lower the learning rate (--lr) or clip gradients (train.grad_clip)",
                                      "continue from the checkpoint with --resume after changing the settings"])
                step += 1
                in_epoch += 1
                seen += sum(len(next(iter(b.values()))) if b else 1 for b in group) * world
                if step % cfg.log_every == 0 or step == total:
                    now = time.perf_counter()
                    rate = seen / max(now - t_log, 1e-9)
                    seen, t_log = 0, now
                    record({"step": step, "epoch": epoch, "split": "train", "lr": method.lr(),
                            "samples_per_s": round(rate, 1), **logs})
                    bar.update(step, epoch, logs["loss"], method.lr(), rate, log=True)
                    if run.grad_norms is not None:
                        grad_log.write({"step": step, "norms": run.grad_norms})
                        run.grad_norms = None
                elif bar.tty:
                    bar.update(step, epoch, logs["loss"], method.lr(), 0.0, log=False)
                if cfg.eval_every and step % cfg.eval_every == 0 and method.has_split("val"):
                    evaluate("val")
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    save()
                if step >= total and in_epoch < per_epoch:
                    break
            else:       # the epoch ran to its end
                epoch += 1
                in_epoch = 0
                if cfg.eval_every is None and method.has_split("val"):
                    evaluate("val")
                if cfg.checkpoint_every is None:
                    save()
    finally:
        bar.close()
    if saved_step != step:
        save()
    final = evaluate("test") if method.has_split("test") else {}
    nets, _ = gathered()
    if run.sharded and not lead:
        import tempfile
        with tempfile.TemporaryDirectory() as scratch:      # its forwards need every rank; only rank 0's output stays
            method.finish(Path(scratch))
    if lead:
        for n, m in nets.items():
            ck.save_weights(m, out / f"{n}.safetensors", metas[n])
        plot_curves(out / "metrics.jsonl", out / "curves.png", f"{spec.name}: {cfg.method}")
        method.finish(out)
        (out / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
    if world > 1:
        distributed.barrier()
        distributed.shutdown()
    networks = method.networks
    first = next(iter(networks.values()))
    return Result(first, networks, history, final, out, time.perf_counter() - t_start)
