"""The ``train:`` section of a spec as Pydantic models (also the body of a ``--config`` file).

Everything a run needs is here: the method, the data, the loss, the optimizer and schedule, how long, how big a batch,
where to write. Unknown keys are errors (located, with did-you-mean, through the spec loader); choices that select a
kind of thing (``data.source``, ``loss.name``, ``optimizer.name``, ``schedule.name``) are discriminated unions, so each
kind takes exactly its own options. This module imports pydantic only: ``import netspec`` stays torch-free.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, model_validator

from ..errors import did_you_mean

PosFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _tagged(kind: str, key: str, members: tuple):
    """A union discriminated on ``key`` whose unknown tags get a did-you-mean instead of pydantic's tag list."""
    tags = [m.model_fields[key].annotation.__args__[0] for m in members]

    def check(v: Any) -> Any:
        if isinstance(v, dict) and key in v and v[key] not in tags:
            hint = did_you_mean(str(v[key]), tags) or ""
            raise ValueError(f"unknown {kind} {v[key]!r}{' (' + hint + ')' if hint else ''}; "
                             f"choices: {', '.join(tags)}")
        if isinstance(v, dict) and key not in v:
            raise ValueError(f"the {kind} needs '{key}', one of: {', '.join(tags)}")
        return v

    return Annotated[Union[members], Discriminator(key), BeforeValidator(check)]  # type: ignore


# -- data -------------------------------------------------------------------------------------------------------

class Split(Model):
    """Fractions of a dataset held out for validation and test (a seeded split)."""

    val: Fraction = 0.1
    test: Fraction = 0.2
    seed: int = Field(0, description="seed of the split (not of the training run)")


class Augment(Model):
    """Random changes to the training images (never to val/test), drawn from the run's seeded RNG."""

    shift: int = Field(0, ge=0, le=64, description="translate by up to this many pixels (zero fill)")
    hflip: bool = Field(False, description="mirror left-right with probability 1/2")


class _Data(Model):
    augment: Augment = Field(default_factory=Augment)
    inputs: dict[str, str] = Field(default_factory=dict,
                                   description="spec input name -> the data's array name; default: by name, or the "
                                               "one array for the one input")
    split: Split = Field(default_factory=Split)
    limit: Optional[int] = Field(None, ge=1, description="use only the first N examples (quick runs)")


class DigitsData(_Data):
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes): x [n, 64] in [0, 1], or images."""

    source: Literal["digits"]
    image_size: Optional[int] = Field(None, ge=8, le=256,
                                      description="give [n, 1, S, S] images resized (bilinear) from 8x8")


class ShapesData(_Data):
    """Generated grey images of random rectangles, ellipses and triangles with per-pixel masks and boxes (seeded)."""

    source: Literal["shapes"]
    n: int = Field(2000, ge=10, le=1_000_000, description="number of images")
    size: int = Field(32, ge=8, le=1024, description="image height and width")
    max_shapes: int = Field(3, ge=1, le=20)
    noise: float = Field(0.1, ge=0, le=1, description="std of the Gaussian noise added to the images")
    classes: bool = Field(False, description="mask holds the shape kind (1 rectangle, 2 ellipse, 3 triangle), not 1")
    channels: int = Field(1, ge=1, le=4)
    seed: int = 0


class TextData(_Data):
    """A byte-level text corpus: pydoc's topics (ships with Python, about 465k characters) or a UTF-8 file."""

    source: Literal["text"]
    path: Optional[str] = Field(None, description="a text file; default: the stdlib's pydoc_data.topics")
    context: int = Field(64, ge=2, le=65536, description="tokens per training sequence")


class NpzData(_Data):
    """Arrays from a .npz file; 'target' names the label array."""

    source: Literal["npz"]
    path: str
    target: Optional[str] = Field("y", description="the array holding labels/targets (none for autoencoders)")


class CsvData(_Data):
    """A CSV table with a header row: every numeric column but 'target' becomes a feature of x."""

    source: Literal["csv"]
    path: str
    target: Optional[str] = Field(None, description="the label column; default: the last one")


