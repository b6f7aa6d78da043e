"""Hand-written PyTorch modules that zoo specs without a torchvision counterpart are checked against: the same layers
in the same order, written the way their reference implementations write them."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def dqn(num_actions: int = 18) -> nn.Module:
    """Mnih et al. 2015 (Nature), Methods: the network that maps 4 stacked 84x84 frames to Q-values."""
    return nn.Sequential(
        nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU(),
        nn.Linear(512, num_actions))


class VAE(nn.Module):
    """pytorch/examples vae/main.py."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


class RNN(nn.Module):
    """A 2-layer tanh RNN over 28-feature steps, classified from the last step."""

    def __init__(self, features: int = 28, hidden: int = 128, layers: int = 2, num_classes: int = 10):
        super().__init__()
        self.rnn = nn.RNN(features, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


NZ, NGF, NDF, NC = 100, 64, 64, 3       # pytorch/examples dcgan/main.py defaults


class Generator(nn.Module):
    """pytorch/examples dcgan/main.py."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 8), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(True),
            nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    """pytorch/examples dcgan/main.py."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, image):
        return self.main(image).view(-1, 1).squeeze(1)


class LSTMClassifier(nn.Module):
    """The usual PyTorch recipe (specs/lstm.yaml): embedding, 2-layer LSTM with dropout 0.2 between the layers, a
    linear layer on the last step's output."""

    def __init__(self, vocab: int = 10000, embed: int = 128, hidden: int = 256, num_classes: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=2, batch_first=True, dropout=0.2)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, tokens):
        out, _ = self.lstm(self.embedding(tokens))
        return self.fc(out[:, -1])


class GRUTagger(nn.Module):
    """specs/gru.yaml: embedding, dropout, 2-layer bidirectional GRU (dropout 0.5), a linear tagger on every step."""

    def __init__(self, vocab: int = 10000, embed: int = 100, hidden: int = 128, num_tags: int = 17):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.drop = nn.Dropout(0.5)
        self.gru = nn.GRU(embed, hidden, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)
        self.tagger = nn.Linear(2 * hidden, num_tags)

    def forward(self, tokens):
        out, _ = self.gru(self.drop(self.embedding(tokens)))
        return self.tagger(out)


def mlp() -> nn.Module:
    """scikit-learn's MLPClassifier(hidden_layer_sizes=(128, 64), activation="relu") on 64 features, as torch modules."""
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


# (spec file stem, network) -> (the reference module's class, a random input, whether the state_dict keys are the
# same; where they are not, the tensors are loaded by position, which the same layer order makes exact)
HANDWRITTEN = {
    ("dqn", "dqn"): (dqn, lambda: torch.randn(2, 4, 84, 84), False),
    ("lstm", "lstm"): (LSTMClassifier, lambda: torch.randint(0, 10000, (2, 7)), True),
    ("gru", "gru"): (GRUTagger, lambda: torch.randint(0, 10000, (2, 7)), True),
    ("mlp", "mlp"): (mlp, lambda: torch.randn(2, 64), False),
    ("vae", "vae"): (VAE, lambda: torch.rand(2, 1, 28, 28), True),
    ("rnn", "rnn"): (RNN, lambda: torch.randn(2, 7, 28), True),
    ("dcgan", "generator"): (Generator, lambda: torch.randn(2, NZ, 1, 1), False),
    ("dcgan", "discriminator"): (Discriminator, lambda: torch.randn(2, NC, 64, 64), False),
}
