"""Part 6: the Transformer, a decoder-only GPT.

Token + learned position embeddings, n_layer pre-LayerNorm blocks of causal multi-head
self-attention (through F.scaled_dot_product_attention) and a GELU MLP, a final LayerNorm,
then logits. The architecture defaults are makemore.py's (4 layers, 4 heads, n_embd 64,
max_len = the longest item) so the numbers compare; the training recipe is ours.
`--head tied` ties the output layer to the token embedding and `--emb-dropout` sets the
embedding dropout apart from the residual one; at 20k steps neither beat the defaults. The
default recipe evaluates and saves an average of the weights (the engine's `ema`), which did
(docs/appendix-transformer-tuning.md).

Training batches may be packed: several whole items back to back in one row, with `pos` giving
each token's position inside its item; a token then attends only to the earlier tokens of its
own item, so the logits are those of the items run one by one, with far less padding.

`decode` is incremental decoding with a KV cache: each block keeps the keys and values of
the tokens it has already seen, in buffers allocated once for the longest row, so a new token
costs one row of attention instead of a recomputation of the whole prefix. The sampler uses it
when a model provides it.

Each piece of the block can be switched off (`--no-ffn`, `--no-residual`, `--no-layer-norm`; one
head is `--n-head 1`, no dropout `--dropout 0 --emb-dropout 0`), so the "Let's build GPT" lecture's
ladder, from one attention head up to the full block, is one command per rung (docs/part6-transformer.md).
A piece switched off is absent from the model and its checkpoint, not merely bypassed.

Speed tricks live outside this file: `Dropout` is nn.Dropout with a cheaper mask (kernels.py),
and the sampler draws a single row through a NumPy copy of these weights (row_decoder.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import option
from .base import SequenceConfig, SequenceModel
from .kernels import Dropout


@dataclass
class TransformerConfig(SequenceConfig):
    n_layer: int = option(4, "transformer blocks", repeats=True)
    n_head: int = option(4, "attention heads per block")
    n_embd: int = option(64, "width of the residual stream")
    dropout: float = option(0.25, "dropout on the residual branches (attention and MLP outputs) while training")
    emb_dropout: float = option(0.25, "dropout on the token + position embeddings while training")
    head: str = option("separate", "output layer: 'separate' (makemore.py) or 'tied' to the token embedding")
    ffn: bool = option(
        True, "each block's feed-forward layer (the MLP: each token computes on what attention gathered)"
    )
    residual: bool = option(
        True, "residual connections: each branch adds to the stream (off: each branch's output replaces it)"
    )
    layer_norm: bool = option(True, "LayerNorm before each branch and before the output layer")
    init: str = option(
        "gpt2",
        "initial weights: 'gpt2' (N(0, 0.02), the residual branches' output layers scaled down) or 'pytorch' "
        "(torch's own defaults for each layer, as in the lecture's code)",
    )

    # Levers from the modded-nanogpt speedrun, off by default: each was measured on this data
    # (docs/appendix-transformer-tuning.md, seventh pass)
    qk_norm: bool = option(
        False, "RMS-normalise each head's queries and keys (with a learned gain) before attention (QK-norm)"
    )
    activation: str = option("gelu", "the MLP's nonlinearity: 'gelu', or 'relu2' (ReLU squared)")
    zero_init: bool = option(
        False, "start every branch's output layer and the output head at zero (each block starts as the identity)"
    )
    rotary: bool = option(
        False, "rotary positions (RoPE: queries and keys rotated by their position) instead of a position table"
    )
    soft_cap: float = option(0.0, "squash the logits smoothly into (-cap, cap): cap * tanh(logits / cap) (0: off)")
    value_embeddings: bool = option(
        False, "each block adds an embedding of the token itself to its attention values (a table per block)"
    )

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.activation not in ACTIVATIONS:
            problems.append(f"--activation must be one of {', '.join(ACTIVATIONS)}, not {self.activation!r}")
        if self.soft_cap < 0:
            problems.append("--soft-cap must be >= 0")
        if self.rotary and self.n_head >= 1 and (self.n_embd // self.n_head) % 2:
            problems.append("--rotary needs an even head size (--n-embd / --n-head)")
        if self.n_head >= 1 and self.n_embd % self.n_head:
            problems.append(f"--n-embd ({self.n_embd}) must be divisible by --n-head ({self.n_head})")
        for name in ("dropout", "emb_dropout"):
            if not getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be in [0, 1)")
        if self.head not in ("separate", "tied"):
            problems.append(f"--head must be 'separate' or 'tied', not {self.head!r}")
        if self.init not in ("gpt2", "pytorch"):
            problems.append(f"--init must be 'gpt2' or 'pytorch', not {self.init!r}")
        return problems


class ReLUSquared(nn.Module):
    def forward(self, x):
        return F.relu(x).square()


ACTIVATIONS = {"gelu": nn.GELU, "relu2": ReLUSquared}


def rotary_angles(pos: torch.Tensor, head_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of each position's rotation angles, (..., T, head_size / 2): the i-th pair of a
    query or key turns by pos x 10000^(-2i / head_size), so a query-key product depends on how far
    apart the two tokens are, not on where they are."""
    freq = 10000.0 ** (-torch.arange(0, head_size, 2, device=pos.device, dtype=torch.float32) / head_size)
    angles = pos.to(torch.float32).unsqueeze(-1) * freq
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Queries or keys (B, nh, T, hs) turned by their positions' angles (rotary_angles)."""
    cos, sin = rope
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_drop = Dropout(config.dropout)
        if config.qk_norm:
            self.q_norm = nn.RMSNorm(config.n_embd // config.n_head)
            self.k_norm = nn.RMSNorm(config.n_embd // config.n_head)

    def queries_keys_values(self, x, rope: tuple | None = None, token_values: torch.Tensor | None = None):
        """x (B, T, C) -> q, k, v, each (B, nh, T, hs), normalised and rotated where the config says so;
        `token_values` (B, T, C), the tokens' value embeddings, add to the values."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        if token_values is not None:
            v = v + token_values
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = rotate(q, rope), rotate(k, rope)
        return q, k, v

    def forward(
        self,
        x,
        cache: tuple | None = None,
        mask: torch.Tensor | None = None,
        rope: tuple | None = None,
        token_values: torch.Tensor | None = None,
    ):
        """x (B, T, C) -> (B, T, C). With a cache (keys, values, past): buffers (B, nh, positions, hs)
        holding the keys and values of the `past` earlier tokens, x holds only the new tokens,
        whose keys and values are written into the buffers. `mask` (B, 1, T, T), True where a
        query may attend to a key, replaces the causal mask (packed rows). `rope`: the rotary
        angles of x's tokens (rotary_angles), under --rotary; `token_values`: see queries_keys_values."""
        B, T, C = x.shape
        q, k, v = self.queries_keys_values(x, rope, token_values)  # (B, nh, T, hs)
        past = 0
        if cache is not None:
            keys, values, past = cache
            keys[:, :, past : past + T], values[:, :, past : past + T] = k, v
            k, v = keys[:, :, : past + T], values[:, :, : past + T]
        if past and T == 1:  # one new query looks at everything before it; for a single query plain
            # products beat the fused kernel's set-up (1.52 -> 1.13 ms at batch 1000 over 8 keys)
            y = (q @ k.transpose(-2, -1)).mul_(1 / math.sqrt(k.size(-1))).softmax(-1) @ v
        else:
            causal = mask is None and past == 0
            if past:  # several new queries after a cached prefix: query i sees keys 0 .. past + i
                mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)
            # no dropout on the attention weights themselves: on CPU it forces the unfused attention
            # path (+50% step time) and residual dropout regularises as well here (see the docs)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.c_proj(y))

    def weights(self, x, rope: tuple | None = None):
        """The attention weights (B, nh, T, T) forward uses over a whole row x (B, T, C), written out:
        softmax(q k^T / sqrt(head size)) under the causal mask, each query a weighted average of the
        keys up to itself."""
        T = x.size(1)
        q, k, _ = self.queries_keys_values(x, rope)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        return scores.masked_fill(future, float("-inf")).softmax(-1)


def same_item_causal_mask(pos: torch.Tensor) -> torch.Tensor:
    """(B, T) positions inside items -> (B, 1, T, T) mask: query i sees key j <= i of its own item.
    j is in i's item exactly when their positions differ as their columns do (an earlier item's
    token sits further back than its position says)."""
    T = pos.size(1)
    col = torch.arange(T, device=pos.device)
    same = (pos.unsqueeze(2) - pos.unsqueeze(1)) == (col.unsqueeze(1) - col.unsqueeze(0))
    return (same & (col.unsqueeze(1) >= col.unsqueeze(0))).unsqueeze(1)


def layer_norm(config: TransformerConfig) -> nn.Module:
    """A LayerNorm, or nothing (no weights either) under --no-layer-norm."""
    return nn.LayerNorm(config.n_embd) if config.layer_norm else nn.Identity()


class Block(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.residual = config.residual
        self.ln_1 = layer_norm(config)
        self.attn = CausalSelfAttention(config)
        if config.value_embeddings:
            self.value_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        if config.ffn:
            self.ln_2 = layer_norm(config)
            self.mlp = nn.Sequential(
                nn.Linear(config.n_embd, 4 * config.n_embd),
                ACTIVATIONS[config.activation](),
                nn.Linear(4 * config.n_embd, config.n_embd),
                Dropout(config.dropout),
            )

    def forward(self, x, cache=None, mask=None, rope=None, idx: torch.Tensor | None = None):
        """`idx` (B, T): x's tokens, for the value embeddings."""
        token_values = self.value_embedding(idx) if hasattr(self, "value_embedding") else None
        x = self.add(
            x, self.attn(self.ln_1(x), cache, mask, rope, token_values)
        )  # communicate: tokens gather from earlier tokens
        if hasattr(self, "mlp"):
            x = self.add(x, self.mlp(self.ln_2(x)))  # compute: each token thinks about what it gathered
        return x

    def add(self, x, branch):
        """The residual connection: the branch adds to the stream, or (--no-residual) replaces it."""
        return x + branch if self.residual else branch

    def output_projections(self) -> list[nn.Linear]:
        """The last layer of each branch: what writes into the stream."""
        return [self.attn.c_proj] + ([self.mlp[2]] if hasattr(self, "mlp") else [])


class Transformer(SequenceModel):
    Config = TransformerConfig
    abilities = frozenset({"decode", "pack", "embedding", "attention"})
    # Tuned on 2 CPU cores to fit 10 minutes of training (docs/appendix-transformer-tuning.md).
    # The average of the weights (ema) is what gets evaluated and saved. Batch 128: the fixed cost of a step
    # (~3.5 ms of Python and dispatch) is shared by twice the items. beta2 0.99: Adam's scale of
    # each weight's steps follows the gradients of the last ~100 steps, not ~1000 (fifth pass:
    # dev 0.0034 lower, mean of 3 seeds). Measured: test 1.9186 in 562 s; seeds 1, 2: 1.9238, 1.9226.
    train_defaults = dict(
        max_steps=22000,
        batch_size=128,
        learning_rate=4e-3,
        weight_decay=0.1,
        beta2=0.99,
        warmup_steps=300,
        min_lr_ratio=0.05,
        eval_interval=2000,
        ema=0.999,
    )
    presets = {
        # batch 64 learns more per item than 128; 64k steps of it with a longer average
        # (docs/appendix-transformer-tuning.md, fourth pass). beta2 0.99 tied on dev here (fifth pass).
        "best": dict(max_steps=64000, batch_size=64, learning_rate=3e-3, ema=0.9995, beta2=0.999),
        # the most dev NLL for 90 seconds of CPU: Muon learns more per step than AdamW, and so few
        # epochs (11) need little dropout (sixth pass); ReLU², QK-norm and a flat-then-falling
        # schedule each lowered dev NLL further (seventh pass), the fall over the last half of the
        # steps more than over the last 30% (eighth pass, docs/appendix-transformer-tuning.md)
        "quick": dict(
            optimizer="muon",
            max_steps=2300,
            ema=0.995,
            dropout=0.1,
            emb_dropout=0.1,
            eval_interval=500,
            activation="relu2",
            qk_norm=True,
            schedule="wsd",
            cooldown=0.5,
        ),
        # the "Let's build GPT" lecture's loop for its small models (ng-video-lecture's v2.py): AdamW at a
        # constant 1e-3 (torch's default weight decay 0.01), 5,000 steps of 32 rows, torch's default
        # init, n_embd 32, no dropout: the ladder's recipe, each rung then switching pieces of the block on
        "lecture": dict(
            max_steps=5000,
            batch_size=32,
            learning_rate=1e-3,
            schedule="constant",
            warmup_steps=0,
            weight_decay=0.01,
            beta2=0.999,
            ema=0.0,
            eval_interval=500,
            init="pytorch",
            n_embd=32,
            dropout=0.0,
            emb_dropout=0.0,
        ),
    }

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if not config.rotary:
            self.wpe = nn.Embedding(config.positions, config.n_embd)
        self.drop = Dropout(config.emb_dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = layer_norm(config)
        if config.head == "tied":
            # the output layer reuses the token embedding (a character's logit is the dot
            # product of the final state with that character's embedding); only its bias is
            # new. A separate tensor for the bias, not a shared Linear weight, keeps the
            # state_dict free of aliased tensors (safetensors refuses those).
            self.lm_bias = nn.Parameter(torch.zeros(config.vocab_size))
        else:
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
        if config.init == "gpt2":
            self._init_gpt2()
        if config.zero_init:
            self._init_zero()

    def _init_gpt2(self):
        """Small weights, N(0, 0.02): each branch starts near zero and the residual stream carries the
        input (without the stream, each layer shrinks the signal ~10x; `--init pytorch` is for that)."""
        self.apply(self._init_weights)
        # each residual branch adds to the stream, so scale its output projection by 1/sqrt(branches)
        # (2 n_layer with the MLP) to keep the stream's variance from growing with depth
        projections = [proj for block in self.blocks for proj in block.output_projections()]
        for proj in projections:
            nn.init.normal_(proj.weight, std=0.02 / math.sqrt(len(projections)))

    def _init_zero(self):
        """The output layers of the branches and the head start at zero: every block starts as the
        identity and the first prediction is uniform; gradients still reach each of them at step one."""
        layers = [proj for block in self.blocks for proj in block.output_projections()]
        layers += [self.lm_head] if self.config.head == "separate" else []
        for layer in layers:
            nn.init.zeros_(layer.weight)

    def hidden_matrices(self) -> list[nn.Parameter]:
        return [m.weight for block in self.blocks for m in block.modules() if isinstance(m, nn.Linear)]

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _run(self, idx, caches: list | None = None, past: int = 0, pos: torch.Tensor | None = None):
        T = idx.size(1)
        mask = None
        if pos is None:
            self.check_length(past + T)
            pos = torch.arange(past, past + T, device=idx.device)
        else:
            mask = same_item_causal_mask(pos)
        x, rope = self.embed(idx, pos)
        for i, block in enumerate(self.blocks):
            x = block(x, (*caches[i], past) if caches is not None else None, mask, rope, idx)
        return self.head(self.ln_f(x))

    def embed(self, idx, pos):
        """The tokens' embeddings (with their positions' unless --rotary) and the rotary angles (or None)."""
        c = self.config
        if c.rotary:  # (B, T) positions of packed rows give (B, 1, T, hs/2) angles, one row per item
            cos, sin = rotary_angles(pos, c.n_embd // c.n_head)
            rope = (cos.unsqueeze(1), sin.unsqueeze(1)) if pos.dim() == 2 else (cos, sin)
            return self.drop(self.wte(idx)), rope
        return self.drop(self.wte(idx) + self.wpe(pos)), None

    def head(self, x):
        logits = F.linear(x, self.wte.weight, self.lm_bias) if self.config.head == "tied" else self.lm_head(x)
        cap = self.config.soft_cap
        return cap * torch.tanh(logits / cap) if cap else logits

    def forward(self, idx, pos: torch.Tensor | None = None):
        """Logits (B, T, V). `pos` (B, T), each token's position inside its item, marks packed
        rows: a new item starts wherever pos is 0."""
        return self._run(idx, pos=pos)

    def char_embedding(self):
        return self.wte.weight

    @torch.no_grad()
    def attention(self, idx):
        self.check_length(idx.size(1))
        x, rope = self.embed(idx, torch.arange(idx.size(1), device=idx.device))
        maps = []
        for block in self.blocks:
            maps.append(block.attn.weights(block.ln_1(x), rope)[0])
            x = block(x, rope=rope, idx=idx)
        return torch.stack(maps)

    def decode(self, idx, state=None):
        """Incremental decoding: logits (B, T, V) for the new tokens idx (B, T) given the state
        (None at the start): per block the buffers of keys and values (B, nh, positions, hs),
        allocated once for the longest row and filled in place, and how many tokens they hold.
        Returns (logits, the state after idx), which reuses the buffers of the state passed in."""
        caches, past = state if state is not None else (self._new_caches(idx.size(0)), 0)
        return self._run(idx, caches, past), (caches, past + idx.size(1))

    def _new_caches(self, rows: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        c = self.config
        shape = (rows, c.n_head, c.positions, c.n_embd // c.n_head)
        return [(self.wte.weight.new_empty(shape), self.wte.weight.new_empty(shape)) for _ in self.blocks]
