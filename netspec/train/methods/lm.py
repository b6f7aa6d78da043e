"""Language modelling: predict every next token of a window; cross-entropy against the shifted window."""
from __future__ import annotations

from ...errors import SpecError
from .supervised import first_output
from .base import Method


class LanguageModel(Method):
    """Logits (N, T, V) for tokens (N, T); the target is the same window shifted by one."""

    def check_target(self, graph) -> None:
        out = next(iter(graph.output_types().values()))
        v = self.data.info["vocab"]
        if len(out.shape) != 3 or out.shape[-1] != v:
            raise SpecError(f"a language model's output must be [N, T, {v}] (next-byte logits); the network "
                            f"gives {out}", self.run.loc("method"), f"end the network in a linear layer of {v}")

    def loss(self, batch: dict, meter=None):
        logits = first_output(self.forward(batch))                       # (N, T, V)
        target = batch[self.data.target]                                 # (N, T)
        return self.loss_fn(logits.flatten(0, 1), target.flatten()), {}

    def evaluate(self, split: str) -> dict:
        res = super().evaluate(split)
        h = self.data.info["unigram_entropy"]
        res["bits_per_byte"] = res["loss"] / 0.6931471805599453
        res["below_unigram"] = 1 - res["loss"] / h        # 0.4: cross-entropy 40% below the unigram entropy
        return res