class ImageFolderData(_Data):
    """An image folder with one sub-folder per class (folder names, sorted, are the classes)."""

    source: Literal["images"]
    path: str
    size: list[int] = Field(default_factory=lambda: [32, 32], min_length=2, max_length=2)
    grayscale: bool = False


class CartPoleData(Model):
    """gymnasium's CartPole-v1 (for deep Q-learning): observations [4], two actions."""

    source: Literal["cartpole"]


DataConfig = _tagged("data source", "source", (DigitsData, ShapesData, TextData, NpzData, CsvData,
                                               ImageFolderData, CartPoleData))


# -- losses -----------------------------------------------------------------------------------------------------

class _Loss(Model):
    reduction: Literal["mean", "sum"] = "mean"


class MSELoss(_Loss):
    name: Literal["mse"]


class L1Loss(_Loss):
    name: Literal["l1"]


class SmoothL1Loss(_Loss):
    name: Literal["smooth_l1"]
    beta: float = Field(1.0, ge=0)


class HuberLoss(_Loss):
    name: Literal["huber"]
    delta: PosFloat = 1.0


class CrossEntropyLoss(_Loss):
    name: Literal["cross_entropy"]
    label_smoothing: Fraction = 0.0
    weight: Optional[list[float]] = Field(None, description="one weight per class")
    ignore_index: int = -100


class NLLLoss(_Loss):
    name: Literal["nll"]
    weight: Optional[list[float]] = None
    ignore_index: int = -100


class BCELoss(_Loss):
    name: Literal["bce"]


class BCEWithLogitsLoss(_Loss):
    name: Literal["bce_with_logits"]
    pos_weight: Optional[list[float]] = None


class KLDivLoss(Model):
    name: Literal["kl_div"]
    reduction: Literal["batchmean", "mean", "sum"] = "batchmean"
    log_target: bool = False


class MultiMarginLoss(_Loss):
    name: Literal["hinge"]
    margin: float = 1.0
    p: Literal[1, 2] = 1


class DiceLoss(_Loss):
    name: Literal["dice"]
    smooth: float = Field(1.0, ge=0)
    with_ce: float = Field(0.0, ge=0, description="add this times cross-entropy (Dice + CE, as nnU-Net does)")


LossConfig = _tagged("loss", "name", (MSELoss, L1Loss, SmoothL1Loss, HuberLoss, CrossEntropyLoss, NLLLoss, BCELoss,
                                      BCEWithLogitsLoss, KLDivLoss, MultiMarginLoss, DiceLoss))


# -- optimizers -------------------------------------------------------------------------------------------------

class _Optim(Model):
    lr: PosFloat = 1e-3
    weight_decay: float = Field(0.0, ge=0, description="applied to weights only, never to biases and norms")


class SGD(_Optim):
    name: Literal["sgd"]
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False
    dampening: float = 0.0


class Adagrad(_Optim):
    name: Literal["adagrad"]
    lr_decay: float = 0.0
    eps: PosFloat = 1e-10


class RMSprop(_Optim):
    name: Literal["rmsprop"]
    alpha: float = Field(0.99, gt=0, lt=1)
    momentum: float = Field(0.0, ge=0, lt=1)
    eps: PosFloat = 1e-8
    centered: bool = False


class Adadelta(_Optim):
    name: Literal["adadelta"]
    lr: PosFloat = 1.0
    rho: float = Field(0.9, gt=0, lt=1)
    eps: PosFloat = 1e-6


class Adam(_Optim):
    name: Literal["adam"]
    betas: tuple[float, float] = (0.9, 0.999)
    eps: PosFloat = 1e-8
    amsgrad: bool = False


class AdamW(_Optim):
    name: Literal["adamw"]
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: PosFloat = 1e-8
    amsgrad: bool = False


OptimizerConfig = _tagged("optimizer", "name", (SGD, Adagrad, RMSprop, Adadelta, Adam, AdamW))


