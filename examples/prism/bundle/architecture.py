# assay's tiny PRISM example: the architecture half of a two-script bundle.
# A small causal transformer over byte tokens with a tied embedding / output head.
# build_model(ctx) is pure: no data, no files, no network.
import math

import torch
from torch import nn

from prism_challenge.evaluator.interface import PrismContext

ARCHITECTURE_NAME = "assay tiny byte transformer"
MODEL_DIM = 64
MODEL_HEADS = 4
MODEL_LAYERS = 2


def sinusoid(length: int, dim: int, device: torch.device) -> torch.Tensor:
    # Fixed positions of any length: PRISM's last batch can be one row longer than max_seq_len.
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, dim, 2, device=device) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table * 0.1


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm_attn = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm_attn(x)).chunk(3, dim=-1)
        q = q.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        k = k.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        v = v.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)
        attn = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.norm_mlp(x))


class TinyByteLM(nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, MODEL_DIM)
        self.blocks = nn.ModuleList([Block(MODEL_DIM, MODEL_HEADS) for _ in range(MODEL_LAYERS)])
        self.norm = nn.LayerNorm(MODEL_DIM)
        self.head = nn.Linear(MODEL_DIM, vocab_size, bias=False)
        self.head.weight = self.embed.weight
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + sinusoid(tokens.shape[1], MODEL_DIM, tokens.device)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def build_model(ctx: PrismContext) -> TinyByteLM:
    return TinyByteLM(ctx.vocab_size)
