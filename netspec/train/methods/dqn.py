"""Deep Q-learning (Mnih et al. 2015) on gymnasium's CartPole-v1: replay buffer, target network, epsilon-greedy.

One "step" of the driver is one environment step (plus one gradient step on a replay minibatch once the buffer holds
``warmup_steps`` transitions); an "epoch" is 1,000 environment steps. Evaluations play greedy episodes (10 for val,
``eval_episodes`` for test) and the network that scored best on val is the one kept (checkpoint selection). Targets
are double-DQN by default: the online network picks the next action, the target network values it.
A resumed run restores the networks, optimizer, buffer and counters, and starts a fresh episode.
"""
from __future__ import annotations

import copy
from typing import Iterator

import numpy as np
import torch

from ...errors import SpecError
from ..losses import build_loss
from ..metrics import layer_grad_norms
from ..optim import build_optimizer
from .base import Method

STEPS_PER_EPOCH = 1000


def make_env(seed: int, loc):
    try:
        import gymnasium as gym
    except ImportError:
        raise SpecError("CartPole comes from gymnasium, which is not installed", loc, "pip install gymnasium") from None
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


class Dqn(Method):
    def setup(self) -> None:
        d = self.cfg.dqn
        self.env = make_env(self.cfg.seed, self.run.loc("data"))
        n_obs, n_act = self.env.observation_space.shape[0], int(self.env.action_space.n)
        name = self.run.network_name()
        self.net = self.run.build(name)
        self.networks[name] = self.net
        g = self.run.graphs[name]
        (iname, itype), = g.input_types().items()
        out = next(iter(g.output_types().values()))
        if list(itype.shape[1:]) != [n_obs] or list(out.shape[1:]) != [n_act]:
            raise SpecError(f"CartPole gives observations [N, {n_obs}] and has {n_act} actions; the network maps "
                            f"{itype} to {out}", self.run.loc("data"), f"a Q-network maps [N, {n_obs}] to [N, {n_act}]")
        self.input = iname
        self.target = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.model = self.run.wrap(self.net)
        self.loss_fn = build_loss(self.cfg.loss or self.run.default_loss("huber")).to(self.run.device)
        self.optimizers["main"] = build_optimizer(self.cfg.optimizer, [self.net])
        cap = d.buffer
        self.buf = {"obs": torch.zeros(cap, n_obs), "act": torch.zeros(cap, dtype=torch.int64),
                    "rew": torch.zeros(cap), "next": torch.zeros(cap, n_obs), "done": torch.zeros(cap)}
        self.counters = {"t": 0, "size": 0, "episode": 0, "best": -1.0}
        self.best_state = None
        self.obs, _ = self.env.reset()
        self.ep_return = 0.0
        self.data = None

    def steps_per_epoch(self) -> int:
        return STEPS_PER_EPOCH

    def batches(self, epoch: int, start_step: int) -> Iterator[list[dict]]:
        for _ in range(start_step, STEPS_PER_EPOCH):
            yield [{}]

    def has_split(self, split: str) -> bool:
        return split in ("val", "test")

    def epsilon(self) -> float:
        d = self.cfg.dqn
        frac = min(1.0, self.counters["t"] / d.eps_decay_steps)
        return d.eps_start + frac * (d.eps_end - d.eps_start)

    def q(self, obs, module=None) -> torch.Tensor:
        return (module or self.model)(**{self.input: obs.to(self.run.device)})

    def train_step(self, group) -> dict:
        d, c = self.cfg.dqn, self.counters
        if torch.rand(()).item() < self.epsilon():
            action = int(torch.randint(self.env.action_space.n, ()).item())
        else:
            with torch.no_grad():
                action = int(self.q(torch.as_tensor(self.obs, dtype=torch.float32)[None]).argmax(1).item())
        nxt, reward, term, trunc, _ = self.env.step(action)
        i = c["t"] % d.buffer
        for k, v in (("obs", self.obs), ("act", action), ("rew", reward), ("next", nxt), ("done", float(term))):
            self.buf[k][i] = torch.as_tensor(v, dtype=self.buf[k].dtype)
        c["t"] += 1
        c["size"] = min(c["size"] + 1, d.buffer)
        self.ep_return += reward
        logs: dict = {"epsilon": round(self.epsilon(), 4)}
        if term or trunc:
            c["last_return"] = self.ep_return
            c["episode"] += 1
            self.obs, _ = self.env.reset()
            self.ep_return = 0.0
        else:
            self.obs = nxt
        if "last_return" in c:
            logs["episode_return"] = c["last_return"]
        loss = 0.0
        if c["size"] >= max(d.warmup_steps, self.cfg.batch_size):
            loss = self.learn()
            self.schedules["main"].step()
        if c["t"] % d.target_update == 0:
            self.target.load_state_dict(self.net.state_dict())
        return {"loss": loss, **logs}

    def learn(self) -> float:
        d = self.cfg.dqn
        idx = torch.randint(self.counters["size"], (self.cfg.batch_size,))
        b = {k: v[idx].to(self.run.device) for k, v in self.buf.items()}
        with torch.no_grad():
            if d.double:
                a_next = self.q(b["next"]).argmax(1, keepdim=True)
                q_next = self.q(b["next"], self.target).gather(1, a_next).squeeze(1)
            else:
                q_next = self.q(b["next"], self.target).max(1).values
            target = b["rew"] + d.gamma * (1 - b["done"]) * q_next
        with self.run.autocast():
            q = self.q(b["obs"]).gather(1, b["act"][:, None]).squeeze(1)
            loss = self.loss_fn(q.float(), target)
        if not torch.isfinite(loss):
            return float(loss)
        opt = self.optimizers["main"]
        loss.backward()
        if self.run.log_grads:                          # a log step: per-layer gradient norms, before clipping
            self.run.grad_norms = layer_grad_norms(self.networks)
        self.run.clip(self.net.parameters())
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    @torch.no_grad()
    def play(self, episodes: int, seed: int) -> list[float]:
        """Greedy episodes on a separate environment (the training episode is left as it is)."""
        env = make_env(seed, None)
        self.net.eval()
        returns = []
        try:
            for k in range(episodes):
                obs, _ = env.reset(seed=seed + k)
                total, done = 0.0, False
                while not done:
                    a = int(self.q(torch.as_tensor(obs, dtype=torch.float32)[None], self.net).argmax(1).item())
                    obs, r, term, trunc, _ = env.step(a)
                    total += r
                    done = term or trunc
                returns.append(total)
        finally:
            self.net.train()
            env.close()
        return returns

    def evaluate(self, split: str) -> dict:
        if split == "test":
            if self.best_state is not None:
                self.net.load_state_dict(self.best_state)
            returns = self.play(self.cfg.dqn.eval_episodes, seed=10_000 + self.cfg.seed)
        else:
            returns = self.play(10, seed=1_000 + self.counters["t"])
            score = float(np.mean(returns))
            if score >= self.counters["best"]:
                self.counters["best"] = score
                self.best_state = copy.deepcopy(self.net.state_dict())
        return {"return": float(np.mean(returns)), "return_min": float(np.min(returns))}

    def env_state(self) -> dict:
        """Where the training episode stands: CartPole's physical state and random generator, the time limit's step
        count, the last observation and the return so far; enough for a resumed run to continue bitwise."""
        u = self.env.unwrapped
        state = None if u.state is None else torch.from_numpy(np.array(u.state, copy=True))
        elapsed = {}
        w = self.env
        while hasattr(w, "env"):
            if hasattr(w, "_elapsed_steps"):
                elapsed[type(w).__name__] = w._elapsed_steps
            w = w.env
        return {"state": state, "steps_beyond_terminated": u.steps_beyond_terminated,
                "rng": u.np_random.bit_generator.state, "elapsed": elapsed,
                "obs": torch.from_numpy(np.array(self.obs, copy=True)), "return": self.ep_return}

    def set_env_state(self, s: dict) -> None:
        u = self.env.unwrapped
        u.state = None if s["state"] is None else s["state"].numpy().copy()
        u.steps_beyond_terminated = s["steps_beyond_terminated"]
        u.np_random.bit_generator.state = s["rng"]
        w = self.env
        while hasattr(w, "env"):
            if type(w).__name__ in s["elapsed"]:
                w._elapsed_steps = s["elapsed"][type(w).__name__]
            w = w.env
        self.obs = s["obs"].numpy().copy()
        self.ep_return = s["return"]

    def extra_state(self) -> dict:
        state = {"buffer": self.buf, "counters": dict(self.counters), "target": self.target.state_dict(),
                 "env": self.env_state()}
        if self.best_state is not None:
            state["best"] = self.best_state
        return state

    def load_extra_state(self, state: dict) -> None:
        self.buf = state["buffer"]
        self.counters = state["counters"]
        self.target.load_state_dict(state["target"])
        self.best_state = state.get("best")
        if "env" in state:
            self.set_env_state(state["env"])