# -- schedules (stepped once per optimizer step; lengths in steps or as a fraction of the run) ------------------

class _Sched(Model):
    warmup: int = Field(0, ge=0, description="linear warm-up steps from 0 before the schedule")


class ConstantSchedule(_Sched):
    name: Literal["constant"]


class StepSchedule(_Sched):
    name: Literal["step"]
    step_size: int = Field(..., ge=1, description="steps between decays")
    gamma: float = Field(0.1, gt=0)


class MultiStepSchedule(_Sched):
    name: Literal["multistep"]
    milestones: list[int] = Field(..., min_length=1)
    gamma: float = Field(0.1, gt=0)


class CosineSchedule(_Sched):
    name: Literal["cosine"]
    min_lr: float = Field(0.0, ge=0)


class OneCycleSchedule(Model):
    name: Literal["onecycle"]
    pct_start: float = Field(0.3, gt=0, lt=1)
    div_factor: PosFloat = 25.0
    final_div_factor: PosFloat = 1e4


ScheduleConfig = _tagged("schedule", "name", (ConstantSchedule, StepSchedule, MultiStepSchedule, CosineSchedule,
                                              OneCycleSchedule))


# -- method-specific settings -----------------------------------------------------------------------------------

class GanConfig(Model):
    generator: str = "generator"
    discriminator: str = "discriminator"
    z_input: Optional[str] = Field(None, description="the generator's noise input (default: its only input)")
    d_lr: Optional[PosFloat] = Field(None, description="discriminator learning rate (default: the optimizer's)")


class DqnConfig(Model):
    episodes: int = Field(300, ge=1, description="training episodes")
    gamma: float = Field(0.99, gt=0, le=1)
    buffer: int = Field(50_000, ge=100, description="replay buffer size")
    warmup_steps: int = Field(1000, ge=0, description="random steps before learning")
    target_update: int = Field(500, ge=1, description="steps between target network copies")
    eps_start: float = Field(1.0, ge=0, le=1)
    eps_end: float = Field(0.02, ge=0, le=1)
    eps_decay_steps: int = Field(10_000, ge=1)
    eval_episodes: int = Field(100, ge=1)
    double: bool = Field(True, description="double DQN targets")


class VaeConfig(Model):
    encoder: str = Field("encoder", description="the network giving the posterior's mean and log-variance")
    decoder: str = Field("decoder", description="the network mapping a latent z back to an input")
    mean: str = Field("mu", description="the encoder output holding the mean")
    logvar: str = Field("logvar", description="the encoder output holding the log-variance")
    beta: float = Field(1.0, ge=0, description="weight of the KL term")


METHODS = ("classify", "regress", "segment", "autoencoder", "vae", "gan", "lm", "dqn", "detection")
METRICS = ("accuracy", "top5", "mean_iou", "pixel_accuracy", "mse", "mae", "perplexity", "map50")


class TrainConfig(Model):
    """How to train the network(s) of this spec."""

    method: Literal[METHODS] = Field(..., description="the training loop: " + ", ".join(METHODS))  # type: ignore
    network: Optional[str] = Field(None, description="which network of the file (default: the first)")
    params: dict[str, Any] = Field(default_factory=dict, description="network parameters for this run")
    data: DataConfig = Field(..., description="where examples come from")  # type: ignore
    loss: Optional[LossConfig] = Field(None, description="default: the method's usual loss")  # type: ignore
    optimizer: OptimizerConfig = Field(default_factory=lambda: Adam(name="adam"))  # type: ignore
    schedule: ScheduleConfig = Field(default_factory=lambda: ConstantSchedule(name="constant"))  # type: ignore
    epochs: int = Field(10, ge=1, le=1_000_000)
    steps: Optional[int] = Field(None, ge=1, description="stop after this many optimizer steps (overrides epochs)")
    batch_size: int = Field(64, ge=1, le=1_000_000, description="global batch (split across processes under DDP)")
    accumulate: int = Field(1, ge=1, le=4096, description="micro-batches per optimizer step")
    grad_clip: Optional[PosFloat] = Field(None, description="clip the gradients' global L2 norm to this")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on CUDA, fp32 on CPU")
    channels_last: Literal["auto", True, False] = "auto"
    compile: bool = Field(False, description="torch.compile the network")
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp", description="under torchrun: ddp (a whole copy per process) or fsdp (FSDP2: parameters, gradients "
                           "and optimizer state sharded across processes, for networks larger than one device)")
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    seed: int = 0
    threads: Optional[int] = Field(None, ge=1, le=1024, description="CPU threads for torch (default: torch's); "
                                                                     "1 is fastest for tiny networks")
    metrics: list[Literal[METRICS]] = Field(default_factory=list, description="evaluated on val/test")  # type: ignore
    eval_every: Optional[int] = Field(None, ge=1, description="steps between evaluations (default: every epoch)")
    log_every: int = Field(10, ge=1, description="steps between log lines / metrics.jsonl records")
    checkpoint_every: Optional[int] = Field(None, ge=1, description="steps between checkpoints (default: each epoch)")
    keep: int = Field(2, ge=1, description="checkpoints kept")
    out: str = Field("runs/{name}", description="output folder; {name} is the spec's name")
    gan: GanConfig = Field(default_factory=GanConfig)
    dqn: DqnConfig = Field(default_factory=DqnConfig)
    vae: VaeConfig = Field(default_factory=VaeConfig)

    @model_validator(mode="after")
    def _fit(self):
        if self.method == "dqn" and self.data.source != "cartpole":
            raise ValueError("method 'dqn' learns from an environment: use data: {source: cartpole}")
        if self.method == "dqn" and self.strategy == "fsdp":
            raise ValueError("method 'dqn' trains a small network in one process; strategy 'fsdp' is for networks "
                             "larger than one device: use strategy: ddp")
        if self.method != "dqn" and self.data.source == "cartpole":
            raise ValueError("data source 'cartpole' is an environment: use it with method: dqn")
        if self.method == "lm" and self.data.source != "text":
            raise ValueError("method 'lm' reads text: use data: {source: text}")
        if self.method == "detection":
            if self.data.source not in ("shapes", "npz"):
                raise ValueError("method 'detection' reads images with boxes: use data: {source: shapes} or an npz "
                                 "with images, boxes, labels, owner (and masks)")
            if self.loss is not None:
                raise ValueError("method 'detection' trains on the detector's own losses (RPN, box and mask "
                                 "losses, summed): remove 'loss'")
            if self.data.augment.shift or self.data.augment.hflip:
                raise ValueError("method 'detection' does not augment (shifts and flips would move the boxes): "
                                 "remove data.augment")
        return self


class TrainFile(Model):
    """A ``--config`` file: a ``train:`` section on its own, or a whole spec file (whose other sections are not
    used here); any other top-level key is an error, not ignored."""

    model_config = ConfigDict(extra="ignore")
    train: TrainConfig


# -- field names at a path, for did-you-mean on unknown keys ----------------------------------------------------

def fields_at(data: Any, path: tuple) -> list[str]:
    """The keys allowed in the mapping at ``path`` (which starts with 'train') of the raw spec ``data``."""
    model: Any = TrainConfig
    cur = data.get("train") if isinstance(data, dict) else None
    for seg in path[1:]:
        cur = cur.get(seg) if isinstance(cur, dict) else None
        f = model.model_fields.get(seg) if isinstance(seg, str) else None
        if f is None:
            break
        model = _model_of(f.annotation, cur)
        if model is None:
            return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_of(tp: Any, value: Any):
    """The model class a value of annotation ``tp`` is validated with (union members chosen by their tag)."""
    import typing
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in typing.get_args(tp):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            tag = next((k for k in ("source", "name") if k in arg.model_fields), None)
            if tag is None or (isinstance(value, dict) and typing.get_args(arg.model_fields[tag].annotation)
                               == (value.get(tag),)):
                return arg
        else:
            m = _model_of(arg, value)
            if m is not None:
                return m
    return None
